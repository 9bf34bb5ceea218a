package diff

import (
	"bytes"
	"strconv"
)

// pathSeg is one step of the path from the root to the place being compared:
// an array index (index >= 0), or an object member whose key is tape node
// `node` of side `side` (0 control, 1 candidate).
type pathSeg struct {
	node  uint32
	index int32
	side  uint8
}

// kindCode is a [DiffKind] as a small number. The codes are in the order of
// the kinds' names, so ordering by code orders by name.
type kindCode uint8

const (
	dChanged kindCode = iota
	dExtra
	dMissing
	dTypeChanged
)

var kindNames = [...]DiffKind{dChanged: Changed, dExtra: Extra, dMissing: Missing, dTypeChanged: TypeChanged}

// walker compares two parsed documents. It lives in a pooled scratch; all of
// its slices are reused, so comparing equal documents allocates nothing.
type walker struct {
	a, b    doc
	prog    *program
	t       *trie // nil when the rules have no path rules
	record  bool  // record differences (else stop at the first)
	explain bool  // list the differences (Explain), not only their patterns

	path   []pathSeg // by depth
	states []int32   // stack of state sets
	slots  []actions // merged actions, by depth
	u32    []uint32  // stack of temporary regions
	kents  []kent    // stack of object member entries
	karena []byte    // decoded keys of kents
	bufA   []byte    // decoded strings
	bufB   []byte
	bufK   []byte // decoded key for stepping
	pbuf   []byte // pattern rendering (explain)
	hashes []hent

	// Control nodes [eqLo, eqHi) are, token for token, the candidate's
	// nodes [eqLo+eqD, eqHi+eqD) (modulo 2^32); see [walker.scan].
	eqLo, eqHi, eqD uint32

	work, workLimit int
	nrep            int // differences reported
	lframes         []lframe

	// The pattern set: the patterns of the differences, interned in pt
	// (which outlives the walk), as (node, kind) records in precs. pcSeg
	// and pcID cache the nodes of the current path's prefixes, so that a
	// difference costs a few comparisons and no rendering.
	pt    patTree
	pcSeg []pathSeg
	pcID  []int32
	pcN   int

	// Output.
	maxDiffs, maxVal int
	out              []byte    // text of the listed differences (explain)
	drecs            []diffRec // listed differences (explain)
	precs            []patRec  // distinct (pattern, kind)
	truncated        bool
	patsFull         bool
}

// span is a range of walker.out (or patTree.keys).
type span struct{ lo, hi uint32 }

type diffRec struct {
	kind                 kindCode
	path, pat, ctl, cand span
}

// patRec is one (pattern, kind) of the set.
type patRec struct {
	node int32 // in walker.pt.nodes
	kind kindCode
}

// maxPatterns bounds the distinct (pattern, kind) pairs a result collects.
const maxPatterns = 256

// reset prepares w for a comparison of a and b under prog.
func (w *walker) reset(prog *program, maxDepth int, explain bool) {
	w.prog = prog
	w.t = prog.trie
	w.record = true
	w.explain = explain
	if cap(w.path) < maxDepth+2 {
		w.path = make([]pathSeg, maxDepth+2)
		w.slots = make([]actions, maxDepth+2)
		w.pcSeg = make([]pathSeg, maxDepth+2)
		w.pcID = make([]int32, maxDepth+2)
	}
	w.path = w.path[:maxDepth+2]
	w.slots = w.slots[:maxDepth+2]
	w.states = w.states[:0]
	w.u32 = w.u32[:0]
	w.kents = w.kents[:0]
	w.karena = w.karena[:0]
	w.eqLo, w.eqHi, w.eqD = 0, 0, 0
	w.work = 0
	w.nrep = 0
	w.workLimit = 32*(len(w.a.tape)+len(w.b.tape)) + 100000
	w.pt.begin(w.precs)
	w.pcN = 0
	w.out = w.out[:0]
	w.drecs = w.drecs[:0]
	w.precs = w.precs[:0]
	w.truncated = false
	w.patsFull = false
}

