package diff

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// NoiseOptions configure a [NoiseTracker].
type NoiseOptions struct {
	// Threshold is the fraction of an operation's pairs a pattern must
	// differ in, strictly more than, to be proposed as noise. Defaults to
	// 0.95; must be in (0, 1].
	Threshold float64
	// MinPairs is how many pairs of an operation must have been seen before
	// any of its patterns is proposed. Defaults to 200.
	MinPairs int64
}

// NoiseTracker finds noise: patterns that differ in nearly every pair of an
// operation, such as a timestamp of when the row was read or a request id,
// and proposes an ignore rule for each, with its evidence. Feed it the pairs
// of an A/A comparison (see envelope.ModeAA) to learn noise before the
// candidate is compared at all.
//
// A NoiseTracker is pure: it only counts what it is given, does no I/O, and
// is not safe for concurrent use (give each worker its own and merge with
// [NoiseTracker.Add], or guard it).
type NoiseTracker struct {
	opts NoiseOptions
	ops  map[string]*opNoise
}

type opNoise struct {
	pairs    int64
	patterns map[string]int64 // pairs in which the pattern differed
}

// NewNoiseTracker returns an empty tracker.
func NewNoiseTracker(o NoiseOptions) (*NoiseTracker, error) {
	if o.Threshold == 0 {
		o.Threshold = 0.95
	}
	if o.MinPairs == 0 {
		o.MinPairs = 200
	}
	if !(o.Threshold > 0 && o.Threshold <= 1) {
		return nil, fmt.Errorf("diff: noise threshold %v is not in (0, 1]", o.Threshold)
	}
	if o.MinPairs < 0 {
		return nil, errors.New("diff: noise min pairs is negative")
	}
	return &NoiseTracker{opts: o, ops: map[string]*opNoise{}}, nil
}

func (t *NoiseTracker) op(name string) *opNoise {
	o := t.ops[name]
	if o == nil {
		o = &opNoise{patterns: map[string]int64{}}
		t.ops[name] = o
	}
	return o
}

// Observe counts one judged pair of an operation: every distinct pattern
// of its differences counts once. Pairs judged on errors, skipped or invalid
// count as pairs without differences.
func (t *NoiseTracker) Observe(operation string, r *Result) {
	o := t.op(operation)
	o.pairs++
	ps := r.patterns
	for i, p := range ps {
		if i > 0 && ps[i-1].Pattern == p.Pattern {
			continue // the same pattern with another kind
		}
		o.patterns[p.Pattern]++
	}
}

// Add adds counts gathered elsewhere: pairs of an operation were judged, and
// mismatches[pattern] of them differed at the pattern.
func (t *NoiseTracker) Add(operation string, pairs int64, mismatches map[string]int64) {
	o := t.op(operation)
	o.pairs += pairs
	for p, n := range mismatches {
		o.patterns[p] += n
	}
}

// Proposal is a proposed ignore rule and its evidence.
type Proposal struct {
	Operation string
	// Pattern is the place to ignore, as an entry of OperationRules.Ignore.
	Pattern string
	// Mismatches of Pairs pairs differed at Pattern; Fraction is their
	// ratio.
	Mismatches, Pairs int64
	Fraction          float64
}

// Evidence says why the rule is proposed, for people.
func (p Proposal) Evidence() string {
	return fmt.Sprintf("%s differed in %d of %d pairs (%s%%) of operation %s",
		p.Pattern, p.Mismatches, p.Pairs, strconv.FormatFloat(p.Fraction*100, 'f', 1, 64), p.Operation)
}

// Apply returns a copy of r with the proposed ignore rule added to the
// operation's section. r is not modified.
func (p Proposal) Apply(r Rules) Rules {
	ops := make(map[string]OperationRules, len(r.Operations)+1)
	maps.Copy(ops, r.Operations)
	sec := ops[p.Operation]
	if !slices.Contains(sec.Ignore, p.Pattern) {
		sec.Ignore = append(slices.Clip(sec.Ignore), p.Pattern)
	}
	ops[p.Operation] = sec
	r.Operations = ops
	return r
}

// Proposals returns the patterns that differ in more than the threshold
// fraction of at least MinPairs pairs of their operation, sorted by
// operation and pattern. The root ("$") is never proposed: a value that
// differs as a whole is a broken candidate, not noise.
func (t *NoiseTracker) Proposals() []Proposal {
	var out []Proposal
	for _, name := range slices.Sorted(maps.Keys(t.ops)) {
		o := t.ops[name]
		if o.pairs < t.opts.MinPairs || o.pairs == 0 {
			continue
		}
		for _, pat := range slices.Sorted(maps.Keys(o.patterns)) {
			n := o.patterns[pat]
			f := float64(n) / float64(o.pairs)
			if pat == "$" || f <= t.opts.Threshold {
				continue
			}
			out = append(out, Proposal{Operation: name, Pattern: pat, Mismatches: n, Pairs: o.pairs, Fraction: f})
		}
	}
	return out
}
