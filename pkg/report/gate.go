package report

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Verdict is the promotion gate's answer.
type Verdict string

// The gate's verdicts.
const (
	// Pass: the evidence shows the new path within every limit.
	Pass Verdict = "pass"
	// Fail: the evidence shows the new path beyond a limit.
	Fail Verdict = "fail"
	// Inconclusive: not enough evidence either way yet.
	Inconclusive Verdict = "inconclusive"
)

// DefaultAlpha is the error probability [GateSpec.Alpha] defaults to.
const DefaultAlpha = 0.05

// ErrInvalidGateSpec is wrapped by the errors of [GateSpec.Validate].
var ErrInvalidGateSpec = errors.New("report: invalid gate spec")

// GateSpec says when the new path is good enough to promote. The zero value
// of every field but MaxRate is valid and means the documented default.
//
// A spec should stay fixed for the rollout step it judges: the gate's
// guarantee (see [Evaluate]) is for one spec asked any number of times about
// a growing sample. Changing MaxRate, the limits or Alpha mid-step starts a
// new guarantee.
type GateSpec struct {
	// MaxRate is the highest acceptable divergence rate, in (0, 1): 0.005
	// for 0.5%. Required.
	MaxRate float64
	// MinPairs is the fewest pairs a segment needs to pass, however clear its
	// evidence. A segment may fail with fewer. Defaults to 0: no minimum.
	MinPairs int64
	// Window is how far back the caller sums counts; Evaluate only judges the
	// sums it is given. 0 means since a fixed start, such as the start of the
	// rollout step, which keeps the guarantee over repeated looks: the
	// sample only grows. A sliding window judges a different sample at each
	// look, and the guarantee then holds for each look but not across them.
	// Defaults to 0.
	Window time.Duration
	// PerSegment judges every segment and passes only if all of them (and
	// their total) pass. Otherwise only the total is judged; segments are
	// still evaluated, for display. Defaults to false.
	PerSegment bool
	// MaxCandidateErrorRate is the highest acceptable rate of pairs whose
	// candidate failed (error, panic or timeout), in (0, 1). 0 leaves it
	// unchecked.
	MaxCandidateErrorRate float64
	// MaxControlErrorRate is the highest acceptable rate of pairs whose
	// control (the old path) failed, in (0, 1): a failure of the old path is
	// not divergence, but a step may still wait while the old path is
	// failing. 0 leaves it unchecked.
	MaxControlErrorRate float64
	// MaxP99LatencyRatio is the highest acceptable ratio of the candidate's
	// p99 latency to the control's, e.g. 1.5. 0 leaves it unchecked.
	MaxP99LatencyRatio float64
	// Alpha bounds the probability of promoting a segment that is beyond a
	// limit, over any number of looks, in (0, 1). Defaults to
	// [DefaultAlpha] (0.05).
	Alpha float64
	// FalseBreachUnitMinutes sets the change detector's false-alarm rate for
	// the segments given their minutes (see [Segment.Minutes]): at most one
	// expected false breach per FalseBreachUnitMinutes minutes of a unit's
	// traffic at or below its limits, summed over units. Its threshold is
	// ln(FalseBreachUnitMinutes). Greater than 1; defaults to
	// [DefaultFalseBreachUnitMinutes] (one in 30 days across 100 units).
	FalseBreachUnitMinutes float64
}