// root compares the two root values.
func (w *walker) root() bool {
	var lo, hi int32
	var act *actions
	if w.t != nil {
		w.states = append(w.states, w.prog.root...)
		hi = int32(len(w.states))
		act = w.prog.rootAct
		if act != nil && act.ignore {
			return true
		}
	}
	return w.compare(0, 0, 0, lo, hi, act)
}

// compare compares control node ai with candidate node bi at the given depth
// (the path to them is w.path[:depth]); lo and hi delimit their state set in
// w.states and act is the rules that apply there (nil for none).
func (w *walker) compare(ai, bi uint32, depth int, lo, hi int32, act *actions) bool {
	w.work++
	if !w.record && w.work > w.workLimit {
		return false
	}
	na, nb := &w.a.tape[ai], &w.b.tape[bi]
	// Identical text is an equal value, under any rules.
	if na.meta&kindMask == nb.meta&kindMask && string(w.a.src[na.start:na.end]) == string(w.b.src[nb.start:nb.end]) {
		return true
	}
	return w.unequal(ai, bi, depth, lo, hi, act)
}

// differs is compare for values whose text is known to differ (or whose
// kinds do).
func (w *walker) differs(ai, bi uint32, depth int, lo, hi int32, act *actions) bool {
	w.work++
	if !w.record && w.work > w.workLimit {
		return false
	}
	return w.unequal(ai, bi, depth, lo, hi, act)
}

// unequal is compare after the texts were found to differ.
func (w *walker) unequal(ai, bi uint32, depth int, lo, hi int32, act *actions) bool {
	na, nb := &w.a.tape[ai], &w.b.tape[bi]
	k := na.kind()
	if k == nb.kind() {
		switch k {
		case kNull, kFalse, kTrue:
			return true
		case kNumber:
			if act == nil {
				if numEqual(w.a.src[na.start:na.end], w.b.src[nb.start:nb.end]) {
					return true
				}
				return w.report(dChanged, int64(ai), int64(bi), depth)
			}
		case kString:
			if act == nil {
				if (na.escaped() || nb.escaped()) && w.strEqual(ai, bi) {
					return true
				}
				return w.report(dChanged, int64(ai), int64(bi), depth)
			}
		case kArray, kObject:
			// Identical tokens are equal values too: compare them flat
			// first, unless an enclosing scan already did (and stopped
			// inside this value).
			if ai < w.eqHi && ai >= w.eqLo && bi-ai == w.eqD {
				if na.next <= w.eqHi {
					return true
				}
			} else if (spaced(&w.a, ai) || spaced(&w.b, bi)) && w.scan(ai, bi) == na.next {
				return true
			}
			if k == kArray {
				return w.array(ai, bi, depth, lo, hi, act)
			}
			return w.object(ai, bi, depth, lo, hi)
		}
	}
	return w.scalar(ai, bi, depth, act)
}

// strContent returns the decoded content of string node i of d, decoding
// into buf when it has escapes.
func (w *walker) strContent(d *doc, i uint32, buf *[]byte) []byte {
	n := &d.tape[i]
	s := d.src[n.start:n.end]
	if !n.escaped() {
		return s
	}
	*buf = appendUnescaped((*buf)[:0], s)
	return *buf
}

func (w *walker) strEqual(ai, bi uint32) bool {
	return bytes.Equal(w.strContent(&w.a, ai, &w.bufA), w.strContent(&w.b, bi, &w.bufB))
}

