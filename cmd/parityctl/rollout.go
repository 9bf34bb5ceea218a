package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/parityhq/parity/internal/cli"
	"github.com/parityhq/parity/pkg/rollout"
)

// Exit codes of the rollout command.
const (
	exitRolloutOK      = 0
	exitRolloutRefused = 1 // the collector refused the change (409): the reason is printed
	exitRolloutError   = 3
)

const rolloutUsage = `usage:
  parityctl rollout status   --experiment NAME
  parityctl rollout plan     --experiment NAME --file plan.json --reason TEXT
  parityctl rollout promote  --experiment NAME --reason TEXT [--step N]
  parityctl rollout rollback --experiment NAME --reason TEXT [--step N]
  parityctl rollout pause|resume|kill --experiment NAME --reason TEXT`

// rolloutView is what parityctl prints of the collector's rollout view.
type rolloutView struct {
	Experiment string `json:"experiment"`
	Flag       string `json:"flag"`
	Step       int    `json:"step"`
	Status     string `json:"status"`
	Revision   int64  `json:"revision"`
	Plan       struct {
		Steps []struct {
			Name  string `json:"name"`
			Stage string `json:"stage"`
		} `json:"steps"`
	} `json:"plan"`
	HoldLeft float64 `json:"hold_left_s"`
	Gate     *struct {
		Verdict string `json:"verdict"`
		Reason  string `json:"reason"`
	} `json:"gate"`
	Events []struct {
		At     time.Time `json:"at"`
		Actor  string    `json:"actor"`
		Action string    `json:"action"`
		Cause  string    `json:"cause"`
		From   int       `json:"from_step"`
		To     int       `json:"to_step"`
		Reason string    `json:"reason"`
	} `json:"events"`
}

// rolloutCommand shows or changes an experiment's rollout through the collector's
// API, as an operator.
func rolloutCommand(args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintf(stderr, "%s\n\n%s\n", rolloutUsage, exitCodes)
		return exitRolloutOK, nil
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return exitRolloutError, errors.New(rolloutUsage)
	}
	action := args[0]
	fs := cli.New("parityctl rollout " + action)
	base := fs.String("url", "http://127.0.0.1:8080", "the collector's address")
	exp := fs.String("experiment", "", "the experiment (required)")
	reason := fs.String("reason", "", "why, for the audit log (required to change anything)")
	step := fs.Int("step", 0, "promote or roll back to this step (0 or more) instead of the next or previous one")
	file := fs.String("file", "", `plan: a JSON file `+planShape+` (docs/rollout.md)`)
	asJSON := fs.Bool("json", false, "print the collector's full answer as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	token := fs.String("token", "", "an operator token (a viewer token is enough for status; prefer the variable: flags show in ps)")
	fs.Env("url", "PARITY_URL")
	fs.Env("token", "PARITY_TOKEN")
	if help, err := parseFlags(fs, args[1:], stderr, "parityctl rollout "+action+" --experiment NAME [flags]"); help || err != nil {
		if err != nil {
			return exitRolloutError, err
		}
		return exitRolloutOK, nil
	}
	if *exp == "" {
		return exitRolloutError, errors.New("--experiment is required")
	}
	if err := checkCommon(*base, *timeout); err != nil {
		return exitRolloutError, err
	}
	if given(fs, "step") {
		if action != "promote" && action != "rollback" {
			return exitRolloutError, fmt.Errorf("--step applies to promote and rollback, not %s", action)
		}
		if *step < 0 {
			return exitRolloutError, fmt.Errorf("--step %d: must be 0 or more (steps count from 0, the base stage)", *step)
		}
	}
	if given(fs, "file") && action != "plan" {
		return exitRolloutError, fmt.Errorf("--file applies to plan, not %s", action)
	}
	path := "/api/v1/experiments/" + url.PathEscape(*exp) + "/rollout"
	method, body := http.MethodGet, []byte(nil)
	switch action {
	case "status":
	case "plan":
		if *file == "" || *reason == "" {
			return exitRolloutError, errors.New("plan needs --file and --reason")
		}
		raw, err := os.ReadFile(*file)
		if err != nil {
			return exitRolloutError, err
		}
		u, err := readPlan(raw)
		if err != nil {
			return exitRolloutError, fmt.Errorf("%s: %w", *file, err)
		}
		u.Reason = *reason
		method, body = http.MethodPut, mustJSON(u)
	case "promote", "rollback", "pause", "resume", "kill":
		if *reason == "" {
			return exitRolloutError, fmt.Errorf("%s needs --reason: the audit log keeps it", action)
		}
		a := map[string]any{"reason": *reason}
		if given(fs, "step") {
			a["step"] = *step
		}
		method, body, path = http.MethodPost, mustJSON(a), path+"/"+action
	default:
		return exitRolloutError, fmt.Errorf("unknown rollout command %q\n%s", action, rolloutUsage)
	}

	resp, answer, err := ask(method, *base+path, *token, body, *timeout)
	if err != nil {
		return exitRolloutError, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(answer, &e)
		if resp.StatusCode == http.StatusConflict {
			fmt.Fprintf(stdout, "refused: %s\n", e.Error)
			return exitRolloutRefused, nil
		}
		return exitRolloutError, fmt.Errorf("the collector answered %s: %s", resp.Status, e.Error)
	}
	if *asJSON {
		_, _ = stdout.Write(append(answer, '\n'))
		return exitRolloutOK, nil
	}
	var v rolloutView
	if err := json.Unmarshal(answer, &v); err != nil {
		return exitRolloutError, fmt.Errorf("the collector's answer is not a rollout: %w", err)
	}
	printRollout(stdout, v)
	return exitRolloutOK, nil
}

