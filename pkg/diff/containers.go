package diff

import (
	"bytes"
	"slices"
)

// kent is one member of an object being matched by key.
type kent struct {
	key  []byte // decoded
	node uint32 // the key's tape node; the value is node+1
}

// smallObject is the size up to which members are matched by linear scans
// rather than by sorting.
const smallObject = 16

// region allocates n zeroed uint32s on the w.u32 stack and returns their
// offset. Address them through w.u32 only: a nested allocation may move the
// stack.
func (w *walker) region(n int) int {
	lo := len(w.u32)
	w.u32 = slices.Grow(w.u32, n)[:lo+n]
	clear(w.u32[lo:])
	return lo
}

// entries appends the members of object node obj of d to w.kents and
// returns their range.
func (w *walker) entries(d *doc, obj uint32) (int, int) {
	lo := len(w.kents)
	end := d.tape[obj].next
	for k := obj + 1; k < end; k = d.tape[k+1].next {
		n := &d.tape[k]
		key := d.src[n.start:n.end]
		if n.escaped() {
			s := len(w.karena)
			w.karena = appendUnescaped(w.karena, key)
			key = w.karena[s:len(w.karena):len(w.karena)]
		}
		w.kents = append(w.kents, kent{key: key, node: k})
	}
	return lo, len(w.kents)
}

// lastFlags sets w.u32[flags+i] to 1 for each entry in [lo,hi) that is the
// last member with its key, and when sorted >= 0 fills w.u32[sorted:] with
// the entry offsets sorted by key, then position.
func (w *walker) lastFlags(lo, hi, flags, sorted int) {
	n := hi - lo
	if sorted < 0 {
		for i := 0; i < n; i++ {
			last := uint32(1)
			for j := i + 1; j < n; j++ {
				if bytes.Equal(w.kents[lo+i].key, w.kents[lo+j].key) {
					last = 0
					break
				}
			}
			w.u32[flags+i] = last
		}
		return
	}
	perm := w.u32[sorted : sorted+n]
	for i := range perm {
		perm[i] = uint32(i)
	}
	ents := w.kents[lo:hi]
	slices.SortFunc(perm, func(x, y uint32) int {
		if c := bytes.Compare(ents[x].key, ents[y].key); c != 0 {
			return c
		}
		return int(x) - int(y)
	})
	for p, i := range perm {
		if p+1 == n || !bytes.Equal(ents[i].key, ents[perm[p+1]].key) {
			w.u32[flags+int(i)] = 1
		}
	}
}

// find returns the offset (relative to lo) of the last entry in [lo,hi) whose
// key is key, or -1. sorted is as for lastFlags.
func (w *walker) find(lo, hi, sorted int, key []byte) int {
	n := hi - lo
	if sorted < 0 {
		for j := n - 1; j >= 0; j-- {
			if bytes.Equal(w.kents[lo+j].key, key) {
				return j
			}
		}
		return -1
	}
	perm := w.u32[sorted : sorted+n]
	ents := w.kents[lo:hi]
	// The first entry whose key is greater than key.
	p, _ := slices.BinarySearchFunc(perm, key, func(i uint32, k []byte) int {
		if bytes.Compare(ents[i].key, k) <= 0 {
			return -1
		}
		return 1
	})
	if p > 0 && bytes.Equal(ents[perm[p-1]].key, key) {
		return int(perm[p-1])
	}
	return -1
}

// absentOK reports whether value node v of d may be absent on the other side
// under act.
func absentOK(d *doc, v uint32, act *actions) bool {
	if act == nil || !(act.nullMissing || act.emptyMissing) {
		return false
	}
	n := &d.tape[v]
	switch n.kind() {
	case kNull:
		return true
	case kString:
		return act.emptyMissing && n.start == n.end
	case kArray, kObject:
		return act.emptyMissing && n.count() == 0
	}
	return false
}

