package diff

import "slices"

// Verdict is the judgement of one pair.
type Verdict string

// The verdicts. Only [VerdictMatch], [VerdictBothErrorSame],
// [VerdictWriteSkipped] and [VerdictControlError] are not divergent: a pair
// counts against the candidate only for what the candidate did (see
// [Verdict.Divergent] and the table in docs/api.md).
const (
	VerdictMatch            Verdict = "match"
	VerdictMismatch         Verdict = "mismatch"
	VerdictControlError     Verdict = "control_error"   // only the control side failed
	VerdictCandidateError   Verdict = "candidate_error" // only the candidate side failed
	VerdictBothErrorSame    Verdict = "both_error_same" // both failed with the same error class
	VerdictBothErrorDiff    Verdict = "both_error_diff" // both failed, with different error classes
	VerdictWriteSkipped     Verdict = "write_skipped"   // the non-authoritative write was not attempted
	VerdictCandidateTimeout Verdict = "candidate_timeout"
	VerdictInvalidJSON      Verdict = "invalid_json" // a side's value could not be parsed
)

// Divergent reports whether the verdict counts against the candidate: a
// mismatch, a candidate error or timeout while the control succeeded, both
// failing differently, or a value that could not be judged. A failure of the
// control alone is not divergent: it is counted as a control error and shown
// as its own rate, and the gate may limit it separately. An unparsable value
// is divergent whichever side sent it, because the candidate's answer could
// not be shown equal: a gate must not pass what it could not check.
func (v Verdict) Divergent() bool {
	switch v {
	case VerdictMatch, VerdictBothErrorSame, VerdictWriteSkipped, VerdictControlError:
		return false
	}
	return true
}

// DiffKind says how one place differs.
type DiffKind string

// The kinds of difference.
const (
	Missing     DiffKind = "missing"      // present in control, missing on candidate
	Extra       DiffKind = "extra"        // missing in control, present on candidate
	Changed     DiffKind = "changed"      // same type, different value
	TypeChanged DiffKind = "type_changed" // different JSON types
)

// Difference is one place where the candidate differs from control.
type Difference struct {
	// Path is the concrete place, e.g. "items[3].price".
	Path string `json:"path"`
	// Pattern is the normalised place, e.g. "items[*].price"; signatures are
	// built from it.
	Pattern string   `json:"pattern"`
	Kind    DiffKind `json:"kind"`
	// Control and Candidate are the two values as JSON, truncated; empty when
	// missing on that side.
	Control   string `json:"control,omitempty"`
	Candidate string `json:"candidate,omitempty"`
}

// Result is the judgement of one pair.
type Result struct {
	Verdict Verdict
	// Diffs are the differing places, in document order, at most the
	// configured maximum; Truncated says whether there were more. Only
	// [Differ.Explain] and [Differ.ExplainValues] list them: on the hot path
	// ([Differ.Judge], [Differ.Values]) Diffs is empty and Truncated false.
	Diffs     []Difference
	Truncated bool
	// Signature fingerprints a mismatch by its sorted set of (pattern, kind);
	// empty unless the verdict is a mismatch.
	Signature string
	// RulesVersion is the version of the rules the pair was judged under.
	RulesVersion int64
	// Reason explains a [VerdictInvalidJSON]: which side, where and why
	// (including nesting deeper than the depth limit).
	Reason string
	// patterns is the mismatch's pattern set, interned: shared with other
	// results of the same shape, and never modified; see [Result.Patterns].
	patterns []PatternKind
	// PatternsTruncated says whether the differences had more than the
	// 256 (pattern, kind) entries that [Result.Patterns] returns.
	PatternsTruncated bool
}

// Patterns returns the sorted set of (pattern, kind) of all differences,
// not only the listed ones; Signature is its fingerprint. It has at most 256
// entries; PatternsTruncated says whether there were more. It is nil unless
// the verdict is a mismatch.
//
// Judging keeps the set interned, so that a mismatch of a shape seen before
// allocates nothing; Patterns copies it: the slice is the caller's own, a
// new one on each call, and its strings may be shared with other results.
func (r *Result) Patterns() []PatternKind {
	return slices.Clone(r.patterns)
}

// PatternKind is one element of a mismatch's shape: a kind of difference at
// a pattern.
type PatternKind struct {
	Pattern string   `json:"pattern"`
	Kind    DiffKind `json:"kind"`
}
