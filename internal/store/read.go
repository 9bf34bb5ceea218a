package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultLimit is how many samples or dead letters a query returns when its
// limit is 0.
const DefaultLimit = 50

// Experiments returns every experiment, ordered by name, with its all-time
// totals.
func (s *Store) Experiments(ctx context.Context) ([]Experiment, error) {
	rows, err := s.pool.Query(ctx, `
SELECT name, pairs, divergent, last_stage, first_seen, last_seen FROM experiments ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: experiments: %w", err)
	}
	var e Experiment
	out := []Experiment{}
	_, err = pgx.ForEachRow(rows, []any{&e.Name, &e.Pairs, &e.Divergent, &e.Stage, &e.FirstSeen, &e.LastSeen}, func() error {
		e.FirstSeen, e.LastSeen = e.FirstSeen.UTC(), e.LastSeen.UTC()
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: experiments: %w", err)
	}
	return out, nil
}

// ExperimentQuery selects one page of experiments for the overview.
type ExperimentQuery struct {
	// Search keeps experiments whose name contains it, ignoring case.
	Search string
	// Sort is "name", "pairs", "rate" (divergent ÷ pairs) or "last" (last
	// pair); ties go by name. Desc reverses the order.
	Sort string
	Desc bool
	// Offset and Limit choose the page; Limit 0 means 50.
	Offset, Limit int
}

// ExperimentPage returns a page of the experiments, and experiments
// planned in a rollout before any pair (with zero counts and times), as q
// selects them, with how many matched the search and how many there are.
// It reads and sorts in the database, so a page costs about the same
// however many experiments there are.
func (s *Store) ExperimentPage(ctx context.Context, q ExperimentQuery) (page []Experiment, matched, total int, err error) {
	order, ok := map[string]string{
		"name": "name", "pairs": "pairs", "last": "last_seen",
		"rate": "CASE WHEN pairs > 0 THEN divergent::float8 / pairs ELSE 0 END",
	}[q.Sort]
	if !ok {
		return nil, 0, 0, fmt.Errorf("store: experiment page: sort %q: %w", q.Sort, ErrInvalidQuery)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	const all = `
	SELECT name, pairs, divergent, last_stage, first_seen, last_seen FROM experiments
	UNION ALL
	SELECT r.experiment, 0, 0, '', NULL, NULL FROM rollouts r
	WHERE NOT EXISTS (SELECT 1 FROM experiments e WHERE e.name = r.experiment)`
	where, args := "", []any{q.Limit, max(q.Offset, 0)}
	filter := "true"
	if q.Search != "" {
		where, args, filter = "WHERE strpos(lower(name), lower($3)) > 0", append(args, q.Search), "strpos(lower(name), lower($1)) > 0"
	}
	// The page alone. By name (the overview's default) the experiments'
	// primary key gives them in order, so only the rows up to the page's
	// end are read, however many experiments there are.
	from := all
	if q.Sort == "name" {
		from = `
	(SELECT name, pairs, divergent, last_stage, first_seen, last_seen FROM experiments ` + where + `
		ORDER BY name ` + dir + ` LIMIT $1::int8 + $2::int8)
	UNION ALL
	SELECT r.experiment, 0, 0, '', NULL, NULL FROM rollouts r
	WHERE NOT EXISTS (SELECT 1 FROM experiments e WHERE e.name = r.experiment)`
	}
	rows, err := s.pool.Query(ctx, `
SELECT name, pairs, divergent, last_stage, first_seen, last_seen
FROM (`+from+`) x `+where+`
ORDER BY `+order+` `+dir+` NULLS LAST, name `+dir+` LIMIT $1::int8 OFFSET $2::int8`, args...)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("store: experiment page: %w", err)
	}
	var e Experiment
	var first, last *time.Time
	page = []Experiment{}
	_, err = pgx.ForEachRow(rows, []any{&e.Name, &e.Pairs, &e.Divergent, &e.Stage, &first, &last}, func() error {
		e.FirstSeen, e.LastSeen = time.Time{}, time.Time{} // none for a rollout planned before any pair
		if first != nil && last != nil {
			e.FirstSeen, e.LastSeen = first.UTC(), last.UTC()
		}
		page = append(page, e)
		return nil
	})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("store: experiment page: %w", err)
	}
	var m, t int64
	countArgs := []any{}
	if q.Search != "" {
		countArgs = append(countArgs, q.Search)
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE `+filter+`), count(*) FROM (`+all+`) x`, countArgs...).Scan(&m, &t); err != nil {
		return nil, 0, 0, fmt.Errorf("store: experiment page: %w", err)
	}
	return page, int(m), int(t), nil
}

