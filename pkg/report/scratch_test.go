package report

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestScratch(t *testing.T) {
	for _, c := range [][2]int64{{0, 10}, {0, 1000}, {12, 3870}, {25, 4000}, {41, 4000}, {96, 4000}, {5, 100}, {50, 100}, {1, 1000}, {0, 300}} {
		lo, hi := ConfidenceSequence(c[0], c[1], 0.05, 0.01)
		wl, wh := Wilson(c[0], c[1], Z95)
		fmt.Printf("%v cs=[%.5f %.5f] wilson=[%.5f %.5f] more=%d\n", c, lo, hi, wl, wh, trialsToBelow(c[0], c[1], 0, 0.05, 0.01))
	}
	var ctrl, cand Histogram
	for i := range 10000 {
		ctrl.Observe(time.Duration(1000+i%1000) * time.Microsecond)
		cand.Observe(time.Duration(2300+i%1000*23/10) * time.Microsecond)
	}
	fmt.Println(ctrl.Quantile(.99), cand.Quantile(.99), len(ctrl.Encode()))
	fmt.Println(ctrl.QuantileBounds(.99, .05))
	fmt.Println(cand.QuantileBounds(.99, .05))
	segs := []Segment{
		{Key: "country=IN,plan=pro", Attrs: map[string]string{"country": "IN", "plan": "pro"}, Stats: SegmentStats{Pairs: 4000, Divergent: 96, CandidateErrors: 3, ControlErrors: 1, ControlLatency: ctrl, CandidateLatency: cand}},
		{Key: "country=US,plan=pro", Attrs: map[string]string{"country": "US", "plan": "pro"}, Stats: SegmentStats{Pairs: 4000, Divergent: 25}},
		{Key: "country=US,plan=free", Attrs: map[string]string{"country": "US", "plan": "free"}, Stats: SegmentStats{Pairs: 3870, Divergent: 12}},
	}
	res, err := Evaluate(GateSpec{MaxRate: 0.01, MinPairs: 5000, PerSegment: true, MaxCandidateErrorRate: 0.01, MaxP99LatencyRatio: 1.5}, segs, Total(segs))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(res, "", " ")
	fmt.Println(string(b))
	for _, m := range Marginals(segs) {
		fmt.Println(m.Key, m.Stats.Pairs, m.Stats.Divergent)
	}
}
