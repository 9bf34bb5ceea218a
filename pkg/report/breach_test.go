package report

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)

// series builds minutes from t0 on, each with pairs pairs and the given
// divergent counts.
func series(pairs int64, divergent ...int64) []Minute {
	out := make([]Minute, len(divergent))
	for i, d := range divergent {
		out[i] = Minute{At: t0.Add(time.Duration(i) * time.Minute), Pairs: pairs, Divergent: d}
	}
	return out
}

func divergent(m Minute) int64 { return m.Divergent }

func TestDetectBreach(t *testing.T) {
	// At a 1% limit, a minute of 200 pairs adds ln2·hits − 200·ln(1.01):
	// 1.99 per divergent pair over none.
	step := func(hits, n int64) float64 { return math.Ln2*float64(hits) - float64(n)*math.Log1p(0.01) }
	tests := []struct {
		name        string
		minutes     []Minute
		detected    bool
		at, since   int // minute indices; -1 for zero
		statistic   float64
		explanation string
	}{
		{name: "no minutes", minutes: nil, at: -1, since: -1},
		{name: "clean", minutes: series(200, 0, 0, 0, 1, 2), at: -1, since: -1,
			explanation: "two divergent pairs in 200 is the limit: less evidence than the minute's cost"},
		{name: "a rise", minutes: series(200, 0, 0, 10, 10), at: -1, since: 2, statistic: 2 * step(10, 200)},
		{name: "a breach", minutes: series(200, 0, 0, 10, 10, 10, 10), detected: true, at: 5, since: 2, statistic: 4 * step(10, 200),
			explanation: "the statistic crosses ln(4,320,000) = 15.28 in the fourth minute at 5%"},
		{name: "old evidence forgotten", minutes: series(200, 10, 0, 0, 0, 0, 0, 0, 0, 10), at: -1, since: 8, statistic: step(10, 200),
			explanation: "a clean stretch brings the statistic back to 0: what came before no longer counts"},
		{name: "empty minutes change nothing", minutes: append(series(200, 10, 10, 10), Minute{At: t0.Add(3 * time.Minute)}, Minute{At: t0.Add(4 * time.Minute), Pairs: 200, Divergent: 10}),
			detected: true, at: 4, since: 0, statistic: 4 * step(10, 200)},
		{name: "hits clamped", minutes: series(10, 50, 50, 50), detected: true, at: 2, since: 0, statistic: 3 * step(10, 10)},
	}
	threshold := math.Log(4_320_000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := DetectBreach(tt.minutes, divergent, 0.01, threshold)
			at := func(i int) time.Time {
				if i < 0 {
					return time.Time{}
				}
				return t0.Add(time.Duration(i) * time.Minute)
			}
			if b.Detected != tt.detected || !b.At.Equal(at(tt.at)) || !b.Since.Equal(at(tt.since)) ||
				math.Abs(b.Statistic-max(0, tt.statistic)) > 1e-9 || b.Threshold != threshold {
				t.Errorf("DetectBreach = %+v, want detected %v at %v since %v statistic %v", b, tt.detected, at(tt.at), at(tt.since), tt.statistic)
			}
		})
	}
	if got := breachThreshold(DefaultFalseBreachUnitMinutes); math.Abs(got-threshold) > 1e-12 {
		t.Errorf("default threshold %v, want %v", got, threshold)
	}
}

