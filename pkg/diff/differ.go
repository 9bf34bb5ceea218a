package diff

import (
	"fmt"
	"strings"
	"sync"

	"github.com/parityhq/parity/pkg/envelope"
)

// scratch is the reusable state of one comparison.
type scratch struct {
	pa, pb parser
	w      walker
}

var pool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledNodes bounds the tapes kept for reuse, so one huge document does
// not pin its memory (16 bytes a node) in the pool.
const maxPooledNodes = 1 << 16

func getScratch() *scratch { return pool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.pa.tape) > maxPooledNodes || cap(s.pb.tape) > maxPooledNodes || cap(s.w.u32) > 4*maxPooledNodes || cap(s.w.kents) > maxPooledNodes ||
		cap(s.w.pt.nodes) > maxPooledNodes || cap(s.w.pt.keys) > 16*maxPooledNodes || cap(s.w.out) > 16*maxPooledNodes {
		return
	}
	s.pa.src, s.pb.src, s.w.a, s.w.b = nil, nil, doc{}, doc{}
	pool.Put(s)
}

// Values compares two values (JSON documents) under the default rules and
// returns [VerdictMatch], [VerdictMismatch] or [VerdictInvalidJSON]. An empty
// value means the side returned nothing, which differs from "null" unless a
// rule says otherwise.
//
// Like [Differ.Judge], Values computes the verdict, the pattern set and the
// signature, not the differences themselves: Result.Diffs is empty and
// Result.Truncated false. [Differ.ExplainValues] lists them.
func (d *Differ) Values(control, candidate []byte) Result {
	return d.values(d.def, control, candidate, false, nil)
}

// ValuesFor is [Differ.Values] under the rules of one operation.
func (d *Differ) ValuesFor(operation string, control, candidate []byte) Result {
	return d.values(d.program(operation), control, candidate, false, nil)
}

// ExplainValues is [Differ.ValuesFor] (the default rules for the operation
// "") that also lists the differences, as [Differ.Explain] does.
func (d *Differ) ExplainValues(operation string, control, candidate []byte) Result {
	return d.values(d.program(operation), control, candidate, true, nil)
}

// values compares control and candidate under p. When work is not nil it
// receives the walk's count of work units (values compared, hashed or
// scanned), which the tests bound by the values' size.
func (d *Differ) values(p *program, control, candidate []byte, explain bool, work *int) Result {
	return d.compareValues(p, control, candidate, explain, tryLockstep|tryFused, work)
}

// Ways of comparing tried before the walk (see fused.go).
const (
	tryLockstep = 1 << iota // matching the texts, parsing only where they differ
	tryFused                // comparing the values as they are parsed
)

// compareValues is values, trying the ways in try before the walk (the
// tests compare their results with the walk's).
func (d *Differ) compareValues(p *program, control, candidate []byte, explain bool, try int, work *int) (res Result) {
	s := getScratch()
	s.w.work = 0
	defer func() {
		if work != nil {
			*work = s.w.work
		}
		if r := recover(); r != nil {
			// A bug, not an input problem; keep the worker alive and say so.
			res = Result{Verdict: VerdictInvalidJSON, Reason: fmt.Sprintf("diff: internal error: %v", r), RulesVersion: d.version}
			return // do not reuse the scratch
		}
		putScratch(s)
	}()
	res.RulesVersion = d.version
	hasA, hasB := len(control) > 0, len(candidate) > 0
	if hasA && string(control) == string(candidate) {
		// Identical text: one parse decides validity, and the values are
		// equal under any rules.
		if !s.pa.parse(control, d.maxDepth) {
			res.Verdict = VerdictInvalidJSON
			res.Reason = "control value is not valid JSON: " + s.pa.err.Error()
			return res
		}
		res.Verdict = VerdictMatch
		return res
	}
	if hasA && !s.pa.parse(control, d.maxDepth) {
		res.Verdict = VerdictInvalidJSON
		res.Reason = "control value is not valid JSON: " + s.pa.err.Error()
		return res
	}
	// Without path rules, and unless explaining, the candidate's text is
	// matched with the control's, and failing that its values are compared
	// as they are parsed (see fused.go). Otherwise, or when those give up,
	// the candidate is parsed like the control (what is identical to it is
	// copied from the control's tape rather than scanned again) and the
	// walk compares them.
	var guide doc
	if hasA {
		guide = doc{src: control, tape: s.pa.tape}
	}
	w := &s.w
	w.a = doc{src: control, tape: s.pa.tape}
	w.b = doc{src: candidate}
	w.maxDiffs, w.maxVal = d.maxDiffs, d.maxValueBytes
	fusable := hasA && hasB && p.trie == nil && !explain
	if fusable {
		w.reset(p, d.maxDepth, explain)
	}
	var ok bool
	switch {
	case !hasB:
		ok = true
	case fusable && try&tryLockstep != 0 && s.pb.lockstep(candidate, d.maxDepth, &guide, w):
		// Decided: the texts differ only in scalar values.
		res.Verdict = VerdictMatch
		if w.nrep > 0 {
			res.Verdict = VerdictMismatch
			w.result(&res)
		}
		return res
	case fusable && try&tryFused != 0:
		work := w.work
		w.reset(p, d.maxDepth, explain)
		w.work = work
		ok = s.pb.parseCompare(candidate, d.maxDepth, &guide, w)
	default:
		ok = s.pb.parseLike(candidate, d.maxDepth, &guide)
	}
	if !ok {
		res.Verdict = VerdictInvalidJSON
		res.Reason = "candidate value is not valid JSON: " + s.pb.err.Error()
		return res
	}
	w.b.tape = s.pb.tape
	var eq bool
	switch {
	case fusable && try&tryFused != 0 && s.pb.cmp != nil:
		eq = w.nrep == 0
	case hasA && hasB:
		work := w.work
		w.reset(p, d.maxDepth, explain)
		w.work = work
		eq = w.root()
	case !hasA && !hasB:
		eq = true
	default:
		w.reset(p, d.maxDepth, explain)
		eq = w.absentRoot(hasA)
	}
	if eq {
		res.Verdict = VerdictMatch
		return res
	}
	res.Verdict = VerdictMismatch
	w.result(&res)
	return res
}

