package report

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Histogram bucket layout. Buckets are fixed, so histograms recorded by any
// verifier in any minute merge exactly by adding counts.
//
//   - bucket 0 holds durations below [HistogramMin] (1µs), negative ones
//     included;
//   - buckets 1 … 216 split [HistogramMin, HistogramMax) into
//     [BucketsPerDoubling] (8) log-scale buckets per doubling: bucket i is
//     [1µs·2^((i-1)/8), 1µs·2^(i/8)), each bound rounded to the nanosecond;
//   - bucket 217 holds durations of at least [HistogramMax] (2^27 µs, about
//     2m14s).
const (
	BucketsPerDoubling = 8
	HistogramBuckets   = 1 + 27*BucketsPerDoubling + 1
	HistogramMin       = time.Microsecond
	HistogramMax       = (1 << 27) * time.Microsecond
)

// HistogramRelativeError bounds the relative error of [Histogram.Quantile]
// between [HistogramMin] and [HistogramMax]: a quantile is reported as the
// geometric middle of its bucket, at most a factor 2^(1/16) from any value in
// the bucket, so within 4.43% (plus half a nanosecond of rounding).
const HistogramRelativeError = 0.044273782427413754 // 2^(1/16) - 1

// ErrInvalidHistogram is wrapped by the errors of [DecodeHistogram].
var ErrInvalidHistogram = errors.New("report: invalid histogram encoding")

// bucketUpper[i] is the exclusive upper bound of bucket i, for i < HistogramBuckets-1.
// bucketMid[i] is the value a quantile in bucket i is reported as.
var bucketUpper, bucketMid = bucketTables()

func bucketTables() (up, md [HistogramBuckets]int64) {
	for i := range HistogramBuckets - 1 {
		up[i] = int64(math.Round(float64(HistogramMin) * math.Exp2(float64(i)/BucketsPerDoubling)))
	}
	md[0] = int64(HistogramMin) / 2
	for i := 1; i < HistogramBuckets-1; i++ {
		md[i] = int64(math.Round(float64(HistogramMin) * math.Exp2((float64(i)-0.5)/BucketsPerDoubling)))
	}
	md[HistogramBuckets-1] = int64(HistogramMax)
	up[HistogramBuckets-1] = math.MaxInt64
	return up, md
}

// BucketBounds returns bucket i's bounds: it holds durations d with
// lower <= d < upper. Bucket 0's lower bound is 0 (it also holds negative
// durations) and the last bucket's upper bound is the largest Duration. It
// panics if i is not in [0, HistogramBuckets).
func BucketBounds(i int) (lower, upper time.Duration) {
	if i < 0 || i >= HistogramBuckets {
		panic(fmt.Sprintf("report: bucket %d out of range [0, %d)", i, HistogramBuckets))
	}
	if i > 0 {
		lower = time.Duration(bucketUpper[i-1])
	}
	return lower, time.Duration(bucketUpper[i])
}

// BucketOf returns the index of the bucket that holds d.
func BucketOf(d time.Duration) int {
	// The number of upper bounds <= d is the index of d's bucket.
	return sort.Search(HistogramBuckets-1, func(i int) bool { return bucketUpper[i] > int64(d) })
}

// Histogram counts latencies in the fixed log-scale buckets described at
// [HistogramBuckets]. Counts[i] is the number of observations in bucket i;
// Counts may be shorter than HistogramBuckets, missing buckets count zero.
// The zero Histogram is empty and ready to use.
type Histogram struct {
	Counts []int64 `json:"counts"`
}

// Observe counts one latency.
func (h *Histogram) Observe(d time.Duration) {
	h.ObserveN(d, 1)
}

// ObserveN counts n latencies of d; n <= 0 does nothing.
func (h *Histogram) ObserveN(d time.Duration, n int64) {
	if n <= 0 {
		return
	}
	i := BucketOf(d)
	h.grow(i + 1)
	h.Counts[i] += n
}

func (h *Histogram) grow(n int) {
	if len(h.Counts) < n {
		h.Counts = append(h.Counts, make([]int64, n-len(h.Counts))...)
	}
}

// Merge adds o's counts to h. Merging is exact: the merge of histograms is the
// histogram of all their observations, whatever the order. h never shares
// memory with o afterwards.
func (h *Histogram) Merge(o Histogram) {
	n := len(o.Counts)
	for n > 0 && o.Counts[n-1] == 0 {
		n--
	}
	if n == 0 {
		return
	}
	h.grow(n)
	for i, c := range o.Counts[:n] {
		h.Counts[i] += c
	}
}

// Count returns the number of observations.
func (h Histogram) Count() int64 {
	var n int64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (q in [0, 1]; 0.99 for p99), the smallest
// observed value v with at least a fraction q of the observations <= v,
// reported as the geometric middle of v's bucket: within
// [HistogramRelativeError] of v between [HistogramMin] and [HistogramMax].
// Values below 1µs are reported as 500ns and values of at least HistogramMax
// as HistogramMax. An empty histogram returns 0.
func (h Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return time.Duration(bucketMid[h.rankBucket(n, rank(q, n))])
}

// rank returns the 1-based rank of the q-quantile among n observations.
func rank(q float64, n int64) int64 {
	if !(q > 0) { // also NaN
		return 1
	}
	if q >= 1 {
		return n
	}
	return max(1, min(n, int64(math.Ceil(q*float64(n)))))
}

// rankBucket returns the bucket of the k-th smallest of the n observations.
func (h Histogram) rankBucket(n, k int64) int {
	var cum int64
	for i, c := range h.Counts {
		cum += c
		if cum >= k {
			return i
		}
	}
	return len(h.Counts) - 1
}

// Encode returns h compactly for storage, e.g. as a PostgreSQL bigint[]:
// the index of the first non-empty bucket followed by the counts from that
// bucket to the last non-empty one. An empty histogram encodes as nil.
// Latencies of a few milliseconds to a second take about 30 elements instead
// of 218.
func (h Histogram) Encode() []int64 {
	first, last := -1, -1
	for i, c := range h.Counts {
		if c != 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	out := make([]int64, 0, 1+last-first+1)
	out = append(out, int64(first))
	return append(out, h.Counts[first:last+1]...)
}

// DecodeHistogram reverses [Histogram.Encode]. It accepts zeros at either end
// and rejects a first bucket or a length out of range and negative counts.
func DecodeHistogram(enc []int64) (Histogram, error) {
	if len(enc) == 0 {
		return Histogram{}, nil
	}
	first, counts := enc[0], enc[1:]
	if first < 0 || first >= HistogramBuckets {
		return Histogram{}, fmt.Errorf("%w: first bucket %d not in [0, %d)", ErrInvalidHistogram, first, HistogramBuckets)
	}
	if int64(len(counts)) > HistogramBuckets-first {
		return Histogram{}, fmt.Errorf("%w: %d counts from bucket %d exceed %d buckets", ErrInvalidHistogram, len(counts), first, HistogramBuckets)
	}
	h := Histogram{Counts: make([]int64, int(first)+len(counts))}
	for i, c := range counts {
		if c < 0 {
			return Histogram{}, fmt.Errorf("%w: negative count %d in bucket %d", ErrInvalidHistogram, c, int(first)+i)
		}
		h.Counts[int(first)+i] = c
	}
	return h, nil
}
