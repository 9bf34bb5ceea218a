// Package history writes synthetic count history straight into a Parity
// store's tables with COPY, so figures that depend on how much history is
// stored (bytes per day, dashboard speed at 30 days) can be rerun without
// pushing millions of pairs through the verifier.
//
// Guarantees: what [Generate] writes is what [store.Store.Apply] would have
// written for the same counts, as far as counts go: one pair_counts row per
// (experiment, operation, segment, minute), the hourly rollup in
// latency_hours equal to the sum of its minutes (with a latency histogram on
// each side, as real rows carry), the experiments' totals equal to the sum
// of their minutes, and every segment admitted in segments. Counts are
// deterministic functions of the shape, so two runs write the same rows.
// Signature counts, variant counts and samples are not written. The range
// written must be empty: Generate fails on a key that already exists rather
// than adding to it.
package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parityhq/parity/pkg/report"
)

// Shape is the history to write: Experiments × Operations × Segments units,
// each with a count row for every minute of [Start, Start+Minutes).
type Shape struct {
	Experiments int
	Operations  int
	Segments    int
	Start       time.Time // rounded down to the minute
	Minutes     int
	// Pairs is the number of pairs a unit has in a minute (its counters vary
	// around it); 0 means 20.
	Pairs int64
	// Prefix starts every experiment's name (default "hist").
	Prefix string
}

// DB is what Generate needs of a connection or pool.
type DB interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Experiment returns the name of the i-th experiment of s.
func (s Shape) Experiment(i int) string { return fmt.Sprintf("%s-%03d", s.prefix(), i) }

// Operation returns the name of the j-th operation.
func Operation(j int) string { return fmt.Sprintf("op%02d", j) }

// Segment returns the key of the k-th segment and its attributes.
func Segment(k int) (string, map[string]string) {
	country, plan := fmt.Sprintf("c%02d", k/4), [4]string{"free", "pro", "team", "enterprise"}[k%4]
	return "country=" + country + ",plan=" + plan, map[string]string{"country": country, "plan": plan}
}

func (s Shape) prefix() string {
	if s.Prefix == "" {
		return "hist"
	}
	return s.Prefix
}

func (s Shape) pairs() int64 {
	if s.Pairs <= 0 {
		return 20
	}
	return s.Pairs
}

// Validate reports a shape that cannot be written.
func (s Shape) Validate() error {
	switch {
	case s.Experiments <= 0 || s.Operations <= 0 || s.Segments <= 0:
		return errors.New("history: experiments, operations and segments must be positive")
	case s.Minutes <= 0:
		return errors.New("history: minutes must be positive")
	case s.Start.IsZero():
		return errors.New("history: start is not set")
	}
	return nil
}

// Counts returns the counters of unit (i, j, k) in the m-th minute: a
// deterministic pattern around s.Pairs with about 1% divergent pairs.
func (s Shape) Counts(i, j, k, m int) report.Counters {
	n := s.pairs() + int64((i*7+j*13+k*3+m)%9) - 4
	n = max(n, 1)
	return report.Counters{
		Pairs:           n,
		Divergent:       int64((i + j + k + m) % 100 / 97), // 3 minutes in 100
		ControlErrors:   int64((j + m) % 500 / 499),
		CandidateErrors: int64((k + m) % 400 / 399),
	}
}

