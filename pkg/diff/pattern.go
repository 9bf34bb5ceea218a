package diff

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// A pattern names a set of places in a JSON document. See docs/diff-rules.md.
//
//	items[*].price   key "items", any element, key "price"
//	*.etag           any top-level member's "etag"
//	**.updated_at    "updated_at" at any depth
//	meta.**          "meta" and everything in it
//	["we.ird"].x     a key that is not a bare word, in JSON string syntax
//	$                the root value
//
// A bare key is one or more of A-Z a-z 0-9 _ -. Difference.Pattern is always
// a valid pattern that matches its own place.

type segKind uint8

const (
	segKey      segKind = iota // one object member with this key
	segAnyKey                  // "*": any one object member
	segAnyIndex                // "[*]": any one array element
	segGlob                    // "**": any zero or more members or elements
)

type pseg struct {
	kind segKind
	key  string
}

func isBareByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func isBare(key []byte) bool {
	if len(key) == 0 {
		return false
	}
	for _, c := range key {
		if !isBareByte(c) {
			return false
		}
	}
	return true
}

// parsePattern parses a pattern into segments.
func parsePattern(s string) ([]pseg, error) {
	if s == "" {
		return nil, errors.New("empty pattern (use \"$\" for the root, \"**\" for everywhere)")
	}
	if s == "$" {
		return nil, nil
	}
	var segs []pseg
	i := 0
	afterDot := false
	for i < len(s) {
		c := s[i]
		switch {
		case c == '[':
			if afterDot {
				return nil, patErr(s, i, "'[' right after '.'; write a[*] or a[\"k\"], not a.[*]")
			}
			if i+2 < len(s) && s[i+1] == '*' && s[i+2] == ']' {
				segs = append(segs, pseg{kind: segAnyIndex})
				i += 3
				break
			}
			if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				return nil, patErr(s, i, "array indices are not supported in patterns; use [*]")
			}
			if i+1 >= len(s) || s[i+1] != '"' {
				return nil, patErr(s, i, "expected [*] or [\"key\"]")
			}
			end := i + 2
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) || end+1 >= len(s) || s[end+1] != ']' {
				return nil, patErr(s, i, "unterminated [\"key\"]")
			}
			var key string
			if err := json.Unmarshal([]byte(s[i+1:end+1]), &key); err != nil {
				return nil, patErr(s, i, "invalid quoted key")
			}
			segs = append(segs, pseg{kind: segKey, key: key})
			i = end + 2
		case c == '*':
			if i+1 < len(s) && s[i+1] == '*' {
				segs = append(segs, pseg{kind: segGlob})
				i += 2
			} else {
				segs = append(segs, pseg{kind: segAnyKey})
				i++
			}
		case isBareByte(c):
			j := i
			for j < len(s) && isBareByte(s[j]) {
				j++
			}
			segs = append(segs, pseg{kind: segKey, key: s[i:j]})
			i = j
		default:
			return nil, patErr(s, i, "unexpected "+strconv.QuoteRune(rune(c))+"; quote unusual keys as [\"key\"]")
		}
		afterDot = false
		if i == len(s) {
			break
		}
		switch s[i] {
		case '.':
			i++
			afterDot = true
			if i == len(s) {
				return nil, patErr(s, i, "pattern ends with '.'")
			}
		case '[':
		default:
			return nil, patErr(s, i, "expected '.' or '[' after a segment")
		}
	}
	return segs, nil
}

func patErr(s string, i int, msg string) error {
	return errors.New("pattern " + strconv.Quote(s) + " at offset " + strconv.Itoa(i) + ": " + msg)
}

// appendKeySeg appends an object-member segment for a decoded key: ".key"
// (no dot at the start) when the key is bare, else ["key"].
func appendKeySeg(dst []byte, key []byte, first bool) []byte {
	if isBare(key) {
		if !first {
			dst = append(dst, '.')
		}
		return append(dst, key...)
	}
	dst = append(dst, '[')
	dst = appendQuoted(dst, key)
	return append(dst, ']')
}

// appendQuoted appends key as a JSON string.
func appendQuoted(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		case c < 0x80:
			dst = append(dst, c)
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return append(dst, '"')
}

// The pattern trie. A walk over a document carries the set of trie nodes the
// path so far can be at; a node with actions is where a rule applies.

type litEdge struct {
	key   string
	child int32
}

type tnode struct {
	lits   []litEdge
	anyKey int32 // child for "*", or -1
	anyIdx int32 // child for "[*]", or -1
	glob   int32 // child for "**" (reached without consuming a segment), or -1
	loop   bool  // a "**" node: stays in the set on every segment
	act    *actions
}

type trie struct {
	nodes []tnode
}

func newTrie() *trie {
	t := &trie{}
	t.add()
	return t
}

func (t *trie) add() int32 {
	t.nodes = append(t.nodes, tnode{anyKey: -1, anyIdx: -1, glob: -1})
	return int32(len(t.nodes) - 1)
}

// insert adds a pattern and returns its terminal node.
func (t *trie) insert(segs []pseg) int32 {
	cur := int32(0)
	for _, s := range segs {
		var next int32 = -1
		switch s.kind {
		case segKey:
			for _, e := range t.nodes[cur].lits {
				if e.key == s.key {
					next = e.child
				}
			}
			if next < 0 {
				next = t.add()
				t.nodes[cur].lits = append(t.nodes[cur].lits, litEdge{s.key, next})
			}
		case segAnyKey:
			if next = t.nodes[cur].anyKey; next < 0 {
				next = t.add()
				t.nodes[cur].anyKey = next
			}
		case segAnyIndex:
			if next = t.nodes[cur].anyIdx; next < 0 {
				next = t.add()
				t.nodes[cur].anyIdx = next
			}
		case segGlob:
			if next = t.nodes[cur].glob; next < 0 {
				next = t.add()
				t.nodes[cur].glob = next
				t.nodes[next].loop = true
			}
		}
		cur = next
	}
	return cur
}
