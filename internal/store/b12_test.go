package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/history"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
)

// b12Hours is how many hours of history B12 writes at the full shape (20
// experiments × 5 operations × 100 segments: 600,000 minute rows an hour);
// PARITY_B12_HOURS overrides it. Bytes scale linearly with hours, so an hour
// gives the per-day figure at a cost this machine can afford in a bench run.
func b12Hours(b *testing.B) int {
	if v := os.Getenv("PARITY_B12_HOURS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("PARITY_B12_HOURS=%q is not a positive number of hours", v)
		}
		return n
	}
	return 1
}

// BenchmarkB12 measures stored bytes per day of count history at B12's
// shape, issue 17: "reference" keeps every minute (what Parity stored before
// the minute retention), "parity" is what a day of history costs once it is
// past --minute-retention and PruneMinutes has deleted its minutes (the
// hourly and daily count rollups, the experiments' hourly series, the
// latency histograms per hour and per day, the experiments and segments).
// Both are PostgreSQL relation sizes (heap, indexes, TOAST) after the same
// generated hours, scaled to 24 hours; the minutes kept for the retention
// itself (72 hours of them) are a constant window that deleted rows' pages
// are reused for, not a cost per day. Target: ≤ 0.1×.
func BenchmarkB12(b *testing.B) {
	ctx := context.Background()
	const retention = 72 * time.Hour
	url := testutil.FreshDatabase(b)
	s, err := store.Open(ctx, url, store.Options{MinuteRetention: retention})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	hours := b12Hours(b)
	sh := history.Shape{Experiments: 20, Operations: 5, Segments: 100, Minutes: hours * 60,
		// Whole hours, all of them past the retention.
		Start: time.Now().UTC().Truncate(time.Hour).Add(-retention - time.Duration(hours+1)*time.Hour)}
	rows, err := history.Generate(ctx, s.Pool(), sh)
	if err != nil {
		b.Fatal(err)
	}
	// size returns the bytes of the tables history lives in (heap, indexes,
	// TOAST), scaled to a day; without minutes, pair_counts is left out.
	// Deleted rows leave their pages to PostgreSQL, which fills them with
	// the next minutes, so the space a day of history holds once its minutes
	// are gone is what remains in the other tables.
	// The daily tables hold one row per unit and day however many hours
	// of it were written, so they count once per day written, not per hour.
	size := func(minutes bool) float64 {
		tables := []string{"count_hours", "experiment_hours", "latency_hours", "experiments", "segments"}
		if minutes {
			tables = append(tables, "pair_counts")
		}
		var hourly, daily int64
		var days int
		err := s.Pool().QueryRow(ctx, `SELECT sum(pg_total_relation_size(t))::int8 FROM unnest($1::regclass[]) t`, tables).Scan(&hourly)
		if err == nil {
			err = s.Pool().QueryRow(ctx, `SELECT pg_total_relation_size('count_days') + pg_total_relation_size('latency_days'),
				(SELECT count(DISTINCT day) FROM count_days)`).Scan(&daily, &days)
		}
		if err != nil {
			b.Fatal(err)
		}
		return float64(hourly)*24/float64(hours) + float64(daily)/float64(max(days, 1))
	}
	all := size(true)
	deleted, err := s.PruneMinutes(ctx, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var left int64
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pair_counts`).Scan(&left); err != nil {
		b.Fatal(err)
	}
	if deleted != rows || left != 0 {
		b.Fatalf("PruneMinutes deleted %d of %d minute rows, left %d", deleted, rows, left)
	}
	kept := size(false)
	for _, c := range []struct {
		name  string
		bytes float64
	}{{"reference", all}, {"parity", kept}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N { // the work was done once, above
			}
			b.ReportMetric(c.bytes, "B/day")
			b.ReportMetric(0, "ns/op")
		})
	}
	fmt.Fprintf(os.Stderr, "B12: %d minute rows over %d hour(s) at 20×5×100\n", rows, hours)
}
