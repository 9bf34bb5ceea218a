package flagprovider_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/flagprovider"
	"github.com/parityhq/parity/pkg/rollout"
)

// benchPlan has users, rules and percentages, so an evaluation converts the
// context's attributes and hashes the targeting key.
func benchPlan() rollout.Plan {
	p := livePlan(5, 25)
	p.Steps = append(p.Steps, rollout.Step{Stage: live, Audience: rollout.Audience{
		Users: []string{"123", "456"},
		Rules: []rollout.Rule{{Attribute: "country", In: []string{"IN", "US"}}, {Attribute: "plan", In: []string{"pro"}}},
	}})
	return p
}

func benchProvider(b *testing.B) *flagprovider.Provider {
	b.Helper()
	ns := testutil.RunJetStream(b)
	nc := testutil.Connect(b, ns)
	e := &env{ns: ns, nc: nc, kv: createBucket(b, nc)}
	e.put(b, doc("orders", 1, benchPlan()))
	p, err := flagprovider.New(testutil.Connect(b, ns), flagprovider.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Shutdown)
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkStringEvaluation(b *testing.B) {
	p := benchProvider(b)
	ctx := context.Background()
	fc := openfeature.FlattenedContext{openfeature.TargetingKey: "user-42", "country": "DE", "plan": "free", "beta": true}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.StringEvaluation(ctx, "orders", "off", fc); d.Value == "off" {
			b.Fatal("not evaluated")
		}
	}
}

func BenchmarkStringEvaluationParallel(b *testing.B) {
	p := benchProvider(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		fc := openfeature.FlattenedContext{openfeature.TargetingKey: "user-42", "country": "DE"}
		for pb.Next() {
			p.StringEvaluation(ctx, "orders", "off", fc)
		}
	})
}

// BenchmarkFlagEvaluation is one evaluation of the stage flag through an
// OpenFeature client, as the migration helpers make it: with Parity's
// provider, and for reference with the SDK's in-memory provider running an
// equivalent targeting function (users, then rules, then a hashed
// percentage) in the same run.
func BenchmarkFlagEvaluation(b *testing.B) {
	ec := openfeature.NewEvaluationContext("user-42", map[string]any{"country": "DE", "plan": "free"})
	run := func(b *testing.B, p openfeature.FeatureProvider) {
		api := isolated.NewAPI()
		if err := api.SetProviderAndWait(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = api.Shutdown(context.Background()) })
		c := api.NewClient()
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if v, _ := c.StringValue(ctx, "orders", "off", ec); v == "" {
				b.Fatal("no value")
			}
		}
	}
	b.Run("parity", func(b *testing.B) { run(b, benchProvider(b)) })
	b.Run("reference", func(b *testing.B) {
		plan := benchPlan()
		eval := func(f memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
			key, _ := fc[openfeature.TargetingKey].(string)
			attrs := rollout.StringAttrs(fc)
			d := rollout.Decide(plan, rollout.State{Step: len(plan.Steps)}, key, attrs)
			return string(d.Stage), openfeature.ProviderResolutionDetail{Variant: string(d.Stage), Reason: openfeature.Reason(d.Reason)}
		}
		run(b, memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
			"orders": {Key: "orders", State: memprovider.Enabled, DefaultVariant: "off",
				Variants: map[string]any{"off": "off"}, ContextEvaluator: &eval},
		}))
	})
}
