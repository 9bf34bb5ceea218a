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

// counterColumns are the columns of pair_counts, count_hours and count_days
// that hold a [report.Counters], in [report.Counters.Fields] order. Its length is
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

// day is the unit of the daily rollups.
const day = 24 * time.Hour

// rollup names a family of tables that count the same thing at three
// resolutions: per minute (time column minute), per hour (hour) and per day
// (day), each row of a coarser table the exact sum of the finer rows it
// covers, written by Apply in the same transaction. cols are the columns
// every part of a read yields, besides t (the start of its minute, hour or
// day).
type rollup struct {
	minutes, hours, days string
	cols                 string
}

var (
	// countsRollup is the pair counts: pair_counts, count_hours, count_days.
	countsRollup = rollup{"pair_counts", "count_hours", "count_days", "operation, segment, " + countColumns}
	// overviewRollup is an experiment's pairs, all segments together.
	overviewRollup = rollup{"pair_counts", "experiment_hours", "", "pairs, divergent"}
	// variantsRollup is the flag-variant counts.
	variantsRollup = rollup{"variant_counts", "variant_hours", "variant_days", "operation, variant, reason, pairs, divergent"}
	// signaturesRollup is the mismatch signature counts.
	signaturesRollup = rollup{"signature_counts", "signature_hours", "signature_days",
		"operation, segment, signature, count, first_seen, last_seen"}
	// latencyRollup is the latency histograms, kept per hour and per day only.
	latencyRollup = rollup{"", "latency_hours", "latency_days", "operation, segment, control, candidate"}
)

// part is a range [from, to) (zero: unbounded) read from one resolution of a
// rollup: time.Minute, time.Hour or day.
type part struct {
	unit     time.Duration
	from, to time.Time
}

// always is the limit of a rollup that holds everything: Apply writes it.
var always = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// limits says up to when each rollup of a family holds every count: hours
// and days before their limit only (zero: none at all, [always]: all of
// them). Apply writes count_hours, so counts' hours are always complete;
// the compactor writes the days, and the variant and signature hours, up to
// the experiment's rolled_to ([Store.Compact]).
type limits struct{ hours, days time.Time }

// before returns the limit of unit's rollup.
func (l limits) before(unit time.Duration) time.Time {
	if unit == day {
		return l.days
	}
	return l.hours
}

// countLimits are the limits of the counts of an experiment rolled to r.
func countLimits(r time.Time) limits { return limits{hours: always, days: r} }

// lazyLimits are the limits of the variant and signature counts of an
// experiment rolled to r, whose hours the compactor writes too.
func lazyLimits(r time.Time) limits { return limits{hours: r, days: r} }

// lazyHorizon is where the kept minutes of the variant and signature counts
// start: [Store.PruneMinutes] deletes them only before both the horizon and
// the experiment's rolled_to r, where their hours exist. Reads still widen
// window edges at the horizon, as for the counts, so that an answer does not
// change when rolled_to moves: the whole hours they read as minutes between
// rolled_to and the horizon are kept.
func lazyHorizon(horizon, r time.Time) time.Time {
	if r.Before(horizon) {
		return r // zero (never compacted): nothing deleted
	}
	return horizon
}

// plan splits the window [since, until) (zero: unbounded) into the parts to
// read: the whole days inside it from the days (if coarsest allows days),
// the whole hours left at its ends from the hours (if coarsest allows
// hours), and only the minutes left at its ragged ends from the minutes,
// each rollup only before its limit in lim. The parts never overlap, so
// every minute is counted exactly once, and a caller that groups by t must
// only use buckets made of whole units of coarsest.
//
// horizon (zero: none) is where the kept minutes start (see
// [Options.MinuteRetention]): before it the minutes may have been deleted,
// so whatever lies before it is read from the hours whatever coarsest says,
// and a window edge before it is widened to its whole hour ([widen]). A
// window's answer therefore does not change when its minutes are deleted.
// The hours must hold everything before the horizon.
func plan(since, until time.Time, coarsest time.Duration, horizon time.Time, lim limits) []part {
	since, until = widen(since, until, horizon)
	var parts []part
	if coarsest < time.Hour && !horizon.IsZero() && (since.IsZero() || since.Before(horizon)) {
		end := horizon
		if !until.IsZero() && until.Before(end) {
			end = until
		}
		parts = cover(parts, since, end, time.Hour, lim)
		if !until.IsZero() && !horizon.Before(until) {
			return parts
		}
		since = horizon
	}
	return cover(parts, since, until, coarsest, lim)
}

