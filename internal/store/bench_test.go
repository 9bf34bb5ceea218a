package store_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

// BenchmarkApply applies what one verifier flush writes, one flush per
// second of pairs: 10,000 pairs over 50 segments and 2 operations, or 4,000
// over 50 segments and 1 operation. Each flush has one divergent pair per
// segment and operation (under one of 5 signatures), 20 divergence samples,
// the stream sequences and, unless the name ends in "no-latencies", each
// segment and operation's latency histograms of both sides (log-normal around
// 5 and 6 ms) and counts for 2 flag variants per operation. It reports the
// rows written per pair (counts, hourly rows, signature counts, signatures,
// variant counts, samples and the applied-batch row; design target ≤ 0.05 of
// one row per pair) and the WAL bytes per pair (target ≤ 0.05 of ~170 B, one
// upsert per pair). The WAL figure is the whole server's, so other
// databases' activity inflates it.
func BenchmarkApply(b *testing.B) {
	for _, shape := range []struct {
		name                 string
		pairs                int
		segments, operations int
	}{
		{"10000pairs-50seg-2op", 10_000, 50, 2},
		{"4000pairs-50seg-1op", 4_000, 50, 1},
	} {
		for _, lat := range []bool{true, false} {
			name := shape.name
			if !lat {
				name += "-no-latencies"
			}
			every := 0
			if lat {
				every = 1
			}
			b.Run(name, func(b *testing.B) { benchmarkApply(b, shape.pairs, shape.segments, shape.operations, every) })
		}
	}
}

// benchmarkApply writes flushes of pairsPerFlush pairs; latencies ride along
// every latencyEvery-th flush (0: never), as the verifier's LatencyInterval
// does.
func benchmarkApply(b *testing.B, pairsPerFlush, segments, operations, latencyEvery int) {
	const (
		samplesPerFlush = 20
		signatures      = 5
	)
	s := openStore(b, store.Options{})
	ctx := b.Context()
	wal0 := walStart(b, s)
	var pairs, rows int64
	var seq uint64
	flush := 0
	rng := rand.New(rand.NewPCG(1, 1))
	perKey := pairsPerFlush / (segments * operations)
	logNormal := func(median time.Duration) time.Duration {
		return time.Duration(float64(median) * math.Exp(0.6*rng.NormFloat64()))
	}
	start := time.Now()
	for b.Loop() {
		m := t0.Add(time.Duration(flush/60) * time.Minute) // one flush per second
		batch := &store.Batch{Stream: "PARITY_PAIRS@1"}
		withLatencies := latencyEvery > 0 && flush%latencyEvery == 0
		for i := range segments * operations {
			seg := fmt.Sprintf("country=C%02d", i%segments)
			batch.Counts = append(batch.Counts, store.Count{Counters: report.Counters{Pairs: int64(perKey), Divergent: 1}, Experiment: "bench", Operation: fmt.Sprintf("op%d", i/segments), Segment: seg, Attrs: map[string]string{"country": seg[8:]}, Minute: m, LastStage: "shadow", LastSeen: m})
			sig := fmt.Sprintf("sig%d", i%signatures)
			batch.Signatures = append(batch.Signatures, store.SignatureCount{
				Experiment: "bench", Operation: fmt.Sprintf("op%d", i/segments), Segment: seg, Minute: m,
				Signature: sig, Patterns: patterns([2]string{"items[*]." + sig, "changed"}, [2]string{"etag", "missing"}),
				Count: 1, FirstSeen: m, LastSeen: m,
			})
			if withLatencies {
				var ctl, cand report.Histogram
				for range perKey {
					ctl.Observe(logNormal(5 * time.Millisecond))
					cand.Observe(logNormal(6 * time.Millisecond))
				}
				batch.Latencies = append(batch.Latencies, store.Latency{
					Experiment: "bench", Operation: fmt.Sprintf("op%d", i/segments), Segment: seg,
					Hour: m.Truncate(time.Hour), Control: ctl.Encode(), Candidate: cand.Encode(),
				})
			}
		}
		if withLatencies {
			for op := range operations {
				for v, variant := range []string{"on", "off"} {
					batch.Variants = append(batch.Variants, store.VariantCount{
						Experiment: "bench", Operation: fmt.Sprintf("op%d", op), Variant: variant, Reason: "SPLIT",
						Minute: m, Pairs: int64(pairsPerFlush / operations / 2), Divergent: int64(v),
					})
				}
			}
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
		pairs += int64(pairsPerFlush)
		hourRows := segments * operations // one per (operation, segment, hour), counts and latencies alike
		if withLatencies {
			hourRows *= 2 // rewritten once more for the histograms
		}
		rows += int64(len(batch.Counts) + hourRows + len(batch.Signatures) + signatures + len(batch.Variants) +
			len(batch.Samples) + 1)
		flush++
	}
	elapsed := time.Since(start)
	walBytes, fpiBytes := walSince(b, s, wal0)
	b.ReportMetric(float64(rows)/float64(pairs), "rows/pair")
	b.ReportMetric(walBytes/float64(pairs), "walB/pair")
	b.ReportMetric(fpiBytes/float64(pairs), "fpiB/pair")
	b.ReportMetric(float64(pairs)/elapsed.Seconds(), "pairs/s")
}

// BenchmarkB6 compares PostgreSQL rows and WAL bytes per pair: the
// verifier's way (pre-aggregated flushes of 4,000 pairs over 50 segments,
// latencies every tenth flush as with the default 10s LatencyInterval at one
// flush a second) against the naive way, one counter upsert per pair.
func BenchmarkB6(b *testing.B) {
	b.Run("reference", func(b *testing.B) {
		s := openStore(b, store.Options{})
		ctx := b.Context()
		if _, err := s.Pool().Exec(ctx, `CREATE TABLE b6_ref (experiment text, operation text, segment text, minute timestamptz,
			pairs bigint, divergent bigint, PRIMARY KEY (experiment, operation, segment, minute))`); err != nil {
			b.Fatal(err)
		}
		wal0 := walStart(b, s)
		n := 0
		for b.Loop() {
			_, err := s.Pool().Exec(ctx, `INSERT INTO b6_ref VALUES ('bench', 'op0', $1, $2, 1, $3)
				ON CONFLICT (experiment, operation, segment, minute) DO UPDATE SET pairs = b6_ref.pairs + 1, divergent = b6_ref.divergent + EXCLUDED.divergent`,
				fmt.Sprintf("country=C%02d", n%50), t0.Add(time.Duration(n/4000)*time.Minute), n%100/99)
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		walBytes, fpiBytes := walSince(b, s, wal0)
		b.ReportMetric(1, "rows/pair")
		b.ReportMetric(walBytes/float64(n), "walB/pair")
		b.ReportMetric(fpiBytes/float64(n), "fpiB/pair")
	})
	b.Run("parity", func(b *testing.B) { benchmarkApply(b, 4000, 50, 1, 10) })
}

// walStart returns the WAL position to measure from with walSince. It needs
// pg_walinspect (PostgreSQL 15+, superuser to create), which walSince reads,
// and holds a temporary replication slot until the benchmark ends, so that
// the server keeps the WAL from there on: other databases of the cluster
// (other tests) can write more than max_wal_size while the benchmark runs,
// and the server would remove the files walSince reads.
func walStart(b *testing.B, s *store.Store) string {
	b.Helper()
	ctx := b.Context()
	if _, err := s.Pool().Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_walinspect`); err != nil {
		b.Fatalf("B6 reads WAL records with pg_walinspect (PostgreSQL 15+, created by a superuser): %v", err)
	}
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_create_physical_replication_slot('parity_bench_' || pg_backend_pid(), true, true)`); err != nil {
		conn.Release()
		b.Fatalf("B6 holds the WAL it reads with a temporary replication slot: %v", err)
	}
	var lsn string // the slot keeps WAL from the last checkpoint on: measure from now
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Conn().Close(context.Background()) // ends the session, which drops its temporary slot
		conn.Release()
	})
	return lsn
}

