package report

import (
	"math"
	"time"
)

// MixtureShape is the smaller shape parameter of the beta mixing distribution
// behind [ConfidenceSequence]: for a limit m <= 1/2 the mixture is
// Beta(2, 2(1-m)/m), whose mean is m and whose mass lies mostly between 0 and
// about 3m. The choice only moves the sequence's width, never its validity.
const MixtureShape = 2.0

// ConfidenceSequence returns a (1-alpha) confidence sequence for a Bernoulli
// proportion after hits successes in n trials: an interval [low, high] such
// that, whatever the true proportion p,
//
//	P(p falls outside the interval at any n, ever) <= alpha
//
// when the trials are independent with the same p and the interval is
// recomputed as often as anyone likes. Unlike a fixed-sample interval such as
// [Wilson], it may be checked after every new trial and acted on at the first
// look that looks good.
//
// It is the conjugate beta-binomial mixture sequence (Robbins 1970; Howard,
// Ramdas, McAuliffe and Sekhon 2021): the interval holds the p whose mixture
// likelihood ratio
//
//	M_n(p) = B(a+hits, b+n-hits) / B(a, b) / (p^hits (1-p)^(n-hits))
//
// is below 1/alpha, where Beta(a, b) is the mixing distribution tuned to
// limit (see [MixtureShape]). For every p, M_n(p) is a nonnegative
// martingale with mean 1, so Ville's inequality gives the guarantee.
// limit should be the proportion the caller compares the interval with; it is
// clamped to [1e-9, 1-1e-9].
//
// The returned bounds are conservative by less than 1e-10 relative: every p
// below low or above high is outside the sequence. The interval always holds
// hits/n. With n <= 0, or alpha not in (0, 1), it is [0, 1]. hits is clamped to
// [0, n].
func ConfidenceSequence(hits, n int64, alpha, limit float64) (low, high float64) {
	if n <= 0 || !(alpha > 0 && alpha < 1) {
		return 0, 1
	}
	hits = max(0, min(hits, n))
	e := newMixture(limit).evidence(float64(hits), float64(n-hits))
	return e.bounds(math.Log(1 / alpha))
}

// NewAnytimeRate returns hits out of total with the bounds of
// [ConfidenceSequence] in place of the Wilson interval of [NewRate].
func NewAnytimeRate(hits, total int64, alpha, limit float64) Rate {
	if total <= 0 {
		return Rate{Low: 0, High: 1}
	}
	hits = max(0, min(hits, total))
	lo, hi := ConfidenceSequence(hits, total, alpha, limit)
	return Rate{Hits: hits, Total: total, Value: float64(hits) / float64(total), Low: lo, High: hi}
}

// mixture is a Beta(a, b) mixing distribution.
type mixture struct {
	a, b   float64
	lbeta0 float64 // log B(a, b)
}

func newMixture(limit float64) mixture {
	if !(limit >= 1e-9) { // also NaN
		limit = 1e-9
	}
	limit = min(limit, 1-1e-9)
	a, b := MixtureShape, MixtureShape*(1-limit)/limit
	if limit > 0.5 {
		a, b = MixtureShape*limit/(1-limit), MixtureShape
	}
	return mixture{a: a, b: b, lbeta0: lbeta(a, b)}
}

func lbeta(a, b float64) float64 {
	x, _ := math.Lgamma(a)
	y, _ := math.Lgamma(b)
	z, _ := math.Lgamma(a + b)
	return x + y - z
}

// evidence is the mixture's state after s successes and f failures (which
// need not be whole numbers: projections use expected counts).
type evidence struct {
	s, f float64
	post float64 // log B(a+s, b+f) - log B(a, b)
}

func (m mixture) evidence(s, f float64) evidence {
	return evidence{s: s, f: f, post: lbeta(m.a+s, m.b+f) - m.lbeta0}
}

// logM returns log M(p) for p in (0, 1). It is convex in p, with its minimum
// (at most 0) at the observed proportion.
func (e evidence) logM(p float64) float64 {
	return e.post - e.s*math.Log(p) - e.f*math.Log1p(-p)
}

// bounds returns the sequence's interval {p : log M(p) < c}, rounded
// outwards.
//
// In u = logit(p), log M is post + s·softplus(-u) + f·softplus(u): convex,
// with slope n·p - s. Newton's method started outside the interval therefore
// approaches each end monotonically from outside, and every iterate is a
// valid, conservative bound; it stops when a step moves p by less than 1e-10
// relative, after a handful of steps.
func (e evidence) bounds(c float64) (low, high float64) {
	low, high = 0, 1
	if e.s > 0 {
		low = e.root(c, -1)
	}
	if e.f > 0 {
		high = e.root(c, +1)
	}
	return low, high
}

