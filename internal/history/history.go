// Package history writes synthetic count history straight into a Parity
// store's tables with COPY, so figures that depend on how much history is
// stored (bytes per day, dashboard speed at 30 days) can be rerun without
// pushing millions of pairs through the verifier.
//
// Guarantees: what [Generate] writes is what [store.Store.Apply] would have
// written for the same counts, followed by [store.Store.PruneMinutes] with
// its horizon at [Shape.MinutesFrom] (which compacts first, at the end of
// the history: [store.Store.Compact]): one pair_counts row per (experiment,
// operation, segment, minute) from MinutesFrom on; the hourly rollups
// (count_hours, experiment_hours) equal to the sums of all the minutes,
// pruned or not, and the daily one (count_days) for every day before the
// last, which is the experiments' rolled_to; a latency histogram on each
// side per unit and hour (latency_hours) and their merge per day before the
// last (latency_days), as real rows carry; the experiments' totals equal
// to the sum of their minutes; and every segment admitted in segments. With
// [Shape.Variants] it writes flag variant counts, with [Shape.Signatures] a
// mismatch signature per divergent minute (and the signatures themselves):
// per minute from MinutesFrom (or rolled_to, if earlier) on, and per hour
// and day before rolled_to. Counts are deterministic functions of the shape, so two runs
// write the same rows. Samples are not written. The range written must be
// empty: Generate fails on a key that already exists rather than adding to
// it.
package history

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
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
	// MinutesFrom is where the kept minutes start (zero: Start): before it
	// only the rollups are written, as a store with a minute retention keeps
	// them once [store.Store.PruneMinutes] has run. It must be a whole hour.
	MinutesFrom time.Time
	// Variants is the number of flag variants each operation's pairs are
	// split into (segment k goes to variant k mod Variants); 0 writes none.
	Variants int
	// Signatures writes, for each minute of a unit with divergent pairs, a
	// count of one of three mismatch signatures.
	Signatures bool
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
	case !s.MinutesFrom.Equal(s.MinutesFrom.Truncate(time.Hour)):
		return errors.New("history: minutes-from is not a whole hour")
	case s.Variants < 0:
		return errors.New("history: variants must not be negative")
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

// Signature returns the signature of the divergent pairs of unit (i, j, k)
// in the m-th minute.
func Signature(m int) string { return fmt.Sprintf("sig-%d", m%3) }