// scalar compares two values that are not both containers of the same kind,
// applying the rules in act, and reports a difference if they differ.
func (w *walker) scalar(ai, bi uint32, depth int, act *actions) bool {
	na, nb := &w.a.tape[ai], &w.b.tape[bi]
	ka, kb := na.kind(), nb.kind()
	if act != nil {
		if act.ts != nil && (ka == kNumber || ka == kString) && (kb == kNumber || kb == kString) {
			ta, okA := w.timeOf(&w.a, ai, act.ts, &w.bufA)
			tb, okB := w.timeOf(&w.b, bi, act.ts, &w.bufB)
			if okA && okB {
				if ta.closeTo(tb, act.ts.tol) {
					return true
				}
				return w.report(dChanged, int64(ai), int64(bi), depth)
			}
		}
		if (ka == kNumber && kb == kNumber) || (act.numStr && (ka == kNumber && kb == kString || ka == kString && kb == kNumber)) {
			x, okA := w.numText(&w.a, ai, &w.bufA)
			y, okB := w.numText(&w.b, bi, &w.bufB)
			if okA && okB {
				if numEqual(x, y) {
					return true
				}
				if r := act.num; r != nil {
					fx, ok1 := parseFloat(x)
					fy, ok2 := parseFloat(y)
					if ok1 && ok2 && within(fx, fy, r.abs, r.rel) {
						return true
					}
				}
				return w.report(dChanged, int64(ai), int64(bi), depth)
			}
		}
		if ka == kString && kb == kString {
			x := w.strContent(&w.a, ai, &w.bufA)
			y := w.strContent(&w.b, bi, &w.bufB)
			if r := act.str; r != nil {
				if r.trim {
					x, y = bytes.TrimSpace(x), bytes.TrimSpace(y)
				}
				if r.fold {
					if bytes.EqualFold(x, y) {
						return true
					}
					return w.report(dChanged, int64(ai), int64(bi), depth)
				}
			}
			if bytes.Equal(x, y) {
				return true
			}
			return w.report(dChanged, int64(ai), int64(bi), depth)
		}
		if ka == kNumber && kb == kNumber {
			return w.report(dChanged, int64(ai), int64(bi), depth)
		}
	}
	if kindType(ka) != kindType(kb) {
		return w.report(dTypeChanged, int64(ai), int64(bi), depth)
	}
	// Only booleans and the exact comparisons left by compare reach here.
	switch ka {
	case kNumber:
		if numEqual(w.a.src[na.start:na.end], w.b.src[nb.start:nb.end]) {
			return true
		}
	case kString:
		if w.strEqual(ai, bi) {
			return true
		}
	case kNull:
		return true
	}
	return w.report(dChanged, int64(ai), int64(bi), depth)
}

// numText returns the number literal of a number node, or of a string node
// whose content is a number literal.
func (w *walker) numText(d *doc, i uint32, buf *[]byte) ([]byte, bool) {
	n := &d.tape[i]
	switch n.kind() {
	case kNumber:
		return d.src[n.start:n.end], true
	case kString:
		s := w.strContent(d, i, buf)
		return s, isNumber(s)
	}
	return nil, false
}

// keyOf returns the decoded key of key node k of d, decoding into w.bufK.
func (w *walker) keyOf(d *doc, k uint32) []byte {
	return w.strContent(d, k, &w.bufK)
}

// stepKey computes the state set after an object member with the given key.
func (w *walker) stepKey(lo, hi int32, key []byte) (int32, int32) {
	nlo := int32(len(w.states))
	for _, s := range w.states[lo:hi] {
		n := &w.t.nodes[s]
		if n.loop {
			w.addClosure(nlo, s)
		}
		for _, e := range n.lits {
			if e.key == string(key) {
				w.addClosure(nlo, e.child)
			}
		}
		if n.anyKey >= 0 {
			w.addClosure(nlo, n.anyKey)
		}
	}
	return nlo, int32(len(w.states))
}

// stepIndex computes the state set after an array element.
func (w *walker) stepIndex(lo, hi int32) (int32, int32) {
	nlo := int32(len(w.states))
	for _, s := range w.states[lo:hi] {
		n := &w.t.nodes[s]
		if n.loop {
			w.addClosure(nlo, s)
		}
		if n.anyIdx >= 0 {
			w.addClosure(nlo, n.anyIdx)
		}
	}
	return nlo, int32(len(w.states))
}

