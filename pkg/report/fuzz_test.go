package report

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// FuzzEvaluate: whatever the counts and spec, Evaluate answers either an
// error naming the problem or a verdict whose numbers encode as JSON, whose
// bounds lie in [0, 1] around the observed rate, and whose rate checks agree
// with their bounds. Valid counts never give an error.
func FuzzEvaluate(f *testing.F) {
	f.Add(int64(4000), int64(25), int64(3), int64(7), int64(0), int64(2), 0.01, 0.05, int64(0))
	f.Add(int64(-5), int64(-1), int64(0), int64(-3), int64(0), int64(0), 0.01, 0.05, int64(0))
	f.Add(int64(5), int64(9), int64(0), int64(9), int64(0), int64(0), 0.01, 0.05, int64(0))
	f.Add(int64(MaxCount), int64(MaxCount/3), int64(1), int64(MaxCount/200), int64(0), int64(0), 0.001, 0.01, int64(0))
	f.Add(int64(MaxCount+1), int64(0), int64(0), int64(0), int64(0), int64(0), 0.5, 0.5, int64(0))
	f.Add(int64(1), int64(1), int64(1), int64(1), int64(1), int64(1), 0.999, 0.999, int64(-1))
	f.Add(int64(1000), int64(0), int64(0), int64(0), int64(0), int64(0), 1e-9, 1e-9, int64(3))
	f.Fuzz(func(t *testing.T, pairs, div, ctrl, cand, skipped, timeouts int64, maxRate, alpha float64, bucket int64) {
		st := SegmentStats{Counters: Counters{Pairs: pairs, Divergent: div, ControlErrors: ctrl, CandidateErrors: cand,
			Skipped: skipped, Timeouts: timeouts}}
		st.CandidateLatency = Histogram{Counts: []int64{0, bucket, 1}}
		st.ControlLatency = Histogram{Counts: []int64{0, 1, bucket}}
		spec := GateSpec{MaxRate: maxRate, Alpha: alpha, MaxCandidateErrorRate: maxRate, MaxControlErrorRate: maxRate,
			MaxP99LatencyRatio: 1.5, PerSegment: true}
		res, err := Evaluate(spec, []Segment{{Key: "s", Stats: st}}, st)
		if err != nil {
			if !errors.Is(err, ErrInvalidStats) && !errors.Is(err, ErrInvalidGateSpec) {
				t.Fatalf("error %v wraps neither ErrInvalidStats nor ErrInvalidGateSpec", err)
			}
			if spec.Validate() == nil && st.Validate() == nil {
				t.Fatalf("valid input refused: %v", err)
			}
			return
		}
		if st.Validate() != nil || spec.Validate() != nil {
			t.Fatalf("invalid input judged %s", res.Verdict)
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatalf("result does not encode: %v", err)
		}
		for _, c := range res.Overall.Checks {
			if c.Name == CheckPairs || c.Name == CheckP99Latency || c.Breach != nil || pairs == 0 {
				continue
			}
			if !(c.Low >= 0 && c.High <= 1 && c.Low <= c.Value+1e-12 && c.Value <= c.High+1e-12) {
				t.Fatalf("%s: bounds [%v, %v] around %v", c.Name, c.Low, c.High, c.Value)
			}
			if c.Verdict == Pass && !(c.High <= c.Limit) || c.Verdict == Fail && !(c.Low >= c.Limit) ||
				math.IsNaN(c.Low) || math.IsNaN(c.High) {
				t.Fatalf("%s %s with bounds [%v, %v] and limit %v", c.Name, c.Verdict, c.Low, c.High, c.Limit)
			}
		}
	})
}
