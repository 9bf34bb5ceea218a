package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parityhq/parity/pkg/report"
)

// ErrInvalidQuery reports a query argument out of range, such as a
// [Store.Series] step that is not a whole number of minutes.
var ErrInvalidQuery = errors.New("store: invalid query")

// params collects a statement's arguments; add returns the placeholder of the
// one it appends.
type params []any

func (p *params) add(v any) string {
	*p = append(*p, v)
	return "$" + strconv.Itoa(len(*p))
}

// counterColumns are the columns of pair_counts and latency_hours that hold
// a [report.Counters], in [report.Counters.Fields] order. Its length is
// [report.NumCounters], so a counter added there fails to compile here until
// it has a column (and a migration).
var counterColumns = [report.NumCounters]string{
	"pairs", "divergent", "control_errors", "candidate_errors", "skipped", "timeouts", "aa_pairs", "aa_divergent",
}

// counterList returns counterColumns, each passed through f, joined with
// ", ": the one place statements spell the counters.
func counterList(f func(col string) string) string {
	parts := make([]string, len(counterColumns))
	for i, c := range counterColumns {
		parts[i] = f(c)
	}
	return strings.Join(parts, ", ")
}

// countColumns are the columns of every row countsFrom yields, after segment
// and t.
var countColumns = countersCols + ", last_seen"

// countersCols lists the counter columns.
var countersCols = counterList(func(c string) string { return c })

// sumCounters sums each counter column under its own name; aggCounters reads
// them from the aggregate a.
var (
	sumCounters = counterList(func(c string) string { return "sum(" + c + ")::int8 AS " + c })
	aggCounters = counterList(func(c string) string { return "a." + c })
)

// countsFrom returns a FROM item, aliased c, holding the count rows of the
// experiment that the SQL expression exp names (a placeholder, or a column of
// an outer query) for the minutes whose start lies in [since, until) (zero:
// unbounded), of operation op only if op is set. Its columns are operation,
// segment, t (the start of the minute or hour the row counts) and
// countColumns.
//
// With hours set, the whole hours inside the window come from latency_hours'
// counters (the rollup of pair_counts, one row per hour instead of sixty) and
// only the minutes at its ragged ends from pair_counts; the two never
// overlap, so every minute is counted exactly once. A caller that groups by
// t must then only use buckets made of whole hours. Without hours every row
// is a minute of pair_counts, except before horizon.
//
// horizon (zero: none) is where the kept minutes start (see
// [Options.MinuteRetention]): before it pair_counts may have been deleted,
// so whatever lies before it is read from the rollup whatever hours says,
// and a window edge before it is widened to its whole hour ([widen]). A
// window's answer therefore does not change when its minutes are deleted.
//
// Each part is a plain range condition, never "$n IS NULL OR …", so each
// shape gets a plan that uses the (experiment, minute) and (experiment, hour)
// indexes.
func countsFrom(p *params, exp string, since, until time.Time, op string, hours bool, horizon time.Time) string {
	since, until = widen(since, until, horizon)
	opCond := ""
	if op != "" {
		opCond = " AND operation = " + p.add(op)
	}
	minutes := func(from, to time.Time) string {
		var w strings.Builder
		w.WriteString("SELECT operation, segment, minute AS t, " + countColumns + " FROM pair_counts WHERE experiment = " + exp + opCond)
		if !from.IsZero() {
			w.WriteString(" AND minute >= " + p.add(from))
		}
		if !to.IsZero() {
			w.WriteString(" AND minute < " + p.add(to))
		}
		return w.String()
	}
	// [hs, he): the hours read from the rollup, zero where unbounded.
	hs, he := since, until
	if !since.IsZero() {
		if hs = since.Truncate(time.Hour); hs.Before(since) {
			hs = hs.Add(time.Hour)
		}
	}
	if !until.IsZero() {
		he = until.Truncate(time.Hour)
	}
	if !hours {
		if horizon.IsZero() {
			return "(" + minutes(since, until) + ") c"
		}
		// Only the hours before the horizon, whose minutes may be gone.
		if he.IsZero() || horizon.Before(he) {
			he = horizon
		}
	}
	if !hs.IsZero() && !he.IsZero() && !hs.Before(he) {
		return "(" + minutes(since, until) + ") c"
	}
	var h strings.Builder
	h.WriteString("SELECT operation, segment, hour AS t, " + countColumns + " FROM latency_hours WHERE experiment = " + exp + opCond +
		" AND last_seen IS NOT NULL") // rows without counts hold latencies only
	if !hs.IsZero() {
		h.WriteString(" AND hour >= " + p.add(hs))
	}
	if !he.IsZero() {
		h.WriteString(" AND hour < " + p.add(he))
	}
	parts := []string{h.String()}
	if since.Before(hs) {
		parts = append(parts, minutes(since, hs))
	}
	if !he.IsZero() && (until.IsZero() || he.Before(until)) {
		parts = append(parts, minutes(he, until))
	}
	return "(" + strings.Join(parts, "\nUNION ALL\n") + ") c"
}

