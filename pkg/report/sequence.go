package report

import (
	"math"
	"time"
)

// The gate's tests are discrete mixtures of one-sided likelihood-ratio
// martingales (Robbins 1970; Howard, Ramdas, McAuliffe and Sekhon 2021).
// To test "the rate is at least p" after s hits in n trials, each component j
// is the likelihood ratio of a rate tilted below p, by a fixed factor r_j < 1
// on the odds, against p:
//
//	L_j(p) = exp(λ_j·s − n·ψ_j(p)),  λ_j = ln r_j,  ψ_j(p) = ln(1 − p + p·e^λ_j)
//
// and M⁻(p) = Σ_j w_j L_j(p) with weights summing to 1. If every trial's
// chance of a hit, given the trials before it, is at least p, each L_j is a
// nonnegative supermartingale with L_j = 1 before any trial, so M⁻ is too,
// and Ville's inequality gives P(M⁻ ever reaches 1/α) ≤ α: exactly α, with
// no slack, over any number of looks. The test for "at most p" mirrors it
// with factors r_j > 1.
//
// The components are log-normal over the factor: ln r_j = ±(ln 2 + 0.3·z_j)
// for fifteen z_j from -2.25 to 3 (the side towards the tested rate is cut
// where r would reach 1), weighted by the normal density of z_j. The pass
// test's mixture is so centred on half the tested rate, the rate a segment
// should have to pass quickly (see docs/gate.md for the choice); the fail
// test's on twice it. A component is a function of s and n alone, so the
// verdict is recomputed from stored counts with no state kept between looks,
// and it stays accurate up to [MaxCount] trials (no log-gamma of huge
// arguments, whose differences lose precision).
const (
	mixtureComponents = 15
	mixtureCentre     = math.Ln2 // ln of the factor the mixture centres on
	mixtureSpread     = 0.3      // standard deviation of ln r
)

// tilts is one side's mixture: the log weights, λ_j and e^λ_j − 1.
type tilts struct {
	lw, lam, em1 [mixtureComponents]float64
}

// belowMix tests "rate >= p" (alternatives below p); aboveMix tests
// "rate <= p".
var belowMix, aboveMix = newTilts(-1, mixtureCentre, mixtureSpread), newTilts(+1, mixtureCentre, mixtureSpread)

func newTilts(sign, centre, spread float64) tilts {
	var t tilts
	var z [mixtureComponents]float64
	var sum float64
	for j := range z {
		// -2.25 … 3 in steps of 0.375, on the side away from the tested rate:
		// ln r = sign·(ln 2 + 0.3 z) keeps |ln r| >= ln 2 - 0.675 > 0.
		z[j] = -2.25 + 0.375*float64(j)
		sum += math.Exp(-z[j] * z[j] / 2)
	}
	for j := range z {
		t.lw[j] = -z[j]*z[j]/2 - math.Log(sum)
		t.lam[j] = sign * (centre + spread*z[j])
		t.em1[j] = math.Expm1(t.lam[j])
	}
	return t
}

// logM returns the log of the mixture's likelihood ratio against rate p after
// s hits in n trials. Every component is computed as λ·s − n·log1p(p·(e^λ−1)),
// to about 1e-16 relative to λ·s: accurate for counts up to [MaxCount].
func (t *tilts) logM(s, n, p float64) float64 {
	ps := t.psi(p)
	return t.logMpsi(s, n, &ps)
}

// psi returns every component's ψ_j(p) = log1p(p·(e^λ_j−1)), for tests at a
// fixed p.
func (t *tilts) psi(p float64) (ps [mixtureComponents]float64) {
	for j := range ps {
		ps[j] = math.Log1p(p * t.em1[j])
	}
	return ps
}

// logMpsi is logM at the rate whose ψ are ps.
func (t *tilts) logMpsi(s, n float64, ps *[mixtureComponents]float64) float64 {
	var v [mixtureComponents]float64
	top := math.Inf(-1)
	for j := range v {
		v[j] = t.lw[j] + t.lam[j]*s - n*ps[j]
		top = max(top, v[j])
	}
	var sum float64
	for j := range v {
		if d := v[j] - top; d > -40 { // e^-40 is below float64's resolution of sum >= 1
			sum += math.Exp(d)
		}
	}
	return top + math.Log(sum)
}

// below reports whether hits of n reject "the rate is at least p" at level
// alpha: the one-sided anytime upper bound is at most p.
func below(hits, n int64, p, alpha float64) bool {
	return n > 0 && belowMix.logM(float64(hits), float64(n), p) >= math.Log(1/alpha)
}

// above reports whether hits of n reject "the rate is at most p" at level
// alpha: the one-sided anytime lower bound is above p.
func above(hits, n int64, p, alpha float64) bool {
	return n > 0 && aboveMix.logM(float64(hits), float64(n), p) >= math.Log(1/alpha)
}

