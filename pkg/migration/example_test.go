package migration_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/migration"
)

type Order struct {
	ID    int64  `json:"id"`
	Total int64  `json:"total_cents"`
	State string `json:"state"`
}

// oldStore and newStore stand for the database being migrated from and the
// one being migrated to.
type store map[int64]Order

func (s store) Order(_ context.Context, id int64) (Order, error) {
	o, ok := s[id]
	if !ok {
		return Order{}, fmt.Errorf("order %d: not found", id)
	}
	return o, nil
}

func (s store) SetState(_ context.Context, o Order) (migration.WriteResult, error) {
	if _, ok := s[o.ID]; !ok {
		return migration.WriteResult{}, nil
	}
	s[o.ID] = o
	return migration.WriteResult{RowsAffected: 1}, nil
}

// printer stands for *publish.Publisher; it prints a summary of each pair.
type printer struct{}

func (printer) Publish(p *envelope.Pair) bool {
	fmt.Printf("pair on %s: stage %s, user %s %v, control %s %s, candidate %s %s, verdict %q\n",
		p.Subject(), p.Stage, p.User.Key, p.User.Attrs,
		p.Control.Outcome(), p.Control.Value, p.Candidate.Outcome(), p.Candidate.Value, p.ClientVerdict)
	return true
}

// stageFlags is the rollout flag: the testing group (users 123 and 456)
// reads in shadow, everyone else is off. In production the flag lives in
// your feature-flag service.
func stageFlags() *openfeature.Client {
	rollout := func(f memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if key := fc[openfeature.TargetingKey]; key == "123" || key == "456" {
			return "shadow", openfeature.ProviderResolutionDetail{Variant: "shadow", Reason: openfeature.TargetingMatchReason}
		}
		return "off", openfeature.ProviderResolutionDetail{Variant: "off", Reason: openfeature.DefaultReason}
	}
	api := isolated.NewAPI() // an application would use openfeature.SetProviderAndWait and NewDefaultClient
	_ = api.SetProviderAndWait(context.Background(), memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		"orders-migration": {Key: "orders-migration", State: memprovider.Enabled, DefaultVariant: "off",
			Variants: map[string]any{"off": "off", "shadow": "shadow"}, ContextEvaluator: &rollout},
	}))
	return api.NewClient()
}

func Example() {
	ctx := context.Background()
	oldDB := store{42: {ID: 42, Total: 1999, State: "paid"}}
	newDB := store{42: {ID: 42, Total: 1999, State: "paid"}}

	orders, err := migration.NewReader(migration.Config[int64, Order]{
		Experiment: "orders-pg",
		Operation:  "get-order",
		Flags:      stageFlags(),
		FlagKey:    "orders-migration",
		Publisher:  printer{}, // usually publish.New(nc, publish.Options{})
		Old:        oldDB.Order,
		New:        newDB.Order,
		Compare:    migration.CmpEqual[Order](),
	}, migration.Timeout(500*time.Millisecond))
	if err != nil {
		panic(err)
	}

	// User 123 is in the testing group: served from the old store, compared
	// with the new one off the request's path.
	ec := openfeature.NewEvaluationContext("123", map[string]any{"country": "IN", "plan": "pro"})
	order, err := orders.Read(ctx, ec, 42)
	_ = orders.Wait(ctx) // only so that the pair (printed in the background) comes first
	fmt.Println(order, err)

	// User 789 is not: the stage is off, only the old store is read.
	order, err = orders.Read(ctx, openfeature.NewEvaluationContext("789", nil), 42)
	fmt.Println(order, err)
	fmt.Printf("%+v\n", orders.Stats())
	// Output:
	// pair on parity.pairs.orders-pg.get-order: stage shadow, user 123 map[country:IN plan:pro], control ok {"id":42,"total_cents":1999,"state":"paid"}, candidate ok {"id":42,"total_cents":1999,"state":"paid"}, verdict "match"
	// {42 1999 paid} <nil>
	// {42 1999 paid} <nil>
	// {Experiment:orders-pg Operation:get-order Kind:read Calls:2 Offered:1 Published:1 Dropped:0 SampledOut:0 Pending:0 FlagErrors:0 Panics:0 Timeouts:0 MarshalErrors:0 Frozen:0 InFlight:0}
}

