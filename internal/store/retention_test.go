package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parityhq/parity/internal/history"
	"github.com/parityhq/parity/internal/store"
)

// answers is every read the API serves from counts, for fixed windows.
func answers(t *testing.T, s *store.Store, exps []string, windows []store.SegmentQuery) map[string]any {
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
	es, err := s.Experiments(ctx)
	get("experiments", es, err)
	for _, w := range []time.Time{{}, windows[0].Since, windows[1].Since} {
		for _, step := range []time.Duration{time.Hour, 5 * time.Minute} {
			ov, err := s.Overview(ctx, w, step)
			get(fmt.Sprintf("overview since %v step %v", w, step), ov, err)
		}
	}
	for _, e := range exps {
		ops, err := s.Operations(ctx, e)
		get("operations "+e, ops, err)
		for i, q := range windows {
			for _, op := range []string{"", history.Operation(1)} {
				q.Operation = op
				key := fmt.Sprintf("%s window %d op %q", e, i, op)
				segs, err := s.Segments(ctx, e, q)
				get("segments "+key, segs, err)
				for _, step := range []time.Duration{time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour} {
					pts, err := s.Series(ctx, e, q, step)
					get(fmt.Sprintf("series %s step %v", key, step), pts, err)
				}
				mins, err := s.Minutes(ctx, e, q)
				get("minutes "+key, mins, err)
			}
			vs, err := s.Variants(ctx, e, q)
			get(fmt.Sprintf("variants %s window %d", e, i), vs, err)
			sigs, err := s.Signatures(ctx, e, store.SignatureQuery{Since: q.Since, Until: q.Until, Limit: 100})
			get(fmt.Sprintf("signatures %s window %d", e, i), sigs, err)
			lats, err := s.Latencies(ctx, e, q)
			get(fmt.Sprintf("latencies %s window %d", e, i), lats, err)
			pairs, stats, err := s.PatternStats(ctx, e, q.Since)
			get(fmt.Sprintf("pattern pairs %s window %d", e, i), pairs, err)
			get(fmt.Sprintf("pattern stats %s window %d", e, i), stats, err)
		}
	}
	return out
}

