package report

import (
	"math"
	"testing"
)

func TestConfidenceSequence(t *testing.T) {
	tests := []struct {
		name        string
		hits, n     int64
		alpha       float64
		low, high   float64
		explanation string
	}{
		{name: "no trials", hits: 0, n: 0, alpha: 0.05, low: 0, high: 1,
			explanation: "no data says nothing"},
		{name: "alpha 0", hits: 5, n: 100, alpha: 0, low: 0, high: 1,
			explanation: "certainty needs the whole interval"},
		{name: "alpha 1", hits: 5, n: 100, alpha: 1, low: 0, high: 1,
			explanation: "an invalid alpha answers the uninformative interval, never an empty one"},
		{name: "one trial", hits: 0, n: 1, alpha: 0.05, low: 0, high: 1},
		{name: "none of 10", hits: 0, n: 10, alpha: 0.05, low: 0, high: 0.55259189},
		{name: "none of 1000", hits: 0, n: 1000, alpha: 0.05, low: 0, high: 0.00676773,
			explanation: "wider than Wilson's 0.38%: the price of looking as often as one likes"},
		{name: "clean segment", hits: 12, n: 3870, alpha: 0.05, low: 0.00116860, high: 0.00638017},
		{name: "straddles 1%", hits: 25, n: 4000, alpha: 0.05, low: 0.00327354, high: 0.01066654},
		{name: "smaller alpha is wider", hits: 25, n: 4000, alpha: 0.01, low: 0.00288369, high: 0.01154271},
		{name: "too divergent", hits: 96, n: 4000, alpha: 0.05, low: 0.01689882, high: 0.03288084},
		{name: "all divergent", hits: 1000, n: 1000, alpha: 0.05, low: 0.99323227, high: 1,
			explanation: "the mixture tilts the odds, so it is as tight near 1 as near 0"},
		{name: "hits clamped", hits: 12, n: 10, alpha: 0.05, low: 0.44740811, high: 1,
			explanation: "a count racing ahead of its total is read as all of it"},
		{name: "symmetric at one half", hits: 50, n: 100, alpha: 0.05, low: 0.35632421, high: 0.64367579,
			explanation: "mirror-image mixtures: the interval is symmetric about 1/2"},
		{name: "common events", hits: 700, n: 1000, alpha: 0.05, low: 0.64724103, high: 0.74934144},
		{name: "rare events", hits: 1, n: 1_000_000, alpha: 0.05, low: 0, high: 0.00000835},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			low, high := ConfidenceSequence(tt.hits, tt.n, tt.alpha)
			if math.Abs(low-tt.low) > 1e-8 || math.Abs(high-tt.high) > 1e-8 {
				t.Errorf("ConfidenceSequence(%d, %d, %v) = [%.8f, %.8f], want [%.8f, %.8f]",
					tt.hits, tt.n, tt.alpha, low, high, tt.low, tt.high)
			}
			if tt.n > 0 && tt.alpha > 0 && tt.alpha < 1 {
				if lo, hi := LowerBound(tt.hits, tt.n, tt.alpha/2), UpperBound(tt.hits, tt.n, tt.alpha/2); lo != low || hi != high {
					t.Errorf("one-sided bounds at alpha/2 [%v, %v], interval [%v, %v]", lo, hi, low, high)
				}
			}
		})
	}
}

// directLogM computes the mixture's likelihood ratio from its definition, a
// weighted sum of products of per-trial likelihood ratios with each tilted
// rate written out, independently of the closed form the code evaluates.
func directLogM(sign float64, hits, n int64, p float64) float64 {
	var sum, wsum float64
	for j := range mixtureComponents {
		z := -2.25 + 0.375*float64(j)
		w := math.Exp(-z * z / 2)
		r := math.Exp(sign * (math.Ln2 + 0.3*z)) // odds factor
		theta := r * p / (1 - p + r*p)
		wsum += w
		sum += w * math.Exp(float64(hits)*math.Log(theta/p)+float64(n-hits)*math.Log((1-theta)/(1-p)))
	}
	return math.Log(sum / wsum)
}

// TestBoundsDefinition checks the bounds against the definition: at each end
// the mixture's likelihood ratio is 1/alpha, the end itself is rejected, and
// a little inside it is not.
func TestBoundsDefinition(t *testing.T) {
	cases := []struct {
		hits, n int64
		alpha   float64
	}{
		{12, 3870, 0.05}, {25, 4000, 0.05}, {96, 4000, 0.01}, {3, 50, 0.1}, {700, 1000, 0.05}, {0, 5000, 0.05}, {5000, 5000, 0.05},
	}
	for _, c := range cases {
		want := math.Log(1 / c.alpha)
		if hi := UpperBound(c.hits, c.n, c.alpha); hi < 1 {
			if got := directLogM(-1, c.hits, c.n, hi); math.Abs(got-want) > 1e-6 || got < want-1e-9 {
				t.Errorf("%d of %d: log M⁻(upper %v) = %v, want log(1/alpha) = %v", c.hits, c.n, hi, got, want)
			}
			if below(c.hits, c.n, hi*(1-1e-6), c.alpha) {
				t.Errorf("%d of %d: just inside the upper bound %v is rejected too", c.hits, c.n, hi)
			}
		}
		if lo := LowerBound(c.hits, c.n, c.alpha); lo > 0 {
			if got := directLogM(+1, c.hits, c.n, lo); math.Abs(got-want) > 1e-6 || got < want-1e-9 {
				t.Errorf("%d of %d: log M⁺(lower %v) = %v, want log(1/alpha) = %v", c.hits, c.n, lo, got, want)
			}
			if above(c.hits, c.n, lo*(1+1e-6), c.alpha) {
				t.Errorf("%d of %d: just inside the lower bound %v is rejected too", c.hits, c.n, lo)
			}
		}
	}
}

