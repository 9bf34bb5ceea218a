package report

import (
	"errors"
	"fmt"
	"time"
)

// MaxCount is the largest count [Evaluate] accepts in any counter or
// histogram: 2^53, the largest integer a float64 holds exactly. The gate's
// statistics are computed in float64, so a larger count could not be told
// from its neighbours and its bounds would no longer mean what they say.
const MaxCount = 1 << 53

// ErrInvalidStats is wrapped by the errors of [SegmentStats.Validate] and
// [Histogram.Validate], and so by [Evaluate]'s for stats it cannot judge.
var ErrInvalidStats = errors.New("report: invalid stats")

// Validate returns an error naming the first field of s that no real
// sample could have produced, wrapping [ErrInvalidStats]: a negative
// counter, a counter of pairs larger than Pairs, a count above [MaxCount],
// or an invalid latency histogram (see [Histogram.Validate]).
func (s SegmentStats) Validate() error {
	if p := s.problem(); p != "" {
		return fmt.Errorf("%w: %s", ErrInvalidStats, p)
	}
	return nil
}

// problem describes the first invalid field of s, or returns "".
func (s SegmentStats) problem() string {
	counters := [...]struct {
		name string
		v    int64
	}{
		{"Pairs", s.Pairs}, {"Divergent", s.Divergent}, {"ControlErrors", s.ControlErrors},
		{"CandidateErrors", s.CandidateErrors}, {"Skipped", s.Skipped}, {"Timeouts", s.Timeouts},
	}
	for i, c := range counters {
		switch {
		case c.v < 0:
			return fmt.Sprintf("%s %d is negative", c.name, c.v)
		case c.v > MaxCount:
			return fmt.Sprintf("%s %d exceeds %d, the largest count float64 resolves", c.name, c.v, int64(MaxCount))
		case i > 0 && c.v > s.Pairs:
			return fmt.Sprintf("%s %d exceeds Pairs %d", c.name, c.v, s.Pairs)
		}
	}
	switch { // A/A pairs are counted apart from Pairs
	case s.AAPairs < 0:
		return fmt.Sprintf("AAPairs %d is negative", s.AAPairs)
	case s.AADivergent < 0:
		return fmt.Sprintf("AADivergent %d is negative", s.AADivergent)
	case s.AAPairs > MaxCount:
		return fmt.Sprintf("AAPairs %d exceeds %d, the largest count float64 resolves", s.AAPairs, int64(MaxCount))
	case s.AADivergent > s.AAPairs:
		return fmt.Sprintf("AADivergent %d exceeds AAPairs %d", s.AADivergent, s.AAPairs)
	}
	if p := s.ControlLatency.problem(); p != "" {
		return "ControlLatency " + p
	}
	if p := s.CandidateLatency.problem(); p != "" {
		return "CandidateLatency " + p
	}
	return ""
}

// Validate returns an error naming the first problem with h, wrapping
// [ErrInvalidStats]: more than [HistogramBuckets] buckets, a negative
// bucket, or more than [MaxCount] observations in all.
func (h Histogram) Validate() error {
	if p := h.problem(); p != "" {
		return fmt.Errorf("%w: histogram %s", ErrInvalidStats, p)
	}
	return nil
}

func (h Histogram) problem() string {
	if len(h.Counts) > HistogramBuckets {
		return fmt.Sprintf("has %d buckets, more than %d", len(h.Counts), HistogramBuckets)
	}
	var sum int64
	for i, c := range h.Counts {
		if c < 0 {
			return fmt.Sprintf("bucket %d count %d is negative", i, c)
		}
		if c > MaxCount-sum { // cannot overflow: both sides are in [0, MaxCount]
			return fmt.Sprintf("holds more than %d observations, the largest count float64 resolves", int64(MaxCount))
		}
		sum += c
	}
	return ""
}

// minutesProblem describes the first invalid minute of a series, or
// returns "": invalid counts, or minutes out of time order.
func minutesProblem(ms []Minute) string {
	for i, m := range ms {
		st := SegmentStats{Counters: Counters{Pairs: m.Pairs, Divergent: m.Divergent, CandidateErrors: m.CandidateErrors}}
		if p := st.problem(); p != "" {
			return fmt.Sprintf("Minutes[%d] %s", i, p)
		}
		if i > 0 && !ms[i-1].At.Before(m.At) {
			return fmt.Sprintf("Minutes[%d] at %s is not after Minutes[%d] at %s", i, m.At.UTC().Format(time.RFC3339), i-1, ms[i-1].At.UTC().Format(time.RFC3339))
		}
	}
	return ""
}
