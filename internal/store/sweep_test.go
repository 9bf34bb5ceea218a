package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

// TestSweepChunkCommitsOnce: a chunk commits only from the sweep's
// checkpoint, by the runner holding it, while it runs; a refused commit
// writes none of its counts.
func TestSweepChunkCommitsOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := store.Open(ctx, testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sw, err := s.CreateSweep(ctx, store.Sweep{Experiment: "x", Name: "orders", Operation: "reconcile:orders", Spec: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ClaimSweep(ctx, "a", time.Minute); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if _, ok, _ := s.ClaimSweep(ctx, "b", time.Minute); ok {
		t.Fatal("a leased sweep was claimed again")
	}
	minute := time.Now().UTC().Truncate(time.Minute)
	batch := &store.Batch{Counts: []store.Count{{Experiment: "x", Operation: "reconcile:orders", Segment: "all", Attrs: map[string]string{},
		Minute: minute, Counters: report.Counters{Pairs: 10, Divergent: 1}, LastStage: "reconcile", LastSeen: minute}}}
	ten, twenty := "10", "20"
	chunk := func(owner string, from, to *string) error {
		return s.CommitSweepChunk(ctx, store.SweepChunk{ID: sw.ID, Owner: owner, From: from, To: to, Rows: 10,
			Counts: []byte(`{}`), Lease: time.Minute, Batch: batch})
	}
	if err := chunk("a", nil, &ten); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		owner    string
		from, to *string
	}{
		{"the same chunk again", "a", nil, &ten},
		{"another runner", "b", &ten, &twenty},
	} {
		if err := chunk(c.owner, c.from, c.to); !errors.Is(err, store.ErrSweepMoved) {
			t.Errorf("%s: %v, want ErrSweepMoved", c.name, err)
		}
	}
	if _, err := s.SetSweepStatus(ctx, sw.ID, store.SweepPaused, "", store.SweepRunning); err != nil {
		t.Fatal(err)
	}
	if err := chunk("a", &ten, &twenty); !errors.Is(err, store.ErrSweepMoved) {
		t.Errorf("a paused sweep: %v, want ErrSweepMoved", err)
	}
	if _, err := s.SetSweepStatus(ctx, sw.ID, store.SweepRunning, "", store.SweepPaused); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ClaimSweep(ctx, "b", time.Minute); !ok || err != nil {
		t.Fatalf("a resumed sweep is claimed at once: %v %v", ok, err)
	}
	if err := chunk("b", &ten, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Sweep(ctx, sw.ID)
	if got.Status != store.SweepComplete || got.Chunks != 2 || got.RowsDone != 20 || got.Estimate != 20 || got.Checkpoint != nil {
		t.Errorf("sweep %+v", got)
	}
	segs, err := s.Segments(ctx, "x", store.SegmentQuery{Operation: "reconcile:orders"})
	if err != nil || len(segs) != 1 || segs[0].Pairs != 20 || segs[0].Divergent != 2 {
		t.Errorf("counts %+v %v: want the two committed chunks' only", segs, err)
	}
}