// TestMixtures checks the mixtures are what the guarantee needs: weights
// summing to 1, and every component tilted away from the tested rate (a
// component tilted towards it would not be a supermartingale).
func TestMixtures(t *testing.T) {
	for _, m := range []struct {
		name string
		t    tilts
		sign float64
	}{{"below", belowMix, -1}, {"above", aboveMix, +1}} {
		var sum float64
		for j := range mixtureComponents {
			sum += math.Exp(m.t.lw[j])
			if !(m.sign*m.t.lam[j] > 0) {
				t.Errorf("%s: component %d tilts by %v, towards the tested rate", m.name, j, m.t.lam[j])
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("%s: weights sum to %v", m.name, sum)
		}
	}
}

// TestBoundsProperties checks, over a grid, what the gate relies on: the
// bounds hold the observed proportion; they move up with the number of hits
// (so quantile bounds may scan bucket edges); and the exact one-evaluation
// tests below and above agree with them.
func TestBoundsProperties(t *testing.T) {
	const alpha = 0.05
	for _, n := range []int64{1, 10, 100, 1000, 20000, 1 << 40} {
		prevLow, prevHigh := -1.0, -1.0
		step := max(1, n/300)
		for hits := int64(0); hits <= n; hits += step {
			low, high := LowerBound(hits, n, alpha), UpperBound(hits, n, alpha)
			phat := float64(hits) / float64(n)
			if !(low <= phat && phat <= high && low >= 0 && high <= 1) {
				t.Fatalf("%d of %d: [%v, %v] does not hold %v", hits, n, low, high, phat)
			}
			if low < prevLow || high < prevHigh {
				t.Fatalf("%d of %d: [%v, %v] moved down from [%v, %v]", hits, n, low, high, prevLow, prevHigh)
			}
			prevLow, prevHigh = low, high
			for _, limit := range []float64{0.001, 0.01, 0.2, 0.5, 0.9} {
				if b := below(hits, n, limit, alpha); b != (high <= limit) && math.Abs(high-limit) > 1e-9*limit {
					t.Errorf("limit %v: %d of %d: below = %v but upper bound = %v", limit, hits, n, b, high)
				}
				if a := above(hits, n, limit, alpha); a != (low > limit) && math.Abs(low-limit) > 1e-9*limit {
					t.Errorf("limit %v: %d of %d: above = %v but lower bound = %v", limit, hits, n, a, low)
				}
			}
		}
	}
}

// TestBoundsHugeCounts: up to MaxCount the bounds stay finite, ordered and
// close around the observed proportion (the old log-gamma form turned to NaN
// or crossed near 10^16). The mixture's smallest tilt is e^(ln 2 - 0.675),
// about 1.018 on the odds, so however many trials the bounds stay about 2%
// (relative) either side of it.
func TestBoundsHugeCounts(t *testing.T) {
	for _, c := range []struct{ hits, n int64 }{
		{MaxCount / 200, MaxCount}, {MaxCount / 2, MaxCount}, {7, MaxCount}, {MaxCount - 1, MaxCount}, {1 << 40, 1 << 50},
	} {
		low, high := LowerBound(c.hits, c.n, 0.05), UpperBound(c.hits, c.n, 0.05)
		phat := float64(c.hits) / float64(c.n)
		se := math.Sqrt(phat*(1-phat)/float64(c.n)) + 2/float64(c.n) // a handful of hits is all the few-side has
		if math.IsNaN(low) || math.IsNaN(high) || low > phat || high < phat || high-low > 20*se+0.05*min(phat, 1-phat) {
			t.Errorf("%d of %d: [%v, %v] around %v (standard error %v)", c.hits, c.n, low, high, phat, se)
		}
	}
}

func TestTrialsToBelow(t *testing.T) {
	tests := []struct {
		name        string
		hits, n     int64
		minN        int64
		want        int64
		explanation string
	}{
		{name: "no trials", hits: 0, n: 0, want: -1, explanation: "no rate to project"},
		{name: "already below", hits: 0, n: 1000, want: 0},
		{name: "already below, minimum not reached", hits: 0, n: 1000, minN: 10000, want: 9000},
		{name: "half the limit", hits: 10, n: 4000, want: 0},
		{name: "needs more", hits: 25, n: 4000, want: 632,
			explanation: "at 0.625% the upper bound reaches 1% after about 4,600 pairs"},
		{name: "at the limit never passes", hits: 40, n: 4000, want: -1},
		{name: "above the limit never passes", hits: 41, n: 4000, want: -1},
		{name: "nothing yet, few trials", hits: 0, n: 10, want: 549,
			explanation: "a projection at the observed 0%: optimistic, as projections are"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := trialsToBelow(tt.hits, tt.n, tt.minN, 0.05, 0.01); got != tt.want {
				t.Errorf("trialsToBelow(%d, %d, %d) = %d, want %d", tt.hits, tt.n, tt.minN, got, tt.want)
			}
			if got := trialsToBelow(tt.hits, tt.n, tt.minN, 0.05, 0.01); got > 0 {
				n := tt.n + got
				hits := int64(float64(tt.hits) / float64(tt.n) * float64(n))
				if !below(hits, n, 0.01, 0.05) && !below(hits, n+n/500, 0.01, 0.05) {
					t.Errorf("after %d more pairs at the same rate the gate still does not pass", got)
				}
			}
		})
	}
}

func BenchmarkUpperBound(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		UpperBound(25, 4000, 0.05)
	}
}
