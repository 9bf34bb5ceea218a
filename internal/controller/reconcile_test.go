package controller_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/rollout"
)

// finishSweep records a sweep of name that completed with counts.
func finishSweep(t *testing.T, st *store.Store, name string, c reconcile.Counts) store.Sweep {
	t.Helper()
	ctx := t.Context()
	sw, err := st.CreateSweep(ctx, store.Sweep{Experiment: "x", Name: name, Operation: "reconcile:" + name, Spec: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.ClaimSweep(ctx, "t", time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	raw, _ := json.Marshal(c)
	if err := st.CommitSweepChunk(ctx, store.SweepChunk{ID: sw.ID, Owner: "t", Rows: c.Compared, Counts: raw, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	return sw
}

// TestStepRequiresCleanSweep: a step that names tables is not left, by an
// operator or by the controller, until a sweep of each, started after the
// step began, completed with every row agreeing; the refusal says which is
// missing.
func TestStepRequiresCleanSweep(t *testing.T) {
	st, err := store.Open(t.Context(), testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	c := controller.New(st, &flags{}, controller.Options{})
	ctx := t.Context()
	plan := rollout.Plan{Base: envelope.StageDualWrite, AutoPromote: true, Steps: []rollout.Step{
		{Name: "everyone", Stage: envelope.StageRampDown, Audience: rollout.Audience{Percent: 100}, Gate: controller.GateNone,
			Reconcile: []string{"orders", "customers"}},
		{Name: "done", Stage: envelope.StageComplete, Audience: rollout.Audience{Percent: 100}, Gate: controller.GateNone},
	}}
	if _, err := c.SavePlan(ctx, "x", "x-flag", plan, "op", "plan"); err != nil {
		t.Fatal(err)
	}
	finishSweep(t, st, "orders", reconcile.Counts{Compared: 10, Matched: 10}) // before the step began: does not count
	if _, err := c.Act(ctx, "x", controller.ActionPromote, "op", "go", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Act(ctx, "x", controller.ActionResume, "op", "go", nil); err != nil {
		t.Fatal(err)
	}
	promote := func() error {
		_, err := c.Act(ctx, "x", controller.ActionPromote, "op", "finish", nil)
		return err
	}
	err = promote()
	if !errors.Is(err, controller.ErrRefused) || !strings.Contains(err.Error(), "no sweep of orders has completed since the step began") ||
		!strings.Contains(err.Error(), "no sweep of customers") {
		t.Fatalf("promote without sweeps: %v", err)
	}
	finishSweep(t, st, "orders", reconcile.Counts{Compared: 10, Matched: 10})
	bad := finishSweep(t, st, "customers", reconcile.Counts{Compared: 10, Matched: 9, MissingInNew: 1})
	err = promote()
	if !errors.Is(err, controller.ErrRefused) || strings.Contains(err.Error(), "orders") ||
		!strings.Contains(err.Error(), "the last sweep of customers (#"+itoa(bad.ID)+") found 1 rows that differ") {
		t.Fatalf("promote with a dirty sweep: %v", err)
	}
	// The controller waits too.
	c.Tick(ctx)
	if r, _ := st.Rollout(ctx, "x"); r.Step != 1 {
		t.Fatalf("the controller moved to step %d past the requirement", r.Step)
	}
	finishSweep(t, st, "customers", reconcile.Counts{Compared: 10, Matched: 10})
	c.Tick(ctx)
	if r, _ := st.Rollout(ctx, "x"); r.Step != 2 {
		t.Fatalf("with clean sweeps the controller stays at step %d", r.Step)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
