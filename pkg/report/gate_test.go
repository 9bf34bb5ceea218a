package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestGateSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec GateSpec
		want string // "" for valid
	}{
		{name: "minimal", spec: GateSpec{MaxRate: 0.01}},
		{name: "everything set", spec: GateSpec{MaxRate: 0.005, MinPairs: 5000, Window: time.Hour, PerSegment: true,
			MaxCandidateErrorRate: 0.01, MaxP99LatencyRatio: 1.5, Alpha: 0.01}},
		{name: "MaxRate missing", spec: GateSpec{}, want: "report: invalid gate spec: MaxRate 0 is not in (0, 1)"},
		{name: "MaxRate 1", spec: GateSpec{MaxRate: 1}, want: "report: invalid gate spec: MaxRate 1 is not in (0, 1)"},
		{name: "MaxRate NaN", spec: GateSpec{MaxRate: math.NaN()}, want: "report: invalid gate spec: MaxRate NaN is not in (0, 1)"},
		{name: "MinPairs negative", spec: GateSpec{MaxRate: 0.01, MinPairs: -1}, want: "report: invalid gate spec: MinPairs -1 is negative"},
		{name: "Window negative", spec: GateSpec{MaxRate: 0.01, Window: -time.Minute}, want: "report: invalid gate spec: Window -1m0s is negative"},
		{name: "MaxCandidateErrorRate above 1", spec: GateSpec{MaxRate: 0.01, MaxCandidateErrorRate: 2},
			want: "report: invalid gate spec: MaxCandidateErrorRate 2 is not 0 (unchecked) or in (0, 1)"},
		{name: "MaxP99LatencyRatio negative", spec: GateSpec{MaxRate: 0.01, MaxP99LatencyRatio: -1.5},
			want: "report: invalid gate spec: MaxP99LatencyRatio -1.5 is not 0 (unchecked) or a positive ratio"},
		{name: "MaxP99LatencyRatio infinite", spec: GateSpec{MaxRate: 0.01, MaxP99LatencyRatio: math.Inf(1)},
			want: "report: invalid gate spec: MaxP99LatencyRatio +Inf is not 0 (unchecked) or a positive ratio"},
		{name: "Alpha 1", spec: GateSpec{MaxRate: 0.01, Alpha: 1}, want: "report: invalid gate spec: Alpha 1 is not 0 (default) or in (0, 1)"},
		{name: "MaxControlErrorRate negative", spec: GateSpec{MaxRate: 0.01, MaxControlErrorRate: -0.1},
			want: "report: invalid gate spec: MaxControlErrorRate -0.1 is not 0 (unchecked) or in (0, 1)"},
		{name: "FalseBreachUnitMinutes 1", spec: GateSpec{MaxRate: 0.01, FalseBreachUnitMinutes: 1},
			want: "report: invalid gate spec: FalseBreachUnitMinutes 1 is not 0 (default) or a finite number above 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalidGateSpec) {
				t.Errorf("Validate() = %v, want %q wrapping ErrInvalidGateSpec", err, tt.want)
			}
			if _, err := Evaluate(tt.spec, nil, SegmentStats{}); err == nil {
				t.Errorf("Evaluate accepted an invalid spec")
			}
		})
	}
}

func stats(div, pairs int64) SegmentStats {
	return SegmentStats{Counters: Counters{Pairs: pairs, Divergent: div}}
}

