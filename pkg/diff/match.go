package diff

import (
	"encoding/json"
	"errors"
	"strconv"
)

// Pattern is a parsed path pattern, in the syntax of docs/diff-rules.md
// (items[*].price, **.ssn, meta.**). Other packages use it to name places in
// JSON documents the way diff rules do.
type Pattern struct {
	src  string
	segs []pseg
}

// ParsePattern parses a pattern; the error names the offset of the problem.
func ParsePattern(s string) (Pattern, error) {
	segs, err := parsePattern(s)
	if err != nil {
		return Pattern{}, errors.New("diff: " + err.Error())
	}
	return Pattern{src: s, segs: segs}, nil
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.src }

// Matches reports whether the place at path matches the pattern. A path
// element is an object key (string) or an array index (int).
func (p Pattern) Matches(path []any) bool { return matchSegs(p.segs, path, false) }

// MatchesBelow reports whether some place strictly inside the one at path
// could match the pattern: a value at path may contain matching places.
func (p Pattern) MatchesBelow(path []any) bool { return matchSegs(p.segs, path, true) }

func matchSegs(segs []pseg, path []any, below bool) bool {
	if len(path) == 0 {
		if below {
			// Something remains to match inside this place.
			return len(segs) > 0
		}
		return len(segs) == 0 || (len(segs) == 1 && segs[0].kind == segGlob)
	}
	if len(segs) == 0 {
		return false
	}
	s := segs[0]
	if s.kind == segGlob {
		return matchSegs(segs[1:], path, below) || matchSegs(segs, path[1:], below)
	}
	switch el := path[0].(type) {
	case string:
		if s.kind == segAnyKey || (s.kind == segKey && s.key == el) {
			return matchSegs(segs[1:], path[1:], below)
		}
	case int:
		if s.kind == segAnyIndex {
			return matchSegs(segs[1:], path[1:], below)
		}
	}
	return false
}

// ParsePath parses a concrete place as [Difference.Path] writes it
// (items[3].price, ["we.ird"].x, $) into keys (string) and indexes (int).
func ParsePath(s string) ([]any, error) {
	if s == "$" || s == "" {
		return nil, nil
	}
	var path []any
	i := 0
	for i < len(s) {
		switch c := s[i]; {
		case c == '[' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j >= len(s) || s[j] != ']' {
				return nil, errors.New("diff: path " + strconv.Quote(s) + ": unterminated index")
			}
			n, err := strconv.Atoi(s[i+1 : j])
			if err != nil {
				return nil, errors.New("diff: path " + strconv.Quote(s) + ": index too large")
			}
			path = append(path, n)
			i = j + 1
		case c == '[' && i+1 < len(s) && s[i+1] == '"':
			// A quoted key: the JSON string up to its closing quote, then ']'.
			j := i + 2
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			var key string
			if j+1 >= len(s) || s[j+1] != ']' || json.Unmarshal([]byte(s[i+1:j+1]), &key) != nil {
				return nil, errors.New("diff: path " + strconv.Quote(s) + ": bad quoted key")
			}
			path = append(path, key)
			i = j + 2
		case isBareByte(c):
			j := i
			for j < len(s) && isBareByte(s[j]) {
				j++
			}
			path = append(path, s[i:j])
			i = j
		default:
			return nil, errors.New("diff: path " + strconv.Quote(s) + ": unexpected " + strconv.QuoteRune(rune(c)))
		}
		if i < len(s) && s[i] == '.' {
			i++
		}
	}
	return path, nil
}
