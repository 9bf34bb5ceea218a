package store_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

// BenchmarkApplyContention runs 1, 2, 4 and 8 writers flushing into one stream
// at once, as that many verifiers would with a differ that costs nothing:
// each writer applies flushes of 100 messages over 50 segments of its own
// experiment, so the only lock they share is the stream's apply lock
// (docs/scaling.md). It reports flushes committed per second, the mean
// Apply time, and wait-ms: the mean Apply time beyond one writer's in the
// same run, which is the time spent waiting on the lock (and, on a machine
// with fewer cores than writers, for a CPU). Flushes per second that stay
// flat as writers are added are the lock's ceiling. The store's side only:
// e2e's BenchmarkVerifierContention runs the same with verifier processes
// on a JetStream stream.
func BenchmarkApplyContention(b *testing.B) {
	s := openStore(b, store.Options{})
	ctx := b.Context()
	m := t0
	var seq atomic.Uint64
	flush := func(writer int) *store.Batch {
		batch := &store.Batch{Stream: "PARITY_PAIRS@contention"}
		exp := fmt.Sprintf("writer%d", writer)
		for i := range 50 {
			seg := fmt.Sprintf("country=C%02d", i)
			batch.Counts = append(batch.Counts, store.Count{Counters: report.Counters{Pairs: 80, Divergent: 1},
				Experiment: exp, Operation: "op", Segment: seg, Attrs: map[string]string{"country": seg[8:]},
				Minute: m, LastStage: "shadow", LastSeen: m})
		}
		for range 100 {
			batch.Seqs = append(batch.Seqs, seq.Add(1))
		}
		return batch
	}
	var oneWriter float64 // mean Apply ms with one writer
	for _, writers := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			var applyNs atomic.Int64
			var flushes atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := w; i < b.N; i += writers {
						batch := flush(w)
						t := time.Now()
						if err := s.Apply(ctx, batch); err != nil {
							b.Error(err)
							return
						}
						applyNs.Add(int64(time.Since(t)))
						flushes.Add(1)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			n := float64(flushes.Load())
			mean := float64(applyNs.Load()) / n / 1e6
			if writers == 1 {
				oneWriter = mean
			}
			b.ReportMetric(n/elapsed.Seconds(), "flushes/s")
			b.ReportMetric(mean, "apply-ms")
			b.ReportMetric(max(mean-oneWriter, 0), "wait-ms")
		})
	}
}