func TestEvaluate(t *testing.T) {
	slow := SegmentStats{Counters: Counters{Pairs: 10000, Divergent: 10}, ControlLatency: hist(10000, 2*time.Millisecond), CandidateLatency: hist(10000, 5*time.Millisecond)}
	fast := SegmentStats{Counters: Counters{Pairs: 10000, Divergent: 10}, ControlLatency: hist(10000, 2*time.Millisecond), CandidateLatency: hist(10000, 2200*time.Microsecond)}
	seg := func(key string, st SegmentStats) Segment { return Segment{Key: key, Stats: st} }
	tests := []struct {
		name        string
		spec        GateSpec
		segments    []Segment
		total       SegmentStats
		verdict     Verdict
		reason      string
		more        int64     // Overall.MorePairs
		segVerdicts []Verdict // of Segments, in order
		explanation string
	}{
		{name: "clean total passes", spec: GateSpec{MaxRate: 0.01}, total: stats(12, 3870), verdict: Pass,
			reason: "divergence 0.31% (12 of 3,870 pairs), anytime upper bound 0.602% ≤ 1% limit"},
		{name: "no pairs", spec: GateSpec{MaxRate: 0.01}, total: SegmentStats{}, verdict: Inconclusive,
			reason: "no pairs yet", more: -1},
		{name: "needs more pairs", spec: GateSpec{MaxRate: 0.01}, total: stats(25, 4000), verdict: Inconclusive,
			reason:      "divergence 0.625% (25 of 4,000 pairs), anytime bounds 0.346%–1.03% straddle the 1% limit; needs ~630 more pairs at this rate",
			more:        632,
			explanation: "the Wilson interval (0.42%–0.92%) would pass already; the anytime bound waits"},
		{name: "at the limit cannot pass", spec: GateSpec{MaxRate: 0.01}, total: stats(41, 4000), verdict: Inconclusive,
			reason: "divergence 1.03% (41 of 4,000 pairs), anytime bounds 0.638%–1.55% straddle the 1% limit; cannot pass at this rate",
			more:   -1},
		{name: "too divergent fails", spec: GateSpec{MaxRate: 0.01}, total: stats(96, 4000), verdict: Fail,
			reason: "divergence 2.4% (96 of 4,000 pairs), anytime lower bound 1.73% > 1% limit"},
		{name: "fails before MinPairs", spec: GateSpec{MaxRate: 0.01, MinPairs: 5000}, total: stats(96, 4000), verdict: Fail,
			reason:      "divergence 2.4% (96 of 4,000 pairs), anytime lower bound 1.73% > 1% limit",
			explanation: "MinPairs holds back a pass, never a fail: clear bad news acts at once"},
		{name: "MinPairs holds back a pass", spec: GateSpec{MaxRate: 0.01, MinPairs: 5000}, total: stats(0, 1000), verdict: Inconclusive,
			reason: "needs 4,000 more pairs to reach the 5,000 minimum", more: 4000},
		{name: "MinPairs met", spec: GateSpec{MaxRate: 0.01, MinPairs: 5000}, total: stats(12, 6000), verdict: Pass,
			reason: "6,000 pairs ≥ 5,000 minimum; divergence 0.2% (12 of 6,000 pairs), anytime upper bound 0.388% ≤ 1% limit"},
		{name: "candidate errors fail", spec: GateSpec{MaxRate: 0.01, MaxCandidateErrorRate: 0.01},
			total: SegmentStats{Counters: Counters{Pairs: 4000, Divergent: 4, ControlErrors: 4, CandidateErrors: 120}}, verdict: Fail,
			reason: "candidate errors 3% (120 of 4,000 pairs; control 0.1%), anytime lower bound 2.23% > 1% limit"},
		{name: "candidate errors pass", spec: GateSpec{MaxRate: 0.01, MaxCandidateErrorRate: 0.01},
			total: SegmentStats{Counters: Counters{Pairs: 4000, Divergent: 4, ControlErrors: 4, CandidateErrors: 4}}, verdict: Pass,
			reason: "divergence 0.1% (4 of 4,000 pairs), anytime upper bound 0.292% ≤ 1% limit; candidate errors 0.1% (4 of 4,000 pairs; control 0.1%), anytime upper bound 0.292% ≤ 1% limit"},
		{name: "control errors are not divergence", spec: GateSpec{MaxRate: 0.01},
			total: SegmentStats{Counters: Counters{Pairs: 4000, Divergent: 4, ControlErrors: 960}}, verdict: Pass,
			reason:      "divergence 0.1% (4 of 4,000 pairs), anytime upper bound 0.292% ≤ 1% limit",
			explanation: "an old path failing 24% of the time does not count against the new one"},
		{name: "control errors limited separately", spec: GateSpec{MaxRate: 0.01, MaxControlErrorRate: 0.05},
			total: SegmentStats{Counters: Counters{Pairs: 4000, Divergent: 4, ControlErrors: 960}}, verdict: Fail,
			reason: "control errors 24% (960 of 4,000 pairs), anytime lower bound 21.6% > 5% limit"},
		{name: "slow candidate fails", spec: GateSpec{MaxRate: 0.01, MaxP99LatencyRatio: 1.5}, total: slow, verdict: Fail,
			reason: "p99 latency 2.59× control (5.09ms vs 1.96ms), at least 2.59× > 1.5× limit"},
		{name: "fast candidate passes", spec: GateSpec{MaxRate: 0.01, MaxP99LatencyRatio: 1.5}, total: fast, verdict: Pass,
			reason: "divergence 0.1% (10 of 10,000 pairs), anytime upper bound 0.205% ≤ 1% limit; p99 latency 1.09× control (2.14ms vs 1.96ms), at most 1.09× ≤ 1.5× limit"},
		{name: "latency unknown", spec: GateSpec{MaxRate: 0.01, MaxP99LatencyRatio: 1.5}, total: stats(10, 10000), verdict: Inconclusive,
			reason: "no latencies recorded on both sides yet", more: -1,
			explanation: "a check that is asked for is never skipped for want of data"},
		{name: "total only: a bad segment does not decide", spec: GateSpec{MaxRate: 0.01},
			segments: []Segment{seg("a", stats(60, 2000)), seg("b", stats(0, 20000))}, total: stats(60, 22000),
			verdict: Pass, segVerdicts: []Verdict{Fail, Pass},
			reason:      "divergence 0.273% (60 of 22,000 pairs), anytime upper bound 0.391% ≤ 1% limit",
			explanation: "without PerSegment only the total is judged; segments are evaluated for display"},
		{name: "per segment: one fails", spec: GateSpec{MaxRate: 0.01, PerSegment: true},
			segments: []Segment{seg("a", stats(60, 2000)), seg("b", stats(0, 20000))}, total: stats(60, 22000),
			verdict: Fail, segVerdicts: []Verdict{Fail, Pass},
			reason: "1 of 2 segments fails: a (divergence 3% (60 of 2,000 pairs), anytime lower bound 2.01% > 1% limit)"},
		{name: "per segment: all pass", spec: GateSpec{MaxRate: 0.01, PerSegment: true},
			segments: []Segment{seg("a", stats(1, 5000)), seg("b", stats(0, 20000))}, total: stats(1, 25000),
			verdict: Pass, segVerdicts: []Verdict{Pass, Pass}, reason: "all 2 segments pass"},
		{name: "per segment: one undecided", spec: GateSpec{MaxRate: 0.01, PerSegment: true},
			segments: []Segment{seg("a", stats(1, 5000)), seg("b", stats(0, 200)), seg("c", stats(0, 9000))}, total: stats(1, 14200),
			verdict: Inconclusive, segVerdicts: []Verdict{Pass, Inconclusive, Pass},
			reason: "1 of 3 segments is inconclusive: b (divergence 0% (0 of 200 pairs), anytime bounds 0%–2.78% straddle the 1% limit; needs ~360 more pairs at this rate); 2 pass"},
		{name: "per segment: the total fails when no segment can", spec: GateSpec{MaxRate: 0.01, PerSegment: true},
			segments: []Segment{seg("a", stats(12, 600)), seg("b", stats(12, 600)), seg("c", stats(12, 600))}, total: stats(36, 1800),
			verdict: Fail, segVerdicts: []Verdict{Inconclusive, Inconclusive, Inconclusive},
			reason:      "all segments together: divergence 2% (36 of 1,800 pairs), anytime lower bound 1.22% > 1% limit",
			explanation: "pooled evidence that the rate is above the limit proves some segment is"},
		{name: "per segment: many fail", spec: GateSpec{MaxRate: 0.01, PerSegment: true},
			segments: []Segment{seg("a", stats(60, 2000)), seg("b", stats(60, 2000)), seg("c", stats(60, 2000)),
				seg("d", stats(60, 2000)), seg("e", stats(60, 2000))}, total: stats(300, 10000),
			verdict: Fail, segVerdicts: []Verdict{Fail, Fail, Fail, Fail, Fail},
			reason: "5 of 5 segments fail: a (divergence 3% (60 of 2,000 pairs), anytime lower bound 2.01% > 1% limit); " +
				"b (divergence 3% (60 of 2,000 pairs), anytime lower bound 2.01% > 1% limit); " +
				"c (divergence 3% (60 of 2,000 pairs), anytime lower bound 2.01% > 1% limit); and 2 more; " +
				"all segments together: divergence 3% (300 of 10,000 pairs), anytime lower bound 2.45% > 1% limit",
			explanation: "the reason names three segments; the result lists them all"},
		{name: "per segment: no segments", spec: GateSpec{MaxRate: 0.01, PerSegment: true}, total: stats(0, 20000),
			verdict: Inconclusive, reason: "no segments to judge",
			explanation: "an empty list never passes vacuously"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Evaluate(tt.spec, tt.segments, tt.total)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tt.verdict || res.Reason != tt.reason {
				t.Errorf("Evaluate = %s %q,\n want %s %q", res.Verdict, res.Reason, tt.verdict, tt.reason)
			}
			if res.Overall.MorePairs != tt.more {
				t.Errorf("Overall.MorePairs = %d, want %d", res.Overall.MorePairs, tt.more)
			}
			if res.Alpha != DefaultAlpha {
				t.Errorf("Alpha = %v, want the default %v", res.Alpha, DefaultAlpha)
			}
			if len(res.Segments) != len(tt.segments) {
				t.Fatalf("%d segment results, want %d", len(res.Segments), len(tt.segments))
			}
			for i, s := range res.Segments {
				if s.Segment != tt.segments[i].Key || s.Verdict != tt.segVerdicts[i] || s.Judged != tt.spec.PerSegment {
					t.Errorf("segment %d = %s %s judged %v, want %s %s judged %v", i, s.Segment, s.Verdict, s.Judged,
						tt.segments[i].Key, tt.segVerdicts[i], tt.spec.PerSegment)
				}
			}
			checkConsistent(t, res.Overall, tt.spec)
			for _, s := range res.Segments {
				checkConsistent(t, s, tt.spec)
			}
			if _, err := json.Marshal(res); err != nil {
				t.Errorf("json.Marshal: %v", err)
			}
		})
	}
}

