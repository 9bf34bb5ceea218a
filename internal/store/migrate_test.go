package store

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

// migrateTo brings the database at url to version, creating it if needed.
func migrateTo(t *testing.T, url string, version int32) {
	t.Helper()
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := connectCreating(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(conn)
	m, err := newMigrator(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.MigrateTo(ctx, version); err != nil {
		t.Fatalf("migrate to %d: %v", version, err)
	}
}

// newestMigration is the number of migrations embedded, which Open migrates
// to.
func newestMigration(t *testing.T) int32 {
	t.Helper()
	files, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return int32(len(files))
}

func openAt(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// TestMigration002OnDatabaseAt001 upgrades a database written under schema 1,
// as a deployed one would be, and checks that its rows read with the new
// columns' defaults; then goes down to 1 and up again.
func TestMigration002OnDatabaseAt001(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testutil.FreshDatabase(t)
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

	// A store at schema 1, written with the 001 columns only.
	migrateTo(t, url, 1)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO experiments (name, first_seen, last_seen, last_stage, pairs, divergent) VALUES ('x', $1, $1, 'shadow', 10, 2)`,
		`INSERT INTO segments (experiment, segment, first_seen) VALUES ('x', 'a', $1)`,
		`INSERT INTO pair_counts (experiment, operation, segment, minute, pairs, divergent, last_seen) VALUES ('x', 'get', 'a', $1, 10, 2, $1)`,
		`INSERT INTO samples (pair_id, experiment, operation, segment, kind, stage, user_key, at, control)
			VALUES ('p1', 'x', 'get', 'a', 'read', 'shadow', 'u', $1, '{"value":1}')`,
	} {
		if _, err := conn.Exec(ctx, stmt, t0); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	closeConn(conn)

	check := func(s *Store) {
		t.Helper()
		var v int32
		if err := s.pool.QueryRow(ctx, `SELECT version FROM `+versionTable).Scan(&v); err != nil || v != newestMigration(t) {
			t.Fatalf("schema version %d, %v; want %d", v, err, newestMigration(t))
		}
		segs, err := s.Segments(ctx, "x", SegmentQuery{})
		if err != nil || len(segs) != 1 || segs[0].Pairs != 10 || segs[0].AAPairs != 0 || segs[0].AADivergent != 0 {
			t.Errorf("Segments = %+v, %v", segs, err)
		}
		samples, err := s.Samples(ctx, "x", SampleQuery{})
		if err != nil || len(samples) != 1 {
			t.Fatalf("Samples = %+v, %v", samples, err)
		}
		if sm := samples[0]; sm.PairID != "p1" || sm.Verdict != "" || sm.Signature != "" || sm.RulesVersion != 0 || sm.Diffs != nil {
			t.Errorf("old sample = %+v", sm)
		}
		if sigs, err := s.Signatures(ctx, "x", SignatureQuery{}); err != nil || len(sigs) != 0 {
			t.Errorf("Signatures = %+v, %v", sigs, err)
		}
		if all, err := s.AllRules(ctx); err != nil || len(all) != 0 {
			t.Errorf("AllRules = %+v, %v", all, err)
		}
	}

	// Open applies 002; a second Open finds nothing to do.
	for range 2 {
		s := openAt(t, url)
		check(s)
		s.Close()
	}
	// The new tables work on the upgraded database.
	s := openAt(t, url)
	if err := s.Apply(ctx, &Batch{Signatures: []SignatureCount{{Experiment: "x", Operation: "get", Segment: "a", Minute: t0, Signature: "s", Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveRules(ctx, "x", []byte(`{}`), "", ""); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Down to 1 removes what 002 added and keeps the rest; up again works.
	migrateTo(t, url, 1)
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	err = conn.QueryRow(ctx, `
SELECT coalesce(array_agg(n ORDER BY n), '{}') FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NOT NULL`,
		[]string{"signature_counts", "signatures", "diff_rules", "pair_counts", "samples"}).Scan(&left)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pair_counts", "samples"}; !slices.Equal(left, want) {
		t.Errorf("tables after down migration %v, want %v", left, want)
	}
	var aaColumns int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
WHERE table_name = 'pair_counts' AND column_name LIKE 'aa_%'`).Scan(&aaColumns); err != nil || aaColumns != 0 {
		t.Errorf("pair_counts has %d aa_ columns after down migration (%v)", aaColumns, err)
	}
	closeConn(conn)
	s = openAt(t, url)
	defer s.Close()
	check(s)
}

// TestMigration003OnDatabaseAt002 upgrades a database written under schema 2
// and checks that the hourly rollup is backfilled from pair_counts on UTC
// hours (the session here runs at +05:30, where date_trunc would cut hours at
// half past), so Segments and Series read the same sums as before; then that
// the new tables work, and goes down to 2 and up again.
func TestMigration003OnDatabaseAt002(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testutil.FreshDatabase(t)
	url += map[bool]string{true: "&", false: "?"}[strings.Contains(url, "?")] + "timezone=Asia/Kolkata"
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

	migrateTo(t, url, 2)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	// Three hours of minutes in two segments and two operations: 10:00 to
	// 12:59, one pair per minute in a, two in b; every third divergent.
	for _, stmt := range []string{
		`INSERT INTO experiments (name, first_seen, last_seen, last_stage, pairs, divergent) VALUES ('x', $1::timestamptz, $1::timestamptz + interval '3 hours', 'shadow', 0, 0)`,
		`INSERT INTO segments (experiment, segment, first_seen) VALUES ('x', 'a', $1), ('x', 'b', $1)`,
		`INSERT INTO pair_counts (experiment, operation, segment, minute, pairs, divergent, aa_pairs, last_seen)
			SELECT 'x', op, seg, $1::timestamptz + m * interval '1 minute', n, (m % 3 = 0)::int, 1, $1::timestamptz + m * interval '1 minute' + interval '10 seconds'
			FROM generate_series(0, 179) m, (VALUES ('a', 1), ('b', 2)) s(seg, n), (VALUES ('get'), ('put')) o(op)`,
	} {
		if _, err := conn.Exec(ctx, stmt, t0); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	closeConn(conn)

	check := func(s *Store) {
		t.Helper()
		var v int32
		if err := s.pool.QueryRow(ctx, `SELECT version FROM `+versionTable).Scan(&v); err != nil || v != newestMigration(t) {
			t.Fatalf("schema version %d, %v; want %d", v, err, newestMigration(t))
		}
		var hours int
		// The hours' counters moved to count_hours in 010.
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM count_hours WHERE hour = date_trunc('hour', hour, 'UTC')`).Scan(&hours); err != nil || hours != 12 {
			t.Errorf("%d rollup rows on UTC hours (%v), want 3 hours × 2 segments × 2 operations", hours, err)
		}
		for _, tt := range []struct {
			q    SegmentQuery
			a, b int64 // pairs of a and b
		}{
			{SegmentQuery{}, 360, 720},
			{SegmentQuery{Since: t0.Add(30 * time.Minute), Until: t0.Add(150 * time.Minute)}, 240, 480},
			{SegmentQuery{Since: t0.Add(time.Hour), Operation: "get"}, 120, 240},
		} {
			rows, err := s.Segments(ctx, "x", tt.q)
			if err != nil || len(rows) != 2 || rows[0].Pairs != tt.a || rows[1].Pairs != tt.b {
				t.Errorf("Segments(%+v) = %+v, %v; want a %d, b %d pairs", tt.q, rows, err, tt.a, tt.b)
			}
		}
		rows, err := s.Segments(ctx, "x", SegmentQuery{Since: t0.Add(60 * time.Minute), Until: t0.Add(120 * time.Minute)})
		if err != nil || len(rows) != 2 || rows[0].Divergent != 40 || rows[0].AAPairs != 120 ||
			!rows[0].LastSeen.Equal(t0.Add(119*time.Minute+10*time.Second)) {
			t.Errorf("Segments over 11:00–12:00 = %+v, %v", rows, err)
		}
		pts, err := s.Series(ctx, "x", SegmentQuery{Operation: "put"}, time.Hour)
		if err != nil || len(pts) != 6 {
			t.Fatalf("Series = %+v, %v; want 3 hours × 2 segments", pts, err)
		}
		for i, p := range pts {
			if want := t0.Add(time.Duration(i%3) * time.Hour); !p.At.Equal(want) || p.Pairs != 60*int64(1+i/3) || p.Divergent != 20 {
				t.Errorf("point %d = %+v, want 60·n pairs, 20 divergent at %v", i, p, want)
			}
		}
		if lat, err := s.Latencies(ctx, "x", SegmentQuery{}); err != nil || len(lat) != 0 {
			t.Errorf("Latencies = %+v, %v; want none yet", lat, err)
		}
	}

	// Open applies 003; a second Open finds nothing to do.
	for range 2 {
		s := openAt(t, url)
		check(s)
		s.Close()
	}
	// The new tables work on the upgraded database, and Apply adds to the
	// backfilled rollup.
	s := openAt(t, url)
	var h report.Histogram
	h.Observe(3 * time.Millisecond)
	err = s.Apply(ctx, &Batch{
		Counts:    []Count{{Experiment: "x", Operation: "get", Segment: "a", Minute: t0.Add(5 * time.Minute), Counters: report.Counters{Pairs: 1000}}},
		Latencies: []Latency{{Experiment: "x", Operation: "get", Segment: "a", Hour: t0, Control: h.Encode()}},
		Variants:  []VariantCount{{Experiment: "x", Operation: "get", Variant: "on", Minute: t0, Pairs: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := s.Segments(ctx, "x", SegmentQuery{Since: t0, Until: t0.Add(time.Hour)}); err != nil || len(rows) != 2 || rows[0].Pairs != 1120 {
		t.Errorf("Segments after Apply = %+v, %v; want 1,120 pairs in a", rows, err)
	}
	if _, err := s.SaveGateSpec(ctx, "x", []byte(`{"MaxRate":0.01}`), ""); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Down to 2 removes what 003 added and keeps the rest; up again works.
	migrateTo(t, url, 2)
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	err = conn.QueryRow(ctx, `
SELECT coalesce(array_agg(n ORDER BY n), '{}') FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NOT NULL`,
		[]string{"latency_hours", "variant_counts", "gate_specs", "pair_counts", "signature_counts"}).Scan(&left)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pair_counts", "signature_counts"}; !slices.Equal(left, want) {
		t.Errorf("tables after down migration %v, want %v", left, want)
	}
	var fn bool
	if err := conn.QueryRow(ctx, `SELECT to_regproc('parity_hist_add') IS NOT NULL`).Scan(&fn); err != nil || fn {
		t.Errorf("parity_hist_add left after down migration (%v)", err)
	}
	if _, err := conn.Exec(ctx, `UPDATE pair_counts SET pairs = pairs - 1000 WHERE pairs > 1000`); err != nil {
		t.Fatal(err)
	}
	closeConn(conn)
	s = openAt(t, url)
	defer s.Close()
	check(s)
}
