package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
)

// Errors. Every error from [Plan.Validate] wraps ErrInvalidPlan and every
// refusal from [Transition] wraps ErrUnsafeTransition; use errors.Is.
var (
	ErrInvalidPlan      = errors.New("rollout: invalid plan")
	ErrUnsafeTransition = errors.New("rollout: unsafe transition")
)

// FieldError reports what is wrong with one field of a plan. Field is a path
// such as "steps[2].audience.percent".
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return "rollout: " + e.Field + ": " + e.Problem }

// Unwrap makes every FieldError match [ErrInvalidPlan].
func (e *FieldError) Unwrap() error { return ErrInvalidPlan }

// Plan is a rollout: a sequence of steps, applied one after another.
type Plan struct {
	// Experiment names the migration; it salts the percentage hash, so two
	// experiments split users independently. Required.
	Experiment string `json:"experiment"`
	// Base is the stage of users no applied step targets. Empty means
	// [envelope.StageOff].
	Base envelope.Stage `json:"base,omitempty"`
	// Steps are applied in order; at least one is required.
	Steps []Step `json:"steps"`
	// AutoPromote lets the controller apply the next step by itself once the
	// current step's hold has passed and its gate passes.
	AutoPromote bool `json:"auto_promote,omitempty"`
}

// Step gives Stage to Audience.
type Step struct {
	// Name is a label for people and logs (e.g. "testing group").
	Name     string         `json:"name,omitempty"`
	Stage    envelope.Stage `json:"stage"`
	Audience Audience       `json:"audience"`
	// Hold is how long the step must run before the next one; 0 means no
	// minimum. In JSON it is a Go duration string such as "30m" or "24h".
	Hold time.Duration `json:"-"`
	// Gate optionally names the gate that must pass before the next step.
	Gate string `json:"gate,omitempty"`
	// Reconcile names reconciliation sweeps (by their name, usually the
	// table: docs/reconcile.md) that must each have completed with every
	// row agreeing, having started after this step began, before the
	// rollout leaves this step.
	Reconcile []string `json:"reconcile,omitempty"`
}

// stepJSON is Step as JSON, with Hold as a duration string.
type stepJSON struct {
	Name      string         `json:"name,omitempty"`
	Stage     envelope.Stage `json:"stage"`
	Audience  Audience       `json:"audience"`
	Hold      string         `json:"hold,omitempty"`
	Gate      string         `json:"gate,omitempty"`
	Reconcile []string       `json:"reconcile,omitempty"`
}