// checkConsistent checks a segment result against the rules that define it:
// the verdict follows from the checks, the divergence check from the anytime
// bounds, and the display interval is the Wilson one.
func checkConsistent(t *testing.T, r SegmentResult, spec GateSpec) {
	t.Helper()
	want := Pass
	for _, c := range r.Checks {
		if c.Verdict == Fail {
			want = Fail
			break
		}
		if c.Verdict == Inconclusive {
			want = Inconclusive
		}
	}
	if r.Verdict != want {
		t.Errorf("%s: verdict %s, but its checks say %s", r.Segment, r.Verdict, want)
	}
	for _, c := range r.Checks {
		if c.Name != CheckDivergence || r.Divergence.Total == 0 {
			continue
		}
		a := r.AnytimeDivergence
		switch {
		case c.Verdict == Pass && !(a.High <= spec.MaxRate):
			t.Errorf("%s: divergence passes with anytime upper bound %v > %v", r.Segment, a.High, spec.MaxRate)
		case c.Verdict == Fail && !(a.Low >= spec.MaxRate):
			t.Errorf("%s: divergence fails with anytime lower bound %v < %v", r.Segment, a.Low, spec.MaxRate)
		case c.Verdict == Inconclusive && (a.High <= spec.MaxRate || a.Low > spec.MaxRate):
			t.Errorf("%s: divergence inconclusive with anytime bounds [%v, %v]", r.Segment, a.Low, a.High)
		}
		if a.Low > r.Divergence.Low+1e-12 && a.High < r.Divergence.High-1e-12 {
			t.Errorf("%s: anytime bounds [%v, %v] inside the Wilson interval [%v, %v]", r.Segment, a.Low, a.High, r.Divergence.Low, r.Divergence.High)
		}
		if w := NewRate(r.Divergence.Hits, r.Divergence.Total); w != r.Divergence {
			t.Errorf("%s: Divergence = %+v, want the Wilson rate %+v", r.Segment, r.Divergence, w)
		}
	}
}