// Validate returns an error naming the first invalid field, wrapping
// [ErrInvalidGateSpec].
func (s GateSpec) Validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s %v %s", ErrInvalidGateSpec, field, v, want)
	}
	switch {
	case !(s.MaxRate > 0 && s.MaxRate < 1):
		return bad("MaxRate", s.MaxRate, "is not in (0, 1)")
	case s.MinPairs < 0:
		return bad("MinPairs", s.MinPairs, "is negative")
	case s.Window < 0:
		return bad("Window", s.Window, "is negative")
	case s.MaxCandidateErrorRate != 0 && !(s.MaxCandidateErrorRate > 0 && s.MaxCandidateErrorRate < 1):
		return bad("MaxCandidateErrorRate", s.MaxCandidateErrorRate, "is not 0 (unchecked) or in (0, 1)")
	case s.MaxControlErrorRate != 0 && !(s.MaxControlErrorRate > 0 && s.MaxControlErrorRate < 1):
		return bad("MaxControlErrorRate", s.MaxControlErrorRate, "is not 0 (unchecked) or in (0, 1)")
	case s.MaxP99LatencyRatio != 0 && !(s.MaxP99LatencyRatio > 0 && !math.IsInf(s.MaxP99LatencyRatio, 1)):
		return bad("MaxP99LatencyRatio", s.MaxP99LatencyRatio, "is not 0 (unchecked) or a positive ratio")
	case s.Alpha != 0 && !(s.Alpha > 0 && s.Alpha < 1):
		return bad("Alpha", s.Alpha, "is not 0 (default) or in (0, 1)")
	case s.FalseBreachUnitMinutes != 0 && !(s.FalseBreachUnitMinutes > 1 && !math.IsInf(s.FalseBreachUnitMinutes, 1)):
		return bad("FalseBreachUnitMinutes", s.FalseBreachUnitMinutes, "is not 0 (default) or a finite number above 1")
	}
	return nil
}

func (s GateSpec) breachThreshold() float64 {
	if s.FalseBreachUnitMinutes == 0 {
		return breachThreshold(DefaultFalseBreachUnitMinutes)
	}
	return breachThreshold(s.FalseBreachUnitMinutes)
}

func (s GateSpec) alpha() float64 {
	if s.Alpha == 0 {
		return DefaultAlpha
	}
	return s.Alpha
}

// The names of the gate's checks.
const (
	CheckPairs           = "pairs"            // MinPairs
	CheckDivergence      = "divergence"       // MaxRate
	CheckCandidateErrors = "candidate_errors" // MaxCandidateErrorRate
	CheckControlErrors   = "control_errors"   // MaxControlErrorRate
	CheckP99Latency      = "p99_latency"      // MaxP99LatencyRatio
	// The change detector's checks (see [DetectBreach]), for units given
	// their minutes.
	CheckDivergenceBreach      = "divergence_breach"       // MaxRate
	CheckCandidateErrorsBreach = "candidate_errors_breach" // MaxCandidateErrorRate
)

// The tests a verdict can rest on, as [SegmentResult.DecidedBy] names them.
const (
	// DecidedByConfidenceSequence: the anytime-valid bounds on the counts
	// summed since the anchor (the rate, candidate error and latency checks).
	DecidedByConfidenceSequence = "confidence_sequence"
	// DecidedByChangeDetector: the change detector on the minute series
	// found a rise above a limit (a breach check).
	DecidedByChangeDetector = "change_detector"
)

// Check is one criterion of the gate applied to one segment.
type Check struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	// Value is what was observed: a count of pairs, a rate or a latency
	// ratio.
	Value float64 `json:"value"`
	// Low and High are the anytime-valid bounds the verdict rests on
	// (both Value for the pairs check).
	Low  float64 `json:"low"`
	High float64 `json:"high"`
	// Limit is the spec's limit; for a breach check, the detector's
	// threshold (Value is then its statistic).
	Limit  float64 `json:"limit"`
	Reason string  `json:"reason"`
	// Breach is the change detector's finding, for a breach check.
	Breach *Breach `json:"breach,omitempty"`
}

// SegmentResult is the gate's verdict on one segment, or on the total.
type SegmentResult struct {
	Segment string            `json:"segment"`
	Attrs   map[string]string `json:"attrs,omitempty"`
	// Judged says whether the verdict counts towards the overall one.
	Judged  bool    `json:"judged"`
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`
	// DecidedBy names the test a pass or fail rests on:
	// [DecidedByConfidenceSequence] or [DecidedByChangeDetector] (when only a
	// breach check failed). Empty when inconclusive.
	DecidedBy string `json:"decided_by,omitempty"`
	// Divergence is the divergence rate with its fixed-sample 95% Wilson
	// interval, for display: it is only valid for a single look.
	Divergence Rate `json:"divergence"`
	// AnytimeDivergence is the divergence rate with the bounds of
	// [ConfidenceSequence] at the spec's Alpha: valid over every look, and
	// what the verdict rests on.
	AnytimeDivergence Rate `json:"divergence_anytime"`
	// MorePairs estimates, for an inconclusive segment, how many more pairs
	// it needs to pass if its rates hold: at least what MinPairs still asks
	// for. It is -1 when it has no estimate: at its rates it could not pass
	// (a rate at or above its limit), it has no pairs yet, or only latency
	// is undecided. It is 0 for a decided segment.
	MorePairs int64   `json:"more_pairs"`
	Checks    []Check `json:"checks"`
}

// GateResult is the promotion gate's answer.
type GateResult struct {
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`
	// DecidedBy is the DecidedBy of the judged unit the verdict rests on: of
	// the first failing one for a fail (segments in order, then the total).
	DecidedBy string `json:"decided_by,omitempty"`
	// Alpha is the spec's Alpha after defaulting.
	Alpha float64 `json:"alpha"`
	// Overall is the verdict on the total of all segments.
	Overall SegmentResult `json:"overall"`
	// Segments are the verdicts on the segments, in the order given.
	Segments []SegmentResult `json:"segments"`
}

