package store

import (
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parityhq/parity/internal/testutil"
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
		if err := s.pool.QueryRow(ctx, `SELECT version FROM `+versionTable).Scan(&v); err != nil || v != 2 {
			t.Fatalf("schema version %d, %v; want 2", v, err)
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
