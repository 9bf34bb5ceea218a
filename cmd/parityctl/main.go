// Command parityctl asks a Parity collector questions from scripts and CI,
// and manages the collector's API tokens.
//
//	parityctl gate --experiment X [--analysis NAME | --since T] [--max-rate 0.1%] [--min-pairs N] [--json] [--token T]
//	parityctl token create --name NAME --role viewer|operator|ingest
//	parityctl token revoke --name NAME
//	parityctl token list [--all]
//	parityctl rollout status|plan|promote|rollback|pause|resume|kill --experiment X [--reason R] [--step N] [--file F]
//	parityctl reconcile run --old-url URL --old-table T --new-url URL --new-table T --key COLUMN [--experiment E] [--json]
//
// Usage goes to standard error; -h or --help on any command prints it with
// the exit codes and exits 0. Every flag is checked before anything is
// asked: a negative count or step is refused, not read as "unset".
//
// gate exits 0 when the gate passes, 1 when it fails, 2 when it is
// inconclusive (not enough data yet, or no pair at all yet) and 3 when it could
// not decide (a bad flag, the collector unreachable). Against a
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
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
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

// exitCodes is the part of every usage message that says what the exit
// status means.
const exitCodes = `exit codes:
  gate     0 pass · 1 fail · 2 inconclusive (not enough pairs yet) · 3 could not decide
           (a bad flag, an unknown experiment, the collector unreachable)
  rollout  0 done · 1 the collector refused the change (the reason is printed) · 3 any other error
  token    0 done · 1 any error
  reconcile run    0 the tables agree · 1 rows differ · 2 could not run
  reconcile start|status|pause|resume|cancel    0 done · 1 the collector refused · 2 any other error
  -h, --help on any command: 0`

const usage = `usage:
  parityctl gate --experiment NAME [flags]
  parityctl rollout status|plan|promote|rollback|pause|resume|kill --experiment NAME [flags]
  parityctl token create --name NAME --role viewer|operator|ingest
  parityctl token revoke --name NAME
  parityctl token list [--all]
  parityctl reconcile run --old-url URL --old-table T --new-url URL --new-table T --key COLUMN [--json] ...
  parityctl reconcile start|status|pause|resume|cancel ...

Add -h to any command for its flags, e.g. parityctl gate -h.

` + exitCodes + "\n"

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "parityctl: no command given\n\n"+usage)
		return exitError
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return 0
	case "token":
		return token(args[1:], stdout, stderr)
	case "reconcile":
		return reconcileCmd(args[1:], stdout, stderr)
	case "rollout":
		code, err := rolloutCommand(args[1:], stdout, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "parityctl:", err)
		}
		return code
	case "gate":
		code, err := gate(args[1:], stdout, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "parityctl:", err)
		}
		return code
	}
	fmt.Fprintf(stderr, "parityctl: unknown command %q\n\n%s", args[0], usage)
	return exitError
}

// parseFlags parses a command's flags with its usage on stderr: -h or
// --help prints the synopsis, the flags and the exit codes and reports
// help; a bad flag prints them after the error.
func parseFlags(fs *cli.FlagSet, args []string, stderr io.Writer, synopsis string) (help bool, err error) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\n%s\n", exitCodes)
	}
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	return false, err
}

// given reports whether flag name was set, on the command line or through
// its environment variable.
func given(fs *cli.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// checkCommon validates the flags every collector command has.
func checkCommon(base string, timeout time.Duration) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want the collector's address, e.g. http://127.0.0.1:8080", base)
	}
	if timeout <= 0 {
		return fmt.Errorf("--timeout %v: must be positive, e.g. 10s", timeout)
	}
	return nil
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

func gate(args []string, stdout, stderr io.Writer) (int, error) {
	fs := cli.New("parityctl gate")
	base := fs.String("url", "http://127.0.0.1:8080", "the collector's address")
	exp := fs.String("experiment", "", "the experiment to judge (required)")
	maxRate := fs.String("max-rate", "", "highest acceptable divergence rate: 0.001 or 0.1% (default: the experiment's gate)")
	minPairs := fs.Int64("min-pairs", 0, "fewest pairs a segment needs to pass, 0 or more (default: the experiment's gate)")
	window := fs.String("window", "", "sum counts over this window, e.g. 1h (default: the experiment's gate)")
	since := fs.String("since", "", "sum counts since this RFC 3339 time, e.g. the rollout step's start (keeps the verdict valid over repeated looks)")
	analysis := fs.String("analysis", "", "name this analysis, e.g. the CI pipeline's id: the collector anchors it at its first look and every later look with the name sums counts from there (keeps the verdict valid over repeated looks)")
	perSegment := fs.String("per-segment", "", "true: every segment must pass; false: only the total is judged (default: the experiment's gate)")
	asJSON := fs.Bool("json", false, "print the collector's full answer as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	viewerToken := fs.String("token", "", "a viewer token, for a collector that requires one (prefer the variable: flags show in ps)")
	fs.Env("url", "PARITY_URL")
	fs.Env("token", "PARITY_TOKEN")
	if help, err := parseFlags(fs, args, stderr, "parityctl gate --experiment NAME [flags]"); help || err != nil {
		return exitCodeFor(err), err
	}
	if *exp == "" {
		return exitError, errors.New("--experiment is required")
	}
	if err := checkCommon(*base, *timeout); err != nil {
		return exitError, err
	}
	if given(fs, "min-pairs") && *minPairs < 0 {
		return exitError, fmt.Errorf("--min-pairs %d: must be 0 or more", *minPairs)
	}
	if *maxRate != "" {
		if err := checkRate(*maxRate); err != nil {
			return exitError, fmt.Errorf("--max-rate %w", err)
		}
	}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil || t.After(time.Now()) {
			return exitError, fmt.Errorf("--since %q: want a past RFC 3339 time, e.g. 2026-01-02T15:04:05Z", *since)
		}
	}
	if *perSegment != "" {
		if _, err := strconv.ParseBool(*perSegment); err != nil {
			return exitError, fmt.Errorf("--per-segment %q: want true or false", *perSegment)
		}
	}
	q := url.Values{}
	for name, v := range map[string]string{"max_rate": *maxRate, "window": *window, "since": *since, "analysis": *analysis, "per_segment": *perSegment} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if given(fs, "min-pairs") {
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

// exitCodeFor is the exit status of a command that failed with err before
// asking anything: 0 without an error.
func exitCodeFor(err error) int {
	if err == nil {
		return 0
	}
	return exitError
}

// checkRate checks a rate as the collector reads it: a fraction (0.001) or
// a percentage (0.1%), above 0 and below 1.
func checkRate(v string) error {
	s, pct := strings.CutSuffix(strings.TrimSpace(v), "%")
	f, err := strconv.ParseFloat(s, 64)
	if pct {
		f /= 100
	}
	if err != nil || !(f > 0 && f < 1) {
		return fmt.Errorf("%q: want a rate above 0 and below 1 (0.001) or a percentage (0.1%%)", v)
	}
	return nil
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
