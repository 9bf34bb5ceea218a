package diff

import (
	"strconv"
	"unicode/utf8"
)

// This file holds Parity's JSON parser. It turns a document into a tape: a
// flat slice of nodes in document order, where a container is followed by its
// children and knows the tape index just past its subtree. Strings, numbers
// and keys are not copied or converted; a node records where its text is in
// the source. Parsing a document into a reused tape allocates nothing.
//
// The parser accepts exactly RFC 8259 JSON: one value, surrounded by optional
// whitespace, with strings in valid UTF-8. Nesting deeper than the configured
// depth is an error rather than a deep recursion.

// Kinds of tape nodes. The order matters only for kindType.
const (
	kNull uint32 = iota
	kFalse
	kTrue
	kNumber
	kString
	kArray
	kObject
)

const (
	kindMask  = 7
	flagEsc   = 8 // a string or key contains backslash escapes
	countShft = 4
)

// maxInput is the largest value the parser accepts (256 MiB): offsets and
// counts are 32-bit.
const maxInput = 1 << 28

// node is one JSON value on a tape.
type node struct {
	start uint32 // first byte; for strings the byte after the opening quote
	end   uint32 // past the last byte; for strings the closing quote
	next  uint32 // tape index just past this value and its children
	meta  uint32 // kind | flags | count<<countShft (members or elements)
}

func (n *node) kind() uint32  { return n.meta & kindMask }
func (n *node) count() int    { return int(n.meta >> countShft) }
func (n *node) escaped() bool { return n.meta&flagEsc != 0 }

// kindType maps a node kind to its JSON type; false and true are one type.
func kindType(k uint32) uint32 {
	if k == kTrue {
		return kFalse
	}
	return k
}

// doc is a parsed document.
type doc struct {
	src  []byte
	tape []node
}

// raw returns the source text of node i (strings with their quotes).
func (d *doc) raw(i uint32) []byte {
	n := &d.tape[i]
	if n.kind() == kString {
		return d.src[n.start-1 : n.end+1]
	}
	return d.src[n.start:n.end]
}

// str returns the undecoded content of string node i.
func (d *doc) str(i uint32) []byte {
	n := &d.tape[i]
	return d.src[n.start:n.end]
}

// syntaxError describes why a document is not JSON. Msg is a constant, so a
// failed parse allocates nothing until the error is rendered.
type syntaxError struct {
	pos int
	msg string
}

func (e *syntaxError) Error() string {
	return "at offset " + strconv.Itoa(e.pos) + ": " + e.msg
}

type parser struct {
	src      []byte
	pos      int
	tape     []node
	maxDepth int
	err      syntaxError

	// The fused comparison (see fused.go): the walker comparing the values
	// as they are parsed, nil when not comparing, and whether to try
	// copying members and elements from the guide.
	cmp    *walker
	copies bool
}

// space reports JSON whitespace.
var space = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// strPlain marks the bytes a string scan can skip without a closer look.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// parse parses src into p.tape (reusing its storage). It reports false and
// sets p.err when src is not one JSON value.
func (p *parser) parse(src []byte, maxDepth int) bool {
	p.src = src
	p.pos = 0
	p.tape = p.tape[:0]
	p.maxDepth = maxDepth
	p.err = syntaxError{}
	if len(src) > maxInput {
		return p.fail(0, "value larger than 256 MiB")
	}
	if !p.value(0) {
		return false
	}
	i := p.pos
	for i < len(src) && space[src[i]] {
		i++
	}
	if i != len(src) {
		return p.fail(i, "unexpected data after the value")
	}
	return true
}

func (p *parser) fail(pos int, msg string) bool {
	p.err = syntaxError{pos: pos, msg: msg}
	return false
}

