package migration

import (
	"encoding/json"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/pkg/envelope"
)

// callInfo is what a pair needs to know about its call besides the two
// sides.
type callInfo struct {
	flag  flagResult
	key   string
	ec    openfeature.EvaluationContext
	tc    openfeature.EvaluationContext
	start time.Time
}

const skippedText = "migration: not attempted because the authoritative write failed"

// finish builds the pair of a complete call, compares the results if asked,
// and publishes it. It runs off the caller's goroutine.
func finish[Res any](c *core, ci *callInfo, ctrl, cand *side[Res], compare func(Res, Res) bool) {
	p := &envelope.Pair{
		Version:    envelope.Version,
		ID:         envelope.NewID(),
		Experiment: c.experiment,
		Operation:  c.operation,
		Kind:       c.kind,
		Time:       ci.start.UTC(),
		Stage:      ci.flag.stage,
		User:       user(ci.key, ci.ec, ci.tc),
		Flag:       &envelope.Flag{Key: c.flagKey, Variant: ci.flag.variant, Reason: ci.flag.reason},
	}
	p.Control = observe(c, ctrl)
	p.Candidate = observe(c, cand)
	if compare != nil && p.Control.Status == envelope.StatusOK && p.Candidate.Status == envelope.StatusOK {
		p.ClientVerdict = verdict(c, ctrl, cand, compare, p.Control.Value, p.Candidate.Value)
	}
	c.publish(p)
}

// observe turns a side into an observation, encoding its value. A value that
// cannot be encoded is reported as an error of that side and counted.
func observe[Res any](c *core, s *side[Res]) envelope.Observation {
	o := envelope.Observation{Status: s.status, DurationNS: int64(s.dur)}
	switch s.status {
	case envelope.StatusOK:
		b, errText := s.json, s.encErr
		if !s.jsonOK && errText == "" {
			b, errText = encode(s.val)
		}
		if errText != "" {
			c.n.marshalErrors.Add(1)
			o.Status, o.Error = envelope.StatusError, errText
			return o
		}
		o.Value = b
	case envelope.StatusError:
		o.Error = safeError(s.err)
		if o.Error == "" {
			o.Error = "migration: the function returned an error with an empty text"
		}
	case envelope.StatusSkipped:
		o.Error = skippedText
	default: // timeout, panic
		o.Error = s.msg
	}
	return o
}

// verdict runs the in-process comparison, on decoded copies when the
// authoritative result was snapshotted. A panicking comparison gives no
// verdict.
func verdict[Res any](c *core, ctrl, cand *side[Res], compare func(Res, Res) bool, ctrlJSON, candJSON []byte) (v string) {
	defer func() {
		if r := recover(); r != nil {
			c.n.panics.Add(1)
			v = ""
		}
	}()
	a, b := ctrl.val, cand.val
	if c.opts.snapshot {
		var x, y Res
		if json.Unmarshal(ctrlJSON, &x) != nil || json.Unmarshal(candJSON, &y) != nil {
			return ""
		}
		a, b = x, y
	}
	if compare(a, b) {
		return "match"
	}
	return "mismatch"
}