// UpperBound returns an anytime-valid (1-alpha) upper confidence bound for a
// Bernoulli proportion after hits successes in n trials: whatever the true
// proportion p,
//
//	P(p > UpperBound at any n, ever) <= alpha
//
// however often it is recomputed, and also when the proportion drifts, as
// long as every trial's chance of success given the ones before it is at
// least p. It is the smallest p whose test "the proportion is at least p"
// (see the mixture above) has rejected. It is conservative by less than 1e-10
// relative, and at least hits/n. With n <= 0, or alpha not in (0, 1), it is 1.
// hits is clamped to [0, n].
func UpperBound(hits, n int64, alpha float64) float64 {
	if n <= 0 || !(alpha > 0 && alpha < 1) {
		return 1
	}
	hits = max(0, min(hits, n))
	return belowMix.root(float64(hits), float64(n), math.Log(1/alpha), +1)
}

// LowerBound is the mirror of [UpperBound]: P(p < LowerBound at any n, ever)
// <= alpha. With n <= 0, or alpha not in (0, 1), it is 0.
func LowerBound(hits, n int64, alpha float64) float64 {
	if n <= 0 || !(alpha > 0 && alpha < 1) {
		return 0
	}
	hits = max(0, min(hits, n))
	return aboveMix.root(float64(hits), float64(n), math.Log(1/alpha), -1)
}

// ConfidenceSequence returns a (1-alpha) confidence sequence for a Bernoulli
// proportion after hits successes in n trials: [LowerBound, UpperBound], each
// at alpha/2, so that whatever the true proportion p,
//
//	P(p falls outside the interval at any n, ever) <= alpha
//
// when the trials are independent with the same p and the interval is
// recomputed as often as anyone likes. Unlike a fixed-sample interval such as
// [Wilson], it may be checked after every new trial and acted on at the first
// look that looks good. It always holds hits/n. With n <= 0, or alpha not in
// (0, 1), it is [0, 1]. The gate's checks use each side alone at alpha.
func ConfidenceSequence(hits, n int64, alpha float64) (low, high float64) {
	if n <= 0 || !(alpha > 0 && alpha < 1) {
		return 0, 1
	}
	return LowerBound(hits, n, alpha/2), UpperBound(hits, n, alpha/2)
}

// NewAnytimeRate returns hits out of total with the bounds of
// [ConfidenceSequence] in place of the Wilson interval of [NewRate].
func NewAnytimeRate(hits, total int64, alpha float64) Rate {
	if total <= 0 {
		return Rate{Low: 0, High: 1}
	}
	hits = max(0, min(hits, total))
	lo, hi := ConfidenceSequence(hits, total, alpha)
	return Rate{Hits: hits, Total: total, Value: float64(hits) / float64(total), Low: lo, High: hi}
}

// logMd returns logM at p = σ(u) and its derivative in u.
func (t *tilts) logMd(s, n, u float64) (val, slope float64) {
	p := sigmoid(u)
	var v, d [mixtureComponents]float64
	top := math.Inf(-1)
	for j := range v {
		pe := p * t.em1[j]
		v[j] = t.lw[j] + t.lam[j]*s - n*math.Log1p(pe)
		d[j] = -n * pe * (1 - p) / (1 + pe)
		top = max(top, v[j])
	}
	var sum, dsum float64
	for j := range v {
		if x := v[j] - top; x > -40 {
			e := math.Exp(x)
			sum += e
			dsum += e * d[j]
		}
	}
	return top + math.Log(sum), dsum / sum
}

// root returns the bound of the test t after s hits in n trials at
// threshold c: side +1 for the upper bound (t = belowMix, whose log M rises
// with p) and -1 for the lower one (t = aboveMix, falling with p). It
// searches u = logit(p) by Newton's method inside a bracket whose outer end
// is always rejected (bisecting when a step would leave it), and returns that
// outer end once the bracket is narrower than 1e-10 relative in p: a
// conservative bound, after about five evaluations.
func (t *tilts) root(s, n, c, side float64) float64 {
	const edge = 745 // σ(±745) is 0 or 1 to float64
	f := func(u float64) (float64, float64) {
		v, d := t.logMd(s, n, u)
		return v - c, d
	}
	phat := s / n
	if (phat == 1 && side > 0) || (phat == 0 && side < 0) {
		return max(0, side) // all hits: nothing above is rejected; none: nothing below
	}
	if v, _ := f(side * edge); v < 0 {
		return max(0, side) // not even the extreme is rejected yet
	}
	// The bracket: in is not rejected, out is. The observed proportion is
	// never rejected (every component's likelihood ratio is at most 1 there).
	in, out := -side*edge, side*edge
	if phat > 0 && phat < 1 {
		in = math.Log(phat / (1 - phat))
	}
	// Start a few standard errors out: log M grows about quadratically in u
	// around the observed proportion, with curvature n·p(1-p).
	pt := min(max(phat, 0.5/n), 1-0.5/n)
	u := math.Log(pt/(1-pt)) + side*math.Sqrt(2*(c+2)/(n*pt*(1-pt)))
	if side*(u-in) <= 0 || side*(out-u) <= 0 {
		u = in + (out-in)/2
	}
	for range 100 {
		val, slope := f(u)
		if val >= 0 {
			out = u
		} else {
			in = u
		}
		if pin, pout := sigmoid(in), sigmoid(out); math.Abs(pout-pin) <= 1e-10*max(pin, pout) {
			break
		}
		const tol = 5e-11 // in u: about 5e-11 relative in p
		next := u - val/slope
		switch {
		case math.Abs(next-u) < tol:
			// Converged from one side: step just past the root so that
			// the bracket closes from the other side too.
			next = u + side*tol
			if val >= 0 {
				next = u - side*tol
			}
		case !(side*(next-in) > 0 && side*(out-next) > 0): // outside the bracket, or no slope
			switch {
			case math.Abs(out-in) <= 8:
				next = in + (out-in)/2
			case math.Abs(in) == edge:
				next = out - side*4
			default:
				next = in + side*4
			}
		}
		u = next
	}
	return sigmoid(out)
}

