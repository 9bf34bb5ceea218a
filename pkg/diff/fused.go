package diff

import (
	"encoding/binary"
	"math/bits"
)

// This file holds the two comparisons tried before the walk when there are
// no path rules. The lockstep comparison (lockstep, at the end) matches the
// candidate's text with the control's and parses only the values where
// they differ; it covers documents laid out alike. The fused comparison
// (parseCompare) covers the rest of the documents of the same shape: the
// candidate is parsed guided by the control and, as each of its values is
// parsed, compared with the control's value at the same place, so that the
// pair costs one parse and no separate walk. Keys and values whose text is
// the control's are matched against it rather than scanned.
//
// Each gives exactly the walk's result, or gives up. They run only without
// path rules (which the walk applies as it descends), and only while the
// documents keep the same shape: the same keys in the same order, arrays of
// the same lengths. Within that shape the walk compares member with member
// and element with element in document order, as these comparisons do,
// calling the same code on the values that differ; the walk's other cases
// (keys that differ or come in another order, arrays whose lengths differ, a
// difference in an object of more than smallObject members) are where they
// give up: the fused comparison diverges (it stops comparing, the parse
// goes on, and the walk compares the documents).
//
// parseCompare's tape and errors are exactly parse's: a key or value is
// matched only when its text is the control's, which parsed to that very
// node, up to a delimiter.

// noObject is valueCmp's obj for an array element.
const noObject = ^uint32(0)

