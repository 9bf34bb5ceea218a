package report

import "math"

// Z95 is the standard normal quantile for a two-sided 95% interval.
const Z95 = 1.959963984540054

// Rate is a proportion with its 95% Wilson score interval.
type Rate struct {
	Hits  int64   `json:"divergent"`
	Total int64   `json:"pairs"`
	Value float64 `json:"rate"`
	Low   float64 `json:"rate_low"`
	High  float64 `json:"rate_high"`
}

// NewRate returns hits out of total with its 95% Wilson score interval. It
// clamps hits to [0, total]; with total <= 0 it returns rate 0 and the interval
// [0, 1].
func NewRate(hits, total int64) Rate {
	if total <= 0 {
		return Rate{Low: 0, High: 1}
	}
	hits = max(0, min(hits, total))
	lo, hi := Wilson(hits, total, Z95)
	return Rate{Hits: hits, Total: total, Value: float64(hits) / float64(total), Low: lo, High: hi}
}

// Wilson returns the Wilson score interval for hits successes out of n trials
// at normal quantile z. It requires 0 <= hits <= n and n > 0.
func Wilson(hits, n int64, z float64) (low, high float64) {
	nf := float64(n)
	p := float64(hits) / nf
	z2 := z * z
	denom := 1 + z2/nf
	center := (p + z2/(2*nf)) / denom
	half := z / denom * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	low, high = max(0, center-half), min(1, center+half)
	// At the edges the interval must include the observed proportion exactly.
	if hits == 0 {
		low = 0
	}
	if hits == n {
		high = 1
	}
	return low, high
}