// TotalSegment is the Segment name of [GateResult.Overall].
const TotalSegment = "total"

// Evaluate asks the promotion gate whether the new path may be promoted,
// given the stats of each segment and of their total, summed since a fixed
// start (see [GateSpec.Window]). It returns an error, and no verdict, for an
// invalid spec (wrapping [ErrInvalidGateSpec]) or for stats no sample could
// have produced (wrapping [ErrInvalidStats], see [SegmentStats.Validate]):
// the error names the segment and the field.
//
// Each segment, and the total, is judged by its checks: divergence against
// MaxRate; if set, candidate errors against MaxCandidateErrorRate and the p99
// latency ratio against MaxP99LatencyRatio; and the MinPairs minimum. A rate
// check passes when the [ConfidenceSequence] upper bound is at or below its
// limit and fails when the lower bound is above it; the latency check
// compares anytime bounds on both p99s (see [Histogram.QuantileBounds]). A
// segment fails if any check fails, passes if every check passes, and is
// inconclusive otherwise.
//
// Overall, without PerSegment the verdict is the total's. With PerSegment it
// is fail if any segment or the total fails, pass if every segment and the
// total pass (and there is at least one segment), inconclusive otherwise.
// Pass [Marginals] as the segments to gate on each attribute value instead of
// each combination.
//
// With minutes given (see [Segment.Minutes]), each segment and the total also
// get the change detector's breach checks ([DetectBreach]), on divergence and,
// if limited, on candidate errors: they fail a unit whose rate has risen
// above its limit, however long it ran clean before. A unit failed by them
// alone says so in DecidedBy.
//
// Guarantee. Take one unit (a segment, or the total) and its divergence
// check. If every pair's probability of diverging, given all the pairs before
// it, is at least MaxRate, then
//
//	P(Evaluate ever judges the unit pass) <= Alpha,
//
// however often it is asked while the counts grow, and even if the rate
// drifts over time (see docs/gate.md). The same holds for candidate errors
// against MaxCandidateErrorRate, and for the latency check when the
// candidate's p99 exceeds MaxP99LatencyRatio times the control's at the
// histograms' resolution (latencies drawn independently from fixed
// distributions). A unit passes only if all its checks pass, so a unit beyond
// any one of its limits is promoted with probability at most Alpha, and so is
// the overall verdict when any judged unit is. Acting on individual segments'
// verdicts instead, the expected number of wrongly promoted segments is at
// most Alpha times the number beyond a limit. Symmetrically, a unit within
// its limits is wrongly failed with probability at most Alpha per rate or
// latency check, plus the change detector's false alarms: at most one
// expected per FalseBreachUnitMinutes minutes of the unit's traffic.
func Evaluate(spec GateSpec, segments []Segment, overall SegmentStats) (GateResult, error) {
	if err := spec.Validate(); err != nil {
		return GateResult{}, err
	}
	if p := overall.problem(); p != "" {
		return GateResult{}, fmt.Errorf("%w: %s: %s", ErrInvalidStats, TotalSegment, p)
	}
	detect := false
	for _, s := range segments {
		if p := s.Stats.problem(); p != "" {
			return GateResult{}, fmt.Errorf("%w: segment %q: %s", ErrInvalidStats, s.Key, p)
		}
		if p := minutesProblem(s.Minutes); p != "" {
			return GateResult{}, fmt.Errorf("%w: segment %q: %s", ErrInvalidStats, s.Key, p)
		}
		detect = detect || s.Minutes != nil
	}
	res := GateResult{Alpha: spec.alpha()}
	var total []Minute
	if detect {
		all := make([][]Minute, len(segments))
		for i, s := range segments {
			all[i] = s.Minutes
		}
		total = sumMinutes(all...)
		if p := minutesProblem(total); p != "" {
			return GateResult{}, fmt.Errorf("%w: %s: %s", ErrInvalidStats, TotalSegment, p)
		}
	}
	res.Overall = judge(spec, TotalSegment, nil, overall, total, detect)
	res.Overall.Judged = true
	res.Segments = make([]SegmentResult, len(segments))
	for i, s := range segments {
		res.Segments[i] = judge(spec, s.Key, s.Attrs, s.Stats, s.Minutes, s.Minutes != nil)
		res.Segments[i].Judged = spec.PerSegment
	}
	if !spec.PerSegment {
		res.Verdict, res.Reason, res.DecidedBy = res.Overall.Verdict, res.Overall.Reason, res.Overall.DecidedBy
		return res, nil
	}
	res.Verdict, res.Reason = combine(res.Segments, res.Overall)
	switch res.Verdict {
	case Pass:
		res.DecidedBy = DecidedByConfidenceSequence
	case Fail:
		for _, s := range append(res.Segments, res.Overall) {
			if s.Verdict == Fail {
				res.DecidedBy = s.DecidedBy
				break
			}
		}
	}
	return res, nil
}