// TestEvaluateAlpha checks that Alpha reaches the verdict: a smaller alpha
// asks for more evidence.
func TestEvaluateAlpha(t *testing.T) {
	st := stats(10, 2500)
	for _, tt := range []struct {
		alpha float64
		want  Verdict
	}{{0.2, Pass}, {0.05, Pass}, {0.001, Inconclusive}} {
		res, err := Evaluate(GateSpec{MaxRate: 0.01, Alpha: tt.alpha}, nil, st)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != tt.want || res.Alpha != tt.alpha {
			t.Errorf("alpha %v: %s (alpha %v), want %s", tt.alpha, res.Verdict, res.Alpha, tt.want)
		}
	}
}

// TestEvaluateJSON checks that a result always encodes: no NaN or infinity
// reaches it, whatever the counts.
func TestEvaluateJSON(t *testing.T) {
	spec := GateSpec{MaxRate: 0.01, MinPairs: 10, PerSegment: true, MaxCandidateErrorRate: 0.02, MaxP99LatencyRatio: 1.2}
	odd := []Segment{
		{Key: "empty"},
		{Key: "all divergent", Stats: SegmentStats{Counters: Counters{Pairs: 5, Divergent: 5, CandidateErrors: 5}}},
		{Key: "huge", Stats: SegmentStats{Counters: Counters{Pairs: MaxCount - 100, Divergent: MaxCount / 3, CandidateErrors: MaxCount / 200}}},
		{Key: "one-sided latency", Stats: SegmentStats{Counters: Counters{Pairs: 5}, CandidateLatency: hist(3, time.Hour)}},
		{Key: "tiny latency", Stats: SegmentStats{Counters: Counters{Pairs: 5}, CandidateLatency: hist(1, -time.Second), ControlLatency: hist(1, 0)}},
	}
	res, err := Evaluate(spec, odd, Total(odd))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if !strings.Contains(string(b), `"verdict":"fail"`) {
		t.Errorf("want an overall fail (segment all divergent), got %s", res.Verdict)
	}
}

