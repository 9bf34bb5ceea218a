package report

import (
	"math"
	"slices"
	"testing"
	"time"
)

// hist returns a histogram with n observations of each duration.
func hist(n int64, ds ...time.Duration) Histogram {
	var h Histogram
	for _, d := range ds {
		h.ObserveN(d, n)
	}
	return h
}

func TestSegmentStatsAdd(t *testing.T) {
	a := SegmentStats{Counters: Counters{Pairs: 100, Divergent: 2, ControlErrors: 1, CandidateErrors: 3, Skipped: 4, Timeouts: 5}, ControlLatency: hist(1, time.Millisecond), CandidateLatency: hist(2, time.Millisecond)}
	b := SegmentStats{Counters: Counters{Pairs: 50, Divergent: 1, ControlErrors: 0, CandidateErrors: 2, Skipped: 1, Timeouts: 1}, ControlLatency: hist(3, time.Second)}
	var sum SegmentStats
	sum.Add(a)
	sum.Add(b)
	want := SegmentStats{Counters: Counters{Pairs: 150, Divergent: 3, ControlErrors: 1, CandidateErrors: 5, Skipped: 5, Timeouts: 6}}
	got := sum
	got.ControlLatency, got.CandidateLatency = Histogram{}, Histogram{}
	if got.Pairs != want.Pairs || got.Divergent != want.Divergent || got.ControlErrors != want.ControlErrors ||
		got.CandidateErrors != want.CandidateErrors || got.Skipped != want.Skipped || got.Timeouts != want.Timeouts {
		t.Errorf("sum = %+v, want %+v", got, want)
	}
	if sum.ControlLatency.Count() != 4 || sum.CandidateLatency.Count() != 2 {
		t.Errorf("latency counts %d, %d, want 4, 2", sum.ControlLatency.Count(), sum.CandidateLatency.Count())
	}
	// The order does not matter, and the sum owns its histograms.
	var rev SegmentStats
	rev.Add(b)
	rev.Add(a)
	if !slices.Equal(rev.ControlLatency.Encode(), sum.ControlLatency.Encode()) {
		t.Errorf("Add is not commutative on histograms")
	}
	a.ControlLatency.Counts[BucketOf(time.Millisecond)] = 1000
	if sum.ControlLatency.Count() != 4 {
		t.Errorf("changing an added histogram changed the sum")
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name        string
		stats       SegmentStats
		want        ErrorComparison
		explanation string
	}{
		{name: "no pairs", stats: SegmentStats{}, want: ErrorComparison{},
			explanation: "no division by zero"},
		{name: "candidate fails more", stats: SegmentStats{Counters: Counters{Pairs: 1000, ControlErrors: 2, CandidateErrors: 6}},
			want: ErrorComparison{Control: 0.002, Candidate: 0.006, Difference: 0.004, Ratio: 3}},
		{name: "candidate fails less", stats: SegmentStats{Counters: Counters{Pairs: 1000, ControlErrors: 4, CandidateErrors: 1}},
			want: ErrorComparison{Control: 0.004, Candidate: 0.001, Difference: -0.003, Ratio: 0.25}},
		{name: "control never fails", stats: SegmentStats{Counters: Counters{Pairs: 1000, CandidateErrors: 5}},
			want:        ErrorComparison{Control: 0, Candidate: 0.005, Difference: 0.005, Ratio: 0},
			explanation: "the ratio is undefined and reported as 0; the difference says it all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.stats.Errors()
			if !near(got.Control, tt.want.Control) || !near(got.Candidate, tt.want.Candidate) ||
				!near(got.Difference, tt.want.Difference) || !near(got.Ratio, tt.want.Ratio) {
				t.Errorf("Errors() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLatencyRatio(t *testing.T) {
	tests := []struct {
		name        string
		stats       SegmentStats
		want        float64
		explanation string
	}{
		{name: "no latencies", stats: SegmentStats{}, want: 0},
		{name: "only control", stats: SegmentStats{ControlLatency: hist(10, time.Millisecond)}, want: 0},
		{name: "same distribution", stats: SegmentStats{ControlLatency: hist(100, time.Millisecond, 9*time.Millisecond),
			CandidateLatency: hist(7, time.Millisecond, 9*time.Millisecond)}, want: 1,
			explanation: "the same quantile bucket on both sides is exactly 1, whatever the counts"},
		{name: "candidate twice as slow", stats: SegmentStats{ControlLatency: hist(100, 4*time.Millisecond),
			CandidateLatency: hist(100, 8*time.Millisecond)}, want: 2,
			explanation: "a factor two is exactly eight buckets, so the middles are a factor two apart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.stats.LatencyRatio(0.99)
			if math.Abs(got-tt.want) > 1e-6 {
				t.Errorf("LatencyRatio = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMarginals(t *testing.T) {
	seg := func(country, plan string, pairs, div int64) Segment {
		return Segment{Key: "country=" + country + ",plan=" + plan, Attrs: map[string]string{"country": country, "plan": plan},
			Stats: SegmentStats{Counters: Counters{Pairs: pairs, Divergent: div}}}
	}
	segments := []Segment{
		seg("IN", "pro", 100, 1),
		seg("US", "free", 1000, 3),
		seg("IN", "free", 300, 2),
		{Key: "other", Stats: SegmentStats{Counters: Counters{Pairs: 7, Divergent: 7}}},
	}
	got := Marginals(segments)
	want := []struct {
		key        string
		pairs, div int64
	}{
		{"country=IN", 400, 3},
		{"country=US", 1000, 3},
		{"plan=free", 1300, 5},
		{"plan=pro", 100, 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d marginals, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		attr, value, _ := cut(w.key)
		if g.Key != w.key || g.Stats.Pairs != w.pairs || g.Stats.Divergent != w.div || len(g.Attrs) != 1 || g.Attrs[attr] != value {
			t.Errorf("marginal %d = %s %v %d/%d, want %s %d/%d", i, g.Key, g.Attrs, g.Stats.Divergent, g.Stats.Pairs, w.key, w.div, w.pairs)
		}
	}
	if tot := Total(segments); tot.Pairs != 1407 || tot.Divergent != 13 {
		t.Errorf("Total = %d/%d, want 13/1407 (the overflow segment included)", tot.Divergent, tot.Pairs)
	}
	if Marginals(nil) == nil || len(Marginals(nil)) != 0 {
		t.Errorf("Marginals(nil) should be an empty, non-nil slice")
	}
}

func cut(kv string) (string, string, bool) {
	for i := range kv {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}