// TestMinuteRetentionKeepsTotals generates history on both sides of the
// minute retention, deletes the old minutes and checks that every read
// answers exactly as before, and that only minutes before the horizon went.
func TestMinuteRetentionKeepsTotals(t *testing.T) {
	ctx := t.Context()
	const retention = 72 * time.Hour
	s := openStore(t, store.Options{MinuteRetention: retention})
	now := time.Now().UTC()
	// The horizon is the start of the hour retention ago; if it moves on by
	// an hour while the test runs, nothing written or asked lies within two
	// hours of it, so every answer stays the same.
	old := history.Shape{Prefix: "old", Experiments: 2, Operations: 2, Segments: 3,
		Start: now.Add(-retention - 7*time.Hour - 17*time.Minute), Minutes: 5*60 + 3, Variants: 2, Signatures: true}
	recent := history.Shape{Prefix: "recent", Experiments: 1, Operations: 2, Segments: 3,
		Start: now.Add(-retention + 2*time.Hour + 13*time.Minute), Minutes: 3*60 + 31, Variants: 2, Signatures: true}
	for _, sh := range []history.Shape{old, recent} {
		if _, err := history.Generate(ctx, s.Pool(), sh); err != nil {
			t.Fatalf("Generate: %v", err)
		}
	}
	exps := []string{old.Experiment(0), old.Experiment(1), recent.Experiment(0)}
	windows := []store.SegmentQuery{
		{Since: now.Add(-7 * 24 * time.Hour)},                                                       // window=7d
		{Since: old.Start.Add(97 * time.Minute)},                                                    // ragged, before the horizon
		{Since: old.Start.Add(31 * time.Minute), Until: old.Start.Add(4*time.Hour + 9*time.Minute)}, // both edges before it
		{Since: recent.Start.Add(11 * time.Minute), Until: recent.Start.Add(2*time.Hour + 41*time.Minute)},
		{}, // window=all
	}

	minutesBefore := func(at time.Time) int64 {
		var n int64
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pair_counts WHERE minute < $1`, at).Scan(&n); err != nil {
			t.Fatalf("count: %v", err)
		}
		return n
	}
	before := answers(t, s, exps, windows)
	oldRows := int64(old.Experiments * old.Operations * old.Segments * old.Minutes)
	if n := minutesBefore(now.Add(-retention - time.Hour)); n != oldRows {
		t.Fatalf("%d minute rows before the horizon; want the %d generated", n, oldRows)
	}
	total := minutesBefore(now.Add(time.Hour))

	deleted, err := s.PruneMinutes(ctx, time.Now())
	if err != nil {
		t.Fatalf("PruneMinutes: %v", err)
	}
	if deleted != oldRows {
		t.Errorf("PruneMinutes deleted %d rows; want the %d before the horizon", deleted, oldRows)
	}
	if n := minutesBefore(now.Add(-retention - time.Hour)); n != 0 {
		t.Errorf("%d minute rows left before the horizon", n)
	}
	if n := minutesBefore(now.Add(time.Hour)); n != total-oldRows {
		t.Errorf("%d minute rows left; want the %d after the horizon", n, total-oldRows)
	}
	after := answers(t, s, exps, windows)
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("answers changed when the old minutes went (-before +after):\n%s", d)
	}

	// The answers are the generated counts, not merely stable: window=all
	// sums every generated minute, and the detector's minutes start at the
	// horizon.
	segs, err := s.Segments(ctx, old.Experiment(1), store.SegmentQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var want, got int64
	for j := range old.Operations {
		for k := range old.Segments {
			for m := range old.Minutes {
				want += old.Counts(1, j, k, m).Pairs
			}
		}
	}
	for _, r := range segs {
		got += r.Pairs
	}
	if got != want || len(segs) != old.Segments {
		t.Errorf("window=all of %s: %d pairs in %d segments; want %d in %d", old.Experiment(1), got, len(segs), want, old.Segments)
	}
	mins, err := s.Minutes(ctx, old.Experiment(0), store.SegmentQuery{})
	if err != nil || len(mins) != 0 {
		t.Errorf("Minutes of an experiment whose minutes are all past the retention = %d rows, %v; want none", len(mins), err)
	}
	mins, err = s.Minutes(ctx, recent.Experiment(0), store.SegmentQuery{Since: old.Start})
	if err != nil || len(mins) != recent.Segments*recent.Minutes {
		t.Errorf("Minutes of the recent experiment = %d rows, %v; want %d (every kept minute per segment)", len(mins), err, recent.Segments*recent.Minutes)
	}

	// A second prune finds nothing more.
	if n, err := s.PruneMinutes(ctx, time.Now()); err != nil || n != 0 {
		t.Errorf("second PruneMinutes = %d, %v; want 0", n, err)
	}
}

// TestMinuteRetentionForever checks that without a retention nothing is
// deleted and old windows keep their minute edges.
func TestMinuteRetentionForever(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, store.Options{MinuteRetention: -1})
	sh := history.Shape{Experiments: 1, Operations: 1, Segments: 2, Start: time.Now().Add(-30 * 24 * time.Hour), Minutes: 90}
	n, err := history.Generate(ctx, s.Pool(), sh)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s.PruneMinutes(ctx, time.Now()); err != nil || d != 0 {
		t.Errorf("PruneMinutes with minutes kept forever = %d, %v; want 0", d, err)
	}
	mins, err := s.Minutes(ctx, sh.Experiment(0), store.SegmentQuery{})
	if err != nil || int64(len(mins)) != n {
		t.Errorf("Minutes = %d rows, %v; want all %d", len(mins), err, n)
	}
	// A ragged window is summed minute by minute, not widened to its hours.
	q := store.SegmentQuery{Since: sh.Start.Truncate(time.Minute).Add(7 * time.Minute)}
	segs, err := s.Segments(ctx, sh.Experiment(0), q)
	if err != nil {
		t.Fatal(err)
	}
	var want, got int64
	for k := range sh.Segments {
		for m := 7; m < sh.Minutes; m++ {
			want += sh.Counts(0, 0, k, m).Pairs
		}
	}
	for _, r := range segs {
		got += r.Pairs
	}
	if got != want {
		t.Errorf("ragged window: %d pairs; want %d", got, want)
	}
}