// Operations returns the operations experiment has counts for, sorted. It
// returns an error wrapping [ErrNotFound] for an unknown experiment.
func (s *Store) Operations(ctx context.Context, experiment string) ([]string, error) {
	// A loose index scan over the primary key of the hourly rollup, which
	// holds every count whether or not its minutes are kept: one probe per
	// operation rather than a read of every row of the experiment.
	rows, err := s.pool.Query(ctx, `
WITH RECURSIVE ops(op) AS (
	SELECT min(operation) FROM count_hours WHERE experiment = $1
	UNION ALL
	SELECT (SELECT min(operation) FROM count_hours WHERE experiment = $1 AND operation > ops.op)
	FROM ops WHERE ops.op IS NOT NULL
)
SELECT op FROM ops WHERE op IS NOT NULL`, experiment)
	if err != nil {
		return nil, fmt.Errorf("store: operations of %q: %w", experiment, err)
	}
	ops, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: operations of %q: %w", experiment, err)
	}
	if len(ops) == 0 {
		if err := s.experimentExists(ctx, experiment); err != nil {
			return nil, fmt.Errorf("store: operations of %q: %w", experiment, err)
		}
	}
	slices.Sort(ops)
	return ops, nil
}

// Segments returns experiment's counts per segment, summed over the minutes
// whose start lies in [q.Since, q.Until) and, if q.Operation is set, over that
// operation only; rows are ordered by segment. Segments without counts in the
// window are left out; a segment with only A/A pairs in it is listed with
// Pairs 0. It returns an error wrapping [ErrNotFound] for an
// unknown experiment.
//
// The whole days of the window are read from the daily rollup, the whole
// hours left at its ends from the hourly one and only its ragged ends minute
// by minute, so 30 days cost about 80 rows per segment and operation rather
// than 43,200; the sums are the same. A window to now reads only its last
// two hours from PostgreSQL when the store has read its older hours before
// (the sealed-hour cache, see the package doc).
func (s *Store) Segments(ctx context.Context, experiment string, q SegmentQuery) ([]SegmentCount, error) {
	if out, ok, err := s.segmentsSealed(ctx, experiment, q); ok || (err != nil && !errors.Is(err, errNotSealed)) {
		return out, err
	}
	return s.segmentsRead(ctx, experiment, q)
}

// segmentsRead is [Store.Segments] without the sealed-hour cache.
func (s *Store) segmentsRead(ctx context.Context, experiment string, q SegmentQuery) ([]SegmentCount, error) {
	// One round trip: the statement is planned for the experiment's
	// rolled_to as last seen, which it checks itself (readRolled).
	horizon := s.horizon(time.Now())
	var out []SegmentCount
	err := s.readRolled(ctx, experiment, func(rolled time.Time) (int, error) {
		query, args := segmentsStatement(experiment, q, true, horizon, rolled, true)
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return 0, err
		}
		out = []SegmentCount{}
		var c SegmentCount
		var attrs []byte
		scan := []any{&c.Segment, &attrs}
		for _, f := range c.Fields() {
			scan = append(scan, f)
		}
		_, err = pgx.ForEachRow(rows, append(scan, &c.LastSeen), func() error {
			var err error
			if c.Attrs, err = s.attrs.decode(attrs); err != nil {
				return fmt.Errorf("segment %q: attrs: %w", c.Segment, err)
			}
			c.LastSeen = c.LastSeen.UTC()
			out = append(out, c)
			return nil
		})
		return len(out), err
	})
	if err != nil {
		return nil, fmt.Errorf("store: segments of %q: %w", experiment, err)
	}
	return out, nil
}

