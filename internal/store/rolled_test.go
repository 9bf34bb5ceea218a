package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parityhq/parity/internal/history"
	"github.com/parityhq/parity/internal/testutil"
)

// TestReadsCheckTheirRolledTo checks that a read planned for a wrong guess
// of the experiment's rolled_to (a stale one: the compactor moved it, or
// the experiment was deleted and written again) answers exactly as one
// planned for the right value: the statement notices, and the read runs
// again. Each guess would change the answer if it were used: a later one
// reads days the compactor has not written, an earlier one reads variant
// and signature minutes the retention has deleted.
func TestReadsCheckTheirRolledTo(t *testing.T) {
	ctx := t.Context()
	const retention = 30 * time.Hour
	s, err := Open(ctx, testutil.FreshDatabase(t), Options{MinuteRetention: retention})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	now := time.Now().UTC().Truncate(time.Minute)
	sh := history.Shape{Experiments: 1, Operations: 2, Segments: 3, Variants: 2, Signatures: true,
		Start: now.Add(-4*24*time.Hour + 17*time.Minute), Minutes: 4*24*60 - 17,
		MinutesFrom: now.Add(-retention).Truncate(time.Hour)}
	if _, err := history.Generate(ctx, s.Pool(), sh); err != nil {
		t.Fatal(err)
	}
	exp := sh.Experiment(0)
	rolled := now.Truncate(day) // as the generator leaves it
	windows := []SegmentQuery{
		{},
		{Since: now.Add(-3*24*time.Hour - 7*time.Minute)},
		{Since: now.Add(-50 * time.Hour), Until: now.Add(-26*time.Hour + 3*time.Minute)},
		{Since: now.Add(time.Hour)}, // empty
	}
	want := readEach(t, s, exp, windows, func() { s.rolled.put(exp, rolled) })
	if n := len(want["segments 1"].([]SegmentCount)); n != sh.Segments {
		t.Fatalf("%d segments in a 3-day window, want %d", n, sh.Segments)
	}
	for _, guess := range []time.Time{{}, rolled.Add(-day), rolled.Add(day), rolled.Add(-3 * time.Hour)} {
		got := readEach(t, s, exp, windows, func() { s.rolled.put(exp, guess) })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("with rolled_to guessed as %v, answers differ (-right guess +wrong guess):\n%s", guess, diff)
		}
		if r := s.rolled.get(exp); !r.Equal(rolled) {
			t.Errorf("after a wrong guess rolled_to is remembered as %v, want %v", r, rolled)
		}
	}
	// Nothing remembered: the first read learns it.
	s.rolled.forget(exp)
	if got := readEach(t, s, exp, windows, func() {}); !cmp.Equal(want, got) {
		t.Errorf("answers differ when rolled_to was not remembered:\n%s", cmp.Diff(want, got))
	}
	if r := s.rolled.get(exp); !r.Equal(rolled) {
		t.Errorf("rolled_to remembered as %v, want %v", r, rolled)
	}

	// An unknown experiment, even one remembered.
	s.rolled.put("gone", rolled)
	if _, err := s.Segments(ctx, "gone", SegmentQuery{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Segments of an unknown experiment: %v, want ErrNotFound", err)
	}
	if _, ok := s.rolled.m["gone"]; ok {
		t.Error("an unknown experiment is still remembered")
	}
}

// readEach is every windowed read of exp over windows, each called right
// after reset.
func readEach(t *testing.T, s *Store, exp string, windows []SegmentQuery, reset func()) map[string]any {
	t.Helper()
	ctx := t.Context()
	out := map[string]any{}
	get := func(key string, v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		out[key] = v
	}
	for i, q := range windows {
		reset()
		segs, err := s.Segments(ctx, exp, q)
		get(fmt.Sprint("segments ", i), segs, err)
		for _, step := range []time.Duration{time.Minute, time.Hour, day} {
			reset()
			pts, err := s.Series(ctx, exp, q, step)
			get(fmt.Sprint("series ", i, step), pts, err)
		}
		reset()
		vs, err := s.Variants(ctx, exp, q)
		get(fmt.Sprint("variants ", i), vs, err)
		reset()
		sigs, err := s.Signatures(ctx, exp, SignatureQuery{Since: q.Since, Until: q.Until, Limit: 100})
		get(fmt.Sprint("signatures ", i), sigs, err)
		reset()
		lats, err := s.Latencies(ctx, exp, q)
		get(fmt.Sprint("latencies ", i), lats, err)
		reset()
		pairs, stats, err := s.PatternStats(ctx, exp, q.Since)
		get(fmt.Sprint("pattern pairs ", i), pairs, err)
		get(fmt.Sprint("pattern stats ", i), stats, err)
	}
	return out
}
