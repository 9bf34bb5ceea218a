// Package demo generates synthetic traffic for the demo: pairs for an orders
// migration across countries and plans, where exactly one segment
// (country=IN, plan=pro) has a known divergence, so the dashboard shows
// something true and checkable.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
)

// Publisher takes pairs without blocking. *publish.Publisher satisfies it.
type Publisher interface {
	Publish(p *envelope.Pair) bool
}

// The demo's shape.
const (
	Experiment    = "orders-db"
	DivergentRate = 0.08 // of country=IN,plan=pro pairs
)

var (
	countries = []string{"IN", "US", "DE", "BR"}
	plans     = []string{"free", "pro"}
)

// Pair returns the i-th demo pair at time now. It is deterministic in i: user
// i%5000 always has the same country and plan, and whether pair i diverges is
// decided by a generator seeded with i.
func Pair(i uint64, now time.Time) *envelope.Pair {
	r := rand.New(rand.NewPCG(i, 0x9a11))
	user := i % 5000
	country, plan := countries[user%4], plans[(user/4)%2]
	order := map[string]any{
		"id":     fmt.Sprintf("o-%d", i),
		"user":   fmt.Sprintf("u-%d", user),
		"status": "paid",
		"items": []map[string]any{
			{"sku": "sku-1", "qty": 1 + r.IntN(3), "price": 1999},
			{"sku": "sku-2", "qty": 1, "price": 550},
		},
		"currency": "EUR",
	}
	control, _ := json.Marshal(order)
	candidate := control
	if country == "IN" && plan == "pro" && r.Float64() < DivergentRate {
		order["items"].([]map[string]any)[1]["price"] = 549 // the new store rounds prices differently
		candidate, _ = json.Marshal(order)
	}
	return &envelope.Pair{
		Version: envelope.Version, ID: fmt.Sprintf("demo-%d-%d", now.UnixNano(), i),
		Experiment: Experiment, Operation: "GetOrder", Kind: envelope.KindRead,
		Time: now, Stage: envelope.StageShadow,
		User:      envelope.User{Key: fmt.Sprintf("u-%d", user), Attrs: map[string]string{"country": country, "plan": plan}},
		Control:   envelope.Observation{Value: control, DurationNS: int64(2*time.Millisecond + time.Duration(r.IntN(1000))*time.Microsecond)},
		Candidate: envelope.Observation{Value: candidate, DurationNS: int64(time.Millisecond + time.Duration(r.IntN(3000))*time.Microsecond)},
	}
}

// Run publishes rate pairs per second until ctx ends.
func Run(ctx context.Context, pub Publisher, rate int) error {
	if rate < 1 {
		return fmt.Errorf("demo: rate must be at least 1 pair/s, got %d", rate)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var i uint64
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			due := uint64(now.Sub(start).Seconds() * float64(rate))
			for ; i < due; i++ {
				pub.Publish(Pair(i, now.UTC()))
			}
		}
	}
}
