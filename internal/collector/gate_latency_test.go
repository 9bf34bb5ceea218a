package collector

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/report"
)

// TestRolloutLatencyFromStepStart: the controller's latency check judges
// only the latencies observed since its step-start snapshot, as its counts:
// a slow candidate before the step (kept in the same hour's histogram) does
// not fail a step whose own pairs are as fast as the old path.
func TestRolloutLatencyFromStepStart(t *testing.T) {
	h := newRolloutHarness(t)
	if code, body := h.do("PUT", "/api/v1/experiments/ctl/gate/spec", flagOperator,
		`{"max_rate": 0.5, "min_pairs": 0, "window": "1h", "per_segment": true, "max_p99_latency_ratio": 1.5}`); code != http.StatusOK {
		t.Fatalf("gate spec: %d %s", code, body)
	}
	send := func(n int, candidate time.Duration) {
		t.Helper()
		var b strings.Builder
		for range n {
			p, err := envelope.Marshal(&envelope.Pair{
				ID: fmt.Sprintf("lat-%d", h.seq.Add(1)), Experiment: "ctl", Operation: "Get", Kind: envelope.KindRead, Stage: envelope.StageShadow,
				Time: time.Now().UTC(), User: envelope.User{Key: "u", Attrs: map[string]string{"country": "IN"}},
				Control:   envelope.Observation{Value: json.RawMessage(`{"total":1}`), DurationNS: int64(time.Millisecond)},
				Candidate: envelope.Observation{Value: json.RawMessage(`{"total":1}`), DurationNS: int64(candidate)},
			})
			if err != nil {
				t.Fatal(err)
			}
			b.Write(p)
			b.WriteByte('\n')
		}
		before := h.pairs()
		if code, body := h.do("POST", "/api/v1/pairs", flagIngest, b.String()); code != http.StatusOK {
			t.Fatalf("ingest: %d %s", code, body)
		}
		testutil.Eventually(t, 20*time.Second, func() string {
			if got := h.pairs(); got < before+int64(n) {
				return fmt.Sprintf("%d pairs counted, want %d", got, before+int64(n))
			}
			return ""
		})
	}
	// p99 returns the latency check of a gate answer's total.
	p99 := func(g GateView) report.Check {
		for _, c := range g.Overall.Checks {
			if c.Name == "p99_latency" {
				return c
			}
		}
		return report.Check{}
	}
	send(300, 40*time.Millisecond) // before the step: the candidate is 40× slower
	testutil.Eventually(t, 20*time.Second, func() string {
		_, body := h.do("GET", "/api/v1/experiments/ctl/gate?since="+url.QueryEscape(time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)), flagOperator, "")
		var g GateView
		_ = json.Unmarshal([]byte(body), &g)
		if c := p99(g); c.Value < 10 {
			return "the slow latencies are not recorded yet: " + c.Reason
		}
		return ""
	})
	plan := strings.NewReplacer("%s", "latency", `"auto_promote": true`, `"auto_promote": false`, `, "gate": "none"`, "").Replace(ctlPlan)
	if code, body := h.do("PUT", "/api/v1/experiments/ctl/rollout", flagOperator, plan); code != http.StatusOK {
		t.Fatalf("plan: %d %s", code, body)
	}
	if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/promote", flagOperator, `{"reason": "go"}`); code != http.StatusOK {
		t.Fatalf("promote: %d %s", code, body)
	}
	h.waitSettled()
	send(300, time.Millisecond) // in the step: as fast as the old path
	var v RolloutView
	testutil.Eventually(t, 20*time.Second, func() string {
		if v = h.view(); v.Gate == nil || p99(*v.Gate).Value == 0 {
			return "the step's latencies are not recorded yet"
		}
		return ""
	})
	// Observed p99 ratio: about 1 on the step's own latencies; about 40 if
	// the slow ones from before the step were still in.
	if c := p99(*v.Gate); c.Value > 1.5 || c.Verdict == "fail" {
		t.Errorf("the step's latency check: %s, ratio %.2f (%s), want about 1: the step's own latencies only", c.Verdict, c.Value, c.Reason)
	}
	if v.Gate.Overall.Divergence.Total != 300 {
		t.Errorf("the step's gate counts %d pairs, want the 300 since it settled", v.Gate.Overall.Divergence.Total)
	}
}
