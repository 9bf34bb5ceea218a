package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parityhq/parity/internal/cli"
)

// sweepView is what parityctl prints of a sweep.
type sweepView struct {
	ID         int64   `json:"id"`
	Experiment string  `json:"experiment"`
	Name       string  `json:"name"`
	Operation  string  `json:"operation"`
	Status     string  `json:"status"`
	Error      string  `json:"error"`
	RowsDone   int64   `json:"rows_done"`
	Estimate   int64   `json:"estimate"`
	Rate       float64 `json:"rate"`
	ETASeconds *float64
	Counts     struct {
		Compared     int64 `json:"rows_compared"`
		Matched      int64 `json:"matched"`
		Divergent    int64 `json:"divergent"`
		MissingInNew int64 `json:"missing_in_new"`
		ExtraInNew   int64 `json:"extra_in_new"`
		Invalid      int64 `json:"invalid"`
	} `json:"counts"`
	Differences int64 `json:"differences"`
}

// sweepCmd runs start, status, pause, resume and cancel against the
// collector's API: exit 0 when done, 1 when the collector refused (e.g.
// resuming a finished sweep), 2 on any other error.
func sweepCmd(action string, args []string, stdout, stderr io.Writer) int {
	fs := cli.New("parityctl reconcile " + action)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "the collector's address")
	token := fs.String("token", "", "an operator token (viewer for status; prefer the variable)")
	asJSON := fs.Bool("json", false, "print the collector's answer as JSON")
	exp := fs.String("experiment", "", "the experiment (start; status lists its sweeps)")
	id := fs.Int64("id", 0, "the sweep (status, pause, resume, cancel)")
	name := fs.String("name", "", "start: what is compared; counts land under reconcile:<name> (default: the old table)")
	oldSource := fs.String("old-source", "", "start: the collector's source database of the old side (--reconcile-sources)")
	oldTable := fs.String("old-table", "", "start: the old table or view")
	newSource := fs.String("new-source", "", "start: the source database of the new side")
	newTable := fs.String("new-table", "", "start: the new table or view")
	key := fs.String("key", "", "start: the key column")
	segments := fs.String("segments", "", "start: comma-separated segment columns")
	rate := fs.Float64("rate", 0, "start: most rows per second (0: no limit)")
	recheck := fs.Duration("recheck-delay", 0, "start: read differing rows again after this long (default 2s)")
	fs.Env("url", "PARITY_URL")
	fs.Env("token", "PARITY_TOKEN")
	fail := func(err error) int {
		fmt.Fprintln(stderr, "parityctl reconcile:", err)
		return exitCouldNotRun
	}
	if help, err := parseFlags(fs, args, stderr, "parityctl reconcile "+action+" [flags]"); help || err != nil {
		if err != nil {
			return fail(err)
		}
		return 0
	}
	var method, u string
	var body []byte
	switch action {
	case "start":
		if *exp == "" {
			return fail(errors.New("--experiment is required"))
		}
		req := map[string]any{"name": *name, "old": map[string]string{"source": *oldSource, "table": *oldTable},
			"new": map[string]string{"source": *newSource, "table": *newTable}, "key": *key, "segments": cli.List(*segments), "rate": *rate}
		if *recheck != 0 {
			req["recheck_delay"] = recheck.String()
		}
		body, _ = json.Marshal(req)
		method, u = http.MethodPost, *base+"/api/v1/experiments/"+url.PathEscape(*exp)+"/sweeps"
	case "status":
		switch {
		case *id > 0:
			method, u = http.MethodGet, fmt.Sprintf("%s/api/v1/sweeps/%d", *base, *id)
		case *exp != "":
			method, u = http.MethodGet, *base+"/api/v1/experiments/"+url.PathEscape(*exp)+"/sweeps"
		default:
			return fail(errors.New("give --id or --experiment"))
		}
	default:
		if *id <= 0 {
			return fail(errors.New("--id is required"))
		}
		method, u, body = http.MethodPost, fmt.Sprintf("%s/api/v1/sweeps/%d/%s", *base, *id, action), []byte("{}")
	}
	resp, answer, err := ask(method, u, *token, body, 15*time.Second)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		_ = json.Unmarshal(answer, &e)
		msg := strings.TrimSpace(e.Message + e.Error)
		if msg == "" {
			msg = strings.TrimSpace(string(answer))
		}
		fmt.Fprintf(stderr, "parityctl reconcile: the collector answered %s: %s\n", resp.Status, msg)
		if resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusBadRequest {
			return exitDiffer
		}
		return exitCouldNotRun
	}
	if *asJSON {
		_, _ = stdout.Write(append(answer, '\n'))
		return exitAgree
	}
	var views []sweepView
	if strings.HasPrefix(strings.TrimSpace(string(answer)), "[") {
		err = json.Unmarshal(answer, &views)
	} else {
		var v sweepView
		err = json.Unmarshal(answer, &v)
		views = []sweepView{v}
	}
	if err != nil {
		return fail(fmt.Errorf("the collector's answer: %w", err))
	}
	for _, v := range views {
		printSweep(stdout, v)
	}
	return exitAgree
}

func printSweep(w io.Writer, v sweepView) {
	pct := ""
	if v.Estimate > 0 {
		pct = fmt.Sprintf(" (%.0f%%)", 100*min(1, float64(v.RowsDone)/float64(v.Estimate)))
	}
	eta := ""
	if v.ETASeconds != nil {
		eta = ", ETA " + (time.Duration(*v.ETASeconds) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(w, "sweep %d %s %s: %s, %d of ~%d rows%s at %.0f rows/s%s; %d differences (%d divergent, %d missing in new, %d extra in new, %d invalid)\n",
		v.ID, v.Experiment, v.Operation, v.Status, v.RowsDone, v.Estimate, pct, v.Rate, eta,
		v.Differences, v.Counts.Divergent, v.Counts.MissingInNew, v.Counts.ExtraInNew, v.Counts.Invalid)
	if v.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", v.Error)
	}
}