// root returns the end of the interval on the given side (-1 low, +1 high).
func (e evidence) root(c float64, side float64) float64 {
	n := e.s + e.f
	g := func(u float64) (val, slope float64) {
		p := 1 / (1 + math.Exp(-u))
		return e.post + e.s*softplus(-u) + e.f*softplus(u) - c, n*p - e.s
	}
	// Start just outside: log M grows about quadratically in u around the
	// observed proportion, with curvature n·p(1-p), and the end lies where it
	// has grown by c plus the mixture's penalty of about log(n)/2. Step
	// further out until outside; past logit ±700 the end is within 1e-300 of
	// 0 or 1.
	phat := min(max(e.s/n, 0.5/n), 1-0.5/n)
	center := math.Log(phat / (1 - phat))
	dist := math.Sqrt(2*(c+0.5*math.Log1p(n)+1)/(n*phat*(1-phat))) + 0.1
	u := center + side*dist
	val, slope := g(u)
	for val <= 0 {
		if math.Abs(u) >= 700 {
			return max(0, side)
		}
		dist *= 2
		u = max(-700, min(700, center+side*dist))
		val, slope = g(u)
	}
	for range 100 {
		next := u - val/slope
		if side*(next-u) >= 0 || math.Abs(next-u) < 1e-10 {
			break // no progress left to make
		}
		nv, ns := g(next)
		if nv <= 0 {
			break // rounding crossed into the interval: keep the last outside point
		}
		u, val, slope = next, nv, ns
	}
	return 1 / (1 + math.Exp(-u))
}

// softplus returns log(1 + e^x) without overflow.
func softplus(x float64) float64 {
	return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x)))
}

// below reports whether the sequence lies wholly below p: every proportion
// >= p is outside it. It is one evaluation of M, exact, and agrees with
// bounds: below(p) holds iff high <= p up to bounds' rounding.
func (e evidence) below(p, c float64) bool {
	return e.f > 0 && e.s < p*(e.s+e.f) && e.logM(p) >= c
}

// above reports whether the sequence lies wholly above p.
func (e evidence) above(p, c float64) bool {
	return e.s > 0 && e.s > p*(e.s+e.f) && e.logM(p) >= c
}

// maxProjectedTrials caps projections of how many trials a sequence needs.
const maxProjectedTrials = 1e13

// trialsToBelow returns about (within 0.1%, rounded up) how many more
// trials, beyond n, the sequence needs to lie wholly below limit (and to reach at least minN trials) if
// successes keep the observed proportion hits/n; -1 when it never would at
// that proportion (hits/n >= limit), or n <= 0.
func trialsToBelow(hits, n, minN int64, alpha, limit float64) int64 {
	if n <= 0 || !(alpha > 0 && alpha < 1) {
		return -1
	}
	phat := float64(hits) / float64(n)
	if phat >= limit {
		return -1
	}
	m, c := newMixture(limit), math.Log(1/alpha)
	passes := func(N float64) bool {
		return m.evidence(phat*N, (1-phat)*N).below(limit, c)
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
	// passes(hi) and not passes(lo): bisect to the first passing count, to
	// within 0.1%: this is an estimate.
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
// representative. Each bound comes from [ConfidenceSequence] on the fraction
// of observations at or beyond a fixed bucket edge, at alpha/2 each side.
// Without enough observations a bound stays at the edge of the scale:
// low 500ns, high [HistogramMax]. q is clamped to [0.0001, 0.9999].
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
	m, c := newMixture(tail), math.Log(2/alpha)
	nf := float64(n)
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
	for b := k; b <= last; b++ {
		beyond := float64(n - cumBefore[b+1])
		if m.evidence(beyond, nf-beyond).below(tail, c) {
			high = time.Duration(bucketMid[b])
			break
		}
	}
	// low: the last bucket b <= k whose lower edge has, surely enough, a
	// fraction > 1-q of observations at or beyond it.
	for b := k; b >= 0; b-- {
		atOrBeyond := float64(n - cumBefore[b])
		if m.evidence(atOrBeyond, nf-atOrBeyond).above(tail, c) {
			low = time.Duration(bucketMid[b])
			break
		}
	}
	return low, high
}