func (w *walker) addClosure(nlo int32, n int32) {
next:
	for n >= 0 {
		for _, s := range w.states[nlo:] {
			if s == n {
				n = w.t.nodes[n].glob
				continue next
			}
		}
		w.states = append(w.states, n)
		n = w.t.nodes[n].glob
	}
}

// actsAt returns the actions of a state set, merging into the depth's slot.
func (w *walker) actsAt(lo, hi int32, depth int) *actions {
	if lo == hi {
		return nil
	}
	return w.t.merged(w.states[lo:hi], &w.slots[depth])
}

// memberState steps into the member with key node k (of d) of an object at
// depth, and returns the new state set and actions.
func (w *walker) memberState(d *doc, k uint32, depth int, lo, hi int32) (int32, int32, *actions) {
	if lo == hi {
		return lo, lo, nil
	}
	nlo, nhi := w.stepKey(lo, hi, w.keyOf(d, k))
	return nlo, nhi, w.actsAt(nlo, nhi, depth+1)
}

// logMark is a point the difference log can be rolled back to.
type logMark struct {
	out, drecs, precs   int
	nrep                int
	truncated, patsFull bool
}

func (w *walker) mark() logMark {
	return logMark{len(w.out), len(w.drecs), len(w.precs), w.nrep, w.truncated, w.patsFull}
}

func (w *walker) rollback(m logMark) {
	for _, p := range w.precs[m.precs:] {
		w.pt.nodes[p.node].kinds &^= 1 << p.kind
	}
	w.out = w.out[:m.out]
	w.drecs = w.drecs[:m.drecs]
	w.precs = w.precs[:m.precs]
	w.nrep = m.nrep
	w.truncated = m.truncated
	w.patsFull = m.patsFull
}

// known reports whether the subtrees of control node ai (ending at end) and
// candidate node bi are known to be identical token for token (see
// [walker.scan]), hence equal under any rules.
func (w *walker) known(ai, bi, end uint32) bool {
	return end <= w.eqHi && ai >= w.eqLo && bi-ai == w.eqD
}

// scan compares the subtrees of control node ai and candidate node bi
// token by token: the same kinds, member and element counts, keys and
// literal text, in the same order. Identical tokens are equal values under
// any rules (only the whitespace between them may differ), so scan settles
// the common case of reformatted documents in one flat pass; a subtree whose
// text is identical is skipped whole. It returns the control index of the
// first token that differs, or the end of ai's subtree when none does, and
// records what it found in eqLo, eqHi and eqD.
func (w *walker) scan(ai, bi uint32) uint32 {
	ta, tb := w.a.tape, w.b.tape
	srcA, srcB := w.a.src, w.b.src
	end := ta[ai].next
	i, j := ai, bi
loop:
	for i < end {
		x, y := &ta[i], &tb[j]
		if x.meta != y.meta {
			break
		}
		switch x.meta & kindMask {
		case kNumber, kString:
			if string(srcA[x.start:x.end]) != string(srcB[y.start:y.end]) {
				break loop
			}
		case kArray, kObject:
			if string(srcA[x.start:x.end]) == string(srcB[y.start:y.end]) {
				i, j = x.next, y.next
				continue
			}
			// Text that differs: compare the tokens inside.
		}
		i++
		j++
	}
	w.work += int(i - ai)
	w.eqLo, w.eqHi, w.eqD = ai, i, bi-ai
	return i
}

// spaced reports whether container node i of d has whitespace between its
// first tokens: before its first member or element, around an object's
// first colon, or after an array's first comma. Formatted JSON does, and is
// what scan is for; in compact documents, values whose text differs
// usually differ, and the walk finds out sooner than a scan would.
func spaced(d *doc, i uint32) bool {
	n := &d.tape[i]
	if n.count() == 0 {
		return false
	}
	c := &d.tape[i+1]
	if rawStart(c) != n.start+1 {
		return true
	}
	if n.kind() == kObject {
		return rawStart(&d.tape[i+2]) != c.end+2 // c.end is the key's closing quote
	}
	if n.count() == 1 {
		return false
	}
	end := c.end
	if c.kind() == kString {
		end++
	}
	return rawStart(&d.tape[c.next]) != end+1
}