// parseCompare is parse that also compares the values with g's (the
// control) through w, reset for the comparison with w.a set to g: it reports
// whether src is JSON, and p.cmp stays set when the comparison held to the
// end, the differences then recorded in w (w.nrep of them) as the walk
// would have recorded them.
func (p *parser) parseCompare(src []byte, maxDepth int, g *doc, w *walker) bool {
	p.src = src
	p.pos = 0
	p.tape = p.tape[:0]
	p.maxDepth = maxDepth
	p.err = syntaxError{}
	if len(src) > maxInput {
		return p.fail(0, "value larger than 256 MiB")
	}
	p.copies = formattedLike(src, g)
	p.cmp = w
	if !p.valueCmp(0, g, 0, pathSeg{}, noObject) {
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

// diverge stops the comparison: the documents' shapes differ.
func (p *parser) diverge() { p.cmp = nil }

// valueCmp is value for the value at depth whose counterpart is node gv of
// g, a member of g's object node obj or an element (obj is noObject), with
// path segment seg (unused at the root); it compares the value with gv.
func (p *parser) valueCmp(depth int, g *doc, gv uint32, seg pathSeg, obj uint32) bool {
	w := p.cmp
	w.work++
	if depth > 0 {
		w.path[depth-1] = seg
	}
	src := p.src
	i := p.pos
	for i < len(src) && space[src[i]] {
		i++
	}
	p.pos = i
	bi := uint32(len(p.tape))
	gn := &g.tape[gv]
	switch k := gn.kind(); {
	case k == kString:
		// The control's string, not escaped: the same node.
		if j := i + 1 + int(gn.end-gn.start); !gn.escaped() && j < len(src) && src[j] == '"' && src[i] == '"' && string(src[i+1:j]) == string(g.src[gn.start:gn.end]) {
			p.tape = append(p.tape, node{start: uint32(i + 1), end: uint32(j), next: bi + 1, meta: kString})
			p.pos = j + 1
			return true
		}
	case k < kString:
		// The control's number or literal, up to a delimiter.
		if j := i + int(gn.end-gn.start); j <= len(src) && string(src[i:j]) == string(g.src[gn.start:gn.end]) && (j == len(src) || delim[src[j]]) {
			p.tape = append(p.tape, node{start: uint32(i), end: uint32(j), next: bi + 1, meta: k})
			p.pos = j
			return true
		}
	default:
		if i < len(src) && depth < p.maxDepth && (k == kObject && src[i] == '{' || k == kArray && src[i] == '[') {
			if p.copies && gn.end-gn.start >= uint32(minCopy) {
				if e := p.copyLike(i, g, gv, gv); e >= 0 {
					p.pos = e
					return true
				}
			}
			m := w.mark()
			var ok bool
			if k == kObject {
				ok = p.objectCmp(i, bi, depth+1, g, gv)
			} else {
				ok = p.arrayCmp(i, bi, depth+1, g, gv)
			}
			if !ok || p.cmp == nil || w.nrep == m.nrep || obj == noObject {
				return ok
			}
			// Differences in a member: it counts unless its key comes
			// again (the last of duplicate keys wins); the walk gives up
			// pairing members in larger objects.
			if g.tape[obj].count() > smallObject {
				p.diverge()
			} else if w.laterDup(gv-1, gn.next, obj) {
				w.rollback(m)
			}
			return true
		}
	}
	if !p.value(depth) {
		return false
	}
	if p.cmp == nil {
		return true
	}
	// Values with identical text are equal under any rules.
	nb := &p.tape[bi]
	if nb.meta&kindMask == gn.meta&kindMask && string(src[nb.start:nb.end]) == string(g.src[gn.start:gn.end]) {
		return true
	}
	if obj != noObject {
		if g.tape[obj].count() > smallObject {
			p.diverge()
			return true
		}
		if w.laterDup(gv-1, gn.next, obj) {
			return true
		}
	}
	w.b.tape = p.tape
	w.unequal(gv, bi, depth, 0, 0, nil)
	return true
}

// delim marks the bytes that may follow a number or a literal.
var delim = [256]bool{',': true, '}': true, ']': true, ' ': true, '\t': true, '\n': true, '\r': true}

// objectCmp is object for an object whose counterpart is object node gi of
// g, comparing member k with g's member k while p.cmp is set.
func (p *parser) objectCmp(start int, idx uint32, depth int, g *doc, gi uint32) bool {
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
		if p.cmp != nil && gm >= gend {
			p.diverge() // more members than g's
		}
		if p.cmp == nil {
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
		} else {
			gk := gm
			gv := gk + 1
			gm = g.tape[gv].next
			kn := &g.tape[gk]
			kidx := uint32(len(p.tape))
			if j := i + 1 + int(kn.end-kn.start); !kn.escaped() && j < len(src) && src[j] == '"' && string(src[i+1:j]) == string(g.src[kn.start:kn.end]) {
				// The control's key, not escaped: the same node.
				p.tape = append(p.tape, node{start: uint32(i + 1), end: uint32(j), next: kidx + 1, meta: kString})
				i = j + 1
			} else {
				end, esc, ok := p.scanString(i + 1)
				if !ok {
					return false
				}
				p.tape = append(p.tape, node{start: uint32(i + 1), end: uint32(end), next: kidx + 1, meta: kString | esc})
				if string(src[i+1:end]) != string(g.src[kn.start:kn.end]) {
					p.diverge() // another key
				}
				i = end + 1
			}
			for i < len(src) && space[src[i]] {
				i++
			}
			if i >= len(src) || src[i] != ':' {
				return p.fail(i, "expected ':' after an object key")
			}
			p.pos = i + 1
			if p.cmp == nil {
				if !p.value(depth) {
					return false
				}
			} else if !p.valueCmp(depth, g, gv, pathSeg{node: gk, index: -1}, gi) {
				return false
			}
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
	if p.cmp != nil && gm < gend {
		p.diverge() // fewer members than g's
	}
	p.tape[idx] = node{start: uint32(start), end: uint32(i), next: uint32(len(p.tape)), meta: kObject | count<<countShft}
	p.pos = i
	return true
}

// arrayCmp is array for an array whose counterpart is array node gi of g,
// comparing element k with g's element k while p.cmp is set.
func (p *parser) arrayCmp(start int, idx uint32, depth int, g *doc, gi uint32) bool {
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
		if p.cmp != nil && ge >= gend {
			p.diverge() // more elements than g's
		}
		if p.cmp == nil {
			if !p.value(depth) {
				return false
			}
		} else {
			gv := ge
			ge = g.tape[gv].next
			if !p.valueCmp(depth, g, gv, pathSeg{index: int32(count)}, noObject) {
				return false
			}
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
	if p.cmp != nil && ge < gend {
		p.diverge() // fewer elements than g's
	}
	p.tape[idx] = node{start: uint32(start), end: uint32(i), next: uint32(len(p.tape)), meta: kArray | count<<countShft}
	p.pos = i
	return true
}

// lframe is a container the lockstep comparison is inside: node is the
// control's container, cur its member key (object) or element (array) at or
// after the position compared, k the ordinal of cur, and dupKey (+1) the
// member key whose duplicate check dup holds.
type lframe struct {
	node, cur, k, dupKey uint32
	dup                  bool
}

// lockstep compares src (the candidate) with g (the control) when src is
// g's text with some of its scalar values, or values in place of them,
// replaced: it matches the text of both, byte for byte, and where they
// differ parses the candidate's value there and compares it with the
// control's, as the walk would, recording the differences in w (reset for
// the comparison, with w.a set to g). Anywhere else (whitespace, keys,
// brackets, counts), or when the walk would not pair the members (see
// fused.go), or when src is not JSON, it gives up and reports false; the
// other paths then parse and compare src.
//
// Text matched to g's, in the same place in the structure, parses as g's
// did, and each replacement is parsed at the depth of the value it
// replaces, ending where the rest of g's text takes over; so src is JSON
// when lockstep reports true.
func (p *parser) lockstep(src []byte, maxDepth int, g *doc, w *walker) bool {
	if len(src) > maxInput || g.tape[0].kind() < kArray {
		return false
	}
	p.src = src
	p.maxDepth = maxDepth
	p.err = syntaxError{}
	fr := append(w.lframes[:0], lframe{node: 0, cur: 1})
	w.lframes = fr // keep what it grew to
	gs, ta := g.src, g.tape
	ca, cb := 0, 0 // offsets in gs and src, matched up to there
	for {
		n := mismatch(gs[ca:], src[cb:])
		ca += n
		cb += n
		if ca == len(gs) || cb == len(src) {
			return ca == len(gs) && cb == len(src)
		}
		// The control's value where the texts differ.
		var v uint32
		for {
			w.work++
			f := &fr[len(fr)-1]
			c := &ta[f.node]
			if ca >= int(c.end) {
				// Past this container: back in its parent.
				if len(fr) == 1 {
					return false
				}
				fr = fr[:len(fr)-1]
				f = &fr[len(fr)-1]
				f.cur = c.next
				f.k++
				continue
			}
			obj := uint32(0)
			if c.kind() == kObject {
				obj = 1
			}
			for f.cur < c.next {
				vn := &ta[f.cur+obj]
				if vn.kind() >= kArray && ca < int(vn.end) || vn.kind() < kArray && ca <= int(vn.end) {
					break
				}
				f.cur = vn.next
				f.k++
			}
			if f.cur >= c.next {
				return false // in the container's closing bracket
			}
			v = f.cur + obj
			vn := &ta[v]
			if lo := int(rawStart(vn)); ca < lo {
				return false // between values, or in a key
			} else if vn.kind() < kArray || ca == lo {
				break
			}
			fr = append(fr, lframe{node: v, cur: v + 1})
			w.lframes = fr
		}
		// Would the walk pair the members up to it?
		depth := len(fr)
		skip := false
		for j := range fr {
			f := &fr[j]
			if ta[f.node].kind() == kArray {
				w.path[j] = pathSeg{index: int32(f.k)}
				continue
			}
			if ta[f.node].count() > smallObject {
				return false
			}
			if f.dupKey != f.cur+1 {
				f.dupKey, f.dup = f.cur+1, w.laterDup(f.cur, ta[f.cur+1].next, f.node)
			}
			skip = skip || f.dup
			w.path[j] = pathSeg{node: f.cur, index: -1}
		}
		vn := &ta[v]
		lo := int(rawStart(vn))
		p.tape = p.tape[:0]
		p.pos = lo + cb - ca
		if !p.value(depth) {
			return false
		}
		hi := int(vn.end)
		if vn.kind() == kString {
			hi++
		}
		nb := &p.tape[0]
		if !skip && (nb.meta&kindMask != vn.meta&kindMask || string(src[nb.start:nb.end]) != string(gs[vn.start:vn.end])) {
			w.b.tape = p.tape
			w.unequal(v, 0, depth, 0, 0, nil)
		}
		f := &fr[len(fr)-1]
		f.cur = vn.next
		f.k++
		ca, cb = hi, p.pos
	}
}

// mismatch returns the length of the common prefix of a and b.
func mismatch(a, b []byte) int {
	n := min(len(a), len(b))
	a, b = a[:n], b[:n]
	i := 0
	// Long runs of identical text are compared in blocks (memequal), the
	// first that differs word by word.
	for n-i >= 32 && string(a[i:i+32]) == string(b[i:i+32]) {
		i += 32
	}
	for ; n-i >= 8; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:i+8]) ^ binary.LittleEndian.Uint64(b[i:i+8]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}