// combine decides the overall verdict of the per-segment mode.
func combine(segs []SegmentResult, total SegmentResult) (Verdict, string) {
	if len(segs) == 0 {
		return Inconclusive, "no segments to judge"
	}
	var failed, open []SegmentResult
	for _, s := range segs {
		switch s.Verdict {
		case Fail:
			failed = append(failed, s)
		case Inconclusive:
			open = append(open, s)
		}
	}
	n := count(int64(len(segs)))
	switch {
	case len(failed) > 0:
		r := fmt.Sprintf("%d of %s segments %s: %s", len(failed), n, plural(len(failed), "fails", "fail"), list(failed))
		if total.Verdict == Fail {
			r += "; all segments together: " + total.Reason
		}
		return Fail, r
	case total.Verdict == Fail:
		return Fail, "all segments together: " + total.Reason
	case len(open) > 0:
		r := fmt.Sprintf("%d of %s segments %s inconclusive: %s", len(open), n, plural(len(open), "is", "are"), list(open))
		if p := len(segs) - len(open); p > 0 {
			r += fmt.Sprintf("; %d %s", p, plural(p, "passes", "pass"))
		}
		return Inconclusive, r
	case total.Verdict != Pass:
		return Inconclusive, fmt.Sprintf("every segment passes, but all segments together are inconclusive: %s", total.Reason)
	}
	if len(segs) == 1 {
		return Pass, "the 1 segment passes"
	}
	return Pass, fmt.Sprintf("all %s segments pass", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// list names up to three segments with their reasons.
func list(segs []SegmentResult) string {
	const show = 3
	parts := make([]string, 0, show+1)
	for i, s := range segs {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(segs)-show))
			break
		}
		parts = append(parts, s.Segment+" ("+s.Reason+")")
	}
	return strings.Join(parts, "; ")
}

