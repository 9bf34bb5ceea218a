package diff

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
)

// sortPatterns sorts a set of (pattern, kind) by pattern, then kind.
func sortPatterns(ps []PatternKind) []PatternKind {
	slices.SortFunc(ps, cmpPatternKind)
	return ps
}

// Signature fingerprints a set of (pattern, kind) as 16 hex digits: FNV-1a
// (64-bit) over the sorted, deduplicated entries, each written as
// pattern, NUL, kind, newline. It does not depend on the order of set, and is
// stable across releases for as long as patterns are rendered the same way.
// It returns "" for an empty set.
func Signature(set []PatternKind) string {
	if len(set) == 0 {
		return ""
	}
	ps := set
	if !slices.IsSortedFunc(ps, cmpPatternKind) {
		ps = sortPatterns(slices.Clone(set))
	}
	h := uint64(fnvOffset)
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		h = fnv64s(h, p.Pattern)
		h = fnv64s(h, "\x00")
		h = fnv64s(h, string(p.Kind))
		h = fnv64s(h, "\n")
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h)
	return hex.EncodeToString(b[:])
}

func cmpPatternKind(x, y PatternKind) int {
	if c := strings.Compare(x.Pattern, y.Pattern); c != 0 {
		return c
	}
	return strings.Compare(string(x.Kind), string(y.Kind))
}

// Describe renders a set of (pattern, kind) for people, sorted, one entry
// per line: "items[*].price changed", "meta.etag missing on candidate",
// "tags extra on candidate", "id type changed".
func Describe(set []PatternKind) string {
	ps := sortPatterns(slices.Clone(set))
	var b strings.Builder
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Pattern)
		switch p.Kind {
		case Missing:
			b.WriteString(" missing on candidate")
		case Extra:
			b.WriteString(" extra on candidate")
		case TypeChanged:
			b.WriteString(" type changed")
		default:
			b.WriteString(" ")
			b.WriteString(string(p.Kind))
		}
	}
	return b.String()
}

// Describe renders the result's shape with the package-level [Describe].
func (r *Result) Describe() string { return Describe(r.patterns) }
