package report

import (
	"math"
	"slices"
	"time"
)

// Minute is one minute of a unit's counts, as the store keeps them: the
// input of the change detector (see [DetectBreach]).
type Minute struct {
	At              time.Time `json:"at"` // the minute's start
	Pairs           int64     `json:"pairs"`
	Divergent       int64     `json:"divergent"`
	CandidateErrors int64     `json:"candidate_errors"`
}

// BreachFactor is the rise the change detector is tuned to catch: from a rate
// at the limit to one BreachFactor times it (on the odds, so it stays below
// 1). It detects any rise above the limit, faster the larger it is.
const BreachFactor = 2.0

// DefaultFalseBreachUnitMinutes is what [GateSpec.FalseBreachUnitMinutes]
// defaults to: 4,320,000 unit-minutes, one expected false breach in 30 days
// for an experiment of 100 units, or 3,000 days for one unit.
const DefaultFalseBreachUnitMinutes = 100 * 30 * 24 * 60

// Breach is the change detector's finding on one unit's minute series.
type Breach struct {
	// Detected reports whether the statistic ever reached the threshold.
	Detected bool `json:"detected"`
	// At is the minute it first did; zero if never.
	At time.Time `json:"at,omitzero"`
	// Since is the detector's estimate of where the rate rose: the first
	// minute of the run of evidence that crossed (or, without a breach, of the
	// current run). Zero when the statistic is 0.
	Since time.Time `json:"since,omitzero"`
	// Statistic is the CUSUM statistic, in nats: at At when detected, at the
	// last minute otherwise. Threshold is what it is compared with.
	Statistic float64 `json:"statistic"`
	Threshold float64 `json:"threshold"`
	// Minutes is the number of minutes with pairs it read.
	Minutes int `json:"minutes"`
}

// DetectBreach runs the change detector over a unit's minute series: a
// one-sided CUSUM (Page 1954) of the log-likelihood ratio of a rate
// [BreachFactor] times limit (on the odds) against limit itself,
//
//	W_t = max(0, W_{t-1} + λ·hits_t − n_t·ln(1 − limit + limit·e^λ)),  λ = ln BreachFactor,
//
// one step per minute, and reports a breach at the first minute W reaches
// threshold. hits picks the counter (for example the divergent pairs). The
// statistic forgets evidence older than its last return to 0, so a rise is
// found as fast after hours of clean traffic as at the start: at 200 pairs a
// minute, a unit that jumps from 0% to 5% against a 1% limit is failed in a
// median of 4 minutes at the default threshold (docs/gate.md).
//
// False alarms: if every pair's chance of a hit, given the ones before it, is
// at most limit, the expected number of minutes at which a CUSUM restarted
// after each alarm would raise one, over T minutes with pairs, is at most
// T·e^(−threshold) (each alarm needs a minute k from which the likelihood
// ratio, a nonnegative supermartingale starting at 1, reaches e^threshold;
// Ville's inequality bounds each k's chance by e^(−threshold)). The bound
// holds whatever the traffic per minute, and for a rate that drifts as long
// as it stays at or below the limit.
//
// minutes must be in time order; minutes without pairs change nothing.
// Counts must be valid (see [SegmentStats.Validate]): DetectBreach clamps
// hits to [0, pairs]. It depends on the series alone, so it may be recomputed
// from stored counts at any time, by anyone, with no state kept between
// looks.
func DetectBreach(minutes []Minute, hits func(Minute) int64, limit, threshold float64) Breach {
	b := Breach{Threshold: threshold}
	d := newDetector(limit)
	var w float64
	var since time.Time
	for _, m := range minutes {
		if m.Pairs <= 0 {
			continue
		}
		b.Minutes++
		h := max(0, min(hits(m), m.Pairs))
		w0 := w
		w = max(0, w+d.step(h, m.Pairs))
		if w0 == 0 && w > 0 {
			since = m.At
		}
		if w == 0 {
			since = time.Time{}
		}
		if w >= threshold {
			b.Detected, b.At, b.Since, b.Statistic = true, m.At, since, w
			return b
		}
	}
	b.Since, b.Statistic = since, w
	return b
}

// detector holds one limit's CUSUM increments.
type detector struct{ lam, psi float64 }

func newDetector(limit float64) detector {
	lam := math.Log(BreachFactor)
	return detector{lam: lam, psi: math.Log1p(limit * math.Expm1(lam))}
}

// step is the log-likelihood ratio of a minute with hits of n.
func (d detector) step(hits, n int64) float64 {
	return d.lam*float64(hits) - d.psi*float64(n)
}

// breachThreshold is the CUSUM threshold for an expected false breach every
// unitMinutes unit-minutes: ln(unitMinutes).
func breachThreshold(unitMinutes float64) float64 { return math.Log(unitMinutes) }

// sumMinutes merges the minute series of several units into one, summing
// minutes with the same start, in time order.
func sumMinutes(series ...[]Minute) []Minute {
	at := map[int64]int{} // unix nanoseconds → index in out
	var out []Minute
	for _, s := range series {
		for _, m := range s {
			k := m.At.UnixNano()
			i, ok := at[k]
			if !ok {
				at[k] = len(out)
				out = append(out, Minute{At: m.At})
				i = len(out) - 1
			}
			out[i].Pairs += m.Pairs
			out[i].Divergent += m.Divergent
			out[i].CandidateErrors += m.CandidateErrors
		}
	}
	slices.SortFunc(out, func(a, b Minute) int { return a.At.Compare(b.At) })
	return out
}
