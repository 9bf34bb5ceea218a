package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/rollout"
)

// rolloutHarness is a collector with a fast controller, one verifier and
// tokens for every role.
type rolloutHarness struct {
	t      *testing.T
	app    *App
	kv     jetstream.KeyValue
	seq    atomic.Int64
	settle time.Duration
}

func newRolloutHarness(t *testing.T) *rolloutHarness {
	return newRolloutHarnessSettle(t, 200*time.Millisecond)
}

func newRolloutHarnessSettle(t *testing.T, settle time.Duration) *rolloutHarness {
	ns := testutil.RunJetStream(t)
	app, err := Start(context.Background(), Options{
		Addr: "127.0.0.1:0", DatabaseURL: testutil.FreshDatabase(t), NATSURL: ns.ClientURL(), Workers: 1,
		AnonymousViewers: "false", OperatorTokens: []string{flagOperator}, IngestTokens: []string{flagIngest},
		RolloutInterval: 50 * time.Millisecond, RolloutSettle: settle, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	js, err := jetstream.New(testutil.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), rollout.KVBucket)
	if err != nil {
		t.Fatalf("the collector did not create the rollout bucket: %v", err)
	}
	return &rolloutHarness{t: t, app: app, kv: kv, settle: settle}
}

func (h *rolloutHarness) do(method, path, token, body string) (int, string) {
	h.t.Helper()
	resp, b := call(h.t, nil, method, h.app.URL()+path, token, body)
	return resp.StatusCode, b
}

// ingest sends n pairs of operation Get in segment country=c, the first
// bad of them divergent, and waits until the verifier has counted them.
func (h *rolloutHarness) ingest(c string, n, bad int) {
	h.t.Helper()
	h.ingestOp("Get", c, n, bad)
}

func (h *rolloutHarness) ingestOp(op, c string, n, bad int) {
	h.t.Helper()
	var b strings.Builder
	for i := range n {
		cand := `{"total":1}`
		if i < bad {
			cand = `{"total":2}`
		}
		p, err := envelope.Marshal(&envelope.Pair{
			ID: fmt.Sprintf("p-%d", h.seq.Add(1)), Experiment: "ctl", Operation: op, Kind: envelope.KindRead, Stage: envelope.StageShadow,
			Time: time.Now().UTC(), User: envelope.User{Key: fmt.Sprint("u", i), Attrs: map[string]string{"country": c}},
			Control:   envelope.Observation{Value: json.RawMessage(`{"total":1}`)},
			Candidate: envelope.Observation{Value: json.RawMessage(cand)},
		})
		if err != nil {
			h.t.Fatal(err)
		}
		b.Write(p)
		b.WriteByte('\n')
	}
	before := h.pairs()
	if code, body := h.do("POST", "/api/v1/pairs", flagIngest, b.String()); code != http.StatusOK {
		h.t.Fatalf("ingest: %d %s", code, body)
	}
	testutil.Eventually(h.t, 20*time.Second, func() string {
		if got := h.pairs(); got < before+int64(n) {
			return fmt.Sprintf("%d pairs counted, want %d", got, before+int64(n))
		}
		return ""
	})
}

func (h *rolloutHarness) pairs() int64 {
	code, body := h.do("GET", "/api/v1/experiments/ctl/segments?window=1h", flagOperator, "")
	if code != http.StatusOK {
		return 0
	}
	var v SegmentsView
	_ = json.Unmarshal([]byte(body), &v)
	n := v.Total.Total
	return n
}

func (h *rolloutHarness) view() RolloutView {
	h.t.Helper()
	code, body := h.do("GET", "/api/v1/experiments/ctl/rollout", flagOperator, "")
	if code != http.StatusOK {
		h.t.Fatalf("rollout: %d %s", code, body)
	}
	var v RolloutView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		h.t.Fatal(err)
	}
	return v
}

func (h *rolloutHarness) waitStep(step int, status string) RolloutView {
	h.t.Helper()
	var v RolloutView
	testutil.Eventually(h.t, 20*time.Second, func() string {
		v = h.view()
		if v.Step != step || v.Status != status {
			return fmt.Sprintf("rollout at step %d %s, want %d %s", v.Step, v.Status, step, status)
		}
		return ""
	})
	return v
}

// waitSettled waits until the current step's gate window has started.
func (h *rolloutHarness) waitSettled() RolloutView {
	h.t.Helper()
	var v RolloutView
	testutil.Eventually(h.t, h.settle+20*time.Second, func() string {
		if v = h.view(); v.Settling {
			return "the step is still settling"
		}
		return ""
	})
	return v
}

