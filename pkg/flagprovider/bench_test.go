package flagprovider_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"

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