// MarshalJSON writes Hold as a duration string ("1h0m0s").
func (s Step) MarshalJSON() ([]byte, error) {
	j := stepJSON{Name: s.Name, Stage: s.Stage, Audience: s.Audience, Gate: s.Gate, Reconcile: s.Reconcile}
	if s.Hold != 0 {
		j.Hold = s.Hold.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads Hold as a duration string ("30m", "24h", "1h30m")
// and refuses fields a step does not have, so a misspelt one is not
// silently ignored.
func (s *Step) UnmarshalJSON(b []byte) error {
	var j stepJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("step: %w", err)
	}
	*s = Step{Name: j.Name, Stage: j.Stage, Audience: j.Audience, Gate: j.Gate, Reconcile: j.Reconcile}
	if j.Hold != "" {
		d, err := time.ParseDuration(j.Hold)
		if err != nil {
			return fmt.Errorf("hold: %q is not a duration such as \"30m\" or \"24h\"", j.Hold)
		}
		s.Hold = d
	}
	return nil
}

// Audience is who a step targets: a user is in it when its targeting key is
// in Users, or any rule matches its attributes, or its bucket falls within
// Percent.
type Audience struct {
	// Users are explicit targeting keys.
	Users []string `json:"users,omitempty"`
	// Rules match attributes; a user matching any rule is in.
	Rules []Rule `json:"rules,omitempty"`
	// Percent of everyone, 0–100 with 0.01 resolution (see [InPercent]).
	Percent float64 `json:"percent,omitempty"`
}

// Rule matches a user whose attribute Attribute has one of the values In.
type Rule struct {
	Attribute string   `json:"attribute"`
	In        []string `json:"in"`
}

// State is how far a rollout is: Step is the number of steps applied, from 0
// (everyone at the base stage) to len(Plan.Steps) (every step applied).
type State struct {
	Step int `json:"step"`
}

// OpenFeature resolution reasons used by [Decision.Reason].
const (
	ReasonTargetingMatch = "TARGETING_MATCH" // an explicit user or an attribute rule
	ReasonSplit          = "SPLIT"           // the percentage
	ReasonDefault        = "DEFAULT"         // no applied step targets the user
)

// How a user matched a step, in [Decision.Match].
const (
	MatchUser    = "user"
	MatchRule    = "rule"
	MatchPercent = "percent"
	MatchNone    = ""
)

// Decision is the full answer of [Decide].
type Decision struct {
	Stage  envelope.Stage
	Reason string // ReasonTargetingMatch, ReasonSplit or ReasonDefault
	// Step is the index in Plan.Steps of the step that gave the stage, or -1
	// for the base stage.
	Step int
	// Match is MatchUser, MatchRule, MatchPercent or MatchNone.
	Match string
	// Attribute is the attribute of the matching rule, when Match is MatchRule.
	Attribute string
}

// String is the reason [Evaluate] returns: the OpenFeature reason, then the
// step and how the user matched, e.g. "TARGETING_MATCH steps[0] user",
// "TARGETING_MATCH steps[1] rule country", "SPLIT steps[3] percent",
// "DEFAULT base". The first word is always the OpenFeature reason.
func (d Decision) String() string {
	if d.Step < 0 {
		return d.Reason + " base"
	}
	s := d.Reason + " steps[" + strconv.Itoa(d.Step) + "] " + d.Match
	if d.Match == MatchRule {
		s += " " + d.Attribute
	}
	return s
}

// Evaluate returns the stage plan gives the user with targetingKey and attrs
// at state, and a reason (see [Decision.String]). It is [Decide] with the
// reason formatted.
func Evaluate(plan Plan, state State, targetingKey string, attrs map[string]string) (stage envelope.Stage, reason string) {
	d := Decide(plan, state, targetingKey, attrs)
	return d.Stage, d.String()
}

// Decide returns the stage plan gives a user at state and why.
//
// The latest applied step whose audience contains the user gives the stage;
// steps are searched from state.Step-1 down to 0. Within a step, explicit
// users take precedence over attribute rules, which take precedence over the
// percentage: the stage is the same, but the reason names the most specific
// match. A user no applied step targets gets the base stage with
// ReasonDefault. An empty targeting key matches no explicit user and no
// percentage below 100 (it cannot be bucketed stickily), only attribute
// rules and percentages of 100.
//
// A state outside 0..len(plan.Steps) is clamped into it. Decide does not
// validate plan and does not allocate.
func Decide(plan Plan, state State, targetingKey string, attrs map[string]string) Decision {
	n := clampStep(plan, state.Step)
	bucketed := false
	var bucket uint64
	for i := n - 1; i >= 0; i-- {
		st := &plan.Steps[i]
		a := &st.Audience
		if targetingKey != "" {
			for _, u := range a.Users {
				if u == targetingKey {
					return Decision{Stage: st.Stage, Reason: ReasonTargetingMatch, Step: i, Match: MatchUser}
				}
			}
		}
		for _, r := range a.Rules {
			v, ok := attrs[r.Attribute]
			if !ok {
				continue
			}
			for _, in := range r.In {
				if v == in {
					return Decision{Stage: st.Stage, Reason: ReasonTargetingMatch, Step: i, Match: MatchRule, Attribute: r.Attribute}
				}
			}
		}
		if a.Percent >= 100 {
			return Decision{Stage: st.Stage, Reason: ReasonSplit, Step: i, Match: MatchPercent}
		}
		if targetingKey != "" && a.Percent > 0 {
			if !bucketed {
				bucket, bucketed = Bucket(plan.Experiment, targetingKey), true
			}
			if bucket < threshold(a.Percent) {
				return Decision{Stage: st.Stage, Reason: ReasonSplit, Step: i, Match: MatchPercent}
			}
		}
	}
	return Decision{Stage: plan.base(), Reason: ReasonDefault, Step: -1}
}

// Buckets is the number of percentage buckets: 10000, a resolution of 0.01%.
const Buckets = 10000

// Bucket returns the percentage bucket, 0..[Buckets]-1, of targetingKey in
// experiment. Programs in other languages reproduce it exactly as:
//
//  1. h = 64-bit FNV-1a over the UTF-8 bytes of experiment + ":" + key
//     (offset basis 0xcbf29ce484222325, prime 0x100000001b3; for each byte,
//     h ^= byte, then h *= prime, modulo 2^64);
//  2. h = fmix64(h), MurmurHash3's finalizer: h ^= h>>33;
//     h *= 0xff51afd7ed558ccd; h ^= h>>33; h *= 0xc4ceb9fe1a85ec53;
//     h ^= h>>33 (unsigned, modulo 2^64);
//  3. bucket = h mod 10000.
//
// The finalizer spreads FNV's weak low bits, so keys that differ only in
// their last character land in unrelated buckets. The test vectors are in
// TestBucketVectors.
func Bucket(experiment, targetingKey string) uint64 {
	const (
		offset = 0xcbf29ce484222325
		prime  = 0x100000001b3
	)
	h := uint64(offset)
	for i := 0; i < len(experiment); i++ {
		h ^= uint64(experiment[i])
		h *= prime
	}
	h ^= ':'
	h *= prime
	for i := 0; i < len(targetingKey); i++ {
		h ^= uint64(targetingKey[i])
		h *= prime
	}
	return fmix64(h) % Buckets
}

func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// InPercent reports whether a user with bucket b is within percent: b <
// round(percent×100). So 5 is buckets 0–499, 25 is buckets 0–2499 (a
// superset), 0.01 is bucket 0 and 100 is every bucket.
func InPercent(b uint64, percent float64) bool { return b < threshold(percent) }

func threshold(percent float64) uint64 {
	if !(percent > 0) { // also NaN
		return 0
	}
	if percent >= 100 {
		return Buckets
	}
	return uint64(math.Round(percent * 100))
}

func (p Plan) base() envelope.Stage {
	if p.Base == "" {
		return envelope.StageOff
	}
	return p.Base
}

func clampStep(p Plan, n int) int {
	return max(0, min(n, len(p.Steps)))
}

// order is the position of s in envelope.Stages, or -1.
func order(s envelope.Stage) int {
	for i, v := range envelope.Stages {
		if v == s {
			return i
		}
	}
	return -1
}

// oldAuthoritative reports whether the old store is written first (or is the
// only store the rollout can fall back to) in s: off, freeze, dualwrite,
// shadow.
func oldAuthoritative(s envelope.Stage) bool {
	switch s {
	case envelope.StageOff, envelope.StageFreeze, envelope.StageDualWrite, envelope.StageShadow:
		return true
	}
	return false
}

// pastBoundary reports whether s is rampdown or complete: the old store is no
// longer authoritative and may have missed writes, so it can never be made
// authoritative again.
func pastBoundary(s envelope.Stage) bool {
	return s == envelope.StageRampDown || s == envelope.StageComplete
}

// readsNew reports whether s reads or compares the new store: shadow and
// later. Everyone must have been dual-writing before anyone is in such a
// stage.
func readsNew(s envelope.Stage) bool { return order(s) >= order(envelope.StageShadow) }

func fmtPercent(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) }

func stepRef(i int) string {
	if i < 0 {
		return "base"
	}
	return "steps[" + strconv.Itoa(i) + "]"
}

func errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}
