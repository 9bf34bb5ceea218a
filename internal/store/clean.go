package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// PostgreSQL refuses some strings Go is happy with: text may not hold invalid
// UTF-8 or NUL, and jsonb additionally refuses the escapes \u0000 and unpaired
// surrogates. One such string would fail a whole batch, again on every retry,
// so the store repairs them with U+FFFD instead.

const replacement = "\uFFFD"

// cleanText returns s as PostgreSQL text accepts it: valid UTF-8 without NUL.
// It returns s itself, without allocating, when s is already acceptable.
func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ToValidUTF8(s, replacement)
	return strings.ReplaceAll(s, "\x00", replacement)
}

// cleanJSON returns raw as jsonb accepts it, or nil (SQL NULL) for an empty
// raw. A raw that is not JSON at all is kept as a JSON string holding its
// text, so nothing is lost.
func cleanJSON(raw json.RawMessage) *string {
	if len(raw) == 0 {
		return nil
	}
	if !utf8.Valid(raw) {
		raw = bytes.ToValidUTF8(raw, []byte(replacement))
	}
	if !json.Valid(raw) || !jsonbNumbers(raw) {
		raw, _ = json.Marshal(string(raw)) // cannot fail for a string
	}
	s := fixEscapes(string(raw))
	return &s
}

// jsonbNumbers reports whether every number in raw (valid JSON) fits
// PostgreSQL's numeric type, which jsonb stores numbers as: at most 131,072
// digits before the point and 16,383 after. A document with a number beyond
// that (1e999999) would fail the whole batch on every retry, so it is kept
// as a string instead. The check is conservative: any exponent beyond ±1000
// or any number longer than 1000 characters counts as too large.
func jsonbNumbers(raw []byte) bool {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(raw) && strings.IndexByte("+-0123456789.eE", raw[j]) >= 0 {
				j++
			}
			num := raw[i:j]
			if len(num) > 1000 {
				return false
			}
			if e := bytes.IndexAny(num, "eE"); e >= 0 {
				exp := strings.TrimLeft(string(num[e+1:]), "+-")
				exp = strings.TrimLeft(exp, "0")
				if len(exp) > 3 {
					return false
				}
			}
			i = j - 1
		}
	}
	return true
}

// fixEscapes replaces the \u escapes jsonb refuses (\u0000 and unpaired
// surrogates) with \ufffd. s must be valid JSON, so every backslash in it
// starts an escape inside a string.
func fixEscapes(s string) string {
	if !strings.Contains(s, `\u`) {
		return s
	}
	var b *strings.Builder // allocated at the first repair
	last := 0              // s[last:i] not yet copied to b
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if i+1 >= len(s) || s[i+1] != 'u' {
			i++ // skip the escaped character, which may be a backslash
			continue
		}
		r, ok := hex4(s, i+2)
		if !ok {
			i++
			continue
		}
		n := 6 // length of the escape(s) kept or replaced
		bad := false
		switch {
		case r == 0:
			bad = true
		case r >= 0xD800 && r <= 0xDBFF: // high surrogate: needs a low one next
			if i+11 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
				if lo, ok := hex4(s, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					n = 12
					break
				}
			}
			bad = true
		case r >= 0xDC00 && r <= 0xDFFF: // low surrogate on its own
			bad = true
		}
		if bad {
			if b == nil {
				b = &strings.Builder{}
				b.Grow(len(s))
			}
			b.WriteString(s[last:i])
			b.WriteString(`\ufffd`)
			last = i + n
		}
		i += n - 1
	}
	if b == nil {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// hex4 parses the four hex digits at s[i:i+4].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// cleanAttrs returns attrs as a JSON object jsonb accepts ("{}" for none).
func cleanAttrs(attrs map[string]string) string {
	if len(attrs) == 0 {
		return "{}"
	}
	m := make(map[string]string, len(attrs))
	for k, v := range attrs {
		m[cleanText(k)] = cleanText(v)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// patternKind mirrors diff.PatternKind, the element of a signature's pattern
// set, without importing the diff engine.
type patternKind struct {
	Pattern string `json:"pattern"`
	Kind    string `json:"kind"`
}

// cleanPatterns returns raw, a JSON array of {"pattern","kind"} objects, as a
// compact array jsonb accepts, or nil when raw is empty or not such an array.
// The store relies on stored pattern sets being arrays (jsonb_array_elements
// fails on anything else), so a malformed set is dropped rather than stored.
func cleanPatterns(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var pks []patternKind
	if err := json.Unmarshal(raw, &pks); err != nil || pks == nil {
		return nil
	}
	for i := range pks {
		pks[i].Pattern, pks[i].Kind = cleanText(pks[i].Pattern), cleanText(pks[i].Kind)
	}
	out, err := json.Marshal(pks)
	if err != nil {
		return nil
	}
	return out
}

// cleanRules returns raw, which must be a JSON object, as jsonb accepts it.
func cleanRules(raw json.RawMessage) (string, error) { return cleanObject(raw, "rules") }

// cleanObject returns raw, which must be a JSON object, as jsonb accepts it;
// what names raw in the error.
func cleanObject(raw []byte, what string) (string, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(raw) {
		return "", errors.New(what + " must be a JSON object")
	}
	return *cleanJSON(raw), nil
}
