package report

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	tests := []struct {
		name         string
		bucket       int
		lower, upper time.Duration
		explanation  string
	}{
		{name: "underflow", bucket: 0, lower: 0, upper: time.Microsecond,
			explanation: "everything below 1µs, negative durations included"},
		{name: "first log bucket", bucket: 1, lower: time.Microsecond, upper: 1091},
		{name: "last of the first doubling", bucket: 8, lower: 1834, upper: 2 * time.Microsecond},
		{name: "first of the second doubling", bucket: 9, lower: 2 * time.Microsecond, upper: 2181,
			explanation: "every 8th bound is an exact power of two microseconds"},
		{name: "around a millisecond", bucket: 80, lower: 939012, upper: 1024 * time.Microsecond},
		{name: "around a second", bucket: 160, lower: 961548432, upper: 1048576 * time.Microsecond},
		{name: "last log bucket", bucket: 216, lower: 123078199246, upper: HistogramMax},
		{name: "overflow", bucket: 217, lower: HistogramMax, upper: math.MaxInt64,
			explanation: "everything from 2^27µs (2m14s) up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lower, upper := BucketBounds(tt.bucket)
			if lower != tt.lower || upper != tt.upper {
				t.Errorf("BucketBounds(%d) = [%d, %d), want [%d, %d)", tt.bucket, lower, upper, tt.lower, tt.upper)
			}
		})
	}
}

// TestBucketsTile checks the layout's invariants: the buckets tile the whole
// range without gaps, BucketOf agrees with BucketBounds at every edge, and
// every log bucket spans a factor 2^(1/8).
func TestBucketsTile(t *testing.T) {
	if HistogramBuckets != 218 {
		t.Fatalf("HistogramBuckets = %d, want 218", HistogramBuckets)
	}
	if want := math.Exp2(1.0/(2*BucketsPerDoubling)) - 1; math.Abs(HistogramRelativeError-want) > 1e-15 {
		t.Errorf("HistogramRelativeError = %v, want 2^(1/16)-1 = %v", HistogramRelativeError, want)
	}
	var prevUpper time.Duration
	for i := range HistogramBuckets {
		lower, upper := BucketBounds(i)
		if lower != prevUpper || upper <= lower {
			t.Fatalf("bucket %d is [%d, %d) after an upper bound of %d", i, lower, upper, prevUpper)
		}
		prevUpper = upper
		if got := BucketOf(lower); got != i {
			t.Errorf("BucketOf(%d) = %d, want %d (bucket's lower bound)", lower, got, i)
		}
		if got := BucketOf(upper - 1); got != i {
			t.Errorf("BucketOf(%d) = %d, want %d (just below the upper bound)", upper-1, got, i)
		}
		if i >= 1 && i < HistogramBuckets-1 {
			ratio := float64(upper) / float64(lower)
			if want := math.Exp2(1.0 / BucketsPerDoubling); math.Abs(ratio-want) > 1e-3 {
				t.Errorf("bucket %d spans a factor %v, want %v", i, ratio, want)
			}
		}
	}
	if got := BucketOf(-time.Second); got != 0 {
		t.Errorf("BucketOf(-1s) = %d, want 0", got)
	}
}

func TestQuantile(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name        string
		observe     []time.Duration
		q           float64
		want        time.Duration
		explanation string
	}{
		{name: "empty", observe: nil, q: 0.99, want: 0,
			explanation: "no observations: 0, not a panic"},
		{name: "one observation", observe: []time.Duration{2 * us}, q: 0.5, want: 2089,
			explanation: "the geometric middle of [2µs, 2.181µs)"},
		{name: "below the scale", observe: []time.Duration{300}, q: 0.5, want: 500},
		{name: "above the scale", observe: []time.Duration{time.Hour}, q: 0.99, want: HistogramMax,
			explanation: "the overflow bucket reports its lower bound: at least 2m14s"},
		{name: "median of three", observe: []time.Duration{us, time.Millisecond, time.Second}, q: 0.5, want: 980586},
		{name: "q 0 is the smallest", observe: []time.Duration{us, time.Millisecond, time.Second}, q: 0, want: 1044},
		{name: "q 1 is the largest", observe: []time.Duration{us, time.Millisecond, time.Second}, q: 1, want: 1004119818},
		{name: "p99 of 100 is the 99th", observe: ramp(100), q: 0.99, want: 103071,
			explanation: "rank ceil(0.99·100) = 99: 99µs, reported as its bucket's middle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tt.observe {
				h.Observe(d)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
			if got := h.Count(); got != int64(len(tt.observe)) {
				t.Errorf("Count() = %d, want %d", got, len(tt.observe))
			}
		})
	}
}

