// Package demo generates synthetic traffic for the demo: pairs for an orders
// migration across countries and plans, where exactly one segment
// (country=IN, plan=pro) has a known divergence, so the dashboard shows
// something true and checkable.
//
// The divergence follows an exact schedule, not a random draw: of every 100
// consecutive pairs of country=IN,plan=pro, exactly [DivergentPerHundred]
// diverge, spread evenly (two in every 25), so the rate is 8% from the first
// second rather than only on average. Every other segment always agrees. The
// eight segments take turns, so each gets one pair in eight.
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
	Experiment = "orders-db"
	// DivergentPerHundred is how many of every 100 consecutive
	// country=IN,plan=pro pairs diverge.
	DivergentPerHundred = 8
	// DivergentRate is the same as a fraction.
	DivergentRate = DivergentPerHundred / 100.0
	// DivergentSegment is the segment that diverges, as the dashboard names it.
	DivergentSegment = "country=IN,plan=pro"
	// Segments is how many segments the demo's traffic has.
	Segments = 8
	// DefaultRate is the demo's pairs per second (`make demo`).
	DefaultRate = 200
)

// Gate is the promotion gate the demo stores for its experiment (when none
// is stored): divergence at most 1% over at least 1,000 pairs per segment.
// At the default 200 pairs per second every segment has 1,000 pairs after
// 40 seconds, so the seven good segments pass and country=IN,plan=pro
// fails within the first minute. (The collector's default limit, 0.1%, needs
// about 5,700 agreeing pairs to pass a segment: four minutes of demo
// traffic.)
var Gate = struct {
	MaxRate  float64
	MinPairs int64
}{MaxRate: 0.01, MinPairs: 1000}

var (
	countries = []string{"IN", "US", "DE", "BR"}
	plans     = []string{"free", "pro"}
)

// Pair returns the i-th demo pair at time now. It is deterministic in i: user
// i%5000 always has the same country and plan (pair i is in segment i%8,
// country=IN,plan=pro when i%8 == 4), and whether pair i diverges follows
// [Diverges].
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
	if country == "IN" && plan == "pro" && Diverges(i/8) {
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

// Diverges says whether the k-th pair (from 0) of country=IN,plan=pro
// diverges: exactly DivergentPerHundred of every 100 consecutive k do, evenly
// spaced, starting with k = 0.
func Diverges(k uint64) bool {
	return k*DivergentPerHundred%100 < DivergentPerHundred
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