// TestEvaluateBreach: the detector's checks in Evaluate, and DecidedBy.
func TestEvaluateBreach(t *testing.T) {
	clean := series(200, make([]int64, 360)...)
	breached := append(slices.Clone(clean), series(200, 10, 10, 10, 10)...)
	for i := range breached {
		breached[i].At = t0.Add(time.Duration(i) * time.Minute)
	}
	sum := func(ms []Minute) SegmentStats {
		var st SegmentStats
		for _, m := range ms {
			st.Pairs += m.Pairs
			st.Divergent += m.Divergent
		}
		return st
	}
	spec := GateSpec{MaxRate: 0.01, PerSegment: true}
	segs := []Segment{{Key: "a", Stats: sum(breached), Minutes: breached}, {Key: "b", Stats: sum(clean), Minutes: clean}}
	res, err := Evaluate(spec, segs, Total(segs))
	if err != nil {
		t.Fatal(err)
	}
	a, b := res.Segments[0], res.Segments[1]
	if res.Verdict != Fail || res.DecidedBy != DecidedByChangeDetector || a.Verdict != Fail || a.DecidedBy != DecidedByChangeDetector {
		t.Errorf("breached segment: overall %s by %q, segment %s by %q; want fail by the change detector", res.Verdict, res.DecidedBy, a.Verdict, a.DecidedBy)
	}
	want := "1 of 2 segments fails: a (divergence rose above the 1% limit from 2026-12-04T06:00:00Z: change detector 19.8 ≥ 15.3 at 2026-12-04T06:03:00Z); " +
		"all segments together: divergence rose above the 1% limit from 2026-12-04T06:00:00Z: change detector 19.8 ≥ 15.3 at 2026-12-04T06:03:00Z"
	if res.Reason != want {
		t.Errorf("reason %q,\nwant %q", res.Reason, want)
	}
	if div := a.Checks[0]; div.Name != CheckDivergence || div.Verdict != Pass {
		t.Errorf("the confidence sequence alone, diluted by 6 clean hours: %s %s, want divergence pass", div.Name, div.Verdict)
	}
	if b.Verdict != Pass || b.DecidedBy != DecidedByConfidenceSequence || !strings.Contains(b.Reason, "no divergence breach: change detector 0 < 15.3 over 360 minutes") {
		t.Errorf("clean segment: %s by %q: %q", b.Verdict, b.DecidedBy, b.Reason)
	}
	if res.Overall.Verdict != Fail || res.Overall.DecidedBy != DecidedByChangeDetector {
		t.Errorf("total: %s by %q; want the summed minutes to show the breach too", res.Overall.Verdict, res.Overall.DecidedBy)
	}

	// Minutes must be valid and in order.
	bad := []Segment{{Key: "a", Stats: sum(clean), Minutes: []Minute{{At: t0.Add(time.Minute), Pairs: 1}, {At: t0, Pairs: 1}}}}
	if _, err := Evaluate(spec, bad, Total(bad)); err == nil || err.Error() != `report: invalid stats: segment "a": Minutes[1] at 2026-12-04T00:00:00Z is not after Minutes[0] at 2026-12-04T00:01:00Z` {
		t.Errorf("out of order: %v", err)
	}
	bad[0].Minutes = []Minute{{At: t0, Pairs: 1, Divergent: 2}}
	if _, err := Evaluate(spec, bad, Total(bad)); err == nil || err.Error() != `report: invalid stats: segment "a": Minutes[0] Divergent 2 exceeds Pairs 1` {
		t.Errorf("bad minute: %v", err)
	}
}

// TestBreachSimulation: a unit clean for six hours that jumps from 0% to 5%
// divergence at 200 pairs a minute (limit 1%) must be failed within a median
// of 5 minutes, through Evaluate as the API and the controller call it. The
// confidence sequence alone, summed from the step's start, is measured too.
func TestBreachSimulation(t *testing.T) {
	const (
		limit, breachRate = 0.01, 0.05
		perMinute         = 200
		clean             = 360 // minutes
		after             = 240 // minutes simulated after the jump
	)
	spec := GateSpec{MaxRate: limit, PerSegment: true}
	delays := make([]int, 0, gateSimRuns)
	csDelays := make([]int, 0, gateSimRuns)
	for run := range gateSimRuns {
		r := rand.New(rand.NewPCG(7, uint64(run)))
		ms := make([]Minute, clean+after)
		var st SegmentStats
		csDelay := after + 1
		for i := range ms {
			ms[i] = Minute{At: t0.Add(time.Duration(i) * time.Minute), Pairs: perMinute}
			if i >= clean {
				ms[i].Divergent = binomial(r, perMinute, breachRate)
			}
			st.Pairs += ms[i].Pairs
			st.Divergent += ms[i].Divergent
			if i >= clean && csDelay > after && above(st.Divergent, st.Pairs, limit, spec.alpha()) {
				csDelay = i - clean + 1
			}
		}
		csDelays = append(csDelays, csDelay)
		// One pass finds the first minute at which a look every minute would
		// have failed; Evaluate then confirms it at that look and not before.
		b := DetectBreach(ms, divergent, limit, spec.breachThreshold())
		if !b.Detected {
			t.Fatalf("run %d: no breach within %d minutes of the jump", run, after)
		}
		k := int(b.At.Sub(t0) / time.Minute)
		delays = append(delays, k-clean+1)
		for _, look := range []int{k, k + 1} {
			seg := []Segment{{Key: "u", Stats: sumStats(ms[:look]), Minutes: ms[:look]}}
			res, err := Evaluate(spec, seg, seg[0].Stats)
			if err != nil {
				t.Fatal(err)
			}
			if failed := res.Segments[0].Verdict == Fail && res.Segments[0].DecidedBy == DecidedByChangeDetector; failed != (look == k+1) {
				t.Fatalf("run %d: look after minute %d: %s by %q; the detector first crossed at minute %d", run, look, res.Segments[0].Verdict, res.Segments[0].DecidedBy, k)
			}
		}
	}
	slices.Sort(delays)
	slices.Sort(csDelays)
	t.Logf("0%%→5%% after %d clean minutes at %d pairs/min, limit 1%%: the change detector failed the unit after a median of %d minutes (p90 %d, max %d); the confidence sequence alone after a median of %d (p90 %d)",
		clean, perMinute, quantileInt(delays, 0.5), quantileInt(delays, 0.9), delays[len(delays)-1], quantileInt(csDelays, 0.5), quantileInt(csDelays, 0.9))
	if m := quantileInt(delays, 0.5); m > 5 {
		t.Errorf("median detection delay %d minutes, want <= 5", m)
	}
}

