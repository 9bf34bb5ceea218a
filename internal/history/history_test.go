package history_test

import (
	"context"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/history"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
)

// TestGenerateWritesWhatApplyWould checks the invariants Apply keeps: the
// hourly rollup sums the minutes, the experiments' totals sum them too, and
// every segment is admitted.
func TestGenerateWritesWhatApplyWould(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	sh := history.Shape{Experiments: 2, Operations: 3, Segments: 5, Minutes: 150, Pairs: 7,
		Start: time.Date(2026, 11, 1, 10, 23, 0, 0, time.UTC)}
	n, err := history.Generate(ctx, s.Pool(), sh)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2 * 3 * 5 * 150); n != want {
		t.Errorf("Generate wrote %d minute rows; want %d", n, want)
	}
	var mismatched, hours, segs int
	err = s.Pool().QueryRow(ctx, `
WITH m AS (
	SELECT experiment, operation, segment, date_trunc('hour', minute, 'UTC') AS hour,
		sum(pairs) AS pairs, sum(divergent) AS divergent, sum(control_errors) AS ce, sum(candidate_errors) AS de, max(last_seen) AS ls
	FROM pair_counts GROUP BY 1, 2, 3, 4
)
SELECT count(*) FILTER (WHERE h.pairs IS DISTINCT FROM m.pairs OR h.divergent IS DISTINCT FROM m.divergent
		OR h.control_errors IS DISTINCT FROM m.ce OR h.candidate_errors IS DISTINCT FROM m.de OR h.last_seen IS DISTINCT FROM m.ls
		OR NOT EXISTS (SELECT 1 FROM latency_hours l WHERE (l.experiment, l.operation, l.segment, l.hour) = (h.experiment, h.operation, h.segment, h.hour)
			AND cardinality(l.control) > 0)),
	count(*), (SELECT count(*) FROM segments)
FROM m FULL JOIN count_hours h USING (experiment, operation, segment, hour)`).Scan(&mismatched, &hours, &segs)
	if err != nil {
		t.Fatal(err)
	}
	// 10:23 + 150 minutes touches the hours 10 to 12.
	if mismatched != 0 || hours != 2*3*5*3 || segs != 2*5 {
		t.Errorf("%d of %d hour rows differ from their minutes, %d segments; want 0 of %d, %d", mismatched, hours, segs, 2*3*5*3, 2*5)
	}
	exps, err := s.Experiments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range exps {
		var want int64
		for j := range sh.Operations {
			for k := range sh.Segments {
				for m := range sh.Minutes {
					want += sh.Counts(i, j, k, m).Pairs
				}
			}
		}
		segRows, err := s.Segments(ctx, e.Name, store.SegmentQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		for _, r := range segRows {
			got += r.Pairs
		}
		if e.Name != sh.Experiment(i) || e.Pairs != want || got != want {
			t.Errorf("experiment %d: %s with total %d and segments summing to %d; want %s, %d", i, e.Name, e.Pairs, got, sh.Experiment(i), want)
		}
	}
	// Writing the same range again fails instead of adding to it.
	if _, err := history.Generate(ctx, s.Pool(), sh); err == nil {
		t.Error("Generate over existing history succeeded; want an error")
	}
}

func TestShapeValidate(t *testing.T) {
	ok := history.Shape{Experiments: 1, Operations: 1, Segments: 1, Minutes: 1, Start: time.Now()}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", ok, err)
	}
	for _, bad := range []history.Shape{
		{Operations: 1, Segments: 1, Minutes: 1, Start: time.Now()},
		{Experiments: 1, Operations: 1, Segments: 1, Start: time.Now()},
		{Experiments: 1, Operations: 1, Segments: 1, Minutes: 1},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil; want an error", bad)
		}
	}
}