func sigmoid(u float64) float64 { return 1 / (1 + math.Exp(-u)) }

// maxProjectedTrials caps projections of how many trials a test needs.
const maxProjectedTrials = 1e13

// trialsToBelow returns about (within 0.1%, rounded up) how many more
// trials, beyond n, the pass test needs to reject "the rate is at least
// limit" (and to reach at least minN trials) if successes keep the observed
// proportion hits/n; -1 when it never would at that proportion
// (hits/n >= limit), or n <= 0.
//
// At a fixed proportion log M⁻ is a log-sum of exponentials linear in the
// number of trials, so convex in it and 0 at none: once it reaches the
// threshold it stays above, and bisection finds the first passing count.
func trialsToBelow(hits, n, minN int64, alpha, limit float64) int64 {
	if n <= 0 || !(alpha > 0 && alpha < 1) {
		return -1
	}
	phat := float64(hits) / float64(n)
	if phat >= limit {
		return -1
	}
	c := math.Log(1 / alpha)
	ps := belowMix.psi(limit)
	passes := func(N float64) bool {
		return belowMix.logMpsi(phat*N, N, &ps) >= c
	}
	lo := float64(max(n, minN))
	if passes(lo) {
		return int64(lo) - n
	}
	hi := lo
	for !passes(hi) {
		lo, hi = hi, 2*hi
		if hi > maxProjectedTrials {
			return -1
		}
	}
	for hi-lo > max(1, hi/1000) {
		m := math.Floor(lo + (hi-lo)/2)
		if passes(m) {
			hi = m
		} else {
			lo = m
		}
	}
	return int64(hi) - n
}

// QuantileBounds returns anytime-valid (1-alpha) bounds for the q-quantile of
// the latency distribution h samples, at bucket resolution: with probability
// at least 1-alpha, at every look ever, the bucket holding the true quantile
// lies between the buckets reported, each as its [Histogram.Quantile]
// representative. Each bound tests the fraction of observations at or beyond
// a fixed bucket edge against 1-q with the one-sided tests of [UpperBound]
// and [LowerBound], at alpha/2 each. Without enough observations a bound
// stays at the edge of the scale: low 500ns, high [HistogramMax]. q is
// clamped to [0.0001, 0.9999].
func (h Histogram) QuantileBounds(q, alpha float64) (low, high time.Duration) {
	low, high = time.Duration(bucketMid[0]), time.Duration(bucketMid[HistogramBuckets-1])
	n := h.Count()
	if n == 0 || !(alpha > 0 && alpha < 1) {
		return low, high
	}
	if !(q >= 0.0001) {
		q = 0.0001
	}
	q = min(q, 0.9999)
	tail := 1 - q
	last := len(h.Counts) - 1
	for last > 0 && h.Counts[last] == 0 {
		last--
	}
	k := h.rankBucket(n, rank(q, n))

	// cumBefore[i] is the number of observations in buckets < i.
	var cumBefore [HistogramBuckets + 1]int64
	for i := range last + 1 {
		cumBefore[i+1] = cumBefore[i] + h.Counts[i]
	}
	// high: the first bucket b >= k whose upper edge has, surely enough, a
	// fraction < 1-q of observations at or beyond it.
	c := math.Log(2 / alpha)
	nf := float64(n)
	psBelow, psAbove := belowMix.psi(tail), aboveMix.psi(tail)
	for b := k; b <= last; b++ {
		if belowMix.logMpsi(float64(n-cumBefore[b+1]), nf, &psBelow) >= c {
			high = time.Duration(bucketMid[b])
			break
		}
	}
	// low: the last bucket b <= k whose lower edge has, surely enough, a
	// fraction > 1-q of observations at or beyond it.
	for b := k; b >= 0; b-- {
		if aboveMix.logMpsi(float64(n-cumBefore[b]), nf, &psAbove) >= c {
			low = time.Duration(bucketMid[b])
			break
		}
	}
	return low, high
}