// SegmentsOf is [Store.Segments] for several experiments in one round
// trip: each name's segments over q, absent for a name without counts.
func (s *Store) SegmentsOf(ctx context.Context, names []string, q SegmentQuery) (map[string][]SegmentCount, error) {
	out := make(map[string][]SegmentCount, len(names))
	rolled, err := s.rolledToOf(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("store: segments: %w", err)
	}
	b := &pgx.Batch{}
	for _, name := range names {
		query, args := segmentsStatement(name, q, true, s.horizon(time.Now()), rolled[name], false)
		b.Queue(query, args...).Query(func(rows pgx.Rows) error {
			var c SegmentCount
			var attrs []byte
			scan := []any{&c.Segment, &attrs}
			for _, f := range c.Fields() {
				scan = append(scan, f)
			}
			_, err := pgx.ForEachRow(rows, append(scan, &c.LastSeen), func() error {
				var err error
				if c.Attrs, err = s.attrs.decode(attrs); err != nil {
					return fmt.Errorf("segment %q: attrs: %w", c.Segment, err)
				}
				c.LastSeen = c.LastSeen.UTC()
				out[name] = append(out[name], c)
				return nil
			})
			return err
		})
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("store: segments: %w", err)
	}
	return out, nil
}

const sampleColumns = `id, pair_id, experiment, operation, segment, kind, stage, user_key, at, control, candidate, paths,
	verdict, signature, rules_version, diffs`