// planShape is the plan file's shape, for flags' help and errors.
const planShape = `{"flag": "orders-migration", "plan": {"experiment": …, "steps": [{"stage": …, "audience": {…}}, …]}}`

// planFile is the plan file: the body of PUT …/rollout without its reason.
type planFile struct {
	Flag   string       `json:"flag,omitempty"`
	Plan   rollout.Plan `json:"plan"`
	Reason string       `json:"reason"`
}

// readPlan reads a plan file: the wrapper {"flag", "plan"} or, accepted as
// well, the plan alone ({"steps": …}), whose flag is then the experiment's
// name (the collector's default). Unknown fields are refused with the shape
// expected.
func readPlan(raw []byte) (planFile, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return planFile{}, fmt.Errorf("not a JSON object (%w); want %s", err, planShape)
	}
	var f planFile
	target, what := any(&f), "the file"
	if _, wrapped := keys["plan"]; !wrapped {
		if _, bare := keys["steps"]; !bare {
			return planFile{}, fmt.Errorf("neither a \"plan\" nor \"steps\" field; want %s, or the plan alone {\"steps\": […]}", planShape)
		}
		target, what = &f.Plan, "the plan (given without its {\"flag\", \"plan\"} wrapper)"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		return planFile{}, fmt.Errorf("%s: %w; want %s", what, err, planShape)
	}
	if f.Reason != "" {
		return planFile{}, errors.New(`a "reason" field: give the reason with --reason`)
	}
	if len(f.Plan.Steps) == 0 {
		return planFile{}, fmt.Errorf("the plan has no steps; want %s", planShape)
	}
	return f, nil
}

func printRollout(w io.Writer, v rolloutView) {
	fmt.Fprintf(w, "%s (flag %s): step %d of %d, %s, revision %d\n", v.Experiment, v.Flag, v.Step, len(v.Plan.Steps), v.Status, v.Revision)
	for i, s := range v.Plan.Steps {
		mark := " "
		if i+1 == v.Step {
			mark = ">"
		}
		fmt.Fprintf(w, "  %s %d %-10s %s\n", mark, i, s.Stage, s.Name)
	}
	if v.Gate != nil {
		fmt.Fprintf(w, "gate: %s — %s\n", v.Gate.Verdict, v.Gate.Reason)
	}
	if v.HoldLeft > 0 {
		fmt.Fprintf(w, "hold: %.0fs left\n", v.HoldLeft)
	}
	if n := len(v.Events); n > 0 {
		e := v.Events[n-1]
		fmt.Fprintf(w, "last change: %s %s (%s) by %s, step %d → %d: %s\n", e.At.Format(time.RFC3339), e.Action, e.Cause, e.Actor, e.From, e.To, e.Reason)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // maps of plain values always marshal
	return b
}
