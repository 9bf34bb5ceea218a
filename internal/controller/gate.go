package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

// GateSpec is an experiment's promotion gate as it is stored and as the API
// reads and writes it.
type GateSpec struct {
	// MaxRate is the highest acceptable divergence rate: 0.001 is 0.1%.
	MaxRate float64 `json:"max_rate"`
	// MinPairs is the fewest pairs a segment needs to pass.
	MinPairs int64 `json:"min_pairs"`
	// Window is how far back counts are summed, e.g. "1h". A request's
	// since parameter (the start of the rollout step) replaces it; that keeps
	// the gate's guarantee over repeated looks (docs/gate.md).
	Window string `json:"window"`
	// PerSegment passes only when every segment passes.
	PerSegment bool `json:"per_segment"`
	// PerOperation judges each (operation, segment) unit on its own, as the
	// controller always does, so one operation's bug is not diluted by
	// another's agreeing pairs; nil means true. False pools the operations
	// of a segment (the public gate only).
	PerOperation *bool `json:"per_operation,omitempty"`
	// MaxCandidateErrorRate and MaxP99LatencyRatio are unchecked when 0.
	MaxCandidateErrorRate float64 `json:"max_candidate_error_rate,omitempty"`
	MaxP99LatencyRatio    float64 `json:"max_p99_latency_ratio,omitempty"`
	// MaxControlErrorRate limits the old path's failures, which are not
	// divergence; unchecked when 0.
	MaxControlErrorRate float64 `json:"max_control_error_rate,omitempty"`
	// Alpha bounds the chance of promoting a segment beyond a limit, over
	// any number of looks. Defaults to 0.05.
	Alpha float64 `json:"alpha,omitempty"`
}

// DefaultGate is the gate of an experiment that has none stored.
var DefaultGate = GateSpec{MaxRate: 0.001, MinPairs: 1000, Window: "1h", PerSegment: true}

// Spec checks g and returns it as [report.Evaluate] takes it, with its
// window (0 when g has none).
func (g GateSpec) Spec() (report.GateSpec, time.Duration, error) {
	var window time.Duration
	if g.Window != "" {
		d, err := ParseWindow(g.Window)
		if err != nil {
			return report.GateSpec{}, 0, fmt.Errorf("window: %w", err)
		}
		window = d
	}
	s := report.GateSpec{MaxRate: g.MaxRate, MinPairs: g.MinPairs, Window: window, PerSegment: g.PerSegment,
		MaxCandidateErrorRate: g.MaxCandidateErrorRate, MaxP99LatencyRatio: g.MaxP99LatencyRatio,
		MaxControlErrorRate: g.MaxControlErrorRate, Alpha: g.Alpha}
	if err := s.Validate(); err != nil {
		return report.GateSpec{}, 0, err
	}
	return s, window, nil
}

// GateView is the gate's verdict on an experiment.
type GateView struct {
	Experiment string    `json:"experiment"`
	Since      time.Time `json:"since"`
	Spec       GateSpec  `json:"spec"`
	// Anchor says where the counts judged start, and why there.
	Anchor Anchor `json:"anchor"`
	// NoPairs is true while the experiment has recorded no pair at all: the
	// verdict is then inconclusive, never an error.
	NoPairs bool `json:"no_pairs,omitempty"`
	report.GateResult
}

// Anchor kinds: where a verdict's counts start.
const (
	// AnchorRollout: the start of the experiment's current rollout step.
	AnchorRollout = "rollout"
	// AnchorAnalysis: the first look of a named analysis.
	AnchorAnalysis = "analysis"
	// AnchorSince: the request's since.
	AnchorSince = "since"
	// AnchorNone: a sliding window; such a verdict is never pass.
	AnchorNone = "none"
)

// Anchor is the fixed start a verdict's counts are summed from. Only a fixed
// start keeps the gate's guarantee over repeated looks (docs/gate.md), so a
// verdict with no anchor is at most inconclusive.
type Anchor struct {
	Kind  string    `json:"kind"`
	Since time.Time `json:"since"`
	// Analysis names the analysis of an AnchorAnalysis.
	Analysis string `json:"analysis,omitempty"`
	Reason   string `json:"reason"`
}

// MaxWindow bounds a window.
const MaxWindow = 90 * 24 * time.Hour

// ParseWindow reads a window: a duration such as 15m or 24h, or a number of
// days such as 7d, between a minute and [MaxWindow].
func ParseWindow(w string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(w, "d"); ok && n != "" {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration like 15m, 24h, 7d or all", w)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(w); err != nil {
			return 0, fmt.Errorf("%q is not a duration like 15m, 24h, 7d or all", w)
		}
	}
	if d < time.Minute || d > MaxWindow {
		return 0, fmt.Errorf("%q must be between 1m and 90d", w)
	}
	return d, nil
}

// GateReader reads an experiment's stored gate.
type GateReader interface {
	GateSpec(ctx context.Context, experiment string) (store.GateSpec, error)
}

// StoredGate returns the experiment's stored gate, or [DefaultGate].
func StoredGate(ctx context.Context, db GateReader, name string) (GateSpec, error) {
	g, err := db.GateSpec(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return DefaultGate, nil
	}
	if err != nil {
		return GateSpec{}, err
	}
	var v GateSpec
	if err := json.Unmarshal(g.Spec, &v); err != nil {
		return GateSpec{}, fmt.Errorf("controller: stored gate of %s: %w", name, err)
	}
	return v, nil
}

// LatencyReader reads an experiment's latencies.
type LatencyReader interface {
	Latencies(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.LatencyRow, error)
}