// objectByKey compares two objects member by member, matching keys.
func (w *walker) objectByKey(ai, bi uint32, depth int, lo, hi int32) bool {
	kl, al, ul := len(w.kents), len(w.karena), len(w.u32)
	defer func() { w.kents, w.karena, w.u32 = w.kents[:kl], w.karena[:al], w.u32[:ul] }()
	alo, ahi := w.entries(&w.a, ai)
	blo, bhi := w.entries(&w.b, bi)
	n, m := ahi-alo, bhi-blo
	lastA, lastB, matched := w.region(n), w.region(m), w.region(m)
	sortA, sortB := -1, -1
	if n > smallObject || m > smallObject {
		sortA, sortB = w.region(n), w.region(m)
	}
	w.lastFlags(alo, ahi, lastA, sortA)
	w.lastFlags(blo, bhi, lastB, sortB)
	eq := true
	for i := 0; i < n; i++ {
		if w.u32[lastA+i] == 0 {
			continue
		}
		e := w.kents[alo+i]
		j := w.find(blo, bhi, sortB, e.key)
		nlo, nhi, act := w.memberState(&w.a, e.node, depth, lo, hi)
		if act == nil || !act.ignore {
			w.path[depth] = pathSeg{node: e.node, index: -1}
			if j >= 0 {
				w.u32[matched+j] = 1
				if !w.compare(e.node+1, w.kents[blo+j].node+1, depth+1, nlo, nhi, act) {
					eq = false
				}
			} else if !absentOK(&w.a, e.node+1, act) {
				eq = w.report(dMissing, int64(e.node+1), -1, depth+1)
			}
		} else if j >= 0 {
			w.u32[matched+j] = 1
		}
		w.states = w.states[:nlo]
		if !eq && !w.record {
			return false
		}
	}
	for j := 0; j < m; j++ {
		if w.u32[lastB+j] == 0 || w.u32[matched+j] != 0 {
			continue
		}
		e := w.kents[blo+j]
		nlo, nhi, act := w.memberState(&w.b, e.node, depth, lo, hi)
		_ = nhi
		if (act == nil || !act.ignore) && !absentOK(&w.b, e.node+1, act) {
			w.path[depth] = pathSeg{node: e.node, index: -1, side: 1}
			eq = w.report(dExtra, -1, int64(e.node+1), depth+1)
		}
		w.states = w.states[:nlo]
		if !eq && !w.record {
			return false
		}
	}
	return eq
}

// elements writes the element nodes of array node arr of d to a new region
// and returns its offset.
func (w *walker) elements(d *doc, arr uint32) int {
	n := d.tape[arr].count()
	r := w.region(n)
	e := arr + 1
	for i := 0; i < n; i++ {
		w.u32[r+i] = e
		e = d.tape[e].next
	}
	return r
}

// quiet compares without recording differences.
func (w *walker) quiet(ai, bi uint32, depth int, lo, hi int32, act *actions) bool {
	saved := w.record
	w.record = false
	eq := w.compare(ai, bi, depth, lo, hi, act)
	w.record = saved
	return eq
}

// array compares two arrays: in order, unless a rule says otherwise.
func (w *walker) array(ai, bi uint32, depth int, lo, hi int32, act *actions) bool {
	top := len(w.states)
	defer func() { w.states = w.states[:top] }()
	var elo, ehi int32
	var eact *actions
	if lo < hi {
		elo, ehi = w.stepIndex(lo, hi)
		eact = w.actsAt(elo, ehi, depth+1)
		if eact != nil && eact.ignore {
			return true
		}
	}
	if act != nil && act.arr != nil {
		if act.arr.unordered {
			return w.unordered(ai, bi, depth, elo, ehi, eact)
		}
		return w.keyed(ai, bi, depth, elo, ehi, eact, act.arr.key)
	}
	n, m := w.a.tape[ai].count(), w.b.tape[bi].count()
	if n == m {
		ta, tb := w.a.tape, w.b.tape
		srcA, srcB := w.a.src, w.b.src
		ea, eb := ai+1, bi+1
		eq := true
		for i := 0; i < n; i++ {
			na, nb := &ta[ea], &tb[eb]
			nextA, nextB := na.next, nb.next
			// Values with identical text or tokens are equal under any rules.
			if w.known(ea, eb, nextA) || na.meta&kindMask == nb.meta&kindMask && string(srcA[na.start:na.end]) == string(srcB[nb.start:nb.end]) {
				ea, eb = nextA, nextB
				continue
			}
			w.path[depth] = pathSeg{index: int32(i)}
			if !w.differs(ea, eb, depth+1, elo, ehi, eact) {
				eq = false
				if !w.record {
					return false
				}
			}
			ea, eb = nextA, nextB
		}
		return eq
	}
	if !w.record {
		return false
	}
	// The lengths differ: align the common prefix and suffix, compare the
	// middles in order, and report the rest missing or extra.
	ul := len(w.u32)
	defer func() { w.u32 = w.u32[:ul] }()
	ra, rb := w.elements(&w.a, ai), w.elements(&w.b, bi)
	short := min(n, m)
	p := 0
	for p < short && w.quiet(w.u32[ra+p], w.u32[rb+p], depth+1, elo, ehi, eact) {
		p++
	}
	s := 0
	for s < short-p && w.quiet(w.u32[ra+n-1-s], w.u32[rb+m-1-s], depth+1, elo, ehi, eact) {
		s++
	}
	k := p
	for ; k < n-s && k < m-s; k++ {
		w.path[depth] = pathSeg{index: int32(k)}
		w.compare(w.u32[ra+k], w.u32[rb+k], depth+1, elo, ehi, eact)
	}
	for i := k; i < n-s; i++ {
		w.path[depth] = pathSeg{index: int32(i)}
		w.report(dMissing, int64(w.u32[ra+i]), -1, depth+1)
	}
	for j := k; j < m-s; j++ {
		w.path[depth] = pathSeg{index: int32(j)}
		w.report(dExtra, -1, int64(w.u32[rb+j]), depth+1)
	}
	return false
}

