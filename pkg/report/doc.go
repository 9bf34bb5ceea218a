// Package report turns stored counts into the statistics people and the
// promotion gate read: divergence and error rates with intervals, latency
// quantiles, per-attribute marginals, and the gate's verdict.
//
// It is pure: functions over values, no I/O, no clocks, no randomness, safe
// for concurrent use. The same inputs always give the same outputs, so a
// verdict can be recomputed and explained from the stored counts alone.
//
// # Rates
//
// [NewRate] gives a proportion with its 95% Wilson score interval, which the
// dashboard shows. An interval is always within [0, 1], and a segment with no
// pairs has rate 0 and the uninformative interval [0, 1], never a division by
// zero. A Wilson interval is valid for one look at a sample of fixed size; a
// rollout looked at every minute needs more.
//
// [UpperBound], [LowerBound] and [ConfidenceSequence] give anytime-valid
// bounds instead: the chance that the true proportion is ever beyond one, at
// any of any number of looks, is at most alpha. They depend on the counts
// only, not on how they were gathered or how often they were looked at.
//
// # Latency
//
// A [Histogram] counts latencies in fixed log-scale buckets, 8 per doubling
// from 1µs to about 2m14s, so histograms from any verifier and any minute
// merge exactly by adding counts. [Histogram.Quantile] is within
// [HistogramRelativeError] (4.43%) of the exact quantile.
// [Histogram.Encode] is its compact storage form.
//
// # Segments
//
// [SegmentStats] holds one segment's counters and both sides' latency
// histograms; [SegmentStats.Add] merges them exactly. [Marginals] sums
// per-combination segments (country=IN,plan=pro) into one segment per
// attribute value (country=IN across all plans).
//
// # The promotion gate
//
// [Evaluate] judges segments against a [GateSpec] and answers [Pass], [Fail]
// or [Inconclusive], overall and per segment, with a reason and the test it
// rests on. Its rate checks use the one-sided anytime tests behind
// [UpperBound] and [LowerBound], so it may be asked every minute of a
// rollout: if every pair's chance of diverging is at least GateSpec.MaxRate,
// the probability that it ever answers pass is at most GateSpec.Alpha,
// however many times it is asked.
//
// # Breaches
//
// [DetectBreach] is a change detector (a CUSUM) over a unit's minute series
// that fails a unit within minutes of its rate rising above the limit,
// however long it has run clean, with at most one expected false alarm per
// GateSpec.FalseBreachUnitMinutes unit-minutes at or below the limit.
// [Evaluate] runs it on the segments given their [Segment.Minutes].
// docs/gate.md states the methods and the guarantees in full, with the
// simulations that check them.
//
// Errors are prefixed "report: " and wrap [ErrInvalidGateSpec],
// [ErrInvalidStats] or [ErrInvalidHistogram]. Counts no sample could have
// produced (negative, a part larger than its whole, beyond [MaxCount]) are
// an error naming the field, never a verdict.
package report