// cover appends the parts that read [from, to) in units of at most unit,
// each rollup only before its limit.
func cover(parts []part, from, to time.Time, unit time.Duration, lim limits) []part {
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return parts
	}
	if unit < time.Hour {
		return append(parts, part{time.Minute, from, to})
	}
	finer := time.Minute
	if unit == day {
		finer = time.Hour
	}
	l := lim.before(unit)
	if l.IsZero() {
		return cover(parts, from, to, finer, lim)
	}
	if !l.Equal(always) && (to.IsZero() || to.After(l)) {
		// What lies from the limit on is read finer.
		if from.IsZero() || from.Before(l) {
			parts = cover(parts, from, l, unit, lim)
		}
		if !from.IsZero() && from.After(l) {
			l = from
		}
		return cover(parts, l, to, finer, lim)
	}
	// [s, e): the whole units inside [from, to).
	s, e := from, to
	if !s.IsZero() {
		if s = s.Truncate(unit); s.Before(from) {
			s = s.Add(unit)
		}
	}
	if !e.IsZero() {
		e = e.Truncate(unit)
	}
	if !s.IsZero() && !e.IsZero() && !s.Before(e) {
		return cover(parts, from, to, finer, lim)
	}
	if !from.IsZero() {
		parts = cover(parts, from, s, finer, lim)
	}
	parts = append(parts, part{unit, s, e})
	if !to.IsZero() {
		parts = cover(parts, e, to, finer, lim)
	}
	return parts
}

// coarsestFor returns the coarsest unit whose buckets fit in buckets of
// step: a day, an hour or a minute.
func coarsestFor(step time.Duration) time.Duration {
	switch {
	case step%day == 0:
		return day
	case step%time.Hour == 0:
		return time.Hour
	}
	return time.Minute
}

// from returns a FROM item, aliased c, holding r's rows of the experiment
// that the SQL expression exp names (a placeholder, or a column of an outer
// query) in parts, each also meeting cond (" AND …", or empty). Its columns
// are r.cols and t.
//
// Each part is a plain range condition, never "$n IS NULL OR …", so each
// shape gets a plan that uses the (experiment, time) indexes.
func (r rollup) from(p *params, exp, cond string, parts []part) string {
	qs := make([]string, 0, len(parts))
	for _, pt := range parts {
		table, col := r.minutes, "minute"
		switch pt.unit {
		case time.Hour:
			table, col = r.hours, "hour"
		case day:
			table, col = r.days, "day"
		}
		var w strings.Builder
		w.WriteString("SELECT " + r.cols + ", " + col + " AS t FROM " + table + " WHERE experiment = " + exp + cond)
		if !pt.from.IsZero() {
			w.WriteString(" AND " + col + " >= " + p.add(pt.from))
		}
		if !pt.to.IsZero() {
			w.WriteString(" AND " + col + " < " + p.add(pt.to))
		}
		qs = append(qs, w.String())
	}
	if len(qs) == 0 { // an empty window
		qs = append(qs, "SELECT "+r.cols+", hour AS t FROM "+r.hours+" WHERE experiment = "+exp+cond+" AND false")
	}
	return "(" + strings.Join(qs, "\nUNION ALL\n") + ") c"
}

