package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
)

// BenchmarkApply applies what one verifier flush writes after a second at
// 10,000 pairs/s spread over 50 segments and 2 operations, with one divergent
// pair per segment and operation (under one of 5 signatures), 20 divergence
// samples and the 10,000 stream sequences. It reports the rows written per
// pair (counts, signature counts, signatures, samples and the applied-batch
// row; design target ≤ 0.05 of one row per pair) and the WAL bytes per pair. The WAL figure is the whole
// server's, so other databases' activity inflates it.
func BenchmarkApply(b *testing.B) {
	const (
		segments, operations = 50, 2
		pairsPerFlush        = 10_000
		samplesPerFlush      = 20
		signatures           = 5
	)
	s := openStore(b, store.Options{})
	ctx := b.Context()
	var wal0 string
	if err := s.Pool().QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&wal0); err != nil {
		b.Fatal(err)
	}
	var pairs, rows int64
	var seq uint64
	flush := 0
	start := time.Now()
	for b.Loop() {
		m := t0.Add(time.Duration(flush/60) * time.Minute) // one flush per second
		batch := &store.Batch{Stream: "PARITY_PAIRS@1"}
		for i := range segments * operations {
			seg := fmt.Sprintf("country=C%02d", i%segments)
			batch.Counts = append(batch.Counts, store.Count{
				Experiment: "bench", Operation: fmt.Sprintf("op%d", i/segments), Segment: seg,
				Attrs: map[string]string{"country": seg[8:]}, Minute: m,
				Pairs: pairsPerFlush / (segments * operations), Divergent: 1, LastStage: "shadow", LastSeen: m,
			})
			sig := fmt.Sprintf("sig%d", i%signatures)
			batch.Signatures = append(batch.Signatures, store.SignatureCount{
				Experiment: "bench", Operation: fmt.Sprintf("op%d", i/segments), Segment: seg, Minute: m,
				Signature: sig, Patterns: patterns([2]string{"items[*]." + sig, "changed"}, [2]string{"etag", "missing"}),
				Count: 1, FirstSeen: m, LastSeen: m,
			})
		}
		for i := range samplesPerFlush {
			batch.Samples = append(batch.Samples, sample("bench", "op0", fmt.Sprintf("country=C%02d", i), m.Add(time.Duration(flush)*time.Millisecond)))
		}
		for range pairsPerFlush {
			seq++
			batch.Seqs = append(batch.Seqs, seq)
		}
		if err := s.Apply(ctx, batch); err != nil {
			b.Fatal(err)
		}
		pairs += pairsPerFlush
		rows += int64(len(batch.Counts) + len(batch.Signatures) + signatures + len(batch.Samples) + 1)
		flush++
	}
	elapsed := time.Since(start)
	var walBytes float64
	if err := s.Pool().QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)`, wal0).Scan(&walBytes); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rows)/float64(pairs), "rows/pair")
	b.ReportMetric(walBytes/float64(pairs), "walB/pair")
	b.ReportMetric(float64(pairs)/elapsed.Seconds(), "pairs/s")
}

// BenchmarkSegments runs the dashboard's query, a day of one experiment by
// segment, over 1,000,000 pairs in 50 segments: 72,000 rows of pair_counts.
func BenchmarkSegments(b *testing.B) {
	s := openStore(b, store.Options{})
	ctx := b.Context()
	// Filled directly: Apply is not what this measures.
	for _, stmt := range []string{
		`INSERT INTO experiments (name, first_seen, last_seen, pairs) VALUES ('bench', $1::timestamptz, $1::timestamptz + interval '1 day', 1000000)`,
		`INSERT INTO segments (experiment, segment, attrs, first_seen)
			SELECT 'bench', 'country=C' || g, jsonb_build_object('country', 'C' || g), $1::timestamptz FROM generate_series(1, 50) g`,
		`INSERT INTO pair_counts (experiment, operation, segment, minute, pairs, divergent, last_seen)
			SELECT 'bench', 'get', 'country=C' || g, $1::timestamptz + m * interval '1 minute', 14, m % 2, $1::timestamptz + m * interval '1 minute'
			FROM generate_series(0, 1439) m, generate_series(1, 50) g ORDER BY m, g`,
	} {
		if _, err := s.Pool().Exec(ctx, stmt, t0); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `VACUUM ANALYZE pair_counts`); err != nil {
		b.Fatal(err)
	}
	q := store.SegmentQuery{Since: t0, Until: t0.Add(24 * time.Hour)}
	for b.Loop() {
		rows, err := s.Segments(ctx, "bench", q)
		if err != nil || len(rows) != 50 {
			b.Fatalf("Segments = %d rows, %v", len(rows), err)
		}
	}
}