// WithLatencies turns counted rows into segment statistics with their
// latencies over q, in the rows' order.
func WithLatencies(ctx context.Context, db LatencyReader, name string, q store.SegmentQuery, rows []store.SegmentCount) ([]report.Segment, error) {
	lats, err := db.Latencies(ctx, name, q)
	if err != nil {
		return nil, err
	}
	byKey := map[string]store.LatencyRow{}
	for _, l := range lats {
		byKey[l.Segment] = l
	}
	out := make([]report.Segment, 0, len(rows))
	for _, r := range rows {
		st := report.SegmentStats{Counters: r.Counters}
		if l, ok := byKey[r.Segment]; ok {
			// Decoding a histogram the store wrote cannot fail; a damaged one
			// is left empty rather than failing the gate.
			st.ControlLatency, _ = report.DecodeHistogram(l.Control)
			st.CandidateLatency, _ = report.DecodeHistogram(l.Candidate)
		}
		out = append(out, report.Segment{Key: r.Segment, Attrs: r.Attrs, Stats: st})
	}
	return out, nil
}

// UnitReader reads what the gate judges.
type UnitReader interface {
	Operations(ctx context.Context, experiment string) ([]string, error)
	Segments(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.SegmentCount, error)
	LatencyReader
	MinuteReader
}

// UnitStats returns the statistics of each (operation, segment) unit of
// experiment counted since since, with its minute series for the change
// detector, keyed "operation segment" as the controller keys its units. It wraps [store.ErrNotFound] for an experiment
// with no pairs.
func UnitStats(ctx context.Context, db UnitReader, experiment string, since time.Time) ([]report.Segment, error) {
	ops, err := db.Operations(ctx, experiment)
	if err != nil {
		return nil, err
	}
	var out []report.Segment
	for _, op := range ops {
		q := store.SegmentQuery{Since: since, Operation: op}
		rows, err := db.Segments(ctx, experiment, q)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if len(rows) == 0 {
			continue
		}
		segs, err := WithLatencies(ctx, db, experiment, q, rows)
		if err != nil {
			return nil, err
		}
		// The change detector judges each unit's minutes since the anchor.
		if err := WithMinutes(ctx, db, experiment, q, segs, func(string) report.Counters { return report.Counters{} }); err != nil {
			return nil, err
		}
		for _, sg := range segs {
			sg.Key = unitKey(op, sg.Key)
			out = append(out, sg)
		}
	}
	return out, nil
}

// MinuteReader reads the minute series the gate's change detector judges.
type MinuteReader interface {
	Minutes(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.MinuteCount, error)
}

// WithMinutes gives every segment its minute series over q, for the change
// detector ([report.DetectBreach]): the stored minutes of the segment named
// by its Key, less base(Key) — the pairs counted in those minutes before the
// anchor, or the zero Counters (see [StepMinutes]). Every segment gets a
// non-nil series, so [report.Evaluate] runs the detector on each.
//
// The store keeps minutes only for its minute retention
// ([store.Options.MinuteRetention], 72 hours in the collector by default):
// for a step older than that, the series starts at the retention's horizon
// and base is not taken. The detector (a CUSUM that forgets evidence older
// than its last return to zero) needs only recent minutes, so it still finds
// a rise within minutes; what it cannot see is a breach that happened and
// ended entirely before the horizon, which the controller acted on when it
// happened. The step's totals, read through [store.Store.Segments], widen a
// start older than the retention to its hour: up to 59 minutes of pairs
// from before the step then count towards its gate. Keep the retention
// longer than rollout steps last.
func WithMinutes(ctx context.Context, db MinuteReader, name string, q store.SegmentQuery, segs []report.Segment,
	base func(segment string) report.Counters) error {
	mins, err := db.Minutes(ctx, name, q)
	if err != nil {
		return err
	}
	bySeg := map[string][]store.MinuteCount{}
	for _, m := range mins {
		bySeg[m.Segment] = append(bySeg[m.Segment], m)
	}
	anchor := q.Since.Truncate(time.Minute)
	for i := range segs {
		ms := bySeg[segs[i].Key]
		// base counts pairs of the anchor's minute (a baseline is taken in
		// the minute it starts); when that minute is not in the series (it
		// had no pairs, or it lies before the store's minute retention and
		// is gone) there is nothing to take it from.
		b := report.Counters{}
		if len(ms) > 0 && ms[0].Minute.Equal(anchor) {
			b = base(segs[i].Key)
		}
		segs[i].Minutes = StepMinutes(ms, b)
	}
	return nil
}

// StepMinutes turns a unit's stored minutes since an anchor into the change
// detector's series, less base: the pairs counted in those minutes before the
// anchor (a rollout step's baseline), taken from its earliest minutes. Only
// the minute the anchor falls in can be split, and a part of it whose
// divergent pairs outnumber its pairs keeps as many pairs as divergent ones,
// so every minute stays valid. The series is never nil.
func StepMinutes(ms []store.MinuteCount, base report.Counters) []report.Minute {
	out := make([]report.Minute, 0, len(ms))
	pairs, div, cand := base.Pairs, base.Divergent, base.CandidateErrors
	take := func(have int64, left *int64) int64 {
		n := min(have, max(*left, 0))
		*left -= n
		return have - n
	}
	for _, m := range ms {
		x := report.Minute{At: m.Minute, Pairs: take(m.Pairs, &pairs), Divergent: take(m.Divergent, &div),
			CandidateErrors: take(m.CandidateErrors, &cand)}
		x.Pairs = max(x.Pairs, x.Divergent, x.CandidateErrors)
		if x.Pairs > 0 {
			out = append(out, x)
		}
	}
	return out
}