// widen returns the window [since, until) with each bound that lies before
// horizon (zero: none) moved out to the hour it falls in: since down to the
// start of its hour, until up to the end of its. Minutes before the horizon
// may be deleted, so such a window is answered in whole hours, the same
// before and after the deletion.
func widen(since, until, horizon time.Time) (time.Time, time.Time) {
	if horizon.IsZero() {
		return since, until
	}
	if !since.IsZero() && since.Before(horizon) {
		since = since.Truncate(time.Hour)
	}
	if !until.IsZero() && until.Before(horizon) {
		if h := until.Truncate(time.Hour); h.Before(until) {
			until = h.Add(time.Hour)
		}
	}
	return since, until
}

// segmentsSQL returns the statement [Store.Segments] runs for experiment and
// q, with its arguments. Benchmarks run it directly, as the reference.
func segmentsSQL(experiment string, q SegmentQuery) (string, []any) {
	return segmentsStatement(experiment, q, true, time.Time{})
}

// segmentsStatement is segmentsSQL, reading whole hours from the hourly
// rollup only if hours is set (without, it is the statement Segments ran
// before the rollup, which benchmarks compare it with), with the minutes kept
// from horizon on (zero: all of them).
func segmentsStatement(experiment string, q SegmentQuery, hours bool, horizon time.Time) (string, []any) {
	p := params{experiment}
	from := countsFrom(&p, "$1", q.Since, q.Until, q.Operation, hours, horizon)
	return `
WITH agg AS (
	SELECT segment,
		` + sumCounters + `,
		max(last_seen) AS last_seen
	FROM ` + from + `
	GROUP BY segment
)
SELECT a.segment, coalesce(s.attrs, '{}'), ` + aggCounters + `, a.last_seen
FROM agg a LEFT JOIN segments s ON s.experiment = $1 AND s.segment = a.segment
ORDER BY a.segment`, p
}

// seriesOrigin is the origin of date_bin's buckets: Go's zero time, so a
// bucket of step d starts at t.Truncate(d) for every t in it, whatever d.
const seriesOrigin = `'0001-01-01 00:00:00+00'::timestamptz`

// checkStep returns an error unless step is a positive whole number of
// minutes, the resolution of the counts.
func checkStep(step time.Duration) error {
	if step <= 0 || step%time.Minute != 0 {
		return fmt.Errorf("%w: step %v is not a positive whole number of minutes", ErrInvalidQuery, step)
	}
	return nil
}

