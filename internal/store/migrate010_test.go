package store

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parityhq/parity/internal/testutil"
)

// TestMigration010OnDatabaseAt009 upgrades a database written under schema
// 9, whose hourly counts live in latency_hours, over a UTC midnight (the
// session at +05:30, where local days would cut elsewhere), and checks that
// the new rollups hold exactly the stored sums and that every read answers
// as before; then goes down to 9 (the counters back in latency_hours) and up
// again.
func TestMigration010OnDatabaseAt009(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testutil.FreshDatabase(t)
	url += map[bool]string{true: "&", false: "?"}[strings.Contains(url, "?")] + "timezone=Asia/Kolkata"
	start := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC) // four hours, two UTC days

	migrateTo(t, url, 9)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO experiments (name, first_seen, last_seen, last_stage, pairs, divergent) VALUES ('x', $1::timestamptz, $1::timestamptz + interval '4 hours', 'shadow', 0, 0)`,
		`INSERT INTO segments (experiment, segment, first_seen) VALUES ('x', 'a', $1), ('x', 'b', $1)`,
		`INSERT INTO pair_counts (experiment, operation, segment, minute, pairs, divergent, last_seen)
			SELECT 'x', op, seg, $1::timestamptz + m * interval '1 minute', n, (m % 3 = 0)::int, $1::timestamptz + m * interval '1 minute' + interval '10 seconds'
			FROM generate_series(0, 239) m, (VALUES ('a', 1), ('b', 2)) s(seg, n), (VALUES ('get'), ('put')) o(op)`,
		`INSERT INTO latency_hours (experiment, operation, segment, hour, pairs, divergent, control_errors, candidate_errors,
			skipped, timeouts, aa_pairs, aa_divergent, last_seen)
			SELECT experiment, operation, segment, date_trunc('hour', minute, 'UTC'), sum(pairs), sum(divergent), 0, 0, 0, 0, 0, 0, max(last_seen)
			FROM pair_counts GROUP BY 1, 2, 3, 4`,
		`UPDATE latency_hours SET control = '{5,1,2}', candidate = '{6,3}' WHERE segment = 'a'`,
		`INSERT INTO variant_counts (experiment, operation, variant, reason, minute, pairs, divergent)
			SELECT 'x', 'get', 'on', 'SPLIT', $1::timestamptz + m * interval '1 minute', 2, 1 FROM generate_series(0, 239) m`,
		`INSERT INTO signature_counts (experiment, operation, segment, minute, signature, count, first_seen, last_seen)
			SELECT 'x', 'get', 'a', $1::timestamptz + m * interval '1 minute', 'sig', 1,
				$1::timestamptz + m * interval '1 minute', $1::timestamptz + m * interval '1 minute' + interval '5 seconds'
			FROM generate_series(0, 239, 3) m`,
	} {
		var args []any
		if strings.Contains(stmt, "$1") {
			args = append(args, start)
		}
		if _, err := conn.Exec(ctx, stmt, args...); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	closeConn(conn)

	windows := []SegmentQuery{{}, {Since: start.Add(90 * time.Minute)}, {Since: start.Add(17 * time.Minute), Until: start.Add(200 * time.Minute)}}
	// a has 1 pair a minute per operation, b 2.
	want := func(q SegmentQuery) [2]int64 {
		from, to := 0, 240
		if !q.Since.IsZero() {
			from = int(q.Since.Sub(start) / time.Minute)
		}
		if !q.Until.IsZero() {
			to = int(q.Until.Sub(start) / time.Minute)
		}
		return [2]int64{int64(2 * (to - from)), int64(4 * (to - from))}
	}
	check := func(s *Store) {
		t.Helper()
		for _, q := range windows {
			rows, err := s.Segments(ctx, "x", q)
			if err != nil || len(rows) != 2 || [2]int64{rows[0].Pairs, rows[1].Pairs} != want(q) {
				t.Errorf("Segments(%+v) = %+v, %v; want pairs %v", q, rows, err, want(q))
			}
			for _, step := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
				pts, err := s.Series(ctx, "x", q, step)
				var sum [2]int64
				for _, p := range pts {
					sum[map[string]int{"a": 0, "b": 1}[p.Segment]] += p.Pairs
				}
				if err != nil || sum != want(q) {
					t.Errorf("Series(%+v, %v) sums to %v, %v; want %v", q, step, sum, err, want(q))
				}
			}
			vs, err := s.Variants(ctx, "x", q)
			if err != nil || len(vs) != 1 || vs[0].Pairs != want(q)[0] {
				t.Errorf("Variants(%+v) = %+v, %v; want %d pairs", q, vs, err, want(q)[0])
			}
		}
		sigs, err := s.Signatures(ctx, "x", SignatureQuery{})
		if err != nil || len(sigs) != 1 || sigs[0].Count != 80 || sigs[0].Segments != 1 {
			t.Errorf("Signatures = %+v, %v; want sig counted 80 times in 1 segment", sigs, err)
		}
		lat, err := s.Latencies(ctx, "x", SegmentQuery{})
		if err != nil || len(lat) != 1 || lat[0].Segment != "a" || lat[0].Control[1] != 8 || lat[0].Candidate[1] != 24 {
			t.Errorf("Latencies = %+v, %v; want a's histograms summed over 2 operations × 4 hours", lat, err)
		}
		ov, err := s.Overview(ctx, time.Time{}, time.Hour)
		var total int64
		for _, p := range ov["x"] {
			total += p.Pairs
		}
		if err != nil || len(ov["x"]) != 4 || total != 6*240 {
			t.Errorf("Overview = %+v, %v; want 4 hours summing to %d", ov, err, 6*240)
		}
	}
	for range 2 { // Open applies 010; a second Open finds nothing to do.
		s := openAt(t, url)
		check(s)
		var days, counterCols int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM count_days`).Scan(&days); err != nil || days != 2*2*2 {
			t.Errorf("%d count_days rows (%v), want 2 UTC days × 2 operations × 2 segments", days, err)
		}
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'latency_hours' AND column_name IN ('pairs', 'last_seen')`).Scan(&counterCols); err != nil || counterCols != 0 {
			t.Errorf("latency_hours keeps %d counter columns (%v)", counterCols, err)
		}
		s.Close()
	}

	// Down to 9 puts the hours' counters back into latency_hours.
	migrateTo(t, url, 9)
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var rows, pairs int64
	if err := conn.QueryRow(ctx, `SELECT count(*), sum(pairs) FROM latency_hours WHERE last_seen IS NOT NULL`).Scan(&rows, &pairs); err != nil || rows != 16 || pairs != 6*240 {
		t.Errorf("latency_hours after down: %d rows, %d pairs (%v); want 16, %d", rows, pairs, err, 6*240)
	}
	closeConn(conn)
	s := openAt(t, url)
	defer s.Close()
	check(s)
}