// matchBudget returns the work count up to which matching the elements of
// arrays ai (control) and bi (candidate) pair by pair may go: matchFactor
// units per token of the two arrays, at least hashMatchMin, and never past
// the walk's own limit.
func (w *walker) matchBudget(ai, bi uint32) int {
	size := int(w.a.tape[ai].next-ai) + int(w.b.tape[bi].next-bi)
	return min(w.work+max(matchFactor*size, hashMatchMin), w.workLimit)
}

// matchFactor is the work units per token that pairwise matching of an
// unordered or keyed array may spend after hashing.
const matchFactor = 2

// hashMatchMin is the n×m above which unordered and keyed matching first
// pairs elements by hash rather than trying every pair.
const hashMatchMin = 1024

// unordered compares two arrays as multisets: each control element is
// matched with an equal candidate element (under the rules that apply to the
// elements), trying the same position first. Unmatched elements are paired
// in order and compared, and what is left over is missing or extra.
func (w *walker) unordered(ai, bi uint32, depth int, elo, ehi int32, eact *actions) bool {
	ul := len(w.u32)
	defer func() { w.u32 = w.u32[:ul] }()
	n, m := w.a.tape[ai].count(), w.b.tape[bi].count()
	ra, rb := w.elements(&w.a, ai), w.elements(&w.b, bi)
	matchA, usedB := w.region(n), w.region(m) // matchA: B index + 1
	saved := w.record
	w.record = false
	matched := 0
	for i := 0; i < min(n, m); i++ {
		if w.compare(w.u32[ra+i], w.u32[rb+i], depth+1, elo, ehi, eact) {
			w.u32[matchA+i], w.u32[usedB+i] = uint32(i+1), 1
			matched++
		}
	}
	if matched < min(n, m) || n != m {
		if n*m > hashMatchMin {
			matched += w.hashMatch(ra, rb, n, m, matchA, usedB, -1, depth, elo, ehi, eact)
		}
		// What hashing could not match may still be equal under rules
		// (tolerances, ignored members): try the pairs, within a budget
		// proportional to the arrays' size, so that two large arrays with
		// nothing in common cost a few passes over them, not n×m
		// comparisons.
		limit := w.matchBudget(ai, bi)
		for i := 0; i < n && w.work <= limit; i++ {
			if w.u32[matchA+i] != 0 {
				continue
			}
			for j := 0; j < m && w.work <= limit; j++ {
				if w.u32[usedB+j] == 0 && w.compare(w.u32[ra+i], w.u32[rb+j], depth+1, elo, ehi, eact) {
					w.u32[matchA+i], w.u32[usedB+j] = uint32(j+1), 1
					matched++
					break
				}
			}
		}
	}
	w.record = saved
	if n == m && matched == n {
		return true
	}
	if !w.record {
		return false
	}
	// Pair what is left in order.
	eq := true
	i, j := 0, 0
	for {
		for i < n && w.u32[matchA+i] != 0 {
			i++
		}
		for j < m && w.u32[usedB+j] != 0 {
			j++
		}
		if i == n || j == m {
			break
		}
		w.path[depth] = pathSeg{index: int32(i)}
		if !w.compare(w.u32[ra+i], w.u32[rb+j], depth+1, elo, ehi, eact) {
			eq = false
		}
		i++
		j++
	}
	for ; i < n; i++ {
		if w.u32[matchA+i] == 0 {
			w.path[depth] = pathSeg{index: int32(i)}
			eq = w.report(dMissing, int64(w.u32[ra+i]), -1, depth+1)
		}
	}
	for ; j < m; j++ {
		if w.u32[usedB+j] == 0 {
			w.path[depth] = pathSeg{index: int32(j)}
			eq = w.report(dExtra, -1, int64(w.u32[rb+j]), depth+1)
		}
	}
	return eq
}