// A write in the shadow stage goes to the old store first, then the new
// one; the caller gets the old store's result. Rows affected are part of
// the result, so the verifier compares them.
func ExampleWriter_Write() {
	ctx := context.Background()
	oldDB := store{42: {ID: 42, Total: 1999, State: "paid"}}
	newDB := store{} // the backfill has not reached order 42 yet

	setState, err := migration.NewWriter(migration.Config[Order, migration.WriteResult]{
		Experiment: "orders-pg", Operation: "set-state",
		Flags: stageFlags(), FlagKey: "orders-migration", Publisher: printer{},
		Old: oldDB.SetState, New: newDB.SetState,
		Compare: func(a, b migration.WriteResult) bool { return a == b },
	})
	if err != nil {
		panic(err)
	}
	res, err := setState.Write(ctx, openfeature.NewEvaluationContext("456", nil), Order{ID: 42, Total: 1999, State: "shipped"})
	_ = setState.Wait(ctx) // only so that the pair (printed in the background) comes first
	fmt.Println(res.RowsAffected, err)
	// Output:
	// pair on parity.pairs.orders-pg.set-state: stage shadow, user 456 map[], control ok {"rows_affected":1}, candidate ok {"rows_affected":0}, verdict "mismatch"
	// 1 <nil>
}

// During a bulk copy the flag says "freeze": writes fail fast with an error
// the handler can map to 503 Service Unavailable.
func ExampleErrWriteFrozen() {
	w, _ := migration.NewWriter(migration.Config[Order, migration.WriteResult]{
		Experiment: "orders-pg", Operation: "set-state",
		Flags: staticStage("freeze"), FlagKey: "orders-migration", Publisher: printer{},
		Old: store{}.SetState, New: store{}.SetState,
	})
	_, err := w.Write(context.Background(), openfeature.NewEvaluationContext("123", nil), Order{ID: 1})
	fmt.Println(errors.Is(err, migration.ErrWriteFrozen), err)
	// Output:
	// true migration: writes are frozen (experiment orders-pg, operation set-state)
}

// Sampling(0) publishes nothing, yet WithSampling can still put one call in
// the sample, for example to trace one request end to end.
func ExampleWithSampling() {
	db := store{7: {ID: 7, Total: 500, State: "new"}}
	r, _ := migration.NewReader(migration.Config[int64, Order]{
		Experiment: "orders-pg", Operation: "get-order",
		Flags: staticStage("live"), FlagKey: "orders-migration", Publisher: printer{},
		Old: db.Order, New: db.Order,
	}, migration.Sampling(0))
	ec := openfeature.NewEvaluationContext("123", nil)

	_, _ = r.Read(context.Background(), ec, 7) // not compared
	_, _ = r.Read(migration.WithSampling(context.Background(), 1), ec, 7)
	_ = r.Wait(context.Background())
	fmt.Printf("sampled out %d, published %d\n", r.Stats().SampledOut, r.Stats().Published)
	// Output:
	// pair on parity.pairs.orders-pg.get-order: stage live, user 123 map[], control ok {"id":7,"total_cents":500,"state":"new"}, candidate ok {"id":7,"total_cents":500,"state":"new"}, verdict ""
	// sampled out 1, published 1
}

// staticStage is a FlagEvaluator that always answers the same stage.
type staticStage string

func (s staticStage) StringValueDetails(context.Context, string, string, openfeature.EvaluationContext, ...openfeature.Option) (openfeature.StringEvaluationDetails, error) {
	return openfeature.StringEvaluationDetails{Value: string(s), EvaluationDetails: openfeature.EvaluationDetails{
		ResolutionDetail: openfeature.ResolutionDetail{Variant: string(s), Reason: openfeature.StaticReason}}}, nil
}