// Series returns experiment's counts per segment in buckets of step: each
// [SeriesPoint] sums the minutes whose start lies in [At, At+step) and in
// [q.Since, q.Until), of q.Operation only if it is set. Buckets start at
// multiples of step as [time.Time.Truncate] computes them (on the hour for a
// step of an hour, at midnight UTC for a day), so the first and last bucket
// may be cut by the window. Buckets without counts are left out; points are
// ordered by segment, then time. Summed over time, a segment's points equal
// its [Store.Segments] row for the same query.
//
// step must be a positive whole number of minutes, or Series returns an error
// wrapping [ErrInvalidQuery]. A step of whole hours reads the hourly rollup and
// costs about a sixtieth of a step of minutes. It returns an error wrapping
// [ErrNotFound] for an unknown experiment.
func (s *Store) Series(ctx context.Context, experiment string, q SegmentQuery, step time.Duration) ([]SeriesPoint, error) {
	if err := checkStep(step); err != nil {
		return nil, fmt.Errorf("store: series of %q: %w", experiment, err)
	}
	p := params{experiment, step}
	from := countsFrom(&p, "$1", q.Since, q.Until, q.Operation, step%time.Hour == 0, s.horizon(time.Now()))
	rows, err := s.pool.Query(ctx, `
SELECT segment, date_bin($2::interval, t, `+seriesOrigin+`) AS at, sum(pairs)::int8, sum(divergent)::int8
FROM `+from+`
GROUP BY segment, at
ORDER BY segment, at`, p...)
	if err != nil {
		return nil, fmt.Errorf("store: series of %q: %w", experiment, err)
	}
	out := []SeriesPoint{}
	var pt SeriesPoint
	_, err = pgx.ForEachRow(rows, []any{&pt.Segment, &pt.At, &pt.Pairs, &pt.Divergent}, func() error {
		pt.At = pt.At.UTC()
		out = append(out, pt)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: series of %q: %w", experiment, err)
	}
	if len(out) == 0 {
		if err := s.experimentExists(ctx, experiment); err != nil {
			return nil, fmt.Errorf("store: series of %q: %w", experiment, err)
		}
	}
	return out, nil
}

// Overview returns, per experiment, its total counts (all segments and
// operations) in buckets of step over the minutes from since on (all of them
// when since is zero), for the overview's sparklines. Points have an empty
// Segment, are ordered by time and bucketed as [Store.Series] buckets them.
// Experiments without counts since then are absent from the map.
//
// step must be a positive whole number of minutes, or Overview returns an
// error wrapping [ErrInvalidQuery]; a step of whole hours reads the hourly
// rollup.
func (s *Store) Overview(ctx context.Context, since time.Time, step time.Duration) (map[string][]SeriesPoint, error) {
	return s.OverviewOf(ctx, nil, since, step)
}

// OverviewOf is [Store.Overview] for the named experiments only (all of
// them when names is nil), so that a page of the overview costs the same
// however many experiments there are.
func (s *Store) OverviewOf(ctx context.Context, names []string, since time.Time, step time.Duration) (map[string][]SeriesPoint, error) {
	if err := checkStep(step); err != nil {
		return nil, fmt.Errorf("store: overview: %w", err)
	}
	p := params{step}
	var conds []string
	if !since.IsZero() {
		// An experiment's counts are no newer than its last pair.
		conds = append(conds, "e.last_seen >= "+p.add(since))
	}
	if names != nil {
		conds = append(conds, "e.name = ANY("+p.add(names)+"::text[])")
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	from := countsFrom(&p, "e.name", since, time.Time{}, "", step%time.Hour == 0, s.horizon(time.Now()))
	rows, err := s.pool.Query(ctx, `
SELECT e.name, b.at, b.pairs, b.divergent
FROM experiments e CROSS JOIN LATERAL (
	SELECT date_bin($1::interval, t, `+seriesOrigin+`) AS at, sum(pairs)::int8 AS pairs, sum(divergent)::int8 AS divergent
	FROM `+from+`
	GROUP BY at
) b
`+where+`
ORDER BY e.name, b.at`, p...)
	if err != nil {
		return nil, fmt.Errorf("store: overview: %w", err)
	}
	out := map[string][]SeriesPoint{}
	var name string
	var pt SeriesPoint
	_, err = pgx.ForEachRow(rows, []any{&name, &pt.At, &pt.Pairs, &pt.Divergent}, func() error {
		pt.At = pt.At.UTC()
		out[name] = append(out[name], pt)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: overview: %w", err)
	}
	return out, nil
}

// Minutes returns experiment's counters per segment and minute over q (the
// minutes whose start lies in [q.Since, q.Until), of q.Operation only if it
// is set), ordered by segment, then minute; minutes without counts are left
// out. It is the series the gate's change detector reads
// ([report.DetectBreach]): recomputed from the stored minutes at every look,
// it needs no state of its own. It returns an error wrapping [ErrNotFound]
// for an unknown experiment.
func (s *Store) Minutes(ctx context.Context, experiment string, q SegmentQuery) ([]MinuteCount, error) {
	// Only the kept minutes: a series of minutes has no place for an hour.
	since := q.Since
	if h := s.horizon(time.Now()); since.Before(h) {
		since = h
	}
	p := params{experiment}
	from := countsFrom(&p, "$1", since, q.Until, q.Operation, false, time.Time{})
	rows, err := s.pool.Query(ctx, `
SELECT segment, t, `+sumCounters+`
FROM `+from+`
GROUP BY segment, t
ORDER BY segment, t`, p...)
	if err != nil {
		return nil, fmt.Errorf("store: minutes of %q: %w", experiment, err)
	}
	out := []MinuteCount{}
	var m MinuteCount
	dest := []any{&m.Segment, &m.Minute}
	for _, f := range m.Counters.Fields() {
		dest = append(dest, f)
	}
	_, err = pgx.ForEachRow(rows, dest, func() error {
		m.Minute = m.Minute.UTC()
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: minutes of %q: %w", experiment, err)
	}
	if len(out) == 0 {
		if err := s.experimentExists(ctx, experiment); err != nil {
			return nil, fmt.Errorf("store: minutes of %q: %w", experiment, err)
		}
	}
	return out, nil
}
