package diff

import (
	"bytes"
	"hash/maphash"
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

// walker compares two parsed documents. It lives in a pooled scratch; all of
// its slices are reused, so comparing equal documents allocates nothing.
type walker struct {
	a, b   doc
	prog   *program
	t      *trie // nil when the rules have no path rules
	record bool  // record differences (else stop at the first)

	path   []pathSeg // by depth
	states []int32   // stack of state sets
	slots  []actions // merged actions, by depth
	u32    []uint32  // stack of temporary regions
	kents  []kent    // stack of object member entries
	karena []byte    // decoded keys of kents
	bufA   []byte    // decoded strings
	bufB   []byte
	bufK   []byte // decoded key for stepping
	pbuf   []byte // path and pattern rendering
	hashes []hent

	work, workLimit int

	// Output.
	maxDiffs, maxVal int
	out              []byte    // text of the recorded differences
	drecs            []diffRec // recorded differences
	precs            []patRec  // distinct (pattern, kind)
	ndiffs           int
	truncated        bool
	patsFull         bool
}

// span is a range of walker.out.
type span struct{ lo, hi uint32 }

type diffRec struct {
	kind                 DiffKind
	path, pat, ctl, cand span
}

type patRec struct {
	kind DiffKind
	pat  span
	h    uint64
}

// maxPatterns bounds the distinct (pattern, kind) pairs a result collects.
const maxPatterns = 256

// reset prepares w for a comparison of a and b under prog.
func (w *walker) reset(prog *program, maxDepth int) {
	w.prog = prog
	w.t = prog.trie
	w.record = true
	if cap(w.path) < maxDepth+2 {
		w.path = make([]pathSeg, maxDepth+2)
		w.slots = make([]actions, maxDepth+2)
	}
	w.path = w.path[:maxDepth+2]
	w.slots = w.slots[:maxDepth+2]
	w.states = w.states[:0]
	w.u32 = w.u32[:0]
	w.kents = w.kents[:0]
	w.karena = w.karena[:0]
	w.work = 0
	w.workLimit = 32*(len(w.a.tape)+len(w.b.tape)) + 100000
	w.out = w.out[:0]
	w.drecs = w.drecs[:0]
	w.precs = w.precs[:0]
	w.ndiffs = 0
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
	k := na.kind()
	if k == nb.kind() {
		switch k {
		case kNull, kFalse, kTrue:
			return true
		case kNumber:
			x, y := w.a.src[na.start:na.end], w.b.src[nb.start:nb.end]
			if string(x) == string(y) {
				return true
			}
			if act == nil {
				if numEqual(x, y) {
					return true
				}
				return w.report(Changed, int64(ai), int64(bi), depth)
			}
		case kString:
			x, y := w.a.src[na.start:na.end], w.b.src[nb.start:nb.end]
			if string(x) == string(y) {
				return true
			}
			if act == nil {
				if (na.escaped() || nb.escaped()) && w.strEqual(ai, bi) {
					return true
				}
				return w.report(Changed, int64(ai), int64(bi), depth)
			}
		case kArray, kObject:
			// Identical text is an equal value, under any rules.
			if string(w.a.src[na.start:na.end]) == string(w.b.src[nb.start:nb.end]) {
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
				return w.report(Changed, int64(ai), int64(bi), depth)
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
				return w.report(Changed, int64(ai), int64(bi), depth)
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
					return w.report(Changed, int64(ai), int64(bi), depth)
				}
			}
			if bytes.Equal(x, y) {
				return true
			}
			return w.report(Changed, int64(ai), int64(bi), depth)
		}
		if ka == kNumber && kb == kNumber {
			return w.report(Changed, int64(ai), int64(bi), depth)
		}
	}
	if kindType(ka) != kindType(kb) {
		return w.report(TypeChanged, int64(ai), int64(bi), depth)
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
	return w.report(Changed, int64(ai), int64(bi), depth)
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
	out, drecs, precs, ndiffs int
	truncated, patsFull       bool
}

func (w *walker) mark() logMark {
	return logMark{len(w.out), len(w.drecs), len(w.precs), w.ndiffs, w.truncated, w.patsFull}
}

func (w *walker) rollback(m logMark) {
	w.out = w.out[:m.out]
	w.drecs = w.drecs[:m.drecs]
	w.precs = w.precs[:m.precs]
	w.ndiffs = m.ndiffs
	w.truncated = m.truncated
	w.patsFull = m.patsFull
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
		x, y := &ta[ka], &tb[kb]
		if string(srcA[x.start:x.end]) != string(srcB[y.start:y.end]) {
			w.rollback(start)
			return w.objectByKey(ai, bi, depth, lo, hi)
		}
		va, vb := ka+1, kb+1
		na, nb := &ta[va], &tb[vb]
		nextA, nextB := na.next, nb.next
		// Values with identical text are equal under any rules; most are.
		if na.meta&kindMask == nb.meta&kindMask && string(srcA[na.start:na.end]) == string(srcB[nb.start:nb.end]) {
			ka, kb = nextA, nextB
			continue
		}
		if lo == hi {
			w.path[depth] = pathSeg{node: ka, index: -1}
			m := w.mark()
			if !w.compare(va, vb, depth+1, lo, hi, nil) {
				if n > smallObject {
					// Checking each difference for a later duplicate
					// would be quadratic; match by key instead.
					w.rollback(start)
					return w.objectByKey(ai, bi, depth, lo, hi)
				}
				if !w.dupDiff(m, ka, nextA, ai) {
					eq = false
					if !w.record {
						return false
					}
				}
			}
		} else {
			nlo, nhi := w.stepKey(lo, hi, w.keyOf(&w.a, ka))
			act := w.actsAt(nlo, nhi, depth+1)
			if act == nil || !act.ignore {
				w.path[depth] = pathSeg{node: ka, index: -1}
				m := w.mark()
				if !w.compare(va, vb, depth+1, nlo, nhi, act) {
					if n > smallObject {
						w.states = w.states[:nlo]
						w.rollback(start)
						return w.objectByKey(ai, bi, depth, lo, hi)
					}
					if !w.dupDiff(m, ka, nextA, ai) {
						eq = false
					}
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

// dupDiff handles a difference found at control key node k when keys are
// compared pairwise: when the key appears again later, the difference does
// not count (the last occurrence wins), so it is rolled back to m and
// dupDiff reports true.
func (w *walker) dupDiff(m logMark, k, from, obj uint32) bool {
	if w.laterDup(k, from, obj) {
		w.rollback(m)
		return true
	}
	return false
}

// laterDup reports whether a key equal to control key node k appears after
// it in its object (whose members continue at tape index from).
func (w *walker) laterDup(k, from, obj uint32) bool {
	end := w.a.tape[obj].next
	start := len(w.karena)
	w.karena = append(w.karena, w.keyOf(&w.a, k)...)
	key := w.karena[start:]
	dup := false
	for m := from; m < end; m = w.a.tape[m+1].next {
		if bytes.Equal(w.keyOf(&w.a, m), key) {
			dup = true
			break
		}
	}
	w.karena = w.karena[:start]
	return dup
}

// value rendering and difference reporting

// report records a difference of kind at depth between control node ai and
// candidate node bi (-1 for absent), and returns false. The text goes to
// w.out; [walker.result] turns the records into a [Result] with three
// allocations.
func (w *walker) report(kind DiffKind, ai, bi int64, depth int) bool {
	if !w.record {
		return false
	}
	w.ndiffs++
	// Render the pattern into pbuf and, when the difference is listed, the
	// path into out, in one pass.
	listed := len(w.drecs) < w.maxDiffs
	var path span
	if listed {
		lo := uint32(len(w.out))
		w.out, w.pbuf = w.appendPaths(w.out, w.pbuf[:0], depth, true)
		path = span{lo, uint32(len(w.out))}
	} else {
		_, w.pbuf = w.appendPaths(nil, w.pbuf[:0], depth, false)
	}
	h := maphash.Bytes(patSeed, w.pbuf) ^ uint64(len(kind))
	var pat span
	known := false
	for _, p := range w.precs {
		if p.h == h && p.kind == kind && string(w.out[p.pat.lo:p.pat.hi]) == string(w.pbuf) {
			pat, known = p.pat, true
			break
		}
	}
	if !known {
		if len(w.precs) < maxPatterns {
			pat = w.emit(w.pbuf)
			w.precs = append(w.precs, patRec{kind: kind, pat: pat, h: h})
		} else {
			w.patsFull = true
		}
	}
	if !listed {
		w.truncated = true
		return false
	}
	if !known && w.patsFull && pat == (span{}) {
		pat = w.emit(w.pbuf) // listed, though not in the full pattern set
	}
	r := diffRec{kind: kind, pat: pat, path: path}
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
	return false
}

func (w *walker) emit(b []byte) span {
	lo := uint32(len(w.out))
	w.out = append(w.out, b...)
	return span{lo, uint32(len(w.out))}
}

// result fills the differences and patterns of res from the records.
func (w *walker) result(res *Result) {
	text := string(w.out)
	at := func(s span) string { return text[s.lo:s.hi] }
	if len(w.drecs) > 0 {
		res.Diffs = make([]Difference, len(w.drecs))
		for i, r := range w.drecs {
			res.Diffs[i] = Difference{Path: at(r.path), Pattern: at(r.pat), Kind: r.kind, Control: at(r.ctl), Candidate: at(r.cand)}
		}
	}
	res.Patterns = make([]PatternKind, len(w.precs))
	for i, p := range w.precs {
		res.Patterns[i] = PatternKind{Pattern: at(p.pat), Kind: p.kind}
	}
	sortPatterns(res.Patterns)
	res.Truncated = w.truncated
	res.PatternsTruncated = w.patsFull
	res.Signature = Signature(res.Patterns)
}

// patSeed seeds the hash of the pattern set; it only deduplicates within
// one result, so a per-process seed is fine.
var patSeed = maphash.MakeSeed()

// appendPaths renders w.path[:depth] concretely ("items[3].price") to path
// when concrete is set, and as a pattern ("items[*].price") to pat. The root
// is "$".
func (w *walker) appendPaths(path, pat []byte, depth int, concrete bool) ([]byte, []byte) {
	if depth == 0 {
		if concrete {
			path = append(path, '$')
		}
		return path, append(pat, '$')
	}
	for k, s := range w.path[:depth] {
		if s.index >= 0 {
			pat = append(pat, "[*]"...)
			if concrete {
				path = append(path, '[')
				path = strconv.AppendInt(path, int64(s.index), 10)
				path = append(path, ']')
			}
			continue
		}
		d := &w.a
		if s.side == 1 {
			d = &w.b
		}
		key := w.keyOf(d, s.node)
		pat = appendKeySeg(pat, key, k == 0)
		if concrete {
			path = appendKeySeg(path, key, k == 0)
		}
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
