package controller_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/report"
	"github.com/parityhq/parity/pkg/rollout"
)

// TestStepBackOnLateBreach: a step clean for six hours whose divergence then
// jumps from 0% to 5% (limit 1%, 200 pairs a minute) is stepped back by the
// change detector four minutes into the breach, although the counts summed
// since the step's start are still far below the limit. The minutes are
// stored in PostgreSQL and read back as the controller reads them.
func TestStepBackOnLateBreach(t *testing.T) {
	st, err := store.Open(t.Context(), testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	ctx := t.Context()
	spec, _ := json.Marshal(controller.GateSpec{MaxRate: 0.01, PerSegment: true})
	if _, err := st.SaveGateSpec(ctx, "x", spec, "op"); err != nil {
		t.Fatal(err)
	}
	c := controller.New(st, &flags{}, controller.Options{Settle: time.Nanosecond})
	plan := rollout.Plan{Base: envelope.StageShadow, Steps: []rollout.Step{
		{Name: "canary", Stage: envelope.StageLive, Audience: rollout.Audience{Percent: 5}},
		{Name: "all", Stage: envelope.StageComplete, Audience: rollout.Audience{Percent: 100}},
	}}
	if _, err := c.SavePlan(ctx, "x", "x-flag", plan, "op", "plan"); err != nil {
		t.Fatal(err)
	}
	r, err := c.Act(ctx, "x", controller.ActionPromote, "op", "canary", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Tick(ctx) // takes the step's baseline: nothing counted yet
	start := r.EnteredAt.UTC().Truncate(time.Minute)

	// Minutes from the step's start on (stored ahead of the wall clock: the
	// store and the gate only read minute stamps).
	count := func(i int, divergent int64) store.Count {
		m := start.Add(time.Duration(i) * time.Minute)
		return store.Count{Experiment: "x", Operation: "get", Segment: "all", Minute: m, LastSeen: m,
			Counters: report.Counters{Pairs: 200, Divergent: divergent}}
	}
	var clean store.Batch
	for i := range 360 {
		clean.Counts = append(clean.Counts, count(i, 0))
	}
	if err := st.Apply(ctx, &clean); err != nil {
		t.Fatal(err)
	}
	c.Tick(ctx)
	if r, _ := st.Rollout(ctx, "x"); r.Step != 1 {
		t.Fatalf("clean for six hours: step %d, want still 1", r.Step)
	}
	for i, div := range []int64{10, 10, 10} {
		if err := st.Apply(ctx, &store.Batch{Counts: []store.Count{count(360+i, div)}}); err != nil {
			t.Fatal(err)
		}
		c.Tick(ctx)
		if r, _ := st.Rollout(ctx, "x"); r.Step != 1 {
			t.Fatalf("%d minutes into the breach: step %d; the detector should need 4 at 10 of 200", i+1, r.Step)
		}
	}
	if err := st.Apply(ctx, &store.Batch{Counts: []store.Count{count(363, 10)}}); err != nil {
		t.Fatal(err)
	}
	c.Tick(ctx)
	r, err = st.Rollout(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if r.Step != 0 || r.Status != rollout.StatusPaused {
		t.Fatalf("4 minutes into the breach: step %d %s, want stepped back to 0 and paused", r.Step, r.Status)
	}
	evs, err := st.RolloutEvents(ctx, "x", 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events: %v, %v", evs, err)
	}
	ev := evs[0]
	var detail struct {
		DecidedBy string `json:"decided_by"`
	}
	if err := json.Unmarshal(ev.Detail, &detail); err != nil {
		t.Fatal(err)
	}
	if ev.Action != controller.ActionRollback || ev.Cause != controller.CauseGateFailed || detail.DecidedBy != report.DecidedByChangeDetector ||
		!strings.Contains(ev.Reason, "divergence rose above the 1% limit from "+start.Add(360*time.Minute).Format(time.RFC3339)) {
		t.Errorf("event %s/%s decided by %q: %s", ev.Action, ev.Cause, detail.DecidedBy, ev.Reason)
	}
}