// countsFrom returns a FROM item, aliased c, holding the count rows of the
// experiment that the SQL expression exp names for the minutes whose start
// lies in [since, until) (zero: unbounded), of operation op only if op is
// set, read as [plan] splits the window with coarsest and horizon, days only
// before rolledTo (the experiment's rolled_to), each part also meeting cond
// (" AND …", or empty). Its columns are operation, segment, t (the start of
// the minute, hour or day the row counts) and countColumns.
func countsFrom(p *params, exp string, since, until time.Time, op string, coarsest time.Duration, horizon, rolledTo time.Time, cond string) string {
	if op != "" {
		cond += " AND operation = " + p.add(op)
	}
	return countsRollup.from(p, exp, cond, plan(since, until, coarsest, horizon, countLimits(rolledTo)))
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
// q, with its arguments, for a store that keeps every minute and an
// experiment never compacted (rolled_to NULL, which the statement checks).
// Benchmarks run it directly, as the reference.
func segmentsSQL(experiment string, q SegmentQuery) (string, []any) {
	return segmentsStatement(experiment, q, true, time.Time{}, time.Time{}, true)
}

// segmentsStatement is segmentsSQL, reading whole days and hours from the
// rollups only if rollups is set (without, it is the statement Segments ran
// before the rollups, which benchmarks compare it with), with the minutes
// kept from horizon on (zero: all of them) and the days before rolledTo.
// With guard, it returns no rows unless the experiment's rolled_to is
// rolledTo ([rolledGuard]).
func segmentsStatement(experiment string, q SegmentQuery, rollups bool, horizon, rolledTo time.Time, guard bool) (string, []any) {
	p := params{experiment}
	coarsest := time.Minute
	if rollups {
		coarsest = day
	}
	cond := ""
	if guard {
		cond = rolledGuard(&p, rolledTo)
	}
	from := countsFrom(&p, "$1", q.Since, q.Until, q.Operation, coarsest, horizon, rolledTo, cond)
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
// wrapping [ErrInvalidQuery]. A step of whole hours reads the hourly rollup
// (about a sixtieth of the rows of a step of minutes), a step of whole days
// the daily one as well. It returns an error wrapping
// [ErrNotFound] for an unknown experiment.
func (s *Store) Series(ctx context.Context, experiment string, q SegmentQuery, step time.Duration) ([]SeriesPoint, error) {
	if err := checkStep(step); err != nil {
		return nil, fmt.Errorf("store: series of %q: %w", experiment, err)
	}
	if out, ok, err := s.seriesSealed(ctx, experiment, q, step); ok || (err != nil && !errors.Is(err, errNotSealed)) {
		return out, err
	}
	return s.seriesRead(ctx, experiment, q, step)
}

// seriesRead is [Store.Series] without the sealed-hour cache.
func (s *Store) seriesRead(ctx context.Context, experiment string, q SegmentQuery, step time.Duration) ([]SeriesPoint, error) {
	horizon := s.horizon(time.Now())
	var out []SeriesPoint
	err := s.readRolled(ctx, experiment, func(rolled time.Time) (int, error) {
		p := params{experiment, step}
		from := countsFrom(&p, "$1", q.Since, q.Until, q.Operation, coarsestFor(step), horizon, rolled, rolledGuard(&p, rolled))
		rows, err := s.pool.Query(ctx, seriesSQL(from)+`
ORDER BY segment, at`, p...)
		if err != nil {
			return 0, err
		}
		out, err = collectSeries(rows)
		return len(out), err
	})
	if err != nil {
		return nil, fmt.Errorf("store: series of %q: %w", experiment, err)
	}
	return out, nil
}

// seriesSQL sums the count rows of from (see [countsFrom]) per segment and
// bucket of the step $2: columns segment, at, pairs and divergent.
func seriesSQL(from string) string {
	return `
SELECT segment, date_bin($2::interval, t, ` + seriesOrigin + `) AS at, sum(pairs)::int8 AS pairs, sum(divergent)::int8 AS divergent
FROM ` + from + `
GROUP BY segment, at`
}

// collectSeries reads the rows of seriesSQL.
func collectSeries(rows pgx.Rows) ([]SeriesPoint, error) {
	out := []SeriesPoint{}
	var pt SeriesPoint
	_, err := pgx.ForEachRow(rows, []any{&pt.Segment, &pt.At, &pt.Pairs, &pt.Divergent}, func() error {
		pt.At = pt.At.UTC()
		out = append(out, pt)
		return nil
	})
	return out, err
}

// Overview returns, per experiment, its total counts (all segments and
// operations) in buckets of step over the minutes from since on (all of them
// when since is zero), for the overview's sparklines. Points have an empty
// Segment, are ordered by time and bucketed as [Store.Series] buckets them.
// Experiments without counts since then are absent from the map.
//
// step must be a positive whole number of minutes, or Overview returns an
// error wrapping [ErrInvalidQuery]; a step of whole hours reads each
// experiment's hourly series (experiment_hours), one row an hour whatever
// its segments and operations.
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
	coarsest := min(coarsestFor(step), time.Hour) // one series per experiment, per hour
	from := overviewRollup.from(&p, "e.name", "", plan(since, time.Time{}, coarsest, s.horizon(time.Now()), limits{hours: always}))
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
	from := countsFrom(&p, "$1", since, q.Until, q.Operation, time.Minute, time.Time{}, time.Time{}, "")
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