// walSince returns the bytes of WAL written since from by this benchmark's
// database alone: every record of a transaction that touched one of its
// relations (its commit record included), and records without a
// transaction that touch its relations. WAL is shared by the whole
// PostgreSQL cluster, so the plain LSN difference would count whatever else
// the cluster wrote meanwhile (other tests, other benchmarks) against the
// benchmark. It also returns the bytes of those records that are full-page
// images: the first change to a page after each checkpoint logs the whole
// page, so that share grows with the cluster's checkpoint frequency (other
// databases' WAL volume forces checkpoints at max_wal_size), not with what
// the benchmark writes.
func walSince(b *testing.B, s *store.Store, from string) (total, fpi float64) {
	b.Helper()
	err := s.Pool().QueryRow(b.Context(), `
WITH recs AS MATERIALIZED (
    SELECT xid, record_length, fpi_length, block_ref FROM pg_get_wal_records_info($1::pg_lsn, pg_current_wal_flush_lsn())
), mine AS (
    SELECT '/' || oid::text || '/' AS db FROM pg_database WHERE datname = current_database()
), xids AS (
    SELECT DISTINCT xid FROM recs, mine WHERE xid <> '0' AND strpos(block_ref, mine.db) > 0
)
SELECT coalesce(sum(record_length), 0)::float8, coalesce(sum(fpi_length), 0)::float8 FROM recs, mine
WHERE xid IN (SELECT xid FROM xids) OR (xid = '0' AND strpos(coalesce(block_ref, ''), mine.db) > 0)`, from).Scan(&total, &fpi)
	if err != nil {
		b.Fatalf("B6: reading WAL records: %v", err)
	}
	return total, fpi
}
