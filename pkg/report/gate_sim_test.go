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

// gateSimRuns is the number of simulated rollouts per condition.
const gateSimRuns = 1000

// TestGateSimulation asks the gate about simulated rollouts every simulated
// minute and checks its guarantee: a unit whose true divergence rate is at
// or above MaxRate is promoted in at most Alpha of the runs, however many
// looks, while a clean unit passes. It also runs the naive strategy of
// promoting at the first minute the dashboard's 95% Wilson interval lies below
// the limit, which the anytime-valid test exists to replace.
//
// Each look runs the tests Evaluate's divergence check runs (below and
// above, the whole of its decision); the first pass and the first fail of
// every run are confirmed with Evaluate itself. The figures it logs are
// quoted in docs/gate.md.
func TestGateSimulation(t *testing.T) {
	const (
		limit   = 0.01
		alpha   = 0.05
		minutes = 180 // three hours of looks, one a minute
	)
	spec := GateSpec{MaxRate: limit, Alpha: alpha}
	tests := []struct {
		rate  float64
		drift float64 // each minute's rate is uniform in [rate, rate+drift]
		bad   bool    // every pair's rate >= MaxRate: must not be promoted
	}{
		{rate: 0.005},
		{rate: 0.008},
		{rate: 0.010, bad: true},
		{rate: 0.010, drift: 0.003, bad: true},
		{rate: 0.012, bad: true},
		{rate: 0.02, bad: true},
	}
	for ti, tt := range tests {
		var passed, naivePassed, failed, looks int
		var passPairs []int
		for run := range gateSimRuns {
			r := rand.New(rand.NewPCG(uint64(ti+1), uint64(run)))
			var st SegmentStats
			gatePassed, naive, gateFailed := false, false, false
			for range minutes {
				n := 200 + r.Int64N(1801)
				st.Pairs += n
				st.Divergent += binomial(r, n, tt.rate+tt.drift*r.Float64())
				if !gatePassed {
					looks++
					pass := below(st.Divergent, st.Pairs, limit, alpha)
					fail := !pass && above(st.Divergent, st.Pairs, limit, alpha)
					if pass || (fail && !gateFailed) {
						res, err := Evaluate(spec, nil, st)
						if err != nil {
							t.Fatal(err)
						}
						if want := map[bool]Verdict{true: Pass, false: Fail}[pass]; res.Verdict != want {
							t.Fatalf("rate %v run %d: Evaluate says %s, its tests say %s", tt.rate, run, res.Verdict, want)
						}
					}
					switch {
					case pass:
						gatePassed = true
						passed++
						passPairs = append(passPairs, int(st.Pairs))
					case fail && !gateFailed:
						// A controller would roll back here; looking on
						// measures "ever promoted", the guarantee's event.
						gateFailed = true
						failed++
					}
				}
				if !naive && st.Divergence().High <= limit {
					naive = true
					naivePassed++
				}
				if gatePassed && naive {
					break
				}
			}
		}
		frac := func(k int) float64 { return float64(k) / gateSimRuns }
		slices.Sort(passPairs)
		t.Logf("true rate %.1f%% (+%.1f%% drift): anytime gate promoted %.1f%% of %d runs (failed %.1f%%; %d looks); naive Wilson peeking promoted %.1f%%; pairs at pass p50 %d p90 %d",
			100*tt.rate, 100*tt.drift, 100*frac(passed), gateSimRuns, 100*frac(failed), looks, 100*frac(naivePassed),
			quantileInt(passPairs, 0.5), quantileInt(passPairs, 0.9))
		switch {
		case tt.bad && frac(passed) > alpha:
			t.Errorf("true rate %v >= MaxRate %v: promoted in %.1f%% of runs, want <= %v%%", tt.rate, limit, 100*frac(passed), 100*alpha)
		case tt.rate == 0.005 && frac(passed) < 0.99:
			t.Errorf("clean rate %v: passed in %.1f%% of runs, want >= 99%%", tt.rate, 100*frac(passed))
		case tt.rate == 0.005 && frac(failed) > 0:
			t.Errorf("clean rate %v: failed in %d runs, want none", tt.rate, failed)
		case tt.bad && tt.rate >= 0.012 && frac(passed) > alpha/5:
			t.Errorf("true rate %v: promoted in %.1f%% of runs; well above the limit it should be rare", tt.rate, 100*frac(passed))
		case tt.rate == 0.02 && frac(failed) < 0.99:
			t.Errorf("true rate %v: failed in %.1f%% of runs, want >= 99%%", tt.rate, 100*frac(failed))
		}
		if tt.bad && naivePassed < passed {
			t.Errorf("true rate %v: naive peeking promoted less often (%d) than the anytime gate (%d)", tt.rate, naivePassed, passed)
		}
	}
}