// hashMatch matches still-unmatched elements whose canonical hashes agree
// (hashing the element, or with keyed >= 0 the key values in regions keyed
// (control) and keyed+n (candidate)). It returns how many it matched.
func (w *walker) hashMatch(ra, rb, n, m, matchA, usedB, keyed int, depth int, elo, ehi int32, eact *actions) int {
	hb := len(w.hashes)
	defer func() { w.hashes = w.hashes[:hb] }()
	for j := 0; j < m; j++ {
		var h uint64
		if keyed >= 0 {
			h = w.hashOpt(&w.b, w.u32[keyed+n+j])
		} else {
			h = w.hash(&w.b, w.u32[rb+j])
		}
		w.hashes = append(w.hashes, hent{h, uint32(j)})
	}
	hs := w.hashes[hb:]
	slices.SortFunc(hs, func(x, y hent) int {
		switch {
		case x.h < y.h:
			return -1
		case x.h > y.h:
			return 1
		}
		return int(x.i) - int(y.i)
	})
	count := 0
	for i := 0; i < n; i++ {
		if w.u32[matchA+i] != 0 {
			continue
		}
		var h uint64
		if keyed >= 0 {
			h = w.hashOpt(&w.a, w.u32[keyed+i])
		} else {
			h = w.hash(&w.a, w.u32[ra+i])
		}
		p, _ := slices.BinarySearchFunc(hs, h, func(e hent, h uint64) int {
			if e.h < h {
				return -1
			}
			if e.h > h {
				return 1
			}
			return 0
		})
		for ; p < len(hs) && hs[p].h == h; p++ {
			j := int(hs[p].i)
			if w.u32[usedB+j] != 0 {
				continue
			}
			var eq bool
			if keyed >= 0 {
				eq = w.keyEq(w.u32[keyed+i], w.u32[keyed+n+j], depth)
			} else {
				eq = w.compare(w.u32[ra+i], w.u32[rb+j], depth+1, elo, ehi, eact)
			}
			if eq {
				w.u32[matchA+i], w.u32[usedB+j] = uint32(j+1), 1
				count++
				break
			}
		}
	}
	return count
}

type hent struct {
	h uint64
	i uint32
}

// keyOfElement returns the value node + 1 of the last member key of element
// node e of d, or 0 when e is not an object or has no such member.
func keyOfElement(w *walker, d *doc, e uint32, key string) uint32 {
	n := &d.tape[e]
	if n.kind() != kObject {
		return 0
	}
	found := uint32(0)
	for k := e + 1; k < n.next; k = d.tape[k+1].next {
		if string(w.keyOf(d, k)) == key {
			found = k + 2
		}
	}
	return found
}

// keyEq compares two key values (node + 1, 0 for none) exactly.
func (w *walker) keyEq(x, y uint32, depth int) bool {
	if x == 0 || y == 0 {
		return x == y
	}
	saved := w.record
	w.record = false
	eq := w.compare(x-1, y-1, depth+2, 0, 0, nil)
	w.record = saved
	return eq
}