// ramp returns 1µs, 2µs, … nµs.
func ramp(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Microsecond
	}
	return out
}

// TestQuantileAccuracy checks the documented error bound against exact order
// statistics of log-uniform latencies from 10µs to 10s.
func TestQuantileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 10, 1000, 20000} {
		var h Histogram
		xs := make([]time.Duration, n)
		for i := range xs {
			xs[i] = time.Duration(1e4 * math.Pow(1e6, r.Float64()))
			h.Observe(xs[i])
		}
		slices.Sort(xs)
		for _, q := range []float64{0, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
			exact := xs[rank(q, int64(n))-1]
			got := h.Quantile(q)
			if rel := math.Abs(float64(got)/float64(exact) - 1); rel > HistogramRelativeError+1e-6 {
				t.Errorf("n %d: Quantile(%v) = %v, exact %v: relative error %.4f > %.4f", n, q, got, exact, rel, HistogramRelativeError)
			}
		}
	}
}

// TestMergeExact checks that merging is exact: however observations are split
// across histograms (verifiers, minutes) and in whatever order they merge, the
// result is the histogram of all of them.
func TestMergeExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all Histogram
	parts := make([]Histogram, 7) // parts[3] stays empty
	for range 5000 {
		d := time.Duration(1e3 * math.Pow(1e7, r.Float64()))
		all.Observe(d)
		if i := r.IntN(len(parts) - 1); i < 3 {
			parts[i].Observe(d)
		} else {
			parts[i+1].Observe(d)
		}
	}
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5, 6}, {6, 5, 4, 3, 2, 1, 0}, {3, 1, 4, 0, 5, 2, 6}} {
		var merged Histogram
		for _, i := range order {
			merged.Merge(parts[i])
		}
		if !slices.Equal(merged.Encode(), all.Encode()) {
			t.Errorf("merge in order %v differs from observing everything at once", order)
		}
		for _, q := range []float64{0.5, 0.95, 0.99} {
			if merged.Quantile(q) != all.Quantile(q) {
				t.Errorf("order %v: p%v = %v, want %v", order, 100*q, merged.Quantile(q), all.Quantile(q))
			}
		}
	}
	// Merging into the zero value copies: changing the source later must not
	// change the merge.
	var m Histogram
	src := Histogram{Counts: []int64{0, 5, 1}}
	m.Merge(src)
	src.Counts[1] = 99
	if m.Counts[1] != 5 {
		t.Errorf("Merge shares memory with its argument: got %d after the source changed, want 5", m.Counts[1])
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name        string
		counts      []int64
		want        []int64
		explanation string
	}{
		{name: "empty", counts: nil, want: nil},
		{name: "all zero", counts: []int64{0, 0, 0}, want: nil,
			explanation: "zeros carry no information: an empty histogram is an empty array"},
		{name: "dense from 0", counts: []int64{1, 2, 3}, want: []int64{0, 1, 2, 3}},
		{name: "zeros trimmed at both ends", counts: []int64{0, 0, 4, 0, 5, 0, 0}, want: []int64{2, 4, 0, 5},
			explanation: "first non-empty bucket, then counts up to the last non-empty one; inner zeros stay"},
		{name: "overflow bucket", counts: append(make([]int64, 217), 7), want: []int64{217, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Histogram{Counts: tt.counts}
			got := h.Encode()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Encode() = %v, want %v", got, tt.want)
			}
			back, err := DecodeHistogram(got)
			if err != nil {
				t.Fatalf("DecodeHistogram(%v): %v", got, err)
			}
			if !slices.Equal(back.Encode(), tt.want) || back.Count() != h.Count() {
				t.Errorf("DecodeHistogram(%v) = %v, which does not round-trip", got, back.Counts)
			}
		})
	}
}

