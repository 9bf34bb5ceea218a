// Package diff judges pairs: it decides whether the candidate (new path) of an
// [envelope.Pair] agrees with its control (old path), and if not, exactly
// where they differ.
//
// [Compile] turns [Rules] into a [Differ]; [Exact] is the Differ for the zero
// Rules. [Differ.Judge] returns a [Result]: a [Verdict], the set of
// (pattern, kind) of the differences, with patterns like "items[*].price",
// and a [Signature] of that set so that mismatches of one shape can be
// counted together. [Differ.Values] compares two JSON values alone.
//
// Judge and Values are the hot path, called for every pair; they do not
// list the differences. [Differ.Explain] and [Differ.ExplainValues] return
// the same result with the differing places listed as [Difference] values,
// each with a concrete path ("items[3].price"), its pattern and the two
// values; call them for the few pairs kept as samples.
//
// # Guarantees
//
// The package is pure: it does no I/O and keeps no state between calls
// other than reusable scratch memory, so a result depends only on the rules
// and the pair. A Differ is immutable and safe for concurrent use.
//
// Judge, Explain and the Values methods never panic on any input. A value that is not valid JSON
// (RFC 8259, including valid UTF-8 in strings) is a verdict,
// [VerdictInvalidJSON], with a [Result.Reason]; so is nesting deeper than
// [Rules.MaxDepth] (1,000 by default), which also bounds recursion. Time and
// memory are linear in the size of the values, for every input: the
// elements of unordered and keyed arrays (see [ArrayRule]) are matched by
// hash first, and what is left is tried pair by pair only within a budget of
// two comparisons per token of the two arrays; past it, leftover elements
// are paired in order. So a worst-case pair (two 1 MB unordered arrays with
// every element different) costs a few passes over the values, not n×m
// comparisons: TestWorstCaseWorkBounded counts the work, BenchmarkWorstCase
// measures it against a typical pair and against parsing.
//
// Values are parsed by the package's own parser into a flat tape that is
// reused between calls, and compared without converting strings or numbers.
// The candidate is parsed like the control: when both are laid out alike,
// in containers of 256 bytes or more, a member or element (of 24 bytes or
// more) whose text is identical to the one at the same place in the control
// is copied from the control's tape rather than scanned again, which gives
// exactly the tape and the errors of parsing the candidate alone; so large
// documents that differ in a few places cost little more than parsing one
// of them. Without path rules, Judge and Values first match the
// candidate's text with the control's byte for byte, parsing and comparing
// only the values where they differ; when the texts differ elsewhere
// (layout, keys, lengths), they compare the values as the candidate is
// parsed; and only when the documents' shapes differ do they walk the two
// tapes. All three give the same results (fused.go says why; the tests
// compare them on random pairs).
// Judging two equal values allocates nothing, and neither does judging a
// mismatch whose pattern set has been seen before (pooled scratch memory
// keeps the patterns, their text and the signatures of recent sets, bounded;
// it never changes a result): [Result.Patterns] copies the set only when
// asked.
//
// # Semantics
//
// Numbers are compared as exact decimals: 1, 1.0 and 1e0 are equal, and
// numbers beyond float64 (12345678901234567890, 1e400) are compared exactly,
// not rounded. Strings are compared after decoding escapes. Object members
// match by key in any order; when a key repeats, the last occurrence wins, as
// in encoding/json. Arrays are compared in order; when their lengths differ,
// a common prefix and suffix are aligned and what remains is compared in
// order and reported missing or extra. An absent value (an empty
// [envelope.Observation.Value]) differs from null unless a rule says
// otherwise.
//
// [Render] shows one pair's difference for people, using go-cmp; it is slow
// and meant for one sample on demand, not for the hot path.
//
// [NoiseTracker] proposes ignore rules for patterns that differ in nearly
// every pair of an operation.
//
// docs/diff-rules.md describes the rules format.
package diff