// Generate writes s into the store's tables (which [store.Open] must have
// created) and returns the number of pair_counts rows written. Each table is
// written with one COPY, streamed, so memory stays small whatever the shape.
func Generate(ctx context.Context, db DB, s Shape) (int64, error) {
	if err := s.Validate(); err != nil {
		return 0, err
	}
	g := gen{s: s, start: s.Start.UTC().Truncate(time.Minute)}
	g.end = g.start.Add(time.Duration(s.Minutes) * time.Minute)
	g.keep = 0
	if from := s.MinutesFrom.UTC(); from.After(g.start) {
		g.keep = min(int(from.Sub(g.start)/time.Minute), s.Minutes)
	}
	// As the compactor leaves it having run at the end: every day before
	// the last written, the variant and signature hours too, and their
	// minutes kept from there on even if older than MinutesFrom.
	g.rolledTo = g.end.Truncate(24 * time.Hour)
	g.lazyKeep = g.keep
	if r := int(g.rolledTo.Sub(g.start) / time.Minute); r < g.keep {
		g.lazyKeep = max(r, 0)
	}

	// Experiments and their totals, then segments.
	for i := range s.Experiments {
		var total report.Counters
		for j := range s.Operations {
			for k := range s.Segments {
				total.Add(g.sum(i, j, k, 0, s.Minutes))
			}
		}
		if _, err := db.Exec(ctx, `INSERT INTO experiments (name, first_seen, last_seen, last_stage, pairs, divergent, rolled_to)
VALUES ($1, $2, $3, 'shadow', $4, $5, $6)`, s.Experiment(i), g.start, g.end.Add(-time.Second), total.Pairs, total.Divergent, g.rolledTo); err != nil {
			return 0, fmt.Errorf("history: experiment %s: %w", s.Experiment(i), err)
		}
		segRows := make([][]any, 0, s.Segments)
		for k := range s.Segments {
			key, attrs := Segment(k)
			segRows = append(segRows, []any{s.Experiment(i), key, attrs, g.start})
		}
		if _, err := db.CopyFrom(ctx, pgx.Identifier{"segments"}, []string{"experiment", "segment", "attrs", "first_seen"},
			pgx.CopyFromRows(segRows)); err != nil {
			return 0, fmt.Errorf("history: segments: %w", err)
		}
	}

	counters := []string{"pairs", "divergent", "control_errors", "candidate_errors", "skipped", "timeouts", "aa_pairs", "aa_divergent"}
	values := func(c report.Counters) []any {
		return []any{c.Pairs, c.Divergent, c.ControlErrors, c.CandidateErrors, c.Skipped, c.Timeouts, c.AAPairs, c.AADivergent}
	}
	var n int64
	// The counts: kept minutes, hours, days, and each experiment's hours.
	for _, t := range []struct {
		table, col string
		unit       time.Duration
	}{{"pair_counts", "minute", time.Minute}, {"count_hours", "hour", time.Hour}, {"count_days", "day", 24 * time.Hour}} {
		rows, err := copySeq(ctx, db, t.table, append([]string{"experiment", "operation", "segment", t.col, "last_seen"}, counters...),
			func(yield func([]any) bool) {
				g.each(t.unit, func(i, j, k int, exp, op, seg string, at time.Time, m0, m1 int) bool {
					return yield(append([]any{exp, op, seg, at, g.minute(m1 - 1).Add(59 * time.Second)}, values(g.sum(i, j, k, m0, m1))...))
				})
			})
		if err != nil {
			return n, fmt.Errorf("history: %s: %w", t.table, err)
		}
		if t.unit == time.Minute {
			n = rows
		}
	}
	if _, err := copySeq(ctx, db, "experiment_hours", []string{"experiment", "hour", "pairs", "divergent"}, func(yield func([]any) bool) {
		for i := range s.Experiments {
			if !g.buckets(time.Hour, func(at time.Time, m0, m1 int) bool {
				var c report.Counters
				for j := range s.Operations {
					for k := range s.Segments {
						c.Add(g.sum(i, j, k, m0, m1))
					}
				}
				return yield([]any{s.Experiment(i), at, c.Pairs, c.Divergent})
			}) {
				return
			}
		}
	}); err != nil {
		return n, fmt.Errorf("history: experiment_hours: %w", err)
	}

	// Latencies: the same histograms every hour, merged per day.
	ctl, cand := histograms()
	for _, t := range []struct {
		table, col string
		unit       time.Duration
	}{{"latency_hours", "hour", time.Hour}, {"latency_days", "day", 24 * time.Hour}} {
		if _, err := copySeq(ctx, db, t.table, []string{"experiment", "operation", "segment", t.col, "control", "candidate"},
			func(yield func([]any) bool) {
				g.each(t.unit, func(i, j, k int, exp, op, seg string, at time.Time, m0, m1 int) bool {
					hours := int64(0) // the hours of the bucket that hold a minute
					for h := g.minute(m0).Truncate(time.Hour); h.Before(g.minute(m1 - 1).Add(time.Minute)); h = h.Add(time.Hour) {
						hours++
					}
					return yield([]any{exp, op, seg, at, scaled(ctl, hours), scaled(cand, hours)})
				})
			}); err != nil {
			return n, fmt.Errorf("history: %s: %w", t.table, err)
		}
	}

	g.lazy = true
	if s.Variants > 0 {
		for _, t := range []struct {
			table, col string
			unit       time.Duration
		}{{"variant_counts", "minute", time.Minute}, {"variant_hours", "hour", time.Hour}, {"variant_days", "day", 24 * time.Hour}} {
			if _, err := copySeq(ctx, db, t.table, []string{"experiment", "operation", "variant", "reason", t.col, "pairs", "divergent"},
				func(yield func([]any) bool) {
					for i := range s.Experiments {
						for j := range s.Operations {
							for v := range s.Variants {
								if !g.buckets(t.unit, func(at time.Time, m0, m1 int) bool {
									var c report.Counters
									for k := v; k < s.Segments; k += s.Variants {
										c.Add(g.sum(i, j, k, m0, m1))
									}
									return yield([]any{s.Experiment(i), Operation(j), fmt.Sprintf("v%d", v), "SPLIT", at, c.Pairs, c.Divergent})
								}) {
									return
								}
							}
						}
					}
				}); err != nil {
				return n, fmt.Errorf("history: %s: %w", t.table, err)
			}
		}
	}

	if s.Signatures {
		for i := range s.Experiments {
			var rows [][]any
			for m := range min(3, s.Minutes) {
				rows = append(rows, []any{s.Experiment(i), Signature(m), `[]`, g.start, g.end.Add(-time.Second)})
			}
			if _, err := db.CopyFrom(ctx, pgx.Identifier{"signatures"}, []string{"experiment", "signature", "patterns", "first_seen", "last_seen"},
				pgx.CopyFromRows(rows)); err != nil {
				return n, fmt.Errorf("history: signatures: %w", err)
			}
		}
		for _, t := range []struct {
			table, col string
			unit       time.Duration
		}{{"signature_counts", "minute", time.Minute}, {"signature_hours", "hour", time.Hour}, {"signature_days", "day", 24 * time.Hour}} {
			if _, err := copySeq(ctx, db, t.table, []string{"experiment", "operation", "segment", t.col, "signature", "count", "first_seen", "last_seen"},
				func(yield func([]any) bool) {
					g.each(t.unit, func(i, j, k int, exp, op, seg string, at time.Time, m0, m1 int) bool {
						var counts [3]int64
						var first, last [3]int
						for m := m0; m < m1; m++ {
							if d := s.Counts(i, j, k, m).Divergent; d > 0 {
								if counts[m%3] == 0 {
									first[m%3] = m
								}
								counts[m%3] += d
								last[m%3] = m
							}
						}
						for x, c := range counts {
							if c == 0 {
								continue
							}
							if !yield([]any{exp, op, seg, at, Signature(x), c, g.minute(first[x]), g.minute(last[x]).Add(59 * time.Second)}) {
								return false
							}
						}
						return true
					})
				}); err != nil {
				return n, fmt.Errorf("history: %s: %w", t.table, err)
			}
		}
	}
	return n, nil
}