func (p *parser) value(depth int) bool {
	src := p.src
	i := p.pos
	for i < len(src) && space[src[i]] {
		i++
	}
	if i >= len(src) {
		return p.fail(i, "unexpected end of input")
	}
	idx := uint32(len(p.tape))
	switch c := src[i]; c {
	case '"':
		end, esc, ok := p.scanString(i + 1)
		if !ok {
			return false
		}
		p.tape = append(p.tape, node{start: uint32(i + 1), end: uint32(end), next: idx + 1, meta: kString | esc})
		p.pos = end + 1
		return true
	case '{':
		if depth >= p.maxDepth {
			return p.fail(i, "nesting deeper than the depth limit of "+strconv.Itoa(p.maxDepth))
		}
		return p.object(i, idx, depth+1)
	case '[':
		if depth >= p.maxDepth {
			return p.fail(i, "nesting deeper than the depth limit of "+strconv.Itoa(p.maxDepth))
		}
		return p.array(i, idx, depth+1)
	case 't':
		return p.literal(i, idx, "true", kTrue)
	case 'f':
		return p.literal(i, idx, "false", kFalse)
	case 'n':
		return p.literal(i, idx, "null", kNull)
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			end, ok := p.scanNumber(i)
			if !ok {
				return false
			}
			p.tape = append(p.tape, node{start: uint32(i), end: uint32(end), next: idx + 1, meta: kNumber})
			p.pos = end
			return true
		}
		return p.fail(i, "unexpected character "+strconv.QuoteRune(rune(c))+" looking for a value")
	}
}

func (p *parser) literal(i int, idx uint32, lit string, kind uint32) bool {
	if len(p.src)-i < len(lit) || string(p.src[i:i+len(lit)]) != lit {
		return p.fail(i, "invalid literal, want "+lit)
	}
	p.tape = append(p.tape, node{start: uint32(i), end: uint32(i + len(lit)), next: idx + 1, meta: kind})
	p.pos = i + len(lit)
	return true
}

func (p *parser) object(start int, idx uint32, depth int) bool {
	src := p.src
	p.tape = append(p.tape, node{})
	i := start + 1
	for i < len(src) && space[src[i]] {
		i++
	}
	count := uint32(0)
	if i < len(src) && src[i] == '}' {
		i++
		goto done
	}
	for {
		if i >= len(src) {
			return p.fail(i, "unexpected end of input in an object")
		}
		if src[i] != '"' {
			return p.fail(i, "expected a string key in an object")
		}
		end, esc, ok := p.scanString(i + 1)
		if !ok {
			return false
		}
		kidx := uint32(len(p.tape))
		p.tape = append(p.tape, node{start: uint32(i + 1), end: uint32(end), next: kidx + 1, meta: kString | esc})
		i = end + 1
		for i < len(src) && space[src[i]] {
			i++
		}
		if i >= len(src) || src[i] != ':' {
			return p.fail(i, "expected ':' after an object key")
		}
		p.pos = i + 1
		if !p.value(depth) {
			return false
		}
		count++
		i = p.pos
		for i < len(src) && space[src[i]] {
			i++
		}
		if i >= len(src) {
			return p.fail(i, "unexpected end of input in an object")
		}
		if src[i] == ',' {
			i++
			for i < len(src) && space[src[i]] {
				i++
			}
			continue
		}
		if src[i] == '}' {
			i++
			break
		}
		return p.fail(i, "expected ',' or '}' in an object")
	}
done:
	p.tape[idx] = node{start: uint32(start), end: uint32(i), next: uint32(len(p.tape)), meta: kObject | count<<countShft}
	p.pos = i
	return true
}

func (p *parser) array(start int, idx uint32, depth int) bool {
	src := p.src
	p.tape = append(p.tape, node{})
	i := start + 1
	for i < len(src) && space[src[i]] {
		i++
	}
	count := uint32(0)
	if i < len(src) && src[i] == ']' {
		i++
		goto done
	}
	for {
		p.pos = i
		if !p.value(depth) {
			return false
		}
		count++
		i = p.pos
		for i < len(src) && space[src[i]] {
			i++
		}
		if i >= len(src) {
			return p.fail(i, "unexpected end of input in an array")
		}
		if src[i] == ',' {
			i++
			continue
		}
		if src[i] == ']' {
			i++
			break
		}
		return p.fail(i, "expected ',' or ']' in an array")
	}
done:
	p.tape[idx] = node{start: uint32(start), end: uint32(i), next: uint32(len(p.tape)), meta: kArray | count<<countShft}
	p.pos = i
	return true
}