// TestEvaluateBadInput: counts no sample could have produced are an error
// naming the unit and the field, never a verdict.
func TestEvaluateBadInput(t *testing.T) {
	ok := SegmentStats{Counters: Counters{Pairs: 100, Divergent: 1}}
	tests := []struct {
		name    string
		overall SegmentStats
		seg     SegmentStats
		want    string
	}{
		{name: "negative pairs", seg: SegmentStats{Counters: Counters{Pairs: -5}},
			want: `report: invalid stats: segment "s": Pairs -5 is negative`},
		{name: "negative divergent", seg: SegmentStats{Counters: Counters{Pairs: 5, Divergent: -1}},
			want: `report: invalid stats: segment "s": Divergent -1 is negative`},
		{name: "negative control errors", seg: SegmentStats{Counters: Counters{Pairs: 5, ControlErrors: -1}},
			want: `report: invalid stats: segment "s": ControlErrors -1 is negative`},
		{name: "negative candidate errors", seg: SegmentStats{Counters: Counters{Pairs: 5, CandidateErrors: -3}},
			want: `report: invalid stats: segment "s": CandidateErrors -3 is negative`},
		{name: "negative skipped", seg: SegmentStats{Counters: Counters{Pairs: 5, Skipped: -1}},
			want: `report: invalid stats: segment "s": Skipped -1 is negative`},
		{name: "negative timeouts", seg: SegmentStats{Counters: Counters{Pairs: 5, Timeouts: -1}},
			want: `report: invalid stats: segment "s": Timeouts -1 is negative`},
		{name: "divergent exceeds pairs", seg: SegmentStats{Counters: Counters{Pairs: 5, Divergent: 9}},
			want: `report: invalid stats: segment "s": Divergent 9 exceeds Pairs 5`},
		{name: "errors exceed pairs", seg: SegmentStats{Counters: Counters{Pairs: 5, CandidateErrors: 6}},
			want: `report: invalid stats: segment "s": CandidateErrors 6 exceeds Pairs 5`},
		{name: "control errors exceed pairs", seg: SegmentStats{Counters: Counters{Pairs: 5, ControlErrors: 6}},
			want: `report: invalid stats: segment "s": ControlErrors 6 exceeds Pairs 5`},
		{name: "timeouts exceed pairs", seg: SegmentStats{Counters: Counters{Pairs: 0, Timeouts: 1}},
			want: `report: invalid stats: segment "s": Timeouts 1 exceeds Pairs 0`},
		{name: "beyond float64", seg: SegmentStats{Counters: Counters{Pairs: MaxCount + 1}},
			want: `report: invalid stats: segment "s": Pairs 9007199254740993 exceeds 9007199254740992, the largest count float64 resolves`},
		{name: "negative bucket", seg: SegmentStats{Counters: Counters{Pairs: 5}, CandidateLatency: Histogram{Counts: []int64{0, 3, -1}}},
			want: `report: invalid stats: segment "s": CandidateLatency bucket 2 count -1 is negative`},
		{name: "too many buckets", seg: SegmentStats{Counters: Counters{Pairs: 5}, ControlLatency: Histogram{Counts: make([]int64, HistogramBuckets+1)}},
			want: `report: invalid stats: segment "s": ControlLatency has 219 buckets, more than 218`},
		{name: "histogram beyond float64", seg: SegmentStats{Counters: Counters{Pairs: 5}, ControlLatency: Histogram{Counts: []int64{MaxCount, 1}}},
			want: `report: invalid stats: segment "s": ControlLatency holds more than 9007199254740992 observations, the largest count float64 resolves`},
		{name: "histogram that would overflow int64", seg: SegmentStats{Counters: Counters{Pairs: 5}, ControlLatency: Histogram{Counts: []int64{math.MaxInt64, math.MaxInt64}}},
			want: `report: invalid stats: segment "s": ControlLatency holds more than 9007199254740992 observations, the largest count float64 resolves`},
		{name: "negative A/A pairs", seg: SegmentStats{Counters: Counters{Pairs: 5, AAPairs: -1}},
			want: `report: invalid stats: segment "s": AAPairs -1 is negative`},
		{name: "A/A divergent exceeds A/A pairs", seg: SegmentStats{Counters: Counters{Pairs: 5, AAPairs: 2, AADivergent: 3}},
			want: `report: invalid stats: segment "s": AADivergent 3 exceeds AAPairs 2`},
		{name: "bad total", overall: SegmentStats{Counters: Counters{Pairs: 10, Divergent: 11}}, seg: ok,
			want: `report: invalid stats: total: Divergent 11 exceeds Pairs 10`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			overall := tt.overall
			if tt.name != "bad total" {
				overall = ok
			}
			for _, perSegment := range []bool{false, true} {
				res, err := Evaluate(GateSpec{MaxRate: 0.01, PerSegment: perSegment}, []Segment{{Key: "s", Stats: tt.seg}}, overall)
				if err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalidStats) {
					t.Errorf("PerSegment %v: Evaluate = %q, %v; want error %q wrapping ErrInvalidStats", perSegment, res.Verdict, err, tt.want)
				}
				if res.Verdict != "" {
					t.Errorf("PerSegment %v: a verdict (%s) with an error", perSegment, res.Verdict)
				}
			}
			if tt.name == "bad total" {
				return
			}
			err := tt.seg.Validate()
			if want := strings.Replace(tt.want, `segment "s": `, "", 1); err == nil || err.Error() != want {
				t.Errorf("Validate() = %v, want %q", err, want)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate() of valid stats = %v", err)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	segments := make([]Segment, 100)
	for i := range segments {
		st := SegmentStats{Counters: Counters{Pairs: int64(1000 + 100*i), Divergent: int64(i / 5)}, ControlLatency: hist(int64(100+i), time.Millisecond, 3*time.Millisecond, 40*time.Millisecond)}
		st.CandidateLatency = hist(int64(100+i), 1100*time.Microsecond, 3*time.Millisecond, 45*time.Millisecond)
		segments[i] = Segment{Key: fmt.Sprintf("seg=%d", i), Attrs: map[string]string{"seg": fmt.Sprint(i)}, Stats: st}
	}
	total := Total(segments)
	spec := GateSpec{MaxRate: 0.01, MinPairs: 1000, PerSegment: true, MaxCandidateErrorRate: 0.01, MaxP99LatencyRatio: 1.5}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Evaluate(spec, segments, total); err != nil {
			b.Fatal(err)
		}
	}
}
