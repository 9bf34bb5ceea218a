package report

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// binomial draws from Binomial(n, p) by inverting its distribution function,
// in about n·p+1 steps: cheap for the n·p of at most a few dozen used here.
func binomial(r *rand.Rand, n int64, p float64) int64 {
	q := 1 - p
	pmf := math.Pow(q, float64(n))
	cdf := pmf
	u := r.Float64()
	var k int64
	for u > cdf && k < n {
		pmf *= float64(n-k) / float64(k+1) * p / q
		k++
		cdf += pmf
	}
	return k
}

// TestGateSimulation asks the gate about simulated rollouts every simulated
// minute and checks its guarantee: a segment whose true divergence rate is at
// or above MaxRate is promoted in at most Alpha of the runs, however many
// looks, while a clean segment passes. It also runs the naive strategy of
// promoting at the first minute the dashboard's 95% Wilson interval lies below
// the limit, which the anytime-valid sequence exists to replace.
//
// The numbers it logs are quoted in docs/gate.md.
func TestGateSimulation(t *testing.T) {
	const (
		limit   = 0.01
		alpha   = 0.05
		runs    = 250 // per true rate: 1,500 rollouts in all
		minutes = 180 // three hours of looks, one a minute
	)
	spec := GateSpec{MaxRate: limit, Alpha: alpha}
	type outcome struct {
		rate                float64
		passed, naivePassed int   // runs ever promoted
		failed              int   // runs ever failed
		looks               int   // times the gate was asked
		passPairs           []int // pairs seen when the gate first passed
	}
	tests := []struct {
		rate  float64
		drift float64 // each minute's rate is uniform in [rate, rate+drift]
		bad   bool    // every pair's rate >= MaxRate: must not be promoted
	}{
		{rate: 0.005},
		{rate: 0.009},
		{rate: 0.010, bad: true},
		{rate: 0.010, drift: 0.003, bad: true},
		{rate: 0.012, bad: true},
		{rate: 0.02, bad: true},
	}
	for ti, tt := range tests {
		o := outcome{rate: tt.rate}
		for run := range runs {
			r := rand.New(rand.NewPCG(uint64(ti+1), uint64(run)))
			var st SegmentStats
			gatePassed, naivePassed, failed := false, false, false
			for range minutes {
				n := 200 + r.Int64N(1801)
				st.Pairs += n
				st.Divergent += binomial(r, n, tt.rate+tt.drift*r.Float64())
				if !gatePassed {
					o.looks++
					res, err := Evaluate(spec, nil, st)
					if err != nil {
						t.Fatal(err)
					}
					switch res.Verdict {
					case Pass:
						gatePassed = true
						o.passed++
						o.passPairs = append(o.passPairs, int(st.Pairs))
					case Fail:
						// A controller would roll back here; looking on
						// measures "ever promoted", the guarantee's event.
						if !failed {
							failed = true
							o.failed++
						}
					}
				}
				if !naivePassed && st.Divergence().High <= limit {
					naivePassed = true
					o.naivePassed++
				}
				if gatePassed && naivePassed {
					break
				}
			}
		}
		frac := func(k int) float64 { return float64(k) / runs }
		slices.Sort(o.passPairs)
		t.Logf("true rate %.1f%% (+%.1f%% drift): anytime gate promoted %.1f%% of %d runs (failed %.1f%%; %d looks); naive Wilson peeking promoted %.1f%%; pairs at pass p50 %d p90 %d",
			100*tt.rate, 100*tt.drift, 100*frac(o.passed), runs, 100*frac(o.failed), o.looks, 100*frac(o.naivePassed),
			quantileInt(o.passPairs, 0.5), quantileInt(o.passPairs, 0.9))
		switch {
		case tt.bad && frac(o.passed) > alpha:
			t.Errorf("true rate %v >= MaxRate %v: promoted in %.1f%% of runs, want <= %v%%", tt.rate, limit, 100*frac(o.passed), 100*alpha)
		case tt.rate == 0.005 && frac(o.passed) < 0.95:
			t.Errorf("clean rate %v: passed in %.1f%% of runs, want >= 95%%", tt.rate, 100*frac(o.passed))
		case tt.bad && tt.rate >= 0.012 && o.passed > 0:
			t.Errorf("true rate %v: promoted %d times; the bound should make this all but impossible", tt.rate, o.passed)
		}
		if tt.bad && o.naivePassed < o.passed {
			t.Errorf("true rate %v: naive peeking promoted less often (%d) than the anytime gate (%d)", tt.rate, o.naivePassed, o.passed)
		}
	}
}

