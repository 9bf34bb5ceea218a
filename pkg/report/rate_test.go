package report

import (
	"math"
	"testing"
)

func TestNewRate(t *testing.T) {
	tests := []struct {
		name        string
		hits, total int64
		rate        float64
		low, high   float64
		explanation string
	}{
		{name: "no pairs", hits: 0, total: 0, rate: 0, low: 0, high: 1,
			explanation: "no data says nothing: the whole interval, not a division by zero"},
		{name: "none divergent of 10", hits: 0, total: 10, rate: 0, low: 0, high: 0.27753280},
		{name: "all divergent of 10", hits: 10, total: 10, rate: 1, low: 0.72246720, high: 1},
		{name: "half of 100", hits: 50, total: 100, rate: 0.5, low: 0.40383153, high: 0.59616847},
		{name: "1 of 1000", hits: 1, total: 1000, rate: 0.001, low: 0.00017655, high: 0.00564256},
		{name: "hits clamped to total", hits: 12, total: 10, rate: 1, low: 0.72246720, high: 1,
			explanation: "a count racing ahead of its total must not produce a rate above 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRate(tt.hits, tt.total)
			if !near(r.Value, tt.rate) || !near(r.Low, tt.low) || !near(r.High, tt.high) {
				t.Errorf("NewRate(%d, %d) = %.8f [%.8f, %.8f], want %.8f [%.8f, %.8f]",
					tt.hits, tt.total, r.Value, r.Low, r.High, tt.rate, tt.low, tt.high)
			}
			if r.Low > r.Value || r.Value > r.High {
				t.Errorf("interval [%v, %v] does not contain the rate %v", r.Low, r.High, r.Value)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-7 }