// judge applies the spec's checks to one unit.
//
// With detect, it also runs the change detector over minutes, on divergence
// and, if limited, on candidate errors.
func judge(spec GateSpec, key string, attrs map[string]string, st SegmentStats, minutes []Minute, detect bool) SegmentResult {
	alpha := spec.alpha()
	r := SegmentResult{Segment: key, Attrs: attrs, Divergence: st.Divergence()}
	more := int64(0)
	noEstimate := false
	addMore := func(k int64) {
		if k < 0 {
			noEstimate = true
		}
		more = max(more, k)
	}
	if spec.MinPairs > 0 {
		c := Check{Name: CheckPairs, Verdict: Pass, Value: float64(st.Pairs), Low: float64(st.Pairs), High: float64(st.Pairs),
			Limit: float64(spec.MinPairs)}
		if st.Pairs >= spec.MinPairs {
			c.Reason = fmt.Sprintf("%s pairs ≥ %s minimum", count(st.Pairs), count(spec.MinPairs))
		} else {
			c.Verdict = Inconclusive
			c.Reason = fmt.Sprintf("needs %s more pairs to reach the %s minimum", count(spec.MinPairs-st.Pairs), count(spec.MinPairs))
			addMore(spec.MinPairs - st.Pairs)
		}
		r.Checks = append(r.Checks, c)
	}
	div, k := rateCheck(CheckDivergence, "divergence", st.Divergent, st.Pairs, alpha, spec.MaxRate, "")
	r.AnytimeDivergence = Rate{Low: div.Low, High: div.High}
	if st.Pairs > 0 {
		r.AnytimeDivergence.Hits, r.AnytimeDivergence.Total = r.Divergence.Hits, r.Divergence.Total
		r.AnytimeDivergence.Value = r.Divergence.Value
	}
	if div.Verdict == Inconclusive {
		addMore(k)
	}
	r.Checks = append(r.Checks, div)
	if spec.MaxCandidateErrorRate > 0 {
		ctrl := ""
		if st.Pairs > 0 {
			ctrl = "; control " + pct(float64(st.ControlErrors)/float64(st.Pairs))
		}
		c, k := rateCheck(CheckCandidateErrors, "candidate errors", st.CandidateErrors, st.Pairs, alpha, spec.MaxCandidateErrorRate, ctrl)
		if c.Verdict == Inconclusive {
			addMore(k)
		}
		r.Checks = append(r.Checks, c)
	}
	if spec.MaxControlErrorRate > 0 {
		c, k := rateCheck(CheckControlErrors, "control errors", st.ControlErrors, st.Pairs, alpha, spec.MaxControlErrorRate, "")
		if c.Verdict == Inconclusive {
			addMore(k)
		}
		r.Checks = append(r.Checks, c)
	}
	if detect {
		h := spec.breachThreshold()
		r.Checks = append(r.Checks, breachCheck(CheckDivergenceBreach, "divergence", minutes,
			func(m Minute) int64 { return m.Divergent }, spec.MaxRate, h))
		if spec.MaxCandidateErrorRate > 0 {
			r.Checks = append(r.Checks, breachCheck(CheckCandidateErrorsBreach, "candidate errors", minutes,
				func(m Minute) int64 { return m.CandidateErrors }, spec.MaxCandidateErrorRate, h))
		}
	}
	if spec.MaxP99LatencyRatio > 0 {
		c := latencyCheck(st, alpha, spec.MaxP99LatencyRatio)
		if c.Verdict == Inconclusive {
			noEstimate = true
		}
		r.Checks = append(r.Checks, c)
	}

	r.Verdict = Pass
	for _, c := range r.Checks {
		switch {
		case c.Verdict == Fail:
			r.Verdict = Fail
		case c.Verdict == Inconclusive && r.Verdict == Pass:
			r.Verdict = Inconclusive
		}
	}
	switch {
	case r.Verdict == Fail && !failedBy(r.Checks, false):
		r.DecidedBy = DecidedByChangeDetector // only a breach check failed
	case r.Verdict != Inconclusive:
		r.DecidedBy = DecidedByConfidenceSequence
	}
	var reasons []string
	for _, c := range r.Checks {
		if r.Verdict == Pass || c.Verdict == r.Verdict {
			reasons = append(reasons, c.Reason)
		}
	}
	r.Reason = strings.Join(reasons, "; ")
	if r.Verdict == Inconclusive {
		r.MorePairs = more
		if noEstimate {
			r.MorePairs = -1
		}
	}
	return r
}

// failedBy reports whether a check failed that is (breach) or is not a
// breach check.
func failedBy(checks []Check, breach bool) bool {
	for _, c := range checks {
		if c.Verdict == Fail && (c.Breach != nil) == breach {
			return true
		}
	}
	return false
}