// Generate writes s into the store's tables (which [store.Open] must have
// created) and returns the number of pair_counts rows written. Each table is
// written with one COPY, streamed, so memory stays small whatever the shape.
func Generate(ctx context.Context, db DB, s Shape) (int64, error) {
	if err := s.Validate(); err != nil {
		return 0, err
	}
	start := s.Start.UTC().Truncate(time.Minute)
	end := start.Add(time.Duration(s.Minutes) * time.Minute)

	// Experiments and their totals, then segments.
	for i := range s.Experiments {
		var total report.Counters
		for j := range s.Operations {
			for k := range s.Segments {
				for m := range s.Minutes {
					c := s.Counts(i, j, k, m)
					total.Pairs += c.Pairs
					total.Divergent += c.Divergent
				}
			}
		}
		if _, err := db.Exec(ctx, `INSERT INTO experiments (name, first_seen, last_seen, last_stage, pairs, divergent)
VALUES ($1, $2, $3, 'shadow', $4, $5)`, s.Experiment(i), start, end.Add(-time.Second), total.Pairs, total.Divergent); err != nil {
			return 0, fmt.Errorf("history: experiment %s: %w", s.Experiment(i), err)
		}
		segRows := make([][]any, 0, s.Segments)
		for k := range s.Segments {
			key, attrs := Segment(k)
			segRows = append(segRows, []any{s.Experiment(i), key, attrs, start})
		}
		if _, err := db.CopyFrom(ctx, pgx.Identifier{"segments"}, []string{"experiment", "segment", "attrs", "first_seen"},
			pgx.CopyFromRows(segRows)); err != nil {
			return 0, fmt.Errorf("history: segments: %w", err)
		}
	}

	// Minutes.
	cols := []string{"experiment", "operation", "segment", "minute", "last_seen",
		"pairs", "divergent", "control_errors", "candidate_errors", "skipped", "timeouts", "aa_pairs", "aa_divergent"}
	u := newUnits(s)
	m := 0
	n, err := db.CopyFrom(ctx, pgx.Identifier{"pair_counts"}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		if m == s.Minutes {
			if !u.next() {
				return nil, nil
			}
			m = 0
		}
		c := s.Counts(u.i, u.j, u.k, m)
		at := start.Add(time.Duration(m) * time.Minute)
		m++
		return []any{u.exp, u.op, u.seg, at, at.Add(59 * time.Second),
			c.Pairs, c.Divergent, c.ControlErrors, c.CandidateErrors, int64(0), int64(0), int64(0), int64(0)}, nil
	}))
	if err != nil {
		return 0, fmt.Errorf("history: pair_counts: %w", err)
	}

	// The hourly rollup, with histograms.
	ctl, cand := histograms()
	u = newUnits(s)
	firstHour := start.Truncate(time.Hour)
	h := firstHour
	hcols := append(cols[:0:0], "experiment", "operation", "segment", "hour", "last_seen",
		"pairs", "divergent", "control_errors", "candidate_errors", "skipped", "timeouts", "aa_pairs", "aa_divergent",
		"control", "candidate")
	_, err = db.CopyFrom(ctx, pgx.Identifier{"latency_hours"}, hcols, pgx.CopyFromFunc(func() ([]any, error) {
		if !h.Before(end) {
			if !u.next() {
				return nil, nil
			}
			h = firstHour
		}
		var sum report.Counters
		var last time.Time
		t := h
		if t.Before(start) {
			t = start
		}
		for ; t.Before(end) && t.Before(h.Add(time.Hour)); t = t.Add(time.Minute) {
			c := s.Counts(u.i, u.j, u.k, int(t.Sub(start)/time.Minute))
			sum.Pairs += c.Pairs
			sum.Divergent += c.Divergent
			sum.ControlErrors += c.ControlErrors
			sum.CandidateErrors += c.CandidateErrors
			last = t.Add(59 * time.Second)
		}
		row := []any{u.exp, u.op, u.seg, h, last,
			sum.Pairs, sum.Divergent, sum.ControlErrors, sum.CandidateErrors, int64(0), int64(0), int64(0), int64(0),
			ctl, cand}
		h = h.Add(time.Hour)
		return row, nil
	}))
	if err != nil {
		return n, fmt.Errorf("history: latency_hours: %w", err)
	}
	return n, nil
}

// units walks every (experiment, operation, segment) of a shape in order.
type units struct {
	s            Shape
	i, j, k      int
	exp, op, seg string
}

func newUnits(s Shape) *units {
	u := &units{s: s}
	u.set()
	return u
}

func (u *units) set() {
	u.exp, u.op = u.s.Experiment(u.i), Operation(u.j)
	u.seg, _ = Segment(u.k)
}

// next moves to the next unit and reports whether there is one.
func (u *units) next() bool {
	if u.k++; u.k == u.s.Segments {
		u.k = 0
		if u.j++; u.j == u.s.Operations {
			u.j = 0
			if u.i++; u.i == u.s.Experiments {
				return false
			}
		}
	}
	u.set()
	return true
}

// histograms returns the encoded latency histograms every generated hour
// carries: an hour of a service answering in 2–40 ms, as wide as real ones.
func histograms() (control, candidate []int64) {
	var c, d report.Histogram
	for i := range 2000 {
		ms := 2 + (i*37)%38
		c.Observe(time.Duration(ms)*time.Millisecond + time.Duration(i%1000)*time.Microsecond)
		d.Observe(time.Duration(ms+1)*time.Millisecond + time.Duration(i%977)*time.Microsecond)
	}
	return c.Encode(), d.Encode()
}