// keyed compares two arrays whose elements are matched by the value of
// their member key: the k-th control element with a key value matches the
// k-th candidate element with an equal one; elements without the member
// match each other in order the same way.
func (w *walker) keyed(ai, bi uint32, depth int, elo, ehi int32, eact *actions, key string) bool {
	ul := len(w.u32)
	defer func() { w.u32 = w.u32[:ul] }()
	n, m := w.a.tape[ai].count(), w.b.tape[bi].count()
	ra, rb := w.elements(&w.a, ai), w.elements(&w.b, bi)
	keys := w.region(n + m)
	for i := 0; i < n; i++ {
		w.u32[keys+i] = keyOfElement(w, &w.a, w.u32[ra+i], key)
	}
	for j := 0; j < m; j++ {
		w.u32[keys+n+j] = keyOfElement(w, &w.b, w.u32[rb+j], key)
	}
	matchA, usedB := w.region(n), w.region(m)
	inOrder := n == m
	for i := 0; i < n && inOrder; i++ {
		inOrder = w.keyEq(w.u32[keys+i], w.u32[keys+n+i], depth)
	}
	if inOrder {
		for i := 0; i < n; i++ {
			w.u32[matchA+i], w.u32[usedB+i] = uint32(i+1), 1
		}
	} else {
		if n*m > hashMatchMin {
			w.hashMatch(ra, rb, n, m, matchA, usedB, keys, depth, elo, ehi, eact)
		}
		limit := w.matchBudget(ai, bi)
		for i := 0; i < n; i++ {
			if w.u32[matchA+i] != 0 {
				continue
			}
			for j := 0; j < m; j++ {
				if w.u32[usedB+j] == 0 && w.keyEq(w.u32[keys+i], w.u32[keys+n+j], depth) {
					w.u32[matchA+i], w.u32[usedB+j] = uint32(j+1), 1
					break
				}
			}
			if w.work > limit {
				break
			}
		}
	}
	eq := true
	for i := 0; i < n; i++ {
		w.path[depth] = pathSeg{index: int32(i)}
		if j := w.u32[matchA+i]; j != 0 {
			if !w.compare(w.u32[ra+i], w.u32[rb+int(j)-1], depth+1, elo, ehi, eact) {
				eq = false
			}
		} else {
			eq = w.report(dMissing, int64(w.u32[ra+i]), -1, depth+1)
		}
		if !eq && !w.record {
			return false
		}
	}
	for j := 0; j < m; j++ {
		if w.u32[usedB+j] == 0 {
			w.path[depth] = pathSeg{index: int32(j)}
			eq = w.report(dExtra, -1, int64(w.u32[rb+j]), depth+1)
			if !w.record {
				return false
			}
		}
	}
	return eq
}

// hashOpt hashes a key value (node + 1, 0 for none).
func (w *walker) hashOpt(d *doc, v uint32) uint64 {
	if v == 0 {
		return 0
	}
	return w.hash(d, v-1)
}

// hash returns a hash of node i of d that is equal for values equal under
// exact comparison (except objects with duplicate keys). It is used only to
// find candidates for a match, which are then compared.
func (w *walker) hash(d *doc, i uint32) uint64 {
	w.work++
	n := &d.tape[i]
	switch n.kind() {
	case kNull:
		return 0x9e3779b97f4a7c15
	case kFalse:
		return 0xbf58476d1ce4e5b9
	case kTrue:
		return 0x94d049bb133111eb
	case kNumber:
		x := parseDecimal(d.src[n.start:n.end])
		if x.zero {
			return 0x2545f4914f6cdd1d
		}
		h := uint64(fnvOffset)
		if x.huge {
			return fnv64(h, d.src[n.start:n.end])
		}
		if x.neg {
			h = fnv64(h, []byte{'-'})
		}
		h = fnv64(h, x.hi)
		h = fnv64(h, x.lo)
		return mix(h ^ uint64(x.exp))
	case kString:
		return mix(fnv64(fnvOffset, w.strContent(d, i, &w.bufK)) ^ 0x5851f42d4c957f2d)
	case kArray:
		h := uint64(0x14057b7ef767814f)
		for e := i + 1; e < n.next; e = d.tape[e].next {
			h = mix(h ^ w.hash(d, e))
		}
		return h
	}
	h := uint64(0x27bb2ee687b0b0fd)
	for k := i + 1; k < n.next; k = d.tape[k+1].next {
		kh := fnv64(fnvOffset, w.keyOf(d, k))
		h += mix(kh ^ mix(w.hash(d, k+1)))
	}
	return h
}

// mix is the splitmix64 finaliser.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}
