package publish_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/publish"
)

// B4 in DESIGN.md: the latency the hook adds to the caller at 20k calls/s.
// reference times a small function call; parity times the same call plus
// Publish of a prebuilt pair to a real embedded JetStream. Both report the
// p50 and p99 of the per-call latency; compare them pairwise.
func BenchmarkHookLatency(b *testing.B) {
	_, nc, _ := setup(b)

	b.Run("reference", func(b *testing.B) {
		runPaced(b, func(int) {})
	})

	b.Run("parity", func(b *testing.B) {
		p, err := publish.New(nc, publish.Options{})
		if err != nil {
			b.Fatal(err)
		}
		pairs := benchPairs(b.N)
		runPaced(b, func(i int) { p.Publish(pairs[i]) })

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
		s := p.Stats()
		if s.Failed != 0 || s.Offered != uint64(b.N) {
			b.Fatalf("Stats() = %+v after %d calls", s, b.N)
		}
		b.ReportMetric(float64(s.Dropped)/float64(b.N), "drops/op")
	})
}

// callsPerSecond is the pace of B4; the loop sleeps every pacingBatch calls
// to keep to it, because a sleep per call is coarser than the interval.
const (
	callsPerSecond = 20_000
	pacingBatch    = 20
)

// runPaced calls work(i) and then hook(i) b.N times at callsPerSecond,
// timing each pair of calls, and reports the p50 and p99 latency.
func runPaced(b *testing.B, hook func(i int)) {
	lat := make([]time.Duration, b.N)
	interval := time.Second / callsPerSecond
	var sink uint64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if i%pacingBatch == 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		t0 := time.Now()
		sink += work(uint64(i))
		hook(i)
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	benchSink = sink

	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
}

var benchSink uint64

// work stands in for the application's own call: a few dozen nanoseconds of
// arithmetic.
//
//go:noinline
func work(x uint64) uint64 {
	for range 16 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// benchPairs builds n distinct pairs as a hook would, before the timer starts.
func benchPairs(n int) []*envelope.Pair {
	attrs := map[string]string{"country": "IN", "plan": "pro"} // read-only, shared
	value := json.RawMessage(`{"id":42,"name":"Ada Lovelace","email":"ada@example.com","plan":"pro","balance":1234.5}`)
	pairs := make([]*envelope.Pair, n)
	for i := range pairs {
		pairs[i] = &envelope.Pair{
			Experiment: "checkout",
			Operation:  "get_user",
			Kind:       envelope.KindRead,
			Stage:      envelope.StageShadow,
			User:       envelope.User{Key: "user-42", Attrs: attrs},
			Control:    envelope.Observation{Value: value, DurationNS: 1200},
			Candidate:  envelope.Observation{Value: value, DurationNS: 900},
		}
	}
	return pairs
}