func TestDecodeHistogramErrors(t *testing.T) {
	tests := []struct {
		name string
		enc  []int64
		want string
	}{
		{name: "negative first bucket", enc: []int64{-1, 3}, want: "report: invalid histogram encoding: first bucket -1 not in [0, 218)"},
		{name: "first bucket past the end", enc: []int64{218, 3}, want: "report: invalid histogram encoding: first bucket 218 not in [0, 218)"},
		{name: "too many counts", enc: append([]int64{200}, make([]int64, 19)...), want: "report: invalid histogram encoding: 19 counts from bucket 200 exceed 218 buckets"},
		{name: "negative count", enc: []int64{5, 1, -2}, want: "report: invalid histogram encoding: negative count -2 in bucket 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeHistogram(tt.enc)
			if err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalidHistogram) {
				t.Errorf("DecodeHistogram(%v) = %v, want %q wrapping ErrInvalidHistogram", tt.enc, err, tt.want)
			}
		})
	}
	// The largest valid encoding decodes.
	if _, err := DecodeHistogram(append([]int64{200}, make([]int64, 18)...)); err != nil {
		t.Errorf("18 counts from bucket 200: %v", err)
	}
}

// TestQuantileBounds checks the anytime bounds on a latency quantile: they
// bracket the point estimate, stay at the edges of the scale without
// evidence, and cover the true quantile.
func TestQuantileBounds(t *testing.T) {
	t.Run("no observations", func(t *testing.T) {
		lo, hi := Histogram{}.QuantileBounds(0.99, 0.05)
		if lo != 500 || hi != HistogramMax {
			t.Errorf("empty: [%v, %v], want [500ns, %v]", lo, hi, HistogramMax)
		}
	})
	t.Run("too few for a p99", func(t *testing.T) {
		var h Histogram
		for _, d := range ramp(50) {
			h.Observe(d)
		}
		lo, hi := h.QuantileBounds(0.99, 0.05)
		if hi != HistogramMax || lo > h.Quantile(0.99) {
			t.Errorf("50 observations: [%v, %v], want the upper bound unbounded (%v) and the lower below %v",
				lo, hi, HistogramMax, h.Quantile(0.99))
		}
	})
	t.Run("many observations in one bucket", func(t *testing.T) {
		h := Histogram{}
		h.ObserveN(3*time.Millisecond, 10000)
		lo, hi := h.QuantileBounds(0.99, 0.05)
		if p := h.Quantile(0.99); lo != p || hi != p {
			t.Errorf("[%v, %v], want both at the only bucket %v", lo, hi, p)
		}
	})
	t.Run("coverage", func(t *testing.T) {
		// Log-normal latencies, median 5ms, sigma 0.5: the true p99 is
		// 5ms·e^(0.5·2.3263).
		trueP99 := time.Duration(5e6 * math.Exp(0.5*2.3263478740408408))
		want := BucketOf(trueP99)
		r := rand.New(rand.NewPCG(5, 6))
		const runs = 200
		missed := 0
		for range runs {
			var h Histogram
			for range 2000 {
				h.Observe(time.Duration(5e6 * math.Exp(0.5*r.NormFloat64())))
			}
			lo, hi := h.QuantileBounds(0.99, 0.05)
			if lo > h.Quantile(0.99) || hi < h.Quantile(0.99) {
				t.Fatalf("bounds [%v, %v] exclude the point estimate %v", lo, hi, h.Quantile(0.99))
			}
			if BucketOf(lo) > want || BucketOf(hi) < want {
				missed++
			}
		}
		if missed > runs*5/100 {
			t.Errorf("bounds missed the true p99's bucket in %d of %d runs, want at most 5%%", missed, runs)
		}
	})
}

func TestBucketBoundsPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "report: ") {
			t.Errorf("BucketBounds(218) recovered %v, want a report: panic", r)
		}
	}()
	BucketBounds(HistogramBuckets)
}