// TestSampleSize compares how many pairs the anytime-valid gate needs to
// pass a clean segment (true rate half the limit), looking every 100 pairs,
// with the fixed sample size of a one-shot test at the same alpha: a
// one-sided Wilson test (z = 1.645) that looks exactly once.
func TestSampleSize(t *testing.T) {
	const (
		limit, rate, alpha = 0.01, 0.005, 0.05
		runs               = 1000
		step               = 100
		maxPairs           = 200_000
	)
	m, c := newMixture(limit), math.Log(1/alpha)
	need := make([]int, 0, runs)
	for run := range runs {
		r := rand.New(rand.NewPCG(99, uint64(run)))
		var hits int64
		for n := int64(step); n <= maxPairs; n += step {
			hits += binomial(r, step, rate)
			if m.evidence(float64(hits), float64(n-hits)).below(limit, c) {
				need = append(need, int(n))
				break
			}
		}
	}
	if len(need) < runs {
		t.Fatalf("%d of %d runs did not pass within %d pairs", runs-len(need), runs, maxPairs)
	}
	slices.Sort(need)
	z := 1.6448536269514722 // one-sided 95%
	for _, power := range []float64{0.5, 0.8, 0.9} {
		fixed, size := fixedSampleSize(limit, rate, z, power)
		seq := quantileInt(need, power)
		// The textbook normal-approximation sample size, for reference.
		zb := math.Sqrt2 * math.Erfinv(2*power-1)
		normal := math.Pow((z*math.Sqrt(limit*(1-limit))+zb*math.Sqrt(rate*(1-rate)))/(limit-rate), 2)
		t.Logf("power %.0f%%: one-shot test needs %d pairs (exact one-sided Wilson, actual alpha %.1f%%; normal approximation %.0f); anytime gate passed %.0f%% of runs within %d pairs (%.2f× the one-shot test)",
			100*power, fixed, 100*size, normal, 100*power, seq, float64(seq)/float64(fixed))
		if seq < fixed {
			t.Errorf("power %v: the anytime gate (%d pairs) beat the fixed-sample test (%d): suspicious", power, seq, fixed)
		}
		if seq > 4*fixed {
			t.Errorf("power %v: the anytime gate needs %d pairs, over 4× the fixed-sample %d", power, seq, fixed)
		}
	}
}

// fixedSampleSize returns the smallest n (a multiple of 10) at which a
// one-shot test that passes when the Wilson upper bound at z is <= limit
// passes with probability at least power when the true rate is rate, with
// the test's actual probability of passing at rate limit (exact binomial
// probabilities).
func fixedSampleSize(limit, rate, z, power float64) (n int, size float64) {
	for n := int64(10); ; n += 10 {
		// s is the largest count of divergent pairs that still passes.
		s := int64(-1)
		for ; s+1 <= n; s++ {
			if _, hi := Wilson(s+1, n, z); hi > limit {
				break
			}
		}
		if s >= 0 && binomialCDF(s, n, rate) >= power {
			return int(n), binomialCDF(s, n, limit)
		}
	}
}

func binomialCDF(s, n int64, p float64) float64 {
	var sum float64
	lgn, _ := math.Lgamma(float64(n + 1))
	for k := int64(0); k <= s; k++ {
		a, _ := math.Lgamma(float64(k + 1))
		b, _ := math.Lgamma(float64(n - k + 1))
		sum += math.Exp(lgn - a - b + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
	}
	return sum
}

// quantileInt returns the q-quantile of sorted xs, 0 if empty.
func quantileInt(xs []int, q float64) int {
	if len(xs) == 0 {
		return 0
	}
	return xs[max(0, int(math.Ceil(q*float64(len(xs))))-1)]
}
