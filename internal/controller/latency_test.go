package controller

import (
	"testing"
	"time"

	"github.com/parityhq/parity/pkg/report"
)

// TestSubHistogram: the latencies observed since a snapshot are the
// histogram less the snapshot's, bucket by bucket, never below zero.
func TestSubHistogram(t *testing.T) {
	var base, now report.Histogram
	base.ObserveN(50*time.Millisecond, 40)
	now.ObserveN(50*time.Millisecond, 40)
	now.ObserveN(time.Millisecond, 100)
	now.ObserveN(50*time.Millisecond, 2)
	got := subHistogram(now, base.Encode())
	if got.Count() != 102 || got.Quantile(0.5) > 2*time.Millisecond {
		t.Errorf("since the snapshot: %d observations, p50 %v; want 102 and about 1ms", got.Count(), got.Quantile(0.5))
	}
	if now.Count() != 142 {
		t.Errorf("the histogram itself changed: %d", now.Count())
	}
	var more report.Histogram
	more.ObserveN(time.Second, 5)
	if got := subHistogram(now, more.Encode()); got.Count() != now.Count() {
		t.Errorf("subtracting buckets it lacks: %d, want %d (never below zero)", got.Count(), now.Count())
	}
	if got := subHistogram(now, nil); got.Count() != now.Count() {
		t.Errorf("no snapshot: %d, want %d", got.Count(), now.Count())
	}
}
