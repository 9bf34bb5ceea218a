// Package report turns stored counts into the statistics people and the
// promotion gate read: divergence rates with 95% Wilson score intervals.
//
// It is pure: functions over values, no I/O, safe for concurrent use. An
// interval is always within [0, 1], and a segment with no pairs has rate 0 and
// the uninformative interval [0, 1], never a division by zero.
package report
