package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/publish"
)

// gatedSystem runs the system with 4,000 pairs of makePair: segments at 10%,
// 0%, 1% and 25% divergence, 1,000 pairs each.
func gatedSystem(t *testing.T, experiment string) *collector.App {
	t.Helper()
	app, nc := startSystem(t, "ingest-token-0123456789")
	pub, err := publish.New(nc, publish.Options{QueueSize: 8192})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 4000 {
		p, _ := makePair(experiment, i, now)
		pub.Publish(p)
	}
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		var total int64
		for _, c := range apiCounts(t, app, experiment) {
			total += c.pairs
		}
		if total != 4000 {
			return fmt.Sprintf("%d pairs counted", total)
		}
		return ""
	})
	return app
}

func TestGateAPI(t *testing.T) {
	const experiment = "e2e-gate"
	app := gatedSystem(t, experiment)
	// The pairs were counted from now on: the step's start is a minute ago.
	since := "since=" + url.QueryEscape(time.Now().UTC().Add(-time.Minute).Truncate(time.Minute).Format(time.RFC3339))
	gate := func(query string) (int, collector.GateView, string) {
		t.Helper()
		resp, err := http.Get(app.URL() + "/api/v1/experiments/" + experiment + "/gate?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		var v collector.GateView
		_ = json.Unmarshal(buf.Bytes(), &v)
		return resp.StatusCode, v, buf.String()
	}
	tests := []struct {
		name, query string
		verdict     string
		explanation string
	}{
		{"total well under a loose limit", "max_rate=50%25&per_segment=false&min_pairs=0", "pass",
			"9% of 4,000 pairs diverge: the anytime upper bound is far below 50%"},
		{"total over a tight limit", "max_rate=1%25&per_segment=false", "fail",
			"9% observed: the anytime lower bound is well above 1%"},
		{"one segment over", "max_rate=0.2&per_segment=true&min_pairs=0", "fail",
			"BR diverges at 25%, above a 20% limit, so the per-segment gate fails even though the total passes"},
		{"not enough pairs yet", "max_rate=0.5&per_segment=true&min_pairs=100000", "inconclusive",
			"every segment is within the limit but none has 100,000 pairs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, v, body := gate(tt.query + "&" + since)
			if code != http.StatusOK || string(v.Verdict) != tt.verdict {
				t.Fatalf("gate?%s: %d verdict %q, want %s (%s)\n%s", tt.query, code, v.Verdict, tt.verdict, tt.explanation, body)
			}
			if v.Reason == "" || len(v.Segments) != 4 {
				t.Errorf("verdict lacks a reason or segments: %+v", v)
			}
		})
	}
	for _, bad := range []string{"max_rate=2", "max_rate=x", "min_pairs=-1", "since=tomorrow", "per_segment=maybe", "window=3s"} {
		code, _, body := gate(bad)
		param := strings.SplitN(bad, "=", 2)[0]
		if code != http.StatusBadRequest || !strings.Contains(body, "parameter "+param) {
			t.Errorf("gate?%s: %d %s, want 400 naming %s", bad, code, body, param)
		}
	}
	if code, _, _ := gate("max_rate=1%25"); code != http.StatusOK {
		t.Errorf("percent rate refused")
	}
	// With no anchor the same counts never pass: a sliding window is judged.
	if code, v, body := gate("max_rate=50%25&per_segment=false&min_pairs=0"); code != http.StatusOK ||
		v.Verdict != "inconclusive" || v.Anchor.Kind != "none" || !strings.Contains(v.Reason, "analysis=") {
		t.Errorf("no anchor: %d %s, want inconclusive, anchor none, a reason saying how to anchor", code, body)
	}
	// An experiment with no pair yet is "not yet", never "missing": rollout
	// tools wait on inconclusive and abort on an error status.
	resp, err := http.Get(app.URL() + "/api/v1/experiments/nope/gate")
	if err != nil {
		t.Fatal(err)
	}
	var none collector.GateView
	_ = json.NewDecoder(resp.Body).Decode(&none)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || none.Verdict != "inconclusive" || !none.NoPairs || !strings.Contains(none.Reason, "no pairs yet") {
		t.Errorf("experiment with no pairs: %d %+v, want 200 inconclusive, no_pairs, reason \"no pairs yet\"", resp.StatusCode, none)
	}
	// Flagger's webhooks: confirm-promotion promotes on 200 (any status up to
	// 202), rollback rolls back on it. Each is asked with the verdict pass,
	// fail and inconclusive, and for an experiment with no pairs.
	tests2 := []struct {
		experiment, query string
		confirm, rollback int
	}{
		{experiment, "max_rate=50%25&per_segment=false&min_pairs=0&" + since, 200, 412}, // pass
		{experiment, "max_rate=1%25&" + since, 412, 200},                                // fail
		{experiment, "max_rate=0.5&min_pairs=100000&" + since, 412, 412},                // inconclusive
		{"nope", "", 412, 412}, // no pairs yet
	}
	for _, tt := range tests2 {
		for hook, want := range map[string]int{"confirm": tt.confirm, "rollback": tt.rollback} {
			u := app.URL() + "/api/v1/experiments/" + tt.experiment + "/gate/" + hook + "?" + tt.query
			resp, err := http.Post(u, "application/json", strings.NewReader(`{"name":"orders","namespace":"shop","phase":"Progressing","checksum":"abc"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s %s ?%s: %d, want %d", hook, tt.experiment, tt.query, resp.StatusCode, want)
			}
		}
	}
}

// TestParityctlGateExitCodes runs the parityctl binary as a CI job would.
func TestParityctlGateExitCodes(t *testing.T) {
	const experiment = "e2e-ctl"
	app := gatedSystem(t, experiment)
	bin := binary(t, "parityctl")
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"--max-rate", "50%", "--per-segment=false", "--min-pairs", "0", "--since", time.Now().UTC().Add(-time.Minute).Truncate(time.Minute).Format(time.RFC3339)}, 0},
		{[]string{"--max-rate", "50%", "--per-segment=false", "--min-pairs", "0"}, 2}, // no anchor: never a pass
		{[]string{"--max-rate", "0.01", "--per-segment=false"}, 1},
		{[]string{"--max-rate", "50%", "--min-pairs", "100000"}, 2},
		{[]string{"--max-rate", "150%"}, 3},
		{[]string{"--window", "forever"}, 3},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, append([]string{"gate", "--url", app.URL(), "--experiment", experiment}, tt.args...)...)
		out, _ := cmd.CombinedOutput()
		if got := cmd.ProcessState.ExitCode(); got != tt.code {
			t.Errorf("parityctl gate %v: exit %d, want %d\n%s", tt.args, got, tt.code, out)
		}
	}
	cmd := exec.Command(bin, "gate", "--url", app.URL(), "--experiment", "no-such-experiment")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "no pairs yet") {
		t.Errorf("experiment with no pairs: exit %d, %s; want 2 (inconclusive) saying no pairs yet", cmd.ProcessState.ExitCode(), out)
	}
	cmd = exec.Command(bin, "gate", "--url", app.URL(), "--experiment", experiment, "--json", "--max-rate", "50%")
	out, _ = cmd.Output()
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil || v["verdict"] == nil {
		t.Errorf("--json printed %s (%v)", out, err)
	}
}