// scanString scans string content starting at i (just after the opening
// quote). It returns the index of the closing quote and flagEsc when the
// string has escapes.
func (p *parser) scanString(i int) (end int, esc uint32, ok bool) {
	src := p.src
	for {
		// The common case: a run of printable ASCII.
		for i+8 <= len(src) && strPlain[src[i]] && strPlain[src[i+1]] && strPlain[src[i+2]] && strPlain[src[i+3]] &&
			strPlain[src[i+4]] && strPlain[src[i+5]] && strPlain[src[i+6]] && strPlain[src[i+7]] {
			i += 8
		}
		for i < len(src) && strPlain[src[i]] {
			i++
		}
		if i >= len(src) {
			return 0, 0, p.fail(i, "unexpected end of input in a string")
		}
		switch c := src[i]; {
		case c == '"':
			return i, esc, true
		case c == '\\':
			esc = flagEsc
			if i+1 >= len(src) {
				return 0, 0, p.fail(i, "unexpected end of input in a string escape")
			}
			switch src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(src) || !isHex(src[i+2]) || !isHex(src[i+3]) || !isHex(src[i+4]) || !isHex(src[i+5]) {
					return 0, 0, p.fail(i, "invalid \\u escape in a string")
				}
				i += 6
			default:
				return 0, 0, p.fail(i, "invalid escape in a string")
			}
		case c < 0x20:
			return 0, 0, p.fail(i, "control character in a string")
		default: // c >= 0x80
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size <= 1 {
				return 0, 0, p.fail(i, "invalid UTF-8 in a string")
			}
			i += size
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber scans a number starting at i and returns the index past it.
func (p *parser) scanNumber(i int) (int, bool) {
	end, ok := numberEnd(p.src, i)
	if !ok {
		return 0, p.fail(i, "invalid number")
	}
	return end, true
}

// numberEnd returns the end of the JSON number literal at b[i:], and whether
// one is there.
func numberEnd(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		i++
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	} else {
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

// isNumber reports whether b is exactly one JSON number literal.
func isNumber(b []byte) bool {
	end, ok := numberEnd(b, 0)
	return ok && end == len(b)
}

// appendUnescaped appends the decoded content of a valid JSON string body to
// dst. Invalid surrogates decode to U+FFFD, as encoding/json does.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16IsSurrogate(r) {
				if r < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2 := hex4(s[i+2:]); r2 >= 0xDC00 && r2 < 0xE000 {
						dst = utf8.AppendRune(dst, (r-0xD800)<<10+(r2-0xDC00)+0x10000)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func utf16IsSurrogate(r rune) bool { return r >= 0xD800 && r < 0xE000 }

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// parseLike is parse for a document that is expected to be much like g (a
// parsed document, usually the other side of a pair): where a member or an
// element has, byte for byte, the text of the one at the same place in g, its
// nodes are copied from g's tape (moved to where the text is) instead of
// scanned. Identical text parses identically, and a copied value sits at
// the same depth as in g, so the tape and any error are exactly parse's;
// a value that differs, or has no counterpart in g, is parsed as usual.
func (p *parser) parseLike(src []byte, maxDepth int, g *doc) bool {
	p.src = src
	p.pos = 0
	p.tape = p.tape[:0]
	p.maxDepth = maxDepth
	p.err = syntaxError{}
	if len(src) > maxInput {
		return p.fail(0, "value larger than 256 MiB")
	}
	if !formattedLike(src, g) {
		return p.parse(src, maxDepth)
	}
	if !p.valueLike(0, g, 0) {
		return false
	}
	i := p.pos
	for i < len(src) && space[src[i]] {
		i++
	}
	if i != len(src) {
		return p.fail(i, "unexpected data after the value")
	}
	return true
}

// formattedLike reports whether src begins as g does, up to its root's
// first value: when it does not (no guide, another root, or another layout
// such as indentation), members are unlikely to have identical text, and
// trying to copy them would cost more than it saves.
func formattedLike(src []byte, g *doc) bool {
	if len(g.tape) < 2 {
		return false
	}
	first := &g.tape[1] // an array's first element, an object's first key
	if g.tape[0].kind() == kObject {
		first = &g.tape[2]
	}
	pre := g.src[g.tape[0].start:rawStart(first)]
	i := 0
	for i < len(src) && space[src[i]] {
		i++
	}
	return len(src)-i >= len(pre) && string(src[i:i+len(pre)]) == string(pre)
}

// minCopy is the shortest text copyLike copies: shorter members and
// elements parse about as fast as they compare. A variable for the tests.
var minCopy = 24

// minGuide is the shortest container of g (in bytes of text) whose
// counterpart parseLike parses member by member, trying copies: in smaller
// ones, following g costs more than the copies save. A variable for the
// tests.
var minGuide uint32 = 256

// valueLike is value for a value whose counterpart is node gi of g.
func (p *parser) valueLike(depth int, g *doc, gi uint32) bool {
	src := p.src
	i := p.pos
	for i < len(src) && space[src[i]] {
		i++
	}
	if gn := &g.tape[gi]; i < len(src) && gn.end-gn.start >= minGuide {
		switch gk := gn.kind(); {
		case src[i] == '{' && gk == kObject && depth < p.maxDepth:
			return p.objectLike(i, uint32(len(p.tape)), depth+1, g, gi)
		case src[i] == '[' && gk == kArray && depth < p.maxDepth:
			return p.arrayLike(i, uint32(len(p.tape)), depth+1, g, gi)
		}
	}
	return p.value(depth)
}

// copyLike copies from g the nodes of the value (and key, for a member)
// beginning at tape index lo, whose text is g.src[from:to], if src has the
// same text at i and, for a number or a literal (val), the token ends there.
// It returns the offset past the copied text, or -1.
func (p *parser) copyLike(i int, g *doc, lo, val uint32) int {
	v := &g.tape[val]
	from := g.tape[lo].start
	if g.tape[lo].kind() == kString {
		from-- // the opening quote
	}
	to := v.end
	k := v.kind()
	if k == kString {
		to++ // the closing quote
	}
	n := int(to - from)
	src := p.src
	if n < minCopy || n > len(src)-i || string(src[i:i+n]) != string(g.src[from:to]) {
		return -1
	}
	if k != kString && k != kArray && k != kObject && i+n < len(src) {
		// A number or literal must end where g's does.
		switch src[i+n] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
		default:
			return -1
		}
	}
	base := uint32(len(p.tape))
	p.tape = append(p.tape, g.tape[lo:v.next]...)
	off, dn := uint32(i)-from, base-lo
	for j := range p.tape[base:] {
		c := &p.tape[int(base)+j]
		c.start += off
		c.end += off
		c.next += dn
	}
	return i + n
}

// objectLike is object for an object whose counterpart is object node gi
// of g: member k is first tried as a copy of g's member k.
func (p *parser) objectLike(start int, idx uint32, depth int, g *doc, gi uint32) bool {
	src := p.src
	p.tape = append(p.tape, node{})
	gm, gend := gi+1, g.tape[gi].next // g's member keys, while gm < gend
	i := start + 1
	for i < len(src) && space[src[i]] {
		i++
	}
	count := uint32(0)
	if i < len(src) && src[i] == '}' {
		i++
		goto done
	}
	for {
		if i >= len(src) {
			return p.fail(i, "unexpected end of input in an object")
		}
		if src[i] != '"' {
			return p.fail(i, "expected a string key in an object")
		}
		if gm < gend {
			gv := gm + 1
			gn := &g.tape[gv]
			gm = gn.next
			if int(gn.end-g.tape[gv-1].start) >= minCopy-2 {
				if e := p.copyLike(i, g, gv-1, gv); e >= 0 {
					p.pos = e
					goto member
				}
			}
			{
				end, esc, ok := p.scanString(i + 1)
				if !ok {
					return false
				}
				kidx := uint32(len(p.tape))
				p.tape = append(p.tape, node{start: uint32(i + 1), end: uint32(end), next: kidx + 1, meta: kString | esc})
				i = end + 1
				for i < len(src) && space[src[i]] {
					i++
				}
				if i >= len(src) || src[i] != ':' {
					return p.fail(i, "expected ':' after an object key")
				}
				p.pos = i + 1
				if gn.kind() < kArray {
					if !p.value(depth) {
						return false
					}
				} else if !p.valueLike(depth, g, gv) {
					return false
				}
			}
		} else {
			end, esc, ok := p.scanString(i + 1)
			if !ok {
				return false
			}
			kidx := uint32(len(p.tape))
			p.tape = append(p.tape, node{start: uint32(i + 1), end: uint32(end), next: kidx + 1, meta: kString | esc})
			i = end + 1
			for i < len(src) && space[src[i]] {
				i++
			}
			if i >= len(src) || src[i] != ':' {
				return p.fail(i, "expected ':' after an object key")
			}
			p.pos = i + 1
			if !p.value(depth) {
				return false
			}
		}
	member:
		count++
		i = p.pos
		for i < len(src) && space[src[i]] {
			i++
		}
		if i >= len(src) {
			return p.fail(i, "unexpected end of input in an object")
		}
		if src[i] == ',' {
			i++
			for i < len(src) && space[src[i]] {
				i++
			}
			continue
		}
		if src[i] == '}' {
			i++
			break
		}
		return p.fail(i, "expected ',' or '}' in an object")
	}
done:
	p.tape[idx] = node{start: uint32(start), end: uint32(i), next: uint32(len(p.tape)), meta: kObject | count<<countShft}
	p.pos = i
	return true
}

// arrayLike is array for an array whose counterpart is array node gi of g:
// element k is first tried as a copy of g's element k.
func (p *parser) arrayLike(start int, idx uint32, depth int, g *doc, gi uint32) bool {
	src := p.src
	p.tape = append(p.tape, node{})
	ge, gend := gi+1, g.tape[gi].next // g's elements, while ge < gend
	i := start + 1
	for i < len(src) && space[src[i]] {
		i++
	}
	count := uint32(0)
	if i < len(src) && src[i] == ']' {
		i++
		goto done
	}
	for {
		p.pos = i
		if ge < gend {
			gv := ge
			gn := &g.tape[gv]
			ge = gn.next
			if gn.kind() < kArray && int(gn.end-gn.start) < minCopy-2 {
				if !p.value(depth) {
					return false
				}
			} else {
				for i < len(src) && space[src[i]] {
					i++
				}
				if e := p.copyLike(i, g, gv, gv); e >= 0 {
					p.pos = e
				} else if !p.valueLike(depth, g, gv) {
					return false
				}
			}
		} else if !p.value(depth) {
			return false
		}
		count++
		i = p.pos
		for i < len(src) && space[src[i]] {
			i++
		}
		if i >= len(src) {
			return p.fail(i, "unexpected end of input in an array")
		}
		if src[i] == ',' {
			i++
			continue
		}
		if src[i] == ']' {
			i++
			break
		}
		return p.fail(i, "expected ',' or ']' in an array")
	}
done:
	p.tape[idx] = node{start: uint32(start), end: uint32(i), next: uint32(len(p.tape)), meta: kArray | count<<countShft}
	p.pos = i
	return true
}
