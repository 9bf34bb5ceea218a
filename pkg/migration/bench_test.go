package migration_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/migration"
	"github.com/parityhq/parity/pkg/publish"
)

// callInterval is B4's load: 20k calls/s, one call every 50µs.
const callInterval = 50 * time.Microsecond

//go:noinline
func benchOld(_ context.Context, id int64) (Order, error) {
	return Order{ID: id, Total: 1999, State: "paid"}, nil
}

//go:noinline
func benchNew(_ context.Context, id int64) (Order, error) {
	return Order{ID: id, Total: 1999, State: "paid"}, nil
}

// paced calls call b.N times at callInterval and reports the percentiles of
// its latency. Between calls it yields, so that the background goroutines
// (the candidate, the pair, the publisher) run as they would in a service.
func paced(b *testing.B, call func(i int)) {
	lat := make([]int64, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		for time.Since(start) < time.Duration(i)*callInterval {
			runtime.Gosched()
		}
		t0 := time.Now()
		call(i)
		lat[i] = int64(time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
}

// shadowFlags is an OpenFeature client whose in-memory provider says
// "shadow" for everyone.
func shadowFlags(b *testing.B) *openfeature.Client {
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(context.Background(), memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		"orders-migration": {Key: "orders-migration", State: memprovider.Enabled, DefaultVariant: "shadow",
			Variants: map[string]any{"shadow": "shadow"}},
	})); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	return api.NewClient()
}

// BenchmarkShadowRead is B4: the latency a shadow read adds to the caller,
// OpenFeature evaluation included, with the real publisher on an embedded
// JetStream. "reference" calls the old path alone.
func BenchmarkShadowRead(b *testing.B) {
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("123", map[string]any{"country": "IN", "plan": "pro"})
	b.Run("reference", func(b *testing.B) {
		paced(b, func(i int) {
			if _, err := benchOld(ctx, int64(i)); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("parity", func(b *testing.B) {
		env := newNATSEnv(b, publish.Options{})
		r, err := migration.NewReader(migration.Config[int64, Order]{
			Experiment: "bench", Operation: "get-order",
			Flags: shadowFlags(b), FlagKey: "orders-migration", Publisher: env.pub,
			Old: benchOld, New: benchNew,
		})
		if err != nil {
			b.Fatal(err)
		}
		paced(b, func(i int) {
			if _, err := r.Read(ctx, ec, int64(i)); err != nil {
				b.Fatal(err)
			}
		})
		env.settle(r)
		s := r.Stats()
		b.ReportMetric(float64(s.Dropped)/float64(s.Offered), "dropped/op")
		// Of those, the ones the publisher's queue refused; the rest were
		// over MaxInFlight.
		b.ReportMetric(float64(env.pub.Stats().Dropped)/float64(s.Offered), "queue-dropped/op")
	})
}

// BenchmarkShadowReadStaticFlag is BenchmarkShadowRead with a flag
// evaluator that costs nothing, to separate Parity's own cost from the
// OpenFeature SDK's.
func BenchmarkShadowReadStaticFlag(b *testing.B) {
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("123", map[string]any{"country": "IN", "plan": "pro"})
	b.Run("reference", func(b *testing.B) {
		paced(b, func(i int) {
			if _, err := benchOld(ctx, int64(i)); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("parity", func(b *testing.B) {
		env := newNATSEnv(b, publish.Options{})
		r, err := migration.NewReader(migration.Config[int64, Order]{
			Experiment: "bench", Operation: "get-order",
			Flags: staticStage("shadow"), FlagKey: "orders-migration", Publisher: env.pub,
			Old: benchOld, New: benchNew,
		})
		if err != nil {
			b.Fatal(err)
		}
		paced(b, func(i int) {
			if _, err := r.Read(ctx, ec, int64(i)); err != nil {
				b.Fatal(err)
			}
		})
		env.settle(r)
	})
}

// BenchmarkOpenFeatureEvaluation is the OpenFeature SDK's own share of B4:
// one flag evaluation through the SDK and its in-memory provider (parity)
// against a static evaluator that costs nothing (reference), paced like the
// reads. BenchmarkShadowRead minus this is what Parity adds.
func BenchmarkOpenFeatureEvaluation(b *testing.B) {
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("123", map[string]any{"country": "IN", "plan": "pro"})
	b.Run("reference", func(b *testing.B) {
		flags := staticStage("shadow")
		paced(b, func(int) {
			if _, err := flags.StringValueDetails(ctx, "orders-migration", "off", ec); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("parity", func(b *testing.B) {
		flags := shadowFlags(b)
		paced(b, func(int) {
			if d, err := flags.StringValueDetails(ctx, "orders-migration", "off", ec); err != nil || d.Value != "shadow" {
				b.Fatal(d, err)
			}
		})
	})
}

// BenchmarkOffRead is the cost of Parity in a stage that compares nothing:
// one flag evaluation (free here) and a direct call.
func BenchmarkOffRead(b *testing.B) {
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("123", map[string]any{"country": "IN", "plan": "pro"})
	b.Run("reference", func(b *testing.B) {
		paced(b, func(i int) {
			if _, err := benchOld(ctx, int64(i)); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("parity", func(b *testing.B) {
		r, err := migration.NewReader(migration.Config[int64, Order]{
			Experiment: "bench", Operation: "get-order",
			Flags: staticStage("off"), FlagKey: "orders-migration", Publisher: newRecorder(),
			Old: benchOld, New: benchNew,
		})
		if err != nil {
			b.Fatal(err)
		}
		paced(b, func(i int) {
			if _, err := r.Read(ctx, ec, int64(i)); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// The paths where Parity only chooses the stage allocate nothing of
// Parity's own (the flag evaluator here is free).
func TestCallerAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("123", map[string]any{"country": "IN"})
	for _, tc := range []struct {
		name string
		opts []migration.Option
		flag staticStage
		kind envelope.Kind
	}{
		{"read off", nil, "off", envelope.KindRead},
		{"read complete", nil, "complete", envelope.KindRead},
		{"read shadow sampled out", []migration.Option{migration.Sampling(0)}, "shadow", envelope.KindRead},
		{"write off", nil, "off", envelope.KindWrite},
		{"write freeze", nil, "freeze", envelope.KindWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := migration.Config[int64, Order]{
				Experiment: "bench", Operation: "op", Flags: tc.flag, FlagKey: "f", Publisher: newRecorder(),
				Old: benchOld, New: benchNew,
			}
			var call func()
			if tc.kind == envelope.KindRead {
				r := mustReader(t, cfg, tc.opts...)
				call = func() { _, _ = r.Read(ctx, ec, 1) }
			} else {
				w := mustWriter(t, cfg, tc.opts...)
				call = func() { _, _ = w.Write(ctx, ec, 1) }
			}
			if n := testing.AllocsPerRun(1000, call); n != 0 {
				t.Errorf("%v allocations a call, want 0", n)
			}
		})
	}
}
