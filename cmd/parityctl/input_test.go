package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a collector stand-in that records what parityctl asked and
// answers a passing gate or a rollout.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, query string
	body                []byte
}

func (r *recorder) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{req.Method, req.URL.Path, req.URL.RawQuery, body})
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(req.URL.Path, "/gate") {
			_, _ = w.Write([]byte(`{"experiment": "orders", "verdict": "pass", "reason": "ok"}`))
			return
		}
		_, _ = w.Write([]byte(`{"experiment": "orders", "flag": "orders", "step": 0, "status": "paused", "plan": {"steps": [{"stage": "dualwrite"}]}}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// TestHelp: -h and --help on every command print the usage with the exit
// codes on standard error and exit 0; nothing goes to standard output.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"},
		{"gate", "-h"}, {"gate", "--help"},
		{"rollout", "--help"}, {"rollout", "promote", "-h"}, {"rollout", "plan", "--help"},
		{"token", "-h"}, {"token", "create", "--help"}, {"token", "revoke", "-h"}, {"token", "list", "-h"},
	} {
		code, out, errOut := parityctl(args...)
		if code != 0 || out != "" || !strings.Contains(errOut, "usage") || !strings.Contains(errOut, "exit codes:") ||
			!strings.Contains(errOut, "2 inconclusive") || !strings.Contains(errOut, "1 the collector refused") {
			t.Errorf("parityctl %s: exit %d, stdout %q, stderr:\n%s\nwant 0, nothing on stdout, usage and exit codes on stderr",
				strings.Join(args, " "), code, out, errOut)
		}
	}
}

// TestBadInput: every bad flag is refused before anything is asked, with
// exit 3 (1 for token), a message naming the flag on standard error, and
// nothing on standard output.
func TestBadInput(t *testing.T) {
	t.Setenv("PARITY_TOKEN", "")
	t.Setenv("PARITY_URL", "")
	var rec recorder
	base := rec.serve(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gate := func(more ...string) []string {
		return append([]string{"gate", "--url", base, "--experiment", "orders"}, more...)
	}
	ro := func(action string, more ...string) []string {
		return append([]string{"rollout", action, "--url", base, "--experiment", "orders"}, more...)
	}
	plan := func(path string) []string { return ro("plan", "--reason", "r", "--file", path) }
	for _, tt := range []struct {
		name string
		args []string
		code int
		want []string // in stderr
	}{
		{"no command", nil, exitError, []string{"no command", "usage", "exit codes"}},
		{"unknown command", []string{"gates"}, exitError, []string{`unknown command "gates"`, "usage"}},
		{"gate: unknown flag", gate("--bogus"), exitError, []string{"-bogus", "usage: parityctl gate", "exit codes"}},
		{"gate: stray argument", gate("extra"), exitError, []string{`unexpected argument "extra"`}},
		{"gate: no experiment", []string{"gate", "--url", base}, exitError, []string{"--experiment is required"}},
		{"gate: negative min-pairs", gate("--min-pairs", "-5"), exitError, []string{"--min-pairs -5: must be 0 or more"}},
		{"gate: rate above 1", gate("--max-rate", "2"), exitError, []string{`--max-rate "2"`}},
		{"gate: rate 0", gate("--max-rate", "0%"), exitError, []string{`--max-rate "0%"`}},
		{"gate: rate not a number", gate("--max-rate", "abc"), exitError, []string{`--max-rate "abc"`}},
		{"gate: since not a time", gate("--since", "yesterday"), exitError, []string{`--since "yesterday"`, "RFC 3339"}},
		{"gate: since in the future", gate("--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), exitError, []string{"past RFC 3339"}},
		{"gate: per-segment not a bool", gate("--per-segment", "maybe"), exitError, []string{`--per-segment "maybe"`}},
		{"gate: zero timeout", gate("--timeout", "0s"), exitError, []string{"--timeout 0s: must be positive"}},
		{"gate: negative timeout", gate("--timeout", "-1s"), exitError, []string{"--timeout -1s"}},
		{"gate: not an http url", []string{"gate", "--url", "ftp://x", "--experiment", "orders"}, exitError, []string{`--url "ftp://x"`}},
		{"gate: url without host", []string{"gate", "--url", "127.0.0.1:8080", "--experiment", "orders"}, exitError, []string{`--url "127.0.0.1:8080"`}},
		{"rollout: no action", []string{"rollout"}, exitRolloutError, []string{"usage"}},
		{"rollout: unknown action", ro("jump", "--reason", "x"), exitRolloutError, []string{`unknown rollout command "jump"`}},
		{"rollout: negative step on promote", ro("promote", "--reason", "r", "--step", "-1"), exitRolloutError, []string{"--step -1: must be 0 or more"}},
		{"rollout: negative step on rollback", ro("rollback", "--reason", "r", "--step", "-2"), exitRolloutError, []string{"--step -2"}},
		{"rollout: step on pause", ro("pause", "--reason", "r", "--step", "1"), exitRolloutError, []string{"--step applies to promote and rollback"}},
		{"rollout: file on status", ro("status", "--file", "x.json"), exitRolloutError, []string{"--file applies to plan"}},
		{"rollout: no reason", ro("kill"), exitRolloutError, []string{"kill needs --reason"}},
		{"rollout: zero timeout", ro("status", "--timeout", "0s"), exitRolloutError, []string{"--timeout 0s"}},
		{"plan: no file", ro("plan", "--reason", "r"), exitRolloutError, []string{"plan needs --file and --reason"}},
		{"plan: missing file", plan(filepath.Join(dir, "absent.json")), exitRolloutError, []string{"absent.json"}},
		{"plan: not JSON", plan(file("text.json", "steps: 1")), exitRolloutError, []string{"not a JSON object", `{"flag": "orders-migration", "plan":`}},
		{"plan: an array", plan(file("array.json", `[{"stage": "live"}]`)), exitRolloutError, []string{"not a JSON object", `"steps": [`}},
		{"plan: neither wrapper nor plan", plan(file("other.json", `{"stages": []}`)), exitRolloutError, []string{`neither a "plan" nor "steps" field`, `{"flag": "orders-migration"`}},
		{"plan: misspelt wrapper field", plan(file("wrapper.json", `{"flags": "f", "plan": {"steps": [{"stage": "dualwrite", "audience": {"percent": 100}}]}}`)), exitRolloutError,
			[]string{`unknown field "flags"`, "want {"}},
		{"plan: misspelt field of a bare plan", plan(file("bare.json", `{"auto_promte": true, "steps": [{"stage": "dualwrite", "audience": {"percent": 100}}]}`)), exitRolloutError,
			[]string{"without its", `unknown field "auto_promte"`, "want {"}},
		{"plan: misspelt step field", plan(file("step.json", `{"plan": {"steps": [{"stag": "dualwrite"}]}}`)), exitRolloutError, []string{`unknown field "stag"`}},
		{"plan: a reason in the file", plan(file("reason.json", `{"reason": "x", "plan": {"steps": [{"stage": "dualwrite", "audience": {"percent": 100}}]}}`)), exitRolloutError,
			[]string{"give the reason with --reason"}},
		{"plan: no steps", plan(file("empty.json", `{"plan": {"steps": []}}`)), exitRolloutError, []string{"no steps"}},
		{"token: no command", []string{"token"}, 1, []string{"token needs a command", "usage"}},
		{"token: unknown flag", []string{"token", "list", "--everything"}, 1, []string{"-everything", "usage: parityctl token list"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := parityctl(tt.args...)
			if code != tt.code || out != "" {
				t.Errorf("exit %d, stdout %q; want %d and nothing on stdout (stderr %q)", code, out, tt.code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not mention %q", errOut, w)
				}
			}
		})
	}
	if reqs := rec.requests(); len(reqs) != 0 {
		t.Errorf("bad input reached the collector: %+v", reqs)
	}
}

// TestGoodInputSent: the values that used to be read as "unset" (a step of
// 0, min-pairs 0) are sent, and a plan without its wrapper is accepted and
// sent wrapped, with the reason from --reason.
func TestGoodInputSent(t *testing.T) {
	t.Setenv("PARITY_TOKEN", "")
	var rec recorder
	base := rec.serve(t)
	bare := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(bare, []byte(`{"auto_promote": true, "steps": [{"stage": "dualwrite", "audience": {"percent": 100}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"gate", "--url", base, "--experiment", "orders", "--min-pairs", "0", "--max-rate", "0.5%"},
		{"rollout", "rollback", "--url", base, "--experiment", "orders", "--reason", "back to base", "--step", "0"},
		{"rollout", "plan", "--url", base, "--experiment", "orders", "--reason", "bare plan", "--file", bare},
	} {
		if code, out, errOut := parityctl(args...); code != 0 || errOut != "" {
			t.Fatalf("parityctl %s: exit %d, %q %q", strings.Join(args, " "), code, out, errOut)
		}
	}
	reqs := rec.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3: %+v", len(reqs), reqs)
	}
	if !strings.Contains(reqs[0].query, "min_pairs=0") || !strings.Contains(reqs[0].query, "max_rate=0.5%25") {
		t.Errorf("gate query %q: want min_pairs=0 and max_rate=0.5%%", reqs[0].query)
	}
	var action struct {
		Reason string `json:"reason"`
		Step   *int   `json:"step"`
	}
	if err := json.Unmarshal(reqs[1].body, &action); err != nil || reqs[1].path != "/api/v1/experiments/orders/rollout/rollback" || action.Step == nil || *action.Step != 0 {
		t.Errorf("rollback: %s %s, want step 0 sent", reqs[1].path, reqs[1].body)
	}
	var put struct {
		Reason string `json:"reason"`
		Plan   struct {
			AutoPromote bool              `json:"auto_promote"`
			Steps       []json.RawMessage `json:"steps"`
		} `json:"plan"`
	}
	if err := json.Unmarshal(reqs[2].body, &put); err != nil || reqs[2].method != http.MethodPut || put.Reason != "bare plan" || !put.Plan.AutoPromote || len(put.Plan.Steps) != 1 {
		t.Errorf("plan: %s %s, want the bare plan sent wrapped with its reason", reqs[2].method, reqs[2].body)
	}
}