// Samples returns experiment's samples, newest first, optionally for one
// segment and one operation: at most q.Limit, or [DefaultLimit] when it is 0.
// It returns an error wrapping [ErrNotFound] for an unknown experiment.
func (s *Store) Samples(ctx context.Context, experiment string, q SampleQuery) ([]Sample, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	args := []any{experiment, limit}
	var where strings.Builder
	where.WriteString("experiment = $1")
	if q.Operation != "" {
		args = append(args, q.Operation)
		where.WriteString(" AND operation = $" + strconv.Itoa(len(args)))
	}
	if q.Segment != "" {
		args = append(args, q.Segment)
		where.WriteString(" AND segment = $" + strconv.Itoa(len(args)))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+sampleColumns+` FROM samples WHERE `+where.String()+`
ORDER BY at DESC, id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: samples of %q: %w", experiment, err)
	}
	out, err := pgx.CollectRows(rows, scanSample)
	if err != nil {
		return nil, fmt.Errorf("store: samples of %q: %w", experiment, err)
	}
	if len(out) == 0 {
		if err := s.experimentExists(ctx, experiment); err != nil {
			return nil, fmt.Errorf("store: samples of %q: %w", experiment, err)
		}
	}
	return out, nil
}

// Sample returns the sample with the given id, or an error wrapping
// [ErrNotFound].
func (s *Store) Sample(ctx context.Context, id int64) (Sample, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sampleColumns+` FROM samples WHERE id = $1`, id)
	if err != nil {
		return Sample{}, fmt.Errorf("store: sample %d: %w", id, err)
	}
	sm, err := pgx.CollectExactlyOneRow(rows, scanSample)
	if errors.Is(err, pgx.ErrNoRows) {
		return Sample{}, fmt.Errorf("store: sample %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Sample{}, fmt.Errorf("store: sample %d: %w", id, err)
	}
	return sm, nil
}

func scanSample(row pgx.CollectableRow) (Sample, error) {
	var sm Sample
	var control, candidate, diffs []byte
	err := row.Scan(&sm.ID, &sm.PairID, &sm.Experiment, &sm.Operation, &sm.Segment, &sm.Kind, &sm.Stage,
		&sm.UserKey, &sm.Time, &control, &candidate, &sm.Paths,
		&sm.Verdict, &sm.Signature, &sm.RulesVersion, &diffs)
	sm.Time = sm.Time.UTC()
	if control != nil {
		sm.Control = control
	}
	if candidate != nil {
		sm.Candidate = candidate
	}
	if diffs != nil {
		sm.Diffs = diffs
	}
	return sm, err
}

// DefaultSignatureLimit is how many signatures [Store.Signatures] returns when
// the query's limit is 0.
const DefaultSignatureLimit = 20

// Signatures returns experiment's most frequent mismatch signatures in the
// minutes whose start lies in [q.Since, q.Until), optionally for one
// operation and one segment: at most q.Limit, or [DefaultSignatureLimit] when
// it is 0, by count descending, then by signature. Count, Segments (how many
// distinct segments it was seen in), FirstSeen and LastSeen describe the
// selection, not all time; Patterns is the signature's pattern set as JSON
// (a []diff.PatternKind, "[]" if never received). It returns an error
// wrapping [ErrNotFound] for an unknown experiment. A window to now is
// answered through the sealed-hour cache, as [Store.Segments] is.
func (s *Store) Signatures(ctx context.Context, experiment string, q SignatureQuery) ([]SignatureSummary, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultSignatureLimit
	}
	if out, ok, err := s.signaturesSealed(ctx, experiment, q, limit); ok || (err != nil && !errors.Is(err, errNotSealed)) {
		return out, err
	}
	return s.signaturesRead(ctx, experiment, q, limit)
}

// signaturesRead is [Store.Signatures] without the sealed-hour cache.
func (s *Store) signaturesRead(ctx context.Context, experiment string, q SignatureQuery, limit int) ([]SignatureSummary, error) {
	horizon := s.horizon(time.Now())
	var out []SignatureSummary
	err := s.readRolled(ctx, experiment, func(rolled time.Time) (int, error) {
		args := params{experiment, limit}
		cond := rolledGuard(&args, rolled)
		if q.Operation != "" {
			cond += " AND operation = " + args.add(q.Operation)
		}
		if q.Segment != "" {
			cond += " AND segment = " + args.add(q.Segment)
		}
		from := signaturesRollup.from(&args, "$1", cond, plan(q.Since, q.Until, day, horizon, lazyLimits(rolled)))
		rows, err := s.pool.Query(ctx, `
WITH per AS (
	SELECT signature, segment, sum(count) AS count, min(first_seen) AS first_seen, max(last_seen) AS last_seen
	FROM `+from+`
	GROUP BY signature, segment
), top AS (
	SELECT signature, sum(count)::int8 AS count, count(*)::int8 AS segments,
		min(first_seen) AS first_seen, max(last_seen) AS last_seen
	FROM per
	GROUP BY signature
	ORDER BY count DESC, signature
	LIMIT $2
)
SELECT t.signature, coalesce(g.patterns, '[]'), t.count, t.segments, t.first_seen, t.last_seen
FROM top t LEFT JOIN signatures g ON g.experiment = $1 AND g.signature = t.signature
ORDER BY t.count DESC, t.signature`, args...)
		if err != nil {
			return 0, err
		}
		out = []SignatureSummary{}
		var g SignatureSummary
		var patterns []byte
		_, err = pgx.ForEachRow(rows, []any{&g.Signature, &patterns, &g.Count, &g.Segments, &g.FirstSeen, &g.LastSeen}, func() error {
			g.Patterns = patterns
			g.FirstSeen, g.LastSeen = g.FirstSeen.UTC(), g.LastSeen.UTC()
			out = append(out, g)
			patterns = nil // a fresh slice for the next row
			return nil
		})
		return len(out), err
	})
	if err != nil {
		return nil, fmt.Errorf("store: signatures of %q: %w", experiment, err)
	}
	return out, nil
}

// PatternStats returns what noise detection needs about experiment's minutes
// from since on (all of them when since is zero): per operation, the pairs
// judged (A/A pairs not included), and for each (operation, pattern, kind)
// the number of mismatching pairs whose signature's pattern set contains it.
// A pair counts once for each distinct (pattern, kind) of its signature, so
// one pair may count towards several stats. Operations without pairs in the
// window are absent from pairs; stats are ordered by operation, pattern and
// kind. Mismatches whose signature's pattern set was never received count
// towards no stat. A since before the kept minutes ([Options.MinuteRetention])
// is widened to the start of its hour. It returns an error wrapping
// [ErrNotFound] for an unknown experiment.
func (s *Store) PatternStats(ctx context.Context, experiment string, since time.Time) (pairs map[string]int64, stats []PatternStat, err error) {
	// A since before the kept minutes is widened to its hour, for the
	// signature counts as for the pairs, which then come from the rollup.
	horizon := s.horizon(time.Now())
	since, _ = widen(since, time.Time{}, horizon)
	err = s.readRolled(ctx, experiment, func(rolled time.Time) (int, error) {
		args := params{experiment}
		guard := rolledGuard(&args, rolled)
		sigsFrom := signaturesRollup.from(&args, "$1", guard, plan(since, time.Time{}, day, horizon, lazyLimits(rolled)))
		pairsFrom := countsFrom(&args, "$1", since, time.Time{}, "", day, horizon, rolled, guard)
		// One statement, so the pairs and the stats come from one snapshot
		// even while verifiers write. Pattern rows are summed per
		// (operation, signature) first, so each signature's pattern set is
		// expanded once per operation rather than once per count row;
		// DISTINCT guards against a pattern set that repeats an element.
		// Rows with a NULL pattern are the per-operation pair totals.
		rows, err := s.pool.Query(ctx, `
WITH c AS (
	SELECT operation, signature, sum(count) AS count
	FROM `+sigsFrom+`
	GROUP BY operation, signature
)
SELECT operation, NULL::text, NULL::text, sum(pairs)::int8
FROM `+pairsFrom+`
GROUP BY operation HAVING sum(pairs) > 0
UNION ALL
SELECT c.operation, p.pattern, p.kind, sum(c.count)::int8
FROM c
JOIN signatures g ON g.experiment = $1 AND g.signature = c.signature
CROSS JOIN LATERAL (
	SELECT DISTINCT coalesce(e->>'pattern', '') AS pattern, coalesce(e->>'kind', '') AS kind
	FROM jsonb_array_elements(g.patterns) AS e
) p
GROUP BY c.operation, p.pattern, p.kind`, args...)
		if err != nil {
			return 0, err
		}
		pairs, stats = map[string]int64{}, []PatternStat{}
		var op string
		var pattern, kind *string
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&op, &pattern, &kind, &n}, func() error {
			if pattern == nil {
				pairs[op] = n
			} else {
				stats = append(stats, PatternStat{Operation: op, Pattern: *pattern, Kind: *kind, Count: n})
			}
			return nil
		})
		return len(pairs) + len(stats), err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: pattern stats of %q: %w", experiment, err)
	}
	slices.SortFunc(stats, func(a, b PatternStat) int {
		return cmp.Or(cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Pattern, b.Pattern), cmp.Compare(a.Kind, b.Kind))
	})
	return pairs, stats, nil
}

// DeadLetters returns the newest dead letters, newest first: at most limit,
// or [DefaultLimit] when limit is 0 or less.
func (s *Store) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	rows, err := s.pool.Query(ctx, `
SELECT id, source, subject, reason, data, size, at FROM dead_letters ORDER BY at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	out := []DeadLetter{}
	var d DeadLetter
	var size int64
	_, err = pgx.ForEachRow(rows, []any{&d.ID, &d.Source, &d.Subject, &d.Reason, &d.Data, &size, &d.At}, func() error {
		d.Size, d.At = int(size), d.At.UTC()
		out = append(out, d)
		d.Data = nil // a fresh slice for the next row
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	return out, nil
}

// DeadLetterCount returns how many dead letters are stored.
func (s *Store) DeadLetterCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: dead letter count: %w", err)
	}
	return n, nil
}

// experimentExists returns nil for a known experiment and ErrNotFound for an
// unknown one.
func (s *Store) experimentExists(ctx context.Context, experiment string) error {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM experiments WHERE name = $1)`, experiment).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}

// Versions returns, for each of names that has been written, its version: a
// number that changes (and never returns to an earlier value, even for an
// experiment deleted and written again) whenever [Store.Apply] writes
// anything of the experiment, in the transaction that writes it. Names never
// written are absent. A cache of what is computed from an experiment's
// counts, keyed on its version, is never stale.
func (s *Store) Versions(ctx context.Context, names []string) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, version FROM experiments WHERE name = ANY($1::text[])`, names)
	if err != nil {
		return nil, fmt.Errorf("store: versions: %w", err)
	}
	out := make(map[string]int64, len(names))
	var name string
	var v int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &v}, func() error {
		out[name] = v
		return nil
	}); err != nil {
		return nil, fmt.Errorf("store: versions: %w", err)
	}
	return out, nil
}