// absentRoot compares a present root value with an absent one.
func (w *walker) absentRoot(hasA bool) bool {
	act := w.prog.rootAct
	if act != nil && act.ignore {
		return true
	}
	if hasA {
		if absentOK(&w.a, 0, act) {
			return true
		}
		return w.report(dMissing, 0, -1, 0)
	}
	if absentOK(&w.b, 0, act) {
		return true
	}
	return w.report(dExtra, -1, 0, 0)
}

// Judge judges one pair under the rules of its operation:
//
//   - [VerdictWriteSkipped] when either side was skipped;
//   - [VerdictCandidateTimeout] when the candidate timed out and control
//     succeeded;
//   - [VerdictControlError] or [VerdictCandidateError] when exactly one side
//     failed (error, panic or timeout);
//   - [VerdictBothErrorSame] or [VerdictBothErrorDiff] when both failed,
//     comparing their error classes (see [OperationRules.Errors]; a timeout
//     is the class "timeout");
//   - otherwise the comparison of the values, as [Differ.Values].
//
// Judge is the hot path: it fills Verdict, the pattern set (see
// [Result.Patterns]), PatternsTruncated, Signature, RulesVersion and Reason,
// but not the differences themselves, so Result.Diffs is empty and
// Result.Truncated false. [Differ.Explain] returns the same result with the
// differences listed; call it for the few pairs kept as samples.
//
// Judge never panics; a nil pair is judged [VerdictInvalidJSON].
func (d *Differ) Judge(p *envelope.Pair) Result {
	return d.judge(p, false)
}

// Explain is [Differ.Judge] that also lists the differences: Result.Diffs
// holds the first of them (at most [Rules.MaxDiffs]) in document order, with
// their concrete paths and values, and Result.Truncated says whether there
// were more. Everything else is exactly what Judge returns. Explain costs
// more than Judge for each difference; use it for samples, not for every
// pair.
func (d *Differ) Explain(p *envelope.Pair) Result {
	return d.judge(p, true)
}

func (d *Differ) judge(p *envelope.Pair, explain bool) Result {
	if p == nil {
		return Result{Verdict: VerdictInvalidJSON, Reason: "diff: nil pair", RulesVersion: d.version}
	}
	prog := d.program(p.Operation)
	co, ca := p.Control.Outcome(), p.Candidate.Outcome()
	res := Result{RulesVersion: d.version}
	if co == envelope.StatusSkipped || ca == envelope.StatusSkipped {
		res.Verdict = VerdictWriteSkipped
		return res
	}
	cf, af := co != envelope.StatusOK, ca != envelope.StatusOK
	switch {
	case !cf && !af:
		return d.values(prog, p.Control.Value, p.Candidate.Value, explain, nil)
	case ca == envelope.StatusTimeout && !cf:
		res.Verdict = VerdictCandidateTimeout
	case cf && !af:
		res.Verdict = VerdictControlError
	case af && !cf:
		res.Verdict = VerdictCandidateError
	default:
		res.Verdict = VerdictBothErrorDiff
		if prog.errorClass(&p.Control) == prog.errorClass(&p.Candidate) {
			res.Verdict = VerdictBothErrorSame
		}
	}
	return res
}

// ErrorClass returns the class of a failed observation's error under the
// rules of an operation: "timeout" for a timeout, else the class of the
// first error rule that matches its text, else the text with surrounding
// space trimmed.
func (d *Differ) ErrorClass(operation string, o *envelope.Observation) string {
	return d.program(operation).errorClass(o)
}

func (p *program) errorClass(o *envelope.Observation) string {
	if o.Outcome() == envelope.StatusTimeout {
		return "timeout"
	}
	for _, e := range p.errors {
		if e.re != nil {
			if e.re.MatchString(o.Error) {
				return e.class
			}
		} else if strings.Contains(o.Error, e.contains) {
			return e.class
		}
	}
	return strings.TrimSpace(o.Error)
}
