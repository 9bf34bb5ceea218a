package controller_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/rollout"
)

// flags records what the controller serves.
type flags struct {
	mu   sync.Mutex
	docs map[string]rollout.Document
}

func (f *flags) Set(docs []rollout.Document) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.docs = map[string]rollout.Document{}
	for _, d := range docs {
		f.docs[d.Flag] = d
	}
}

func (f *flags) Put(d rollout.Document) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.docs == nil {
		f.docs = map[string]rollout.Document{}
	}
	f.docs[d.Flag] = d
}

func (f *flags) get(flag string) (rollout.Document, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.docs[flag]
	return d, ok
}

// TestErrorKinds checks the controller's answers are domain errors of the
// documented kinds, with a reason for people, and that the changes it makes
// reach the flag table.
func TestErrorKinds(t *testing.T) {
	st, err := store.Open(t.Context(), testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	fl := &flags{}
	c := controller.New(st, fl, controller.Options{})
	ctx := t.Context()

	plan := rollout.Plan{Base: envelope.StageShadow, Steps: []rollout.Step{
		{Name: "canary", Stage: envelope.StageLive, Audience: rollout.Audience{Percent: 5}, Gate: controller.GateNone},
		{Name: "all", Stage: envelope.StageComplete, Audience: rollout.Audience{Percent: 100}, Gate: controller.GateNone},
	}}
	if _, err := c.Act(ctx, "x", controller.ActionPromote, "op", "go", nil); !errors.Is(err, controller.ErrNotFound) {
		t.Errorf("promote without a rollout: %v, want ErrNotFound", err)
	}
	other := plan
	other.Experiment = "y"
	if _, err := c.SavePlan(ctx, "x", "", other, "op", "plan"); !errors.Is(err, controller.ErrInvalid) {
		t.Errorf("plan of another experiment: %v, want ErrInvalid", err)
	}
	r, err := c.SavePlan(ctx, "x", "x-flag", plan, "op", "plan")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := fl.get("x-flag"); !ok || d.Revision != r.Revision || d.Status != rollout.StatusPaused {
		t.Errorf("flag table after the plan: %+v, %v; want revision %d paused", d, ok, r.Revision)
	}
	tests := []struct {
		name, action, reason string
		to                   *int
		kind                 error
	}{
		{"no reason", controller.ActionPromote, "", nil, controller.ErrInvalid},
		{"unknown action", "jump", "why", nil, controller.ErrNotFound},
		{"pause a paused rollout", controller.ActionPause, "why", nil, controller.ErrRefused},
		{"step out of range", controller.ActionPromote, "why", new(5), controller.ErrRefused},
		{"rollback at the base", controller.ActionRollback, "why", nil, controller.ErrRefused},
	}
	for _, tt := range tests {
		_, err := c.Act(ctx, "x", tt.action, "op", tt.reason, tt.to)
		var ce *controller.Error
		if !errors.Is(err, tt.kind) || !errors.As(err, &ce) || ce.Err == nil || ce.Err.Error() == "" {
			t.Errorf("%s: %v, want an *Error of kind %v with a reason", tt.name, err, tt.kind)
		}
	}
	got, err := c.Act(ctx, "x", controller.ActionPromote, "op", "go", nil)
	if err != nil || got.Step != 1 {
		t.Fatalf("promote: step %d, %v", got.Step, err)
	}
	if d, _ := fl.get("x-flag"); d.State.Step != 1 || d.Revision != got.Revision {
		t.Errorf("flag table after promote: %+v, want step 1 revision %d", d, got.Revision)
	}
}
