package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parityhq/parity/internal/testutil"
)

// The B10 day: 1,000,000 pairs of one experiment over the last 24 hours in
// 50 segments and one operation, accounted per minute: 72,000 rows of
// pair_counts, the hourly and daily rollups that Apply keeps beside them
// (and latency histograms of ~50 buckets a side per hour and per day), the
// 50 segments with their attributes.
const (
	b10Experiment = "b10"
	b10Segments   = 50
	b10Minutes    = 24 * 60
	b10Pairs      = 1_000_000
)

// seedB10 opens a store on a fresh database holding the B10 day, ending at
// the current minute, and returns it with the Since of a 24-hour window
// ending now.
func seedB10(b *testing.B) (*Store, time.Time) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	s, err := Open(ctx, testutil.FreshDatabase(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	now := time.Now().UTC().Truncate(time.Minute)
	first := now.Add(-(b10Minutes - 1) * time.Minute)
	// Filled directly: Apply is not what this measures. Pairs are 14 per
	// row but 13 in every ninth, which sums to exactly 1,000,000; the
	// rollups are computed as migration 010 fills them.
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO experiments (name, first_seen, last_seen, last_stage, pairs, divergent)
			VALUES ($1, $2::timestamptz, $2::timestamptz + interval '1439 minutes', 'shadow', 1000000, 0)`, []any{b10Experiment, first}},
		{`INSERT INTO segments (experiment, segment, attrs, first_seen)
			SELECT $1, 'country=C' || lpad(g::text, 2, '0'), jsonb_build_object('country', 'C' || lpad(g::text, 2, '0')), $2::timestamptz
			FROM generate_series(1, 50) g`, []any{b10Experiment, first}},
		{`INSERT INTO pair_counts (experiment, operation, segment, minute, pairs, divergent, control_errors, last_seen)
			SELECT $1, 'get', 'country=C' || lpad(g::text, 2, '0'), $2::timestamptz + m * interval '1 minute',
				CASE WHEN (m * 50 + g) % 9 = 0 THEN 13 ELSE 14 END, (m + g) % 3, (m + g) % 7 / 6,
				$2::timestamptz + m * interval '1 minute' + interval '59 seconds'
			FROM generate_series(0, 1439) m, generate_series(1, 50) g ORDER BY m, g`, []any{b10Experiment, first}},
		{`INSERT INTO count_hours (experiment, operation, segment, hour, pairs, divergent, control_errors,
				candidate_errors, skipped, timeouts, aa_pairs, aa_divergent, last_seen)
			SELECT experiment, operation, segment, date_trunc('hour', minute, 'UTC'),
				sum(pairs), sum(divergent), sum(control_errors), sum(candidate_errors), sum(skipped), sum(timeouts),
				sum(aa_pairs), sum(aa_divergent), max(last_seen)
			FROM pair_counts WHERE experiment = $1 GROUP BY 1, 2, 3, 4`, []any{b10Experiment}},
		{`INSERT INTO count_days (experiment, operation, segment, day, pairs, divergent, control_errors,
				candidate_errors, skipped, timeouts, aa_pairs, aa_divergent, last_seen)
			SELECT experiment, operation, segment, date_trunc('day', minute, 'UTC'),
				sum(pairs), sum(divergent), sum(control_errors), sum(candidate_errors), sum(skipped), sum(timeouts),
				sum(aa_pairs), sum(aa_divergent), max(last_seen)
			FROM pair_counts WHERE experiment = $1 GROUP BY 1, 2, 3, 4`, []any{b10Experiment}},
		{`INSERT INTO experiment_hours (experiment, hour, pairs, divergent)
			SELECT experiment, date_trunc('hour', minute, 'UTC'), sum(pairs), sum(divergent)
			FROM pair_counts WHERE experiment = $1 GROUP BY 1, 2`, []any{b10Experiment}},
		{`INSERT INTO latency_hours (experiment, operation, segment, hour, control, candidate)
			SELECT DISTINCT experiment, operation, segment, date_trunc('hour', minute, 'UTC'),
				'{96}'::int8[] || array_fill(900::int8, ARRAY[48]), '{97}'::int8[] || array_fill(800::int8, ARRAY[52])
			FROM pair_counts WHERE experiment = $1`, []any{b10Experiment}},
		{`INSERT INTO latency_days (experiment, operation, segment, day, control, candidate)
			SELECT experiment, operation, segment, date_trunc('day', hour, 'UTC'),
				'{96}'::int8[] || array_fill(900 * count(*), ARRAY[48]), '{97}'::int8[] || array_fill(800 * count(*), ARRAY[52])
			FROM latency_hours WHERE experiment = $1 GROUP BY 1, 2, 3, 4`, []any{b10Experiment}},
	} {
		if _, err := s.pool.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			b.Fatalf("%s: %v", stmt.sql, err)
		}
	}
	if _, err := s.pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	var pairs int64
	if err := s.pool.QueryRow(ctx, `SELECT sum(pairs) FROM pair_counts`).Scan(&pairs); err != nil || pairs != b10Pairs {
		b.Fatalf("seeded %d pairs, %v; want %d", pairs, err, b10Pairs)
	}
	b.Logf("seeded %d pairs in %d rows of pair_counts in %v", pairs, b10Segments*b10Minutes, time.Since(start).Round(time.Millisecond))
	return s, time.Now().Add(-24 * time.Hour)
}

// timeCalls runs call once per iteration and reports the p50 and p99 of its
// duration.
func timeCalls(b *testing.B, call func(ctx context.Context) error) {
	b.Helper()
	ctx := context.Background()
	if err := call(ctx); err != nil { // warm the connection and plan cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	durations := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t := time.Now()
		if err := call(ctx); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(t))
	}
	slices.Sort(durations)
	at := func(q float64) float64 { return float64(durations[int(q*float64(len(durations)-1)+0.5)]) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// BenchmarkB10 measures the dashboard's segment-rate read over the B10 day
// (design target: parity's p99 ≤ 1.5× reference's). reference runs the
// statement Segments runs for a 24-hour window (segmentsSQL, the same code)
// directly with pgx, scanning each column as pgx returns it; parity calls
// Segments. The collector's HTTP endpoint adds its own overhead on top.
func BenchmarkB10(b *testing.B) {
	s, since := seedB10(b)
	q := SegmentQuery{Since: since}
	b.Run("reference", func(b *testing.B) {
		query, args := segmentsSQL(b10Experiment, q)
		timeCalls(b, func(ctx context.Context) error {
			rows, err := s.pool.Query(ctx, query, args...)
			if err != nil {
				return err
			}
			var (
				seg                            string
				attrs                          []byte
				p, d, ce, ca, sk, ti, aap, aad int64
				lastSeen                       time.Time
				n                              int
			)
			_, err = pgx.ForEachRow(rows, []any{&seg, &attrs, &p, &d, &ce, &ca, &sk, &ti, &aap, &aad, &lastSeen}, func() error {
				n++
				return nil
			})
			if err == nil && n != b10Segments {
				b.Fatalf("%d rows, want %d", n, b10Segments)
			}
			return err
		})
	})
	b.Run("parity", func(b *testing.B) {
		timeCalls(b, func(ctx context.Context) error {
			rows, err := s.Segments(ctx, b10Experiment, q)
			if err == nil && len(rows) != b10Segments {
				b.Fatalf("%d rows, want %d", len(rows), b10Segments)
			}
			return err
		})
	})
}

// BenchmarkB10Reads measures the dashboard's other reads over the B10 day,
// and the choices behind them:
//
//   - segments-minutes is Segments' statement as it was before the hourly
//     rollup (every minute from pair_counts), segments-rollup as it is
//     (BenchmarkB10's reference);
//   - latencies-go is Latencies (rows merged in Go), latencies-sql the same
//     merge done by an aggregate over parity_hist_add;
//   - series-1h and series-1m-last-hour are the experiment page's chart at
//     two zooms, overview-1h the overview's sparklines.
func BenchmarkB10Reads(b *testing.B) {
	s, since := seedB10(b)
	q := SegmentQuery{Since: since}
	count := func(query string, args []any, want int) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			rows, err := s.pool.Query(ctx, query, args...)
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if n != want {
				b.Fatalf("%d rows, want %d", n, want)
			}
			return nil
		}
	}
	b.Run("segments-minutes", func(b *testing.B) {
		query, args := segmentsStatement(b10Experiment, q, false, time.Time{}, time.Time{}, false)
		timeCalls(b, count(query, args, b10Segments))
	})
	b.Run("segments-rollup", func(b *testing.B) {
		query, args := segmentsSQL(b10Experiment, q)
		timeCalls(b, count(query, args, b10Segments))
	})
	b.Run("latencies-go", func(b *testing.B) {
		timeCalls(b, func(ctx context.Context) error {
			rows, err := s.Latencies(ctx, b10Experiment, q)
			if err == nil && len(rows) != b10Segments {
				b.Fatalf("%d rows, want %d", len(rows), b10Segments)
			}
			return err
		})
	})
	b.Run("latencies-sql", func(b *testing.B) {
		if _, err := s.pool.Exec(context.Background(), `CREATE OR REPLACE AGGREGATE parity_hist_sum(bigint[])
			(sfunc = parity_hist_add, stype = bigint[], initcond = '{}')`); err != nil {
			b.Fatal(err)
		}
		timeCalls(b, count(`SELECT segment, parity_hist_sum(control), parity_hist_sum(candidate) FROM latency_hours
WHERE experiment = $1 AND hour >= $2 AND (cardinality(control) > 0 OR cardinality(candidate) > 0)
GROUP BY segment ORDER BY segment`, []any{b10Experiment, since.Truncate(time.Hour)}, b10Segments))
	})
	b.Run("series-1h", func(b *testing.B) {
		timeCalls(b, func(ctx context.Context) error {
			_, err := s.Series(ctx, b10Experiment, q, time.Hour)
			return err
		})
	})
	b.Run("series-1m-last-hour", func(b *testing.B) {
		lastHour := SegmentQuery{Since: time.Now().Add(-time.Hour)}
		timeCalls(b, func(ctx context.Context) error {
			_, err := s.Series(ctx, b10Experiment, lastHour, time.Minute)
			return err
		})
	})
	b.Run("overview-1h", func(b *testing.B) {
		timeCalls(b, func(ctx context.Context) error {
			_, err := s.Overview(ctx, since, time.Hour)
			return err
		})
	})
}
