package report

import (
	"sort"
	"time"
)

// SegmentStats are the counts of one segment (or any union of segments and
// minutes): the [Counters] the verifiers store plus latency histograms of both
// sides. The zero SegmentStats is empty and ready to use.
type SegmentStats struct {
	Counters

	ControlLatency   Histogram `json:"control_latency"`
	CandidateLatency Histogram `json:"candidate_latency"`
}

// Add adds o to s: counters add ([Counters.Add]), histograms
// [Histogram.Merge]. Adding is exact, commutative and associative, so stats
// merge across verifiers, minutes and segments in any order. s never shares
// memory with o afterwards.
func (s *SegmentStats) Add(o SegmentStats) {
	s.Counters.Add(o.Counters)
	s.ControlLatency.Merge(o.ControlLatency)
	s.CandidateLatency.Merge(o.CandidateLatency)
}

// Divergence returns the divergence rate with its 95% Wilson interval, for
// display. The promotion gate judges with [ConfidenceSequence] instead.
func (s SegmentStats) Divergence() Rate { return NewRate(s.Divergent, s.Pairs) }

// ErrorComparison sets the candidate's error rate against the control's.
type ErrorComparison struct {
	Control   float64 `json:"control_rate"`   // ControlErrors / Pairs
	Candidate float64 `json:"candidate_rate"` // CandidateErrors / Pairs
	// Difference is Candidate - Control: the errors the candidate adds, per
	// pair.
	Difference float64 `json:"difference"`
	// Ratio is Candidate / Control. It is undefined when the control had no
	// errors and is then reported as 0: read Difference.
	Ratio float64 `json:"ratio"`
}

// Errors compares the sides' error rates. Without pairs every field is 0.
func (s SegmentStats) Errors() ErrorComparison {
	if s.Pairs <= 0 {
		return ErrorComparison{}
	}
	n := float64(s.Pairs)
	e := ErrorComparison{Control: float64(s.ControlErrors) / n, Candidate: float64(s.CandidateErrors) / n}
	e.Difference = e.Candidate - e.Control
	if s.ControlErrors > 0 {
		e.Ratio = e.Candidate / e.Control
	}
	return e
}

// LatencyRatio returns the candidate's q-quantile latency over the control's
// (q = 0.99 for p99), each as [Histogram.Quantile] reports it; 0 when either
// side has no latencies. The ratio is within about ±9% of the exact ratio
// (each quantile within [HistogramRelativeError]).
func (s SegmentStats) LatencyRatio(q float64) float64 {
	cand, ctrl := s.CandidateLatency.Quantile(q), s.ControlLatency.Quantile(q)
	if cand == 0 || ctrl == 0 {
		return 0
	}
	return float64(cand) / float64(ctrl)
}

// LatencyQuantiles returns the candidate's and the control's q-quantile
// latency.
func (s SegmentStats) LatencyQuantiles(q float64) (candidate, control time.Duration) {
	return s.CandidateLatency.Quantile(q), s.ControlLatency.Quantile(q)
}

// Segment is one segment's stats with its identity.
type Segment struct {
	// Key is the canonical segment key, e.g. "country=IN,plan=pro".
	Key string `json:"segment"`
	// Attrs are the segment's attribute values, e.g.
	// {"country": "IN", "plan": "pro"}.
	Attrs map[string]string `json:"attrs,omitempty"`
	Stats SegmentStats      `json:"stats"`
	// Minutes are the segment's counts minute by minute since the same
	// anchor as Stats, in time order, for the change detector
	// ([DetectBreach]); [Evaluate] runs it on every segment whose Minutes
	// are not nil, and on their sum for the total. nil leaves it off.
	Minutes []Minute `json:"-"`
}

// Total returns the sum of the segments' stats.
func Total(segments []Segment) SegmentStats {
	var t SegmentStats
	for _, s := range segments {
		t.Add(s.Stats)
	}
	return t
}

// Marginals returns, for every attribute and every value it takes, the sum
// of the stats of the segments with that value: from segments keyed by
// {country, plan}, one segment for country=IN across all plans, one for
// plan=pro across all countries, and so on. Each marginal has the key
// "attr=value" and the single attribute in Attrs. They are ordered by
// attribute, then value. A segment without Attrs (such as the overflow
// segment "other") is in no marginal, so marginals of one attribute add up
// to the total of the segments that carry it.
func Marginals(segments []Segment) []Segment {
	type av struct{ attr, value string }
	sums := make(map[av]*SegmentStats)
	for _, s := range segments {
		for k, v := range s.Attrs {
			key := av{k, v}
			st := sums[key]
			if st == nil {
				st = new(SegmentStats)
				sums[key] = st
			}
			st.Add(s.Stats)
		}
	}
	keys := make([]av, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].attr != keys[j].attr {
			return keys[i].attr < keys[j].attr
		}
		return keys[i].value < keys[j].value
	})
	out := make([]Segment, len(keys))
	for i, k := range keys {
		out[i] = Segment{Key: k.attr + "=" + k.value, Attrs: map[string]string{k.attr: k.value}, Stats: *sums[k]}
	}
	return out
}