// kvDoc is what providers see.
func (h *rolloutHarness) kvDoc() rollout.Document {
	h.t.Helper()
	e, err := h.kv.Get(h.t.Context(), "ctl-flag")
	if err != nil {
		h.t.Fatalf("KV: %v", err)
	}
	d, err := rollout.ParseDocument(e.Value())
	if err != nil {
		h.t.Fatalf("KV document: %v", err)
	}
	return d
}

const ctlPlan = `{"flag": "ctl-flag", "reason": "%s", "plan": {"auto_promote": true, "steps": [
	{"name": "dual-write everyone", "stage": "dualwrite", "audience": {"percent": 100}, "gate": "none"},
	{"name": "testing group", "stage": "shadow", "audience": {"users": ["123", "456"]}},
	{"name": "shadow everyone", "stage": "shadow", "audience": {"percent": 100}},
	{"name": "live everyone", "stage": "live", "audience": {"percent": 100}}]}}`

// TestRolloutController drives a rollout through the API and the gate:
// refused plans and transitions, automatic advance on evidence, a breach
// that steps back and pauses, the kill switch, and the KV bucket following
// every change.
func TestRolloutController(t *testing.T) {
	h := newRolloutHarness(t)
	if code, body := h.do("PUT", "/api/v1/experiments/ctl/gate/spec", flagOperator,
		`{"max_rate": 0.05, "min_pairs": 20, "window": "1h", "per_segment": true}`); code != http.StatusOK {
		t.Fatalf("gate spec: %d %s", code, body)
	}

	for _, tt := range []struct {
		name, token, body string
		code              int
		want              string
	}{
		{"no reason", flagOperator, fmt.Sprintf(ctlPlan, ""), http.StatusBadRequest, "reason"},
		{"viewer-less", "", fmt.Sprintf(ctlPlan, "x"), http.StatusUnauthorized, ""},
		{"ingest token", flagIngest, fmt.Sprintf(ctlPlan, "x"), http.StatusForbidden, ""},
		{"unknown stage", flagOperator, `{"reason": "x", "plan": {"steps": [{"stage": "liv", "audience": {"percent": 5}}]}}`, http.StatusBadRequest, "is not a stage"},
		{"percent out of range", flagOperator, `{"reason": "x", "plan": {"steps": [{"stage": "dualwrite", "audience": {"percent": 150}}]}}`, http.StatusBadRequest, "outside 0–100"},
		{"skips dualwrite", flagOperator, `{"reason": "x", "plan": {"steps": [{"stage": "live", "audience": {"percent": 5}}]}}`, http.StatusBadRequest, "skips dualwrite"},
		{"overlapping rules", flagOperator, `{"reason": "x", "plan": {"steps": [{"stage": "dualwrite", "audience": {"rules": [{"attribute": "country", "in": ["IN"]}, {"attribute": "country", "in": ["IN", "US"]}]}}]}}`, http.StatusBadRequest, "rules overlap"},
		{"back past rampdown", flagOperator, `{"reason": "x", "plan": {"steps": [{"stage": "dualwrite", "audience": {"percent": 100}}, {"stage": "rampdown", "audience": {"percent": 100}}, {"stage": "shadow", "audience": {"users": ["1"]}}]}}`, http.StatusBadRequest, "would lose writes"},
		{"unknown gate", flagOperator, `{"reason": "x", "plan": {"steps": [{"stage": "dualwrite", "audience": {"percent": 100}, "gate": "strict"}]}}`, http.StatusBadRequest, "is not a gate"},
		{"bad flag key", flagOperator, `{"flag": "a flag", "reason": "x", "plan": {"steps": [{"stage": "dualwrite", "audience": {"percent": 100}}]}}`, http.StatusBadRequest, "flag"},
		{"unknown field", flagOperator, `{"reason": "x", "plan": {"stepz": []}}`, http.StatusBadRequest, "stepz"},
		{"misspelt step field", flagOperator, `{"reason": "x", "plan": {"steps": [{"stage": "dualwrite", "audience": {"percent": 100}, "hold_ns": 5}]}}`, http.StatusBadRequest, "hold_ns"},
		{"bad hold", flagOperator, `{"reason": "x", "plan": {"steps": [{"stage": "dualwrite", "audience": {"percent": 100}, "hold": "a day"}]}}`, http.StatusBadRequest, "is not a duration"},
	} {
		code, body := h.do("PUT", "/api/v1/experiments/ctl/rollout", tt.token, tt.body)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want %d naming %q", tt.name, code, body, tt.code, tt.want)
		}
	}

	if code, body := h.do("PUT", "/api/v1/experiments/ctl/rollout", flagOperator, fmt.Sprintf(ctlPlan, "first plan")); code != http.StatusOK {
		t.Fatalf("save plan: %d %s", code, body)
	}
	v := h.view()
	if v.Step != 0 || v.Status != rollout.StatusPaused || v.Flag != "ctl-flag" || len(v.Events) != 1 || v.Events[0].Actor != "operator-token[0]" {
		t.Fatalf("new rollout = step %d %s flag %s events %+v", v.Step, v.Status, v.Flag, v.Events)
	}
	if d := h.kvDoc(); d.State.Step != 0 || d.Revision != 1 {
		t.Fatalf("KV has %+v, want step 0 revision 1", d)
	}
	// Before any pair, the dashboard already shows the planned rollout.
	if code, page := h.do("GET", "/experiments/ctl", flagOperator, ""); code != http.StatusOK || !strings.Contains(page, "No pairs yet") || !strings.Contains(page, `id="rollout-status">paused`) {
		t.Errorf("experiment page before any pair: %d", code)
	}
	if code, page := h.do("GET", "/", flagOperator, ""); code != http.StatusOK || !strings.Contains(page, "step 0 of 4, paused") {
		t.Errorf("overview before any pair (%d) does not list the rollout", code)
	}
	if code, _ := h.do("GET", "/experiments/nothing-here", flagOperator, ""); code != http.StatusNotFound {
		t.Errorf("an experiment with neither pairs nor a rollout: %d, want 404", code)
	}

	// Refused transitions say why.
	if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/promote", flagOperator, `{"reason": "hurry", "step": 3}`); code != http.StatusConflict || !strings.Contains(body, "dual-writing") {
		t.Errorf("promote 0 → 3: %d %s, want 409 about dual-writing", code, body)
	}
	if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/promote", flagOperator, `{}`); code != http.StatusBadRequest || !strings.Contains(body, "reason") {
		t.Errorf("promote without a reason: %d %s", code, body)
	}
	if code, _ := h.do("POST", "/api/v1/experiments/ctl/rollout/jump", flagOperator, `{"reason": "x"}`); code != http.StatusNotFound {
		t.Errorf("unknown action: %d, want 404", code)
	}

	// Resume: the controller applies the ungated first step and the next,
	// then waits for evidence on the testing group's step.
	if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/resume", flagOperator, `{"reason": "go"}`); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, body)
	}
	v = h.waitStep(2, rollout.StatusActive)
	if !v.Settling || v.Gate == nil || v.Gate.Verdict != "inconclusive" || !strings.Contains(v.Gate.Reason, "settling") {
		t.Fatalf("step 2 just entered: settling %v, gate %+v", v.Settling, v.Gate)
	}
	v = h.waitSettled()
	if v.Gate == nil || v.Gate.Verdict != "inconclusive" {
		t.Fatalf("step 2 gate = %+v, want an undecided gate", v.Gate)
	}
	h.ingest("US", 200, 0)
	v = h.waitStep(3, rollout.StatusActive)
	if d := h.kvDoc(); d.State.Step != 3 || d.Revision != v.Revision {
		t.Fatalf("KV has step %d revision %d, want 3 and %d", d.State.Step, d.Revision, v.Revision)
	}

	// A breach in IN: back to step 2, paused, with the evidence.
	h.waitSettled()
	h.ingest("IN", 60, 30)
	v = h.waitStep(2, rollout.StatusPaused)
	last := v.Events[len(v.Events)-1]
	if last.Action != controller.ActionRollback || last.Cause != controller.CauseGateFailed || last.Actor != controller.ControllerActor || last.FromStep != 3 ||
		!strings.Contains(last.Reason, "country=IN") || !strings.Contains(string(last.Detail), "country=IN") {
		t.Fatalf("breach event = %+v", last)
	}
	if d := h.kvDoc(); d.State.Step != 2 || d.Status != rollout.StatusPaused {
		t.Fatalf("KV has %+v after the breach", d)
	}

	// Paused is not unprotected: a breach of step 2's own gate steps back
	// again.
	h.waitSettled()
	h.ingest("US", 60, 30)
	v = h.waitStep(1, rollout.StatusPaused)
	if last := v.Events[len(v.Events)-1]; last.Cause != controller.CauseGateFailed || last.FromStep != 2 || !strings.Contains(last.Reason, "country=US") {
		t.Fatalf("breach while paused: %+v", last)
	}

	// Replacing an applied step is refused.
	changed := strings.Replace(fmt.Sprintf(ctlPlan, "edit"), `"gate": "none"`, `"gate": ""`, 1)
	if code, body := h.do("PUT", "/api/v1/experiments/ctl/rollout", flagOperator, changed); code != http.StatusConflict || !strings.Contains(body, "roll back to step 0") {
		t.Errorf("changing an applied step: %d %s", code, body)
	}

	// The kill switch: nobody is past the boundary, so everyone goes back
	// to the base stage.
	if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/kill", flagOperator, `{"reason": "pager"}`); code != http.StatusOK {
		t.Fatalf("kill: %d %s", code, body)
	}
	v = h.waitStep(0, rollout.StatusKilled)
	last = v.Events[len(v.Events)-1]
	if last.Cause != controller.CauseKillSwitch || last.Reason != "pager" || last.FromStep != 1 {
		t.Fatalf("kill event = %+v", last)
	}
	if d := h.kvDoc(); d.State.Step != 0 || d.Status != rollout.StatusKilled || d.Revision != v.Revision {
		t.Fatalf("KV has %+v after the kill", d)
	}
	code, body := h.do("GET", "/api/v1/experiments/ctl/rollout/events", flagOperator, "")
	var evs []RolloutEventView
	if code != http.StatusOK || json.Unmarshal([]byte(body), &evs) != nil {
		t.Fatalf("events: %d %s", code, body)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action+"/"+e.Cause)
	}
	want := "plan/manual resume/manual promote/gate_passed promote/gate_passed promote/gate_passed rollback/gate_failed rollback/gate_failed kill/kill_switch"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("audit log:\n got %s\nwant %s", got, want)
	}

	if code, page := h.do("GET", "/", flagOperator, ""); code != http.StatusOK || !strings.Contains(page, "step 0 of 4, killed") {
		t.Errorf("the overview (%d) does not show the rollout's position", code)
	}
	// The experiment page shows the rollout, its timeline and, to an
	// operator, the actions; the form acts like the API.
	code, page := h.do("GET", "/experiments/ctl", flagOperator, "")
	for _, want := range []string{`id="rollout-status">killed`, `data-action="rollback" data-cause="gate_failed"`, "Sign in with an operator token", "users 123, 456", "shadow everyone"} {
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("experiment page (%d) lacks %s", code, want)
		}
	}
	resp, _ := call(t, nil, "POST", h.app.URL()+"/experiments/ctl/rollout/resume", flagOperator, "reason=fixed", "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/experiments/ctl#rollout" {
		t.Errorf("form resume: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The controller may promote at once after the resume (step 0 has no
	// evidence to wait for), so the resume is the last event but one then.
	after := h.view()
	resumed := slices.IndexFunc(after.Events, func(e RolloutEventView) bool {
		return e.Action == controller.ActionResume && e.Reason == "fixed"
	})
	if after.Status != rollout.StatusActive || resumed < len(after.Events)-2 {
		t.Errorf("after the form's resume: %s, events %+v", after.Status, after.Events)
	}
}

// TestRolloutTwoControllers: two collectors on one database and one NATS
// both run the controller; every step is applied exactly once and the KV
// bucket ends at the last revision.
func TestRolloutTwoControllers(t *testing.T) {
	ns := testutil.RunJetStream(t)
	db := testutil.FreshDatabase(t)
	var apps []*App
	for range 2 {
		app, err := Start(context.Background(), Options{
			Addr: "127.0.0.1:0", DatabaseURL: db, NATSURL: ns.ClientURL(), Workers: -1,
			AnonymousViewers: "false", OperatorTokens: []string{flagOperator},
			RolloutInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
		apps = append(apps, app)
	}
	h := &rolloutHarness{t: t, app: apps[0]}
	js, err := jetstream.New(testutil.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	if h.kv, err = js.KeyValue(t.Context(), rollout.KVBucket); err != nil {
		t.Fatal(err)
	}
	steps := []string{`{"stage": "dualwrite", "audience": {"percent": 100}, "gate": "none"}`}
	for _, p := range []int{1, 5, 25, 50, 100} {
		steps = append(steps, fmt.Sprintf(`{"stage": "shadow", "audience": {"percent": %d}, "gate": "none"}`, p))
	}
	body := `{"flag": "ctl-flag", "reason": "race", "plan": {"auto_promote": true, "steps": [` + strings.Join(steps, ",") + `]}}`
	if code, b := h.do("PUT", "/api/v1/experiments/ctl/rollout", flagOperator, body); code != http.StatusOK {
		t.Fatalf("plan: %d %s", code, b)
	}
	if code, b := h.do("POST", "/api/v1/experiments/ctl/rollout/resume", flagOperator, `{"reason": "go"}`); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, b)
	}
	v := h.waitStep(len(steps), rollout.StatusActive)
	var promotes []string
	for _, e := range v.Events {
		if e.Action == controller.ActionPromote {
			promotes = append(promotes, fmt.Sprintf("%d→%d", e.FromStep, e.ToStep))
		}
	}
	if got, want := strings.Join(promotes, " "), "0→1 1→2 2→3 3→4 4→5 5→6"; got != want {
		t.Errorf("promotions %s, want %s (each once)", got, want)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		if d := h.kvDoc(); d.Revision != v.Revision || d.State.Step != len(steps) {
			return fmt.Sprintf("KV at revision %d step %d, want %d and %d", d.Revision, d.State.Step, v.Revision, len(steps))
		}
		return ""
	})
}

// TestRolloutPastTheBoundary: once everyone is at rampdown, a rollback to a
// stage where the old store is authoritative is refused with the reason, and
// the kill switch stays at rampdown (the old path is still written there).
func TestRolloutPastTheBoundary(t *testing.T) {
	h := newRolloutHarness(t)
	body := `{"flag": "ctl-flag", "reason": "retire", "plan": {"steps": [
		{"stage": "dualwrite", "audience": {"percent": 100}, "gate": "none"},
		{"stage": "live", "audience": {"percent": 100}, "gate": "none"},
		{"stage": "rampdown", "audience": {"percent": 100}, "gate": "none"},
		{"stage": "complete", "audience": {"percent": 100}, "gate": "none"}]}}`
	if code, b := h.do("PUT", "/api/v1/experiments/ctl/rollout", flagOperator, body); code != http.StatusOK {
		t.Fatalf("plan: %d %s", code, b)
	}
	for _, step := range []int{1, 3} { // dualwrite first, then on to rampdown
		if code, b := h.do("POST", "/api/v1/experiments/ctl/rollout/promote", flagOperator, fmt.Sprintf(`{"reason": "manual run", "step": %d}`, step)); code != http.StatusOK {
			t.Fatalf("promote to %d: %d %s", step, code, b)
		}
	}
	code, b := h.do("POST", "/api/v1/experiments/ctl/rollout/rollback", flagOperator, `{"reason": "scared", "step": 1}`)
	if code != http.StatusConflict || !strings.Contains(b, "would return to dualwrite") || !strings.Contains(b, "missed writes") {
		t.Errorf("rollback from rampdown to dualwrite: %d %s, want 409 with the reason", code, b)
	}
	if code, b := h.do("POST", "/api/v1/experiments/ctl/rollout/rollback", flagOperator, `{"reason": "new path slow"}`); code != http.StatusOK {
		t.Errorf("rollback from rampdown to live: %d %s", code, b)
	}
	if code, b := h.do("POST", "/api/v1/experiments/ctl/rollout/promote", flagOperator, `{"reason": "again", "step": 4}`); code != http.StatusOK {
		t.Fatalf("promote to complete: %d %s", code, b)
	}
	if code, b := h.do("POST", "/api/v1/experiments/ctl/rollout/kill", flagOperator, `{"reason": "pager"}`); code != http.StatusOK {
		t.Fatalf("kill: %d %s", code, b)
	}
	if v := h.view(); v.Step != 3 || v.Status != rollout.StatusKilled {
		t.Errorf("the kill switch past the boundary went to step %d (%s), want 3 (rampdown: the old path still written)", v.Step, v.Status)
	}
}

// TestRolloutSettles: pairs counted while a step settles belong to the
// change, not to the step, so a burst of divergence from before the change
// does not breach the new step's gate; the same burst after it does.
//
// The burst must be counted before the step settles. Nothing here compares
// time with a limit: when a busy machine took longer than the settle time
// to count the burst, the scenario cannot tell, and runs again with a
// settle time three times longer.
func TestRolloutSettles(t *testing.T) {
	for _, settle := range []time.Duration{5 * time.Second, 15 * time.Second, 45 * time.Second} {
		if rolloutSettles(t, settle) {
			return
		}
		t.Logf("the burst was counted after the %v settle time; again with a longer one", settle)
	}
	t.Fatal("the burst was never counted within the settle time")
}

// rolloutSettles runs TestRolloutSettles' scenario; false: the burst was
// counted after the step settled, so it cannot tell.
func rolloutSettles(t *testing.T, settle time.Duration) bool {
	h := newRolloutHarnessSettle(t, settle)
	if code, body := h.do("PUT", "/api/v1/experiments/ctl/gate/spec", flagOperator,
		`{"max_rate": 0.05, "min_pairs": 20, "window": "1h", "per_segment": true}`); code != http.StatusOK {
		t.Fatalf("gate spec: %d %s", code, body)
	}
	if code, body := h.do("PUT", "/api/v1/experiments/ctl/rollout", flagOperator, fmt.Sprintf(ctlPlan, "plan")); code != http.StatusOK {
		t.Fatalf("plan: %d %s", code, body)
	}
	for _, step := range []int{1, 2} {
		if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/promote", flagOperator, fmt.Sprintf(`{"reason": "by hand", "step": %d}`, step)); code != http.StatusOK {
			t.Fatalf("promote: %d %s", code, body)
		}
	}
	if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/resume", flagOperator, `{"reason": "watch it"}`); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, body)
	}
	h.ingest("IN", 60, 30) // counted while settling
	if !h.view().Settling {
		return false
	}
	v := h.waitSettled()
	if v.Step != 2 || v.Gate == nil || v.Gate.Verdict == "fail" {
		t.Fatalf("after settling: step %d, gate %+v; the burst from before must not count", v.Step, v.Gate)
	}
	h.ingest("IN", 60, 30)
	v = h.waitStep(1, rollout.StatusPaused)
	if last := v.Events[len(v.Events)-1]; last.Cause != controller.CauseGateFailed {
		t.Fatalf("the burst after settling: %+v", last)
	}
	return true
}