// rawStart returns the offset of the first byte of node n's text.
func rawStart(n *node) uint32 {
	if n.kind() == kString {
		return n.start - 1
	}
	return n.start
}

// object compares two objects. While both list the same keys in the same
// order, members are compared pairwise; at the first difference in the keys,
// what was recorded is rolled back and the objects are compared by key.
// Duplicate keys: the last occurrence wins, as in encoding/json.
func (w *walker) object(ai, bi uint32, depth int, lo, hi int32) bool {
	ta, tb := w.a.tape, w.b.tape
	srcA, srcB := w.a.src, w.b.src
	n := ta[ai].meta >> countShft
	if n != tb[bi].meta>>countShft {
		return w.objectByKey(ai, bi, depth, lo, hi)
	}
	start := w.mark()
	eq := true
	ka, kb := ai+1, bi+1
	for k := uint32(0); k < n; k++ {
		va, vb := ka+1, kb+1
		na, nb := &ta[va], &tb[vb]
		nextA, nextB := na.next, nb.next
		x, y := &ta[ka], &tb[kb]
		// Members whose text is identical, key to value, are equal under
		// any rules; in documents that differ in a few places, most are.
		if sameText(srcA, srcB, x.start-1, y.start-1, na, nb) {
			ka, kb = nextA, nextB
			continue
		}
		// Members known to be identical (see scan) are equal.
		if w.known(ka, kb, nextA) {
			ka, kb = nextA, nextB
			continue
		}
		if string(srcA[x.start:x.end]) != string(srcB[y.start:y.end]) {
			w.rollback(start)
			return w.objectByKey(ai, bi, depth, lo, hi)
		}
		// Values with identical text are equal under any rules; most are.
		if na.meta&kindMask == nb.meta&kindMask && string(srcA[na.start:na.end]) == string(srcB[nb.start:nb.end]) {
			ka, kb = nextA, nextB
			continue
		}
		// When the key appears again later, this member does not count:
		// the last of duplicate keys wins. (Beyond smallObject members,
		// checking each would be quadratic; a difference switches to
		// matching by key instead.)
		if n <= smallObject && w.laterDup(ka, nextA, ai) {
			ka, kb = nextA, nextB
			continue
		}
		if lo == hi {
			w.path[depth] = pathSeg{node: ka, index: -1}
			if !w.differs(va, vb, depth+1, lo, hi, nil) {
				if n > smallObject {
					w.rollback(start)
					return w.objectByKey(ai, bi, depth, lo, hi)
				}
				eq = false
				if !w.record {
					return false
				}
			}
		} else {
			nlo, nhi := w.stepKey(lo, hi, w.keyOf(&w.a, ka))
			act := w.actsAt(nlo, nhi, depth+1)
			if act == nil || !act.ignore {
				w.path[depth] = pathSeg{node: ka, index: -1}
				if !w.differs(va, vb, depth+1, nlo, nhi, act) {
					if n > smallObject {
						w.states = w.states[:nlo]
						w.rollback(start)
						return w.objectByKey(ai, bi, depth, lo, hi)
					}
					eq = false
				}
			}
			w.states = w.states[:nlo]
			if !eq && !w.record {
				return false
			}
		}
		ka, kb = nextA, nextB
	}
	return eq
}

// sameText reports whether two members (or elements), whose text begins at
// offsets fa (control) and fb (candidate) and whose values are na and nb,
// have identical text, from the key to the value's end: then they are equal
// members under any rules. One comparison settles the key and the value.
func sameText(srcA, srcB []byte, fa, fb uint32, na, nb *node) bool {
	// Both values end at the same offset relative to fa and fb (a number
	// or literal that is a prefix of the other's ends elsewhere), and the
	// text up to the control's last byte (a string's closing quote) is
	// identical.
	last := na.end
	if na.meta&kindMask == kString {
		last++
	}
	return nb.end-fb == na.end-fa && string(srcA[fa:last]) == string(srcB[fb:fb+(last-fa)])
}

