package pgsource_test

import (
	"context"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/reconcile/pgsource"
)

// benchRows is the size of the benchmarks' tables.
const benchRows = 200_000

// benchPair creates two identical tables of benchRows rows in two databases
// and opens both sides.
func benchPair(b *testing.B) (oldURL, newURL string, old, nw *pgsource.Source) {
	b.Helper()
	ctx := context.Background()
	oldURL, _ = newDB(b, oldItems, fill(benchRows), keyed, "VACUUM items")
	newURL, _ = newDB(b, newItems, fill(benchRows), keyed, "VACUUM items")
	var err error
	if old, err = pgsource.Open(ctx, pgsource.Config{Side: "old", URL: oldURL, Table: "items", Key: "id"}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(old.Close)
	if nw, err = pgsource.Open(ctx, pgsource.Config{Side: "new", URL: newURL, Table: "items", Key: "id"}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nw.Close)
	return oldURL, newURL, old, nw
}

func sweep(b *testing.B, old, nw *pgsource.Source, noChecksum bool) {
	b.Helper()
	res, err := reconcile.Run(context.Background(), old, nw, reconcile.Options{NoChecksum: noChecksum, RecheckDelay: -1})
	if err != nil {
		b.Fatal(err)
	}
	if res.Counts.Matched != benchRows || res.Checksum == noChecksum {
		b.Fatalf("counts %+v, checksum %v", res.Counts, res.Checksum)
	}
}

func copyOut(b *testing.B, u string) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	tag, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY items TO STDOUT")
	if err != nil || tag.RowsAffected() != benchRows {
		b.Fatalf("copy: %v (%d rows)", err, tag.RowsAffected())
	}
}

// BenchmarkB13 is a full row-by-row comparison of two identical tables
// (rows of one side per second) against reading both tables with COPY …
// TO STDOUT, one after the other. Target: ratio ≥ 0.5.
func BenchmarkB13(b *testing.B) {
	oldURL, newURL, old, nw := benchPair(b)
	b.Run("reconcile/reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copyOut(b, oldURL)
			copyOut(b, newURL)
		}
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("reconcile/parity", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sweep(b, old, nw, true)
		}
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkB14 is a sweep of two identical tables by checksum against the
// full row-by-row comparison of the same tables. Target: time ratio ≤ 0.2.
func BenchmarkB14(b *testing.B) {
	_, _, old, nw := benchPair(b)
	b.Run("identical/reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sweep(b, old, nw, true)
		}
	})
	b.Run("identical/parity", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sweep(b, old, nw, false)
		}
	})
}