// TestSampleSize compares how many pairs the anytime-valid gate needs to
// pass a clean unit (true rate half the limit), looking every 10 pairs,
// with the fixed sample size of a one-look exact binomial test at the same
// alpha: the gate must need at most 1.6× the pairs at 80% power.
func TestSampleSize(t *testing.T) {
	const (
		limit, rate, alpha = 0.01, 0.005, 0.05
		step               = 10
		maxPairs           = 200_000
	)
	need := make([]int, 0, gateSimRuns)
	for run := range gateSimRuns {
		r := rand.New(rand.NewPCG(99, uint64(run)))
		var hits int64
		for n := int64(step); n <= maxPairs; n += step {
			hits += binomial(r, step, rate)
			if below(hits, n, limit, alpha) {
				need = append(need, int(n))
				break
			}
		}
	}
	if len(need) < gateSimRuns {
		t.Fatalf("%d of %d runs did not pass within %d pairs", gateSimRuns-len(need), gateSimRuns, maxPairs)
	}
	slices.Sort(need)
	for _, power := range []float64{0.5, 0.8, 0.9} {
		fixed, size := exactTestSize(limit, rate, alpha, power)
		seq := quantileInt(need, power)
		ratio := float64(seq) / float64(fixed)
		t.Logf("power %.0f%%: one-look exact binomial test needs %d pairs (actual alpha %.2f%%); anytime gate passed %.0f%% of runs within %d pairs (%.2f× the one-look test)",
			100*power, fixed, 100*size, 100*power, seq, ratio)
		if seq < fixed {
			t.Errorf("power %v: the anytime gate (%d pairs) beat the one-look test (%d): suspicious", power, seq, fixed)
		}
		if power == 0.8 && ratio > 1.6 {
			t.Errorf("power 80%%: the anytime gate needs %d pairs, %.2f× the one-look test's %d; want <= 1.6×", seq, ratio, fixed)
		}
	}
}

// exactTestSize returns the smallest n at which the one-sided exact binomial
// test of "rate >= limit" at level alpha (pass when the divergent count is at
// most the largest s with P(Bin(n, limit) <= s) <= alpha) passes with
// probability at least power when the true rate is rate, and the test's
// actual size P(Bin(n, limit) <= s).
func exactTestSize(limit, rate, alpha, power float64) (n int, size float64) {
	for n := int64(1); ; n++ {
		var cdfLimit, cdfRate float64
		pl, pr := math.Pow(1-limit, float64(n)), math.Pow(1-rate, float64(n))
		for k := int64(0); k <= n && cdfLimit+pl <= alpha; k++ {
			cdfLimit += pl
			cdfRate += pr
			pl *= float64(n-k) / float64(k+1) * limit / (1 - limit)
			pr *= float64(n-k) / float64(k+1) * rate / (1 - rate)
		}
		if cdfRate >= power {
			return int(n), cdfLimit
		}
	}
}

// quantileInt returns the q-quantile of sorted xs, 0 if empty.
func quantileInt(xs []int, q float64) int {
	if len(xs) == 0 {
		return 0
	}
	return xs[max(0, int(math.Ceil(q*float64(len(xs))))-1)]
}