// laterDup reports whether a key equal to control key node k appears after
// it in its object (whose members continue at tape index from).
func (w *walker) laterDup(k, from, obj uint32) bool {
	d := &w.a
	end := d.tape[obj].next
	if from >= end {
		return false
	}
	kn := &d.tape[k]
	if !kn.escaped() {
		// The common case: compare the raw text, decoding only escaped keys.
		key := d.src[kn.start:kn.end]
		n := kn.end - kn.start
		tape := d.tape[:end]
		for m := from; m < end; m = tape[m+1].next {
			mn := &tape[m]
			if mn.escaped() {
				if bytes.Equal(w.keyOf(d, m), key) {
					return true
				}
			} else if mn.end-mn.start == n && string(d.src[mn.start:mn.end]) == string(key) {
				return true
			}
		}
		return false
	}
	start := len(w.karena)
	w.karena = append(w.karena, w.keyOf(d, k)...)
	key := w.karena[start:]
	dup := false
	for m := from; m < end; m = d.tape[m+1].next {
		if bytes.Equal(w.keyOf(d, m), key) {
			dup = true
			break
		}
	}
	w.karena = w.karena[:start]
	return dup
}

// difference reporting

// report records a difference of kind at depth between control node ai and
// candidate node bi (-1 for absent), and returns false. Every difference
// adds its (pattern, kind) to the set; when explaining, the first maxDiffs
// are also listed, with their text in w.out. [walker.result] turns the
// records into a [Result].
func (w *walker) report(kind kindCode, ai, bi int64, depth int) bool {
	if !w.record {
		return false
	}
	w.nrep++
	w.addPattern(kind, depth)
	if w.explain {
		w.list(kind, ai, bi, depth)
	}
	return false
}

// addPattern adds the pattern of w.path[:depth] with kind to the set.
func (w *walker) addPattern(kind kindCode, depth int) {
	full := len(w.precs) >= maxPatterns
	id := w.patternOf(depth, !full)
	if id < 0 {
		w.patsFull = true // a new pattern, and no room for it
		return
	}
	n := &w.pt.nodes[id]
	if n.kinds&(1<<kind) != 0 {
		return
	}
	if full {
		w.patsFull = true
		return
	}
	n.kinds |= 1 << kind
	w.precs = append(w.precs, patRec{node: id, kind: kind})
}

// patternOf returns the interned pattern of w.path[:depth], interning it
// when create is set, else returning -1 when it is not interned. The
// patterns of the path's prefixes are cached in pcSeg and pcID: the entry
// at k holds for as long as the path up to k is the same pattern.
func (w *walker) patternOf(depth int, create bool) int32 {
	id, k := int32(0), 0
	path, pcSeg, pcID := w.path[:depth], w.pcSeg[:depth], w.pcID[:depth]
	for n := min(w.pcN, depth); k < n && sameSeg(&path[k], &pcSeg[k]); k++ {
		id = pcID[k]
	}
	if k == depth {
		return id
	}
	for ; k < depth; k++ {
		s := &path[k]
		var key []byte
		if s.index < 0 {
			d := &w.a
			if s.side == 1 {
				d = &w.b
			}
			if n := &d.tape[s.node]; n.escaped() {
				key = w.keyOf(d, s.node)
			} else {
				key = d.src[n.start:n.end]
			}
		}
		if id = w.pt.intern(id, s.index >= 0, key, create); id < 0 {
			w.pcN = k
			return -1
		}
		pcSeg[k], pcID[k] = *s, id
	}
	w.pcN = depth
	return id
}

// sameSeg reports whether two path segments are the same pattern segment
// for sure: two indices, or the same key node.
func sameSeg(x, y *pathSeg) bool {
	if x.index >= 0 || y.index >= 0 {
		return x.index >= 0 && y.index >= 0
	}
	return x.node == y.node && x.side == y.side
}