func sumStats(ms []Minute) SegmentStats {
	var st SegmentStats
	for _, m := range ms {
		st.Pairs += m.Pairs
		st.Divergent += m.Divergent
		st.CandidateErrors += m.CandidateErrors
	}
	return st
}

// countAlarms runs the detector over units of minutes minutes each at rate
// with perMinute pairs, restarting it after every alarm, and returns the
// alarms raised.
func countAlarms(seed uint64, units, minutes int, perMinute int64, rate, limit, threshold float64) int {
	alarms := 0
	ms := make([]Minute, minutes)
	// Binomial(perMinute, rate) by inverting its distribution function,
	// tabulated once: the same draws as binomial, without a Pow per minute.
	var cdf []float64
	pmf, sum := math.Pow(1-rate, float64(perMinute)), 0.0
	for k := int64(0); k <= perMinute && sum < 1-1e-15; k++ {
		sum += pmf
		cdf = append(cdf, sum)
		pmf *= float64(perMinute-k) / float64(k+1) * rate / (1 - rate)
	}
	draw := func(r *rand.Rand) int64 {
		u := r.Float64()
		k := 0
		for k < len(cdf)-1 && u > cdf[k] {
			k++
		}
		return int64(k)
	}
	for u := range units {
		r := rand.New(rand.NewPCG(seed, uint64(u)))
		for i := range ms {
			ms[i] = Minute{At: t0.Add(time.Duration(i) * time.Minute), Pairs: perMinute, Divergent: draw(r)}
		}
		for rest := ms; len(rest) > 0; {
			b := DetectBreach(rest, divergent, limit, threshold)
			if !b.Detected {
				break
			}
			alarms++
			rest = rest[int(b.At.Sub(rest[0].At)/time.Minute)+1:]
		}
	}
	return alarms
}

// TestBreachFalseAlarms checks the detector's false-alarm bound, at most
// T·e^(−threshold) expected alarms over T unit-minutes at or below the limit:
// at the default threshold for an experiment of 100 units at half the limit
// for 30 days (bound: 1 alarm), and, where alarms are frequent enough to
// count, at the limit itself (the worst case) with a threshold for one alarm
// per unit-day.
func TestBreachFalseAlarms(t *testing.T) {
	const limit, perMinute = 0.01, 200
	const month = 30 * 24 * 60
	if n := countAlarms(11, 100, month, perMinute, limit/2, limit, breachThreshold(DefaultFalseBreachUnitMinutes)); n > 1 {
		t.Errorf("100 units at half the limit for 30 days: %d false alarms, want at most 1", n)
	} else {
		t.Logf("100 units at half the limit for 30 days (%d unit-minutes): %d false alarms (bound 1)", 100*month, n)
	}
	const units, day = 1000, 24 * 60
	bound := float64(units*day) / day
	n := countAlarms(12, units, day, perMinute, limit, limit, breachThreshold(day))
	t.Logf("%d units at the limit for a day, threshold ln(1440): %d false alarms (bound %.0f, %.2f of it)", units, n, bound, float64(n)/bound)
	if float64(n) > bound {
		t.Errorf("at the limit: %d false alarms, over the bound %.0f", n, bound)
	}
	if n == 0 {
		t.Errorf("at the limit with a low threshold: no alarms at all; the calibration check is vacuous")
	}
}

func BenchmarkDetectBreach(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	ms := make([]Minute, 30*24*60) // 30 days
	for i := range ms {
		ms[i] = Minute{At: t0.Add(time.Duration(i) * time.Minute), Pairs: 200, Divergent: binomial(r, 200, 0.005)}
	}
	th := breachThreshold(DefaultFalseBreachUnitMinutes)
	b.ReportAllocs()
	for b.Loop() {
		if DetectBreach(ms, divergent, 0.01, th).Detected {
			b.Fatal("false alarm")
		}
	}
}

// BenchmarkEvaluateMinutes is BenchmarkEvaluate's 100 segments with a
// six-hour minute series each, so every unit also runs the change detector.
func BenchmarkEvaluateMinutes(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	segments := make([]Segment, 100)
	for i := range segments {
		ms := make([]Minute, 360)
		for j := range ms {
			ms[j] = Minute{At: t0.Add(time.Duration(j) * time.Minute), Pairs: 200, Divergent: binomial(r, 200, 0.002)}
		}
		segments[i] = Segment{Key: "seg=" + strconv.Itoa(i), Stats: sumStats(ms), Minutes: ms}
	}
	total := Total(segments)
	spec := GateSpec{MaxRate: 0.01, PerSegment: true, MaxCandidateErrorRate: 0.01}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Evaluate(spec, segments, total); err != nil {
			b.Fatal(err)
		}
	}
}
