// Package segment defines how an experiment's pairs are split into segments:
// a [Definition] names the user attributes a segment is made of, in order,
// and how many distinct segments the experiment admits before further ones
// fold into [Other].
//
// A definition is per-experiment configuration: the store keeps it,
// versioned, the API edits it, and every verifier splits an experiment's
// pairs with the one stored for it, so no two verifiers split one experiment
// differently. The verifiers' flags only give the definition of an
// experiment seen for the first time.
//
// [Admission] is the folding policy itself — names admitted once stay, new
// ones are admitted in order up to a limit, the rest fold into "other" — which
// the store applies to an experiment's segments and, with its own limits, to
// experiments and to each experiment's operations.
//
// The package is pure: values and functions, no I/O, safe for concurrent use.
package segment

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

const (
	// Other is the segment that segments past an experiment's cap fold into.
	Other = "other"
	// All is the one segment of an experiment split by no attribute.
	All = "all"
	// None is the value a missing attribute reads as in a key.
	None = "(none)"
)

// Limits of a [Definition].
const (
	// DefaultCap is the segment cap of a definition the flags do not set.
	DefaultCap = 100
	// MaxAttrs is the most attributes a segment may be made of.
	MaxAttrs = 8
	// MaxCap is the largest segment cap: every segment is a row per minute
	// in the store and a row on the experiment page.
	MaxCap = 10_000
	// MaxKeyBytes bounds a segment key's length.
	MaxKeyBytes = 512
)

// ErrInvalid reports a definition that cannot be used.
var ErrInvalid = errors.New("segment: invalid definition")

// Definition is how one experiment is split into segments.
type Definition struct {
	// Attrs are the user attributes a segment is made of, in order, e.g.
	// ["country", "plan"]. Empty puts every pair in segment [All].
	Attrs []string `json:"attrs"`
	// Cap is how many distinct segments the experiment admits; pairs of
	// further segments are counted in [Other].
	Cap int `json:"cap"`
}

// Validate returns an error wrapping [ErrInvalid] that names the field, or
// nil.
func (d Definition) Validate() error {
	if len(d.Attrs) > MaxAttrs {
		return fmt.Errorf("%w: attrs: %d attributes, at most %d", ErrInvalid, len(d.Attrs), MaxAttrs)
	}
	for i, a := range d.Attrs {
		if a == "" || len(a) > 100 || strings.ContainsAny(a, ",= \t\n") {
			return fmt.Errorf("%w: attrs[%d]: %q is not an attribute name (1 to 100 characters, no comma, equals sign or space)", ErrInvalid, i, a)
		}
		if slices.Contains(d.Attrs[:i], a) {
			return fmt.Errorf("%w: attrs[%d]: %q is listed twice", ErrInvalid, i, a)
		}
	}
	if d.Cap < 1 || d.Cap > MaxCap {
		return fmt.Errorf("%w: cap: %d is not between 1 and %d", ErrInvalid, d.Cap, MaxCap)
	}
	return nil
}

// Equal reports whether d and o split pairs the same way.
func (d Definition) Equal(o Definition) bool {
	return d.Cap == o.Cap && slices.Equal(d.Attrs, o.Attrs)
}

var valueReplacer = strings.NewReplacer(",", "_", "=", "_")

// Key returns the segment key of a user's attributes under d, e.g.
// "country=IN,plan=pro", and the attribute values it was made of. A missing
// attribute reads [None]; commas and equals signs in values read "_". With
// no attributes every user is in segment [All]. A key longer than
// [MaxKeyBytes] keeps a readable start and ends in a hash of the whole.
func (d Definition) Key(user map[string]string) (string, map[string]string) {
	return Key(user, d.Attrs)
}

// Key is [Definition.Key] for the attributes names.
func Key(user map[string]string, names []string) (string, map[string]string) {
	if len(names) == 0 {
		return All, nil
	}
	var sb strings.Builder
	vals := make(map[string]string, len(names))
	for i, k := range names {
		v := user[k]
		if v == "" {
			v = None
		}
		v = valueReplacer.Replace(v)
		vals[k] = v
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(v)
	}
	key := sb.String()
	if len(key) > MaxKeyBytes {
		// Keys index PostgreSQL rows, whose btree entries are limited to
		// about 2.7 KB: keep a readable start and make the rest unique.
		h := fnv.New64a()
		h.Write([]byte(key))
		key = strings.ToValidUTF8(key[:MaxKeyBytes-20], "") + "…" + strconv.FormatUint(h.Sum64(), 16)
	}
	return key, vals
}

// Admission is the policy every bounded set of names follows: the segments
// of an experiment (under its [Definition.Cap]), and, in the store, the
// experiments and each experiment's operations. A name admitted once stays
// admitted; a new name is admitted, in the order names come, while fewer
// than the limit are; the rest fold into the set's other name, which is
// always admitted and never counts toward the limit. An Admission is one
// decision over one set; it is not safe for concurrent use (the store
// serialises admissions to a set with a lock).
type Admission struct {
	limit, n int
	other    string
	known    func(name string) bool
	fresh    map[string]struct{}
}

// NewAdmission returns the admission of a set whose other name is other,
// bounded by limit, in which admitted names (other excepted) are admitted
// already and known reports whether a name is one of them.
func NewAdmission(limit, admitted int, other string, known func(name string) bool) *Admission {
	return &Admission{limit: limit, n: admitted, other: other, known: known, fresh: map[string]struct{}{}}
}

// Admit reports whether name is admitted (ok) or folds into the other name,
// and whether this call admitted it (fresh: the caller records it).
func (a *Admission) Admit(name string) (ok, fresh bool) {
	if _, dup := a.fresh[name]; dup || name == a.other || a.known(name) {
		return true, false
	}
	if a.n >= a.limit {
		return false, false
	}
	a.n++
	a.fresh[name] = struct{}{}
	return true, true
}
