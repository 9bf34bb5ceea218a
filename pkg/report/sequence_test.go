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
		limit       float64
		low, high   float64
		explanation string
	}{
		{name: "no trials", hits: 0, n: 0, alpha: 0.05, limit: 0.01, low: 0, high: 1,
			explanation: "no data says nothing"},
		{name: "alpha 0", hits: 5, n: 100, alpha: 0, limit: 0.01, low: 0, high: 1,
			explanation: "certainty needs the whole interval"},
		{name: "alpha 1", hits: 5, n: 100, alpha: 1, limit: 0.01, low: 0, high: 1,
			explanation: "an invalid alpha answers the uninformative interval, never an empty one"},
		{name: "none of 10", hits: 0, n: 10, alpha: 0.05, limit: 0.01, low: 0, high: 0.26611525},
		{name: "none of 1000", hits: 0, n: 1000, alpha: 0.05, limit: 0.01, low: 0, high: 0.00657013,
			explanation: "wider than Wilson's 0.38%: the price of looking as often as one likes"},
		{name: "clean segment", hits: 12, n: 3870, alpha: 0.05, limit: 0.01, low: 0.00107214, high: 0.00679138},
		{name: "straddles the limit", hits: 25, n: 4000, alpha: 0.05, limit: 0.01, low: 0.00320959, high: 0.01077071},
		{name: "smaller alpha is wider", hits: 25, n: 4000, alpha: 0.01, limit: 0.01, low: 0.00283491, high: 0.01166946},
		{name: "too divergent", hits: 96, n: 4000, alpha: 0.05, limit: 0.01, low: 0.01654403, high: 0.03335713},
		{name: "all divergent", hits: 1000, n: 1000, alpha: 0.05, limit: 0.01, low: 0.58772784, high: 1,
			explanation: "tuned to 1%, the mixture is wide far from it; still far above the limit"},
		{name: "hits clamped", hits: 12, n: 10, alpha: 0.05, limit: 0.01, low: 0.02086230, high: 1,
			explanation: "a count racing ahead of its total is read as all of it"},
		{name: "symmetric at one half", hits: 50, n: 100, alpha: 0.05, limit: 0.5, low: 0.35047511, high: 0.64952489,
			explanation: "limit 1/2 mixes over Beta(2, 2): the interval is symmetric about 1/2"},
		{name: "rare events", hits: 1, n: 1_000_000, alpha: 0.05, limit: 1e-5, low: 0, high: 0.00000817},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			low, high := ConfidenceSequence(tt.hits, tt.n, tt.alpha, tt.limit)
			if math.Abs(low-tt.low) > 1e-8 || math.Abs(high-tt.high) > 1e-8 {
				t.Errorf("ConfidenceSequence(%d, %d, %v, %v) = [%.8f, %.8f], want [%.8f, %.8f]",
					tt.hits, tt.n, tt.alpha, tt.limit, low, high, tt.low, tt.high)
			}
		})
	}
}

// TestConfidenceSequenceMixture checks the bounds against the definition,
// independently of the closed form: at each end the mixture likelihood
// ratio, integrated numerically, is 1/alpha.
func TestConfidenceSequenceMixture(t *testing.T) {
	cases := []struct {
		hits, n      int64
		alpha, limit float64
	}{
		{12, 3870, 0.05, 0.01}, {25, 4000, 0.05, 0.01}, {96, 4000, 0.01, 0.01}, {3, 50, 0.1, 0.2}, {700, 1000, 0.05, 0.8},
	}
	for _, c := range cases {
		low, high := ConfidenceSequence(c.hits, c.n, c.alpha, c.limit)
		for _, p := range []float64{low, high} {
			got := numericLogM(c.hits, c.n, c.limit, p)
			if want := math.Log(1 / c.alpha); math.Abs(got-want) > 1e-5 {
				t.Errorf("%d of %d: log M(%v) = %v by integration, want log(1/alpha) = %v", c.hits, c.n, p, got, want)
			}
		}
	}
}

// numericLogM integrates the mixture likelihood ratio at p over theta in
// logit coordinates with the trapezoidal rule.
func numericLogM(hits, n int64, limit, p float64) float64 {
	m := newMixture(limit)
	s, f := float64(hits), float64(n-hits)
	logf := func(v float64) float64 { // log of integrand in v = logit(theta)
		th := 1 / (1 + math.Exp(-v))
		return (m.a+s)*math.Log(th) + (m.b+f)*math.Log1p(-th) - m.lbeta0 - s*math.Log(p) - f*math.Log1p(-p)
	}
	const lo, hi, steps = -40.0, 40.0, 40_000
	h := (hi - lo) / steps
	peak := math.Inf(-1)
	for i := range steps + 1 {
		peak = max(peak, logf(lo+float64(i)*h))
	}
	var sum float64
	for i := range steps + 1 {
		w := 1.0
		if i == 0 || i == steps {
			w = 0.5
		}
		sum += w * math.Exp(logf(lo+float64(i)*h)-peak)
	}
	return peak + math.Log(sum*h)
}

// TestConfidenceSequenceProperties checks, over a grid, what the gate relies
// on: the interval holds the observed proportion; it moves up with the
// number of hits (so quantile bounds may scan bucket edges); and the exact
// one-evaluation tests below and above agree with its ends.
func TestConfidenceSequenceProperties(t *testing.T) {
	c := math.Log(1 / 0.05)
	for _, limit := range []float64{0.001, 0.01, 0.2, 0.5} {
		m := newMixture(limit)
		for _, n := range []int64{1, 10, 100, 1000, 20000} {
			prevLow, prevHigh := -1.0, -1.0
			step := max(1, n/200)
			for hits := int64(0); hits <= n; hits += step {
				low, high := ConfidenceSequence(hits, n, 0.05, limit)
				phat := float64(hits) / float64(n)
				if low > phat || high < phat || low < 0 || high > 1 {
					t.Fatalf("limit %v: %d of %d: [%v, %v] does not hold %v", limit, hits, n, low, high, phat)
				}
				if low < prevLow-1e-12 || high < prevHigh-1e-12 {
					t.Fatalf("limit %v: %d of %d: [%v, %v] moved down from [%v, %v]", limit, hits, n, low, high, prevLow, prevHigh)
				}
				prevLow, prevHigh = low, high
				e := m.evidence(float64(hits), float64(n-hits))
				if b := e.below(limit, c); b != (high <= limit) && math.Abs(high-limit) > 1e-9*limit {
					t.Errorf("limit %v: %d of %d: below = %v but high = %v", limit, hits, n, b, high)
				}
				if a := e.above(limit, c); a != (low > limit) && math.Abs(low-limit) > 1e-9*limit {
					t.Errorf("limit %v: %d of %d: above = %v but low = %v", limit, hits, n, a, low)
				}
			}
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
		{name: "needs more", hits: 25, n: 4000, want: 1726,
			explanation: "at 0.625% the upper bound reaches 1% after about 5,700 pairs"},
		{name: "at the limit never passes", hits: 40, n: 4000, want: -1},
		{name: "above the limit never passes", hits: 41, n: 4000, want: -1},
		{name: "nothing yet, few trials", hits: 0, n: 10, want: 557,
			explanation: "a projection at the observed 0%: optimistic, as projections are"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := trialsToBelow(tt.hits, tt.n, tt.minN, 0.05, 0.01); got != tt.want {
				t.Errorf("trialsToBelow(%d, %d, %d) = %d, want %d", tt.hits, tt.n, tt.minN, got, tt.want)
			}
		})
	}
}
