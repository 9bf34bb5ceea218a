// Command parityctl asks a Parity collector questions from scripts and CI,
// and manages the collector's API tokens.
//
//	parityctl gate --experiment X [--max-rate 0.1%] [--min-pairs N] [--window 1h] [--since T] [--json] [--token T]
//	parityctl token create --name NAME --role viewer|operator|ingest
//	parityctl token revoke --name NAME
//	parityctl token list [--all]
//	parityctl rollout status|plan|promote|rollback|pause|resume|kill --experiment X [--reason R] [--step N] [--file F]
//	parityctl reconcile run --old-url URL --old-table T --new-url URL --new-table T --key COLUMN [--experiment E] [--json]
//
// gate exits 0 when the gate passes, 1 when it fails, 2 when it is
// inconclusive (not enough data yet) and 3 when it could not decide (a bad
// flag, an unknown experiment, the collector unreachable). Against a
// collector that requires a viewer token, give one with --token or
// PARITY_TOKEN.
//
// rollout shows or changes an experiment's closed-loop rollout through the
// collector's API (docs/rollout.md) with an operator token: it exits 0 when
// done, 1 when the collector refused the change (the reason is printed, e.g.
// a move that would lose writes) and 3 on any other error.
//
// reconcile run compares a table or view in the old database with one in
// the new, every row, in the foreground (docs/reconcile.md): it exits 0 when
// every row agrees, 1 when rows differ and 2 when it could not run. With
// --json it prints one object (rows_compared, matched, divergent,
// missing_in_new, extra_in_new, invalid, per segment, samples); on a terminal
// it draws progress on standard error.
//
// token talks to the collector's PostgreSQL directly (--database-url or
// DATABASE_URL), as an administrator: create prints the new token once on
// standard output, and only its hash is stored. token exits 0 on success and
// 1 otherwise.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/parityhq/parity/internal/cli"
)

// Exit codes of the gate command.
const (
	exitPass         = 0
	exitFail         = 1
	exitInconclusive = 2
	exitError        = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  parityctl gate --experiment NAME [flags]                      (parityctl gate -h lists them)
  parityctl token create --name NAME --role viewer|operator|ingest
  parityctl token revoke --name NAME
  parityctl token list [--all]
  parityctl rollout status|plan|promote|rollback|pause|resume|kill --experiment NAME ...
  parityctl reconcile run --old-url URL --old-table T --new-url URL --new-table T --key COLUMN [--json] ...`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "token" {
		return token(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "reconcile" {
		return reconcileCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "rollout" {
		code, err := rollout(args[1:], stdout)
		if err != nil {
			fmt.Fprintln(stderr, "parityctl:", err)
		}
		return code
	}
	if len(args) == 0 || args[0] != "gate" {
		fmt.Fprintln(stderr, usage)
		return exitError
	}
	code, err := gate(args[1:], stdout)
	if err != nil {
		fmt.Fprintln(stderr, "parityctl:", err)
		return exitError
	}
	return code
}

// gateAnswer is what the collector's gate endpoint returns, as far as
// parityctl reads it.
type gateAnswer struct {
	Experiment string `json:"experiment"`
	Verdict    string `json:"verdict"`
	Reason     string `json:"reason"`
	Segments   []struct {
		Segment string `json:"segment"`
		Verdict string `json:"verdict"`
		Reason  string `json:"reason"`
	} `json:"segments"`
	Error string `json:"error"`
}

func gate(args []string, stdout io.Writer) (int, error) {
	fs := cli.New("parityctl gate")
	fs.SetOutput(stdout)
	base := fs.String("url", "http://127.0.0.1:8080", "the collector's address")
	exp := fs.String("experiment", "", "the experiment to judge (required)")
	maxRate := fs.String("max-rate", "", "highest acceptable divergence rate: 0.001 or 0.1% (default: the experiment's gate)")
	minPairs := fs.Int64("min-pairs", -1, "fewest pairs a segment needs to pass (default: the experiment's gate)")
	window := fs.String("window", "", "sum counts over this window, e.g. 1h (default: the experiment's gate)")
	since := fs.String("since", "", "sum counts since this RFC 3339 time, e.g. the rollout step's start (keeps the verdict valid over repeated looks)")
	perSegment := fs.String("per-segment", "", "true: every segment must pass; false: only the total is judged (default: the experiment's gate)")
	asJSON := fs.Bool("json", false, "print the collector's full answer as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	viewerToken := fs.String("token", "", "a viewer token, for a collector that requires one (prefer the variable: flags show in ps)")
	fs.Env("url", "PARITY_URL")
	fs.Env("token", "PARITY_TOKEN")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	if *exp == "" {
		return exitError, errors.New("--experiment is required")
	}
	q := url.Values{}
	for name, v := range map[string]string{"max_rate": *maxRate, "window": *window, "since": *since, "per_segment": *perSegment} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if *minPairs >= 0 {
		q.Set("min_pairs", strconv.FormatInt(*minPairs, 10))
	}
	u := *base + "/api/v1/experiments/" + url.PathEscape(*exp) + "/gate?" + q.Encode()
	resp, body, err := ask(http.MethodGet, u, *viewerToken, nil, *timeout)
	if err != nil {
		return exitError, err
	}
	var a gateAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return exitError, fmt.Errorf("the collector answered %s, not a gate verdict", resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return exitError, fmt.Errorf("the collector answered %s: %s", resp.Status, a.Error)
	}
	if *asJSON {
		_, _ = stdout.Write(append(body, '\n'))
	} else {
		fmt.Fprintf(stdout, "%s: %s — %s\n", a.Experiment, a.Verdict, a.Reason)
		for _, s := range a.Segments {
			fmt.Fprintf(stdout, "  %-32s %-13s %s\n", s.Segment, s.Verdict, s.Reason)
		}
	}
	switch a.Verdict {
	case "pass":
		return exitPass, nil
	case "fail":
		return exitFail, nil
	case "inconclusive":
		return exitInconclusive, nil
	}
	return exitError, fmt.Errorf("unknown verdict %q", a.Verdict)
}

// ask makes one request to the collector with token (if any) and returns
// its status and body (at most 16 MiB), within timeout.
func ask(method, u, token string, body []byte, timeout time.Duration) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("ask the collector: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read the answer: %w", err)
	}
	return resp, answer, nil
}