// gen is one run of Generate.
type gen struct {
	s          Shape
	start, end time.Time
	keep       int // the first minute written to the per-minute tables
	// rolledTo is the experiments' rolled_to: days (and, for the variant
	// and signature counts, hours) are written only before it.
	rolledTo time.Time
	lazyKeep int  // the first minute of the variant and signature counts written
	lazy     bool // writing variant or signature counts
}

// minute returns the start of the m-th minute.
func (g *gen) minute(m int) time.Time { return g.start.Add(time.Duration(m) * time.Minute) }

// sum returns the counters of unit (i, j, k) over the minutes [m0, m1).
func (g *gen) sum(i, j, k, m0, m1 int) report.Counters {
	var c report.Counters
	for m := m0; m < m1; m++ {
		c.Add(g.s.Counts(i, j, k, m))
	}
	return c
}

// each calls f for every bucket of unit of every (experiment, operation,
// segment), until f returns false: bucket by bucket, each bucket's units in
// order, the order in which a running system writes them (the rows of a
// minute, an hour or a day together).
func (g *gen) each(unit time.Duration, f func(i, j, k int, exp, op, seg string, at time.Time, m0, m1 int) bool) bool {
	return g.buckets(unit, func(at time.Time, m0, m1 int) bool {
		return g.units(func(i, j, k int, exp, op, seg string) bool { return f(i, j, k, exp, op, seg, at, m0, m1) })
	})
}

// units calls f for every (experiment, operation, segment) in order, until
// f returns false.
func (g *gen) units(f func(i, j, k int, exp, op, seg string) bool) bool {
	for i := range g.s.Experiments {
		exp := g.s.Experiment(i)
		for j := range g.s.Operations {
			op := Operation(j)
			for k := range g.s.Segments {
				seg, _ := Segment(k)
				if !f(i, j, k, exp, op, seg) {
					return false
				}
			}
		}
	}
	return true
}

// buckets calls f for every bucket of unit (a minute, an hour or a day,
// UTC) that holds a minute of the history, with the bucket's start and its
// minutes [m0, m1), until f returns false. Buckets of a minute start at the
// kept minutes; days, and hours of variant and signature counts, end at
// rolledTo.
func (g *gen) buckets(unit time.Duration, f func(at time.Time, m0, m1 int) bool) bool {
	if unit == time.Minute {
		from := g.keep
		if g.lazy {
			from = g.lazyKeep
		}
		for m := from; m < g.s.Minutes; m++ {
			if !f(g.minute(m), m, m+1) {
				return false
			}
		}
		return true
	}
	end := g.end
	if (unit > time.Hour || g.lazy) && g.rolledTo.Before(end) {
		end = g.rolledTo
	}
	for at := g.start.Truncate(unit); at.Before(end); at = at.Add(unit) {
		m0 := max(0, int(at.Sub(g.start)/time.Minute))
		m1 := min(g.s.Minutes, int(at.Add(unit).Sub(g.start)/time.Minute))
		if !f(at, m0, m1) {
			return false
		}
	}
	return true
}

// copySeq writes the rows of seq into table with one COPY.
func copySeq(ctx context.Context, db DB, table string, cols []string, seq iter.Seq[[]any]) (int64, error) {
	next, stop := iter.Pull(seq)
	defer stop()
	return db.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		row, ok := next()
		if !ok {
			return nil, nil
		}
		return row, nil
	}))
}

// scaled returns the encoded histogram enc with every count times n: the
// merge of n copies of it.
func scaled(enc []int64, n int64) []int64 {
	out := slices.Clone(enc)
	for i := 1; i < len(out); i++ {
		out[i] *= n
	}
	return out
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