// breachCheck runs the change detector on one counter of a unit's minutes.
func breachCheck(name, what string, minutes []Minute, hits func(Minute) int64, limit, threshold float64) Check {
	b := DetectBreach(minutes, hits, limit, threshold)
	c := Check{Name: name, Verdict: Pass, Value: b.Statistic, Low: b.Statistic, High: b.Statistic, Limit: threshold, Breach: &b}
	stat := strconv.FormatFloat(sig(b.Statistic, 3), 'f', -1, 64)
	th := strconv.FormatFloat(sig(threshold, 3), 'f', -1, 64)
	if b.Detected {
		c.Verdict = Fail
		c.Reason = fmt.Sprintf("%s rose above the %s limit from %s: change detector %s ≥ %s at %s", what, pct(limit),
			b.Since.UTC().Format(time.RFC3339), stat, th, b.At.UTC().Format(time.RFC3339))
		return c
	}
	c.Reason = fmt.Sprintf("no %s breach: change detector %s < %s over %s minutes", what, stat, th, count(int64(b.Minutes)))
	return c
}

// rateCheck judges hits of n against limit with the confidence sequence.
// extra is appended inside the parentheses of the reason. more is, for an
// inconclusive check, the projection of [trialsToBelow].
func rateCheck(name, what string, hits, n int64, alpha, limit float64, extra string) (c Check, more int64) {
	c = Check{Name: name, Verdict: Inconclusive, Low: 0, High: 1, Limit: limit}
	if n <= 0 {
		c.Reason = "no pairs yet"
		return c, -1
	}
	c.Value = float64(hits) / float64(n)
	c.Low, c.High = LowerBound(hits, n, alpha), UpperBound(hits, n, alpha)
	observed := fmt.Sprintf("%s %s (%s of %s pairs%s)", what, pct(c.Value), count(hits), count(n), extra)
	// below and above are the exact tests the bounds approximate to 1e-10;
	// clamping keeps the reported bounds consistent with the verdict.
	switch {
	case above(hits, n, limit, alpha):
		c.Verdict, c.Low = Fail, max(c.Low, limit)
		c.Reason = fmt.Sprintf("%s, anytime lower bound %s > %s limit", observed, pct(c.Low), pct(limit))
	case below(hits, n, limit, alpha):
		c.Verdict, c.High = Pass, min(c.High, limit)
		c.Reason = fmt.Sprintf("%s, anytime upper bound %s ≤ %s limit", observed, pct(c.High), pct(limit))
	default:
		c.Reason = fmt.Sprintf("%s, anytime bounds %s–%s straddle the %s limit", observed, pct(c.Low), pct(c.High), pct(limit))
		more = trialsToBelow(hits, n, 0, alpha, limit)
		if more >= 0 {
			c.Reason += fmt.Sprintf("; needs ~%s more pairs at this rate", approx(more))
		} else {
			c.Reason += "; cannot pass at this rate"
		}
	}
	return c, more
}

// latencyCheck judges the p99 latency ratio candidate/control.
func latencyCheck(st SegmentStats, alpha, limit float64) Check {
	const q = 0.99
	c := Check{Name: CheckP99Latency, Verdict: Inconclusive, Limit: limit}
	if st.CandidateLatency.Count() == 0 || st.ControlLatency.Count() == 0 {
		c.Reason = "no latencies recorded on both sides yet"
		return c
	}
	cand, ctrl := st.LatencyQuantiles(q)
	c.Value = float64(cand) / float64(ctrl)
	candLo, candHi := st.CandidateLatency.QuantileBounds(q, alpha)
	ctrlLo, ctrlHi := st.ControlLatency.QuantileBounds(q, alpha)
	c.Low, c.High = float64(candLo)/float64(ctrlHi), float64(candHi)/float64(ctrlLo)
	observed := fmt.Sprintf("p99 latency %s control (%s vs %s)", times(c.Value), dur(cand), dur(ctrl))
	switch {
	case c.Low > limit:
		c.Verdict = Fail
		c.Reason = fmt.Sprintf("%s, at least %s > %s limit", observed, times(c.Low), times(limit))
	case c.High <= limit:
		c.Verdict = Pass
		c.Reason = fmt.Sprintf("%s, at most %s ≤ %s limit", observed, times(c.High), times(limit))
	default:
		c.Reason = fmt.Sprintf("%s, anytime bounds %s–%s straddle the %s limit", observed, times(c.Low), times(c.High), times(limit))
	}
	return c
}