// list records a difference in the list, with its concrete path, pattern
// and values as text, unless the list is full.
func (w *walker) list(kind kindCode, ai, bi int64, depth int) {
	if len(w.drecs) >= w.maxDiffs {
		w.truncated = true
		return
	}
	lo := uint32(len(w.out))
	w.out, w.pbuf = w.appendPaths(w.out, w.pbuf[:0], depth)
	r := diffRec{kind: kind, path: span{lo, uint32(len(w.out))}}
	r.pat = w.emit(w.pbuf)
	if ai >= 0 {
		lo := uint32(len(w.out))
		w.out = w.appendValue(w.out, &w.a, uint32(ai))
		r.ctl = span{lo, uint32(len(w.out))}
	}
	if bi >= 0 {
		lo := uint32(len(w.out))
		w.out = w.appendValue(w.out, &w.b, uint32(bi))
		r.cand = span{lo, uint32(len(w.out))}
	}
	w.drecs = append(w.drecs, r)
}

func (w *walker) emit(b []byte) span {
	lo := uint32(len(w.out))
	w.out = append(w.out, b...)
	return span{lo, uint32(len(w.out))}
}

// result fills the patterns, the signature and, when explaining, the
// differences of res from the records. The result points to the interned
// pattern set, so a set seen before by this scratch costs no allocation; the
// explanation adds one string holding all its text and the Diffs slice.
func (w *walker) result(res *Result) {
	set := w.pt.set(w.precs)
	res.patterns = set.patterns
	res.Signature = set.sig
	res.PatternsTruncated = w.patsFull
	if !w.explain {
		return
	}
	text := string(w.out)
	at := func(s span) string { return text[s.lo:s.hi] }
	res.Diffs = make([]Difference, len(w.drecs))
	for i, r := range w.drecs {
		res.Diffs[i] = Difference{Path: at(r.path), Pattern: at(r.pat), Kind: kindNames[r.kind], Control: at(r.ctl), Candidate: at(r.cand)}
	}
	res.Truncated = w.truncated
}

// appendPaths renders w.path[:depth] concretely ("items[3].price") to path
// and as a pattern ("items[*].price") to pat. The root is "$".
func (w *walker) appendPaths(path, pat []byte, depth int) ([]byte, []byte) {
	if depth == 0 {
		return append(path, '$'), append(pat, '$')
	}
	for k, s := range w.path[:depth] {
		if s.index >= 0 {
			pat = append(pat, "[*]"...)
			path = append(path, '[')
			path = strconv.AppendInt(path, int64(s.index), 10)
			path = append(path, ']')
			continue
		}
		d := &w.a
		if s.side == 1 {
			d = &w.b
		}
		key := w.keyOf(d, s.node)
		pat = appendKeySeg(pat, key, k == 0)
		path = appendKeySeg(path, key, k == 0)
	}
	return path, pat
}

// appendValue appends node i of d as compact JSON, at most maxVal bytes
// (then cut at a character boundary and ended with "…").
func (w *walker) appendValue(dst []byte, d *doc, i uint32) []byte {
	raw := d.raw(i)
	base := len(dst)
	inStr, esc := false, false
	for k := 0; k < len(raw); k++ {
		c := raw[k]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		} else {
			if space[c] {
				continue
			}
			if c == '"' {
				inStr = true
			}
		}
		if len(dst)-base >= w.maxVal {
			// Back up to a character boundary.
			for len(dst) > base && dst[len(dst)-1]&0xC0 == 0x80 {
				dst = dst[:len(dst)-1]
			}
			if len(dst) > base && dst[len(dst)-1] >= 0xC0 {
				dst = dst[:len(dst)-1]
			}
			return append(dst, "…"...)
		}
		dst = append(dst, c)
	}
	return dst
}

// FNV-1a, 64-bit.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv64s(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnv64(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}