// TestRolloutJudgesOperationsApart: the gate judges each operation in a
// segment on its own, so half of one operation's pairs diverging breaches
// even though the segment as a whole, swamped by another operation's agreeing
// pairs, is under the limit.
func TestRolloutJudgesOperationsApart(t *testing.T) {
	h := newRolloutHarness(t)
	if code, body := h.do("PUT", "/api/v1/experiments/ctl/gate/spec", flagOperator,
		`{"max_rate": 0.05, "min_pairs": 20, "window": "1h", "per_segment": true}`); code != http.StatusOK {
		t.Fatalf("gate spec: %d %s", code, body)
	}
	if code, body := h.do("PUT", "/api/v1/experiments/ctl/rollout", flagOperator, fmt.Sprintf(ctlPlan, "plan")); code != http.StatusOK {
		t.Fatalf("plan: %d %s", code, body)
	}
	if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/promote", flagOperator, `{"reason": "by hand", "step": 1}`); code != http.StatusOK {
		t.Fatalf("promote: %d %s", code, body)
	}
	if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/promote", flagOperator, `{"reason": "by hand"}`); code != http.StatusOK {
		t.Fatalf("promote: %d %s", code, body)
	}
	h.waitSettled()
	h.ingestOp("Get", "US", 2000, 0)
	h.ingestOp("Put", "US", 40, 20)
	code, body := h.do("GET", "/api/v1/experiments/ctl/gate?window=1h&max_rate=0.05&min_pairs=20", flagOperator, "")
	if code != http.StatusOK || !strings.Contains(body, `"verdict":"pass"`) {
		t.Fatalf("the segment as a whole should pass (%d): %s", code, body)
	}
	v := h.view() // manual promotions leave the rollout paused: a breach still steps back
	testutil.Eventually(t, 20*time.Second, func() string {
		if v = h.view(); v.Step != 1 {
			return fmt.Sprintf("still at step %d", v.Step)
		}
		return ""
	})
	if last := v.Events[len(v.Events)-1]; last.Cause != controller.CauseGateFailed || !strings.Contains(last.Reason, "Put country=US") {
		t.Fatalf("breach = %+v, want one naming Put country=US", last)
	}
}
