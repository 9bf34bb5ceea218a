package main

import (
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

// rollout shows or changes an experiment's rollout through the collector's
// API, as an operator.
func rollout(args []string, stdout io.Writer) (int, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return exitRolloutError, errors.New(rolloutUsage)
	}
	action := args[0]
	fs := cli.New("parityctl rollout " + action)
	fs.SetOutput(stdout)
	base := fs.String("url", "http://127.0.0.1:8080", "the collector's address")
	exp := fs.String("experiment", "", "the experiment (required)")
	reason := fs.String("reason", "", "why, for the audit log (required to change anything)")
	step := fs.Int("step", -1, "promote or roll back to this step instead of the next or previous one")
	file := fs.String("file", "", `plan: a JSON file {"flag": …, "plan": {…}} (docs/rollout.md)`)
	asJSON := fs.Bool("json", false, "print the collector's full answer as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	token := fs.String("token", "", "an operator token (a viewer token is enough for status; prefer the variable: flags show in ps)")
	fs.Env("url", "PARITY_URL")
	fs.Env("token", "PARITY_TOKEN")
	if err := fs.Parse(args[1:]); err != nil {
		return exitRolloutError, err
	}
	if *exp == "" {
		return exitRolloutError, errors.New("--experiment is required")
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
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(raw, &doc); err != nil {
			return exitRolloutError, fmt.Errorf("%s: %w", *file, err)
		}
		doc["reason"], _ = json.Marshal(*reason)
		method, body = http.MethodPut, mustJSON(doc)
	case "promote", "rollback", "pause", "resume", "kill":
		if *reason == "" {
			return exitRolloutError, fmt.Errorf("%s needs --reason: the audit log keeps it", action)
		}
		a := map[string]any{"reason": *reason}
		if *step >= 0 {
			if action != "promote" && action != "rollback" {
				return exitRolloutError, fmt.Errorf("--step applies to promote and rollback, not %s", action)
			}
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
