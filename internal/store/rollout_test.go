package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
)

func TestRolloutRevisionsAndAudit(t *testing.T) {
	s := openStore(t, store.Options{})
	ctx := t.Context()
	entered := time.Now().UTC().Truncate(time.Millisecond)
	r, err := s.CreateRollout(ctx, store.Rollout{
		Experiment: "orders", Flag: "orders-migration", Plan: []byte(`{"experiment":"orders"}`),
		Status: "active", EnteredAt: entered,
	}, store.RolloutEvent{Actor: "alice", Action: "plan", Cause: "manual", Reason: "first plan"})
	if err != nil {
		t.Fatalf("CreateRollout: %v", err)
	}
	if r.Revision != 1 || r.Step != 0 || !r.EnteredAt.Equal(entered) || string(r.Baseline) != "{}" {
		t.Fatalf("created %+v", r)
	}
	if _, err := s.CreateRollout(ctx, store.Rollout{Experiment: "other", Flag: "orders-migration", Plan: []byte(`{}`), Status: "active", EnteredAt: entered},
		store.RolloutEvent{Actor: "bob", Action: "plan", Cause: "manual"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second rollout on the same flag: %v, want ErrConflict", err)
	}

	// Two writers from revision 1: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := r
			next.Step = 1 + i
			next.Baseline = []byte(`{"seg":[10,1]}`)
			_, errs[i] = s.UpdateRollout(ctx, next, 1, store.RolloutEvent{Actor: "controller", Action: "promote", Cause: "gate_passed", FromStep: 0, Detail: []byte(`{"verdict":"pass"}`)})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("UpdateRollout: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won from the same revision, want 1 (%v)", won, errs)
	}
	got, err := s.Rollout(ctx, "orders")
	if err != nil || got.Revision != 2 || got.Step < 1 || string(got.Baseline) != `{"seg": [10, 1]}` {
		t.Fatalf("Rollout = %+v, %v", got, err)
	}
	if _, err := s.UpdateRollout(ctx, store.Rollout{Experiment: "missing", Plan: []byte(`{}`)}, 1, store.RolloutEvent{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing rollout: %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateRollout(ctx, store.Rollout{Experiment: "orders", Plan: []byte(`[1]`)}, 2, store.RolloutEvent{}); err == nil {
		t.Fatal("a plan that is not a JSON object was stored")
	}

	evs, err := s.RolloutEvents(ctx, "orders", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Action != "plan" || evs[0].Revision != 1 || evs[1].Action != "promote" ||
		evs[1].Revision != 2 || evs[1].ToStep != got.Step || evs[1].Cause != "gate_passed" || string(evs[1].Detail) != `{"verdict": "pass"}` {
		t.Fatalf("events = %+v", evs)
	}
	if last, _ := s.RolloutEvents(ctx, "orders", 1); len(last) != 1 || last[0].ID != evs[1].ID {
		t.Fatalf("last event = %+v", last)
	}
	if err := s.SetRolloutBaseline(ctx, "orders", got.Revision, []byte(`{"taken": true}`)); err != nil {
		t.Fatalf("SetRolloutBaseline: %v", err)
	}
	if err := s.SetRolloutBaseline(ctx, "orders", got.Revision-1, []byte(`{}`)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("SetRolloutBaseline at an old revision: %v, want ErrConflict", err)
	}
	if r, _ := s.Rollout(ctx, "orders"); r.Revision != got.Revision || string(r.Baseline) != `{"taken": true}` {
		t.Fatalf("after SetRolloutBaseline: revision %d baseline %s", r.Revision, r.Baseline)
	}
	if evs, _ := s.RolloutEvents(ctx, "orders", 0); len(evs) != 2 {
		t.Fatalf("SetRolloutBaseline wrote an audit entry: %d entries", len(evs))
	}
	all, err := s.Rollouts(ctx)
	if err != nil || len(all) != 1 || all[0].Flag != "orders-migration" {
		t.Fatalf("Rollouts = %+v, %v", all, err)
	}
}
