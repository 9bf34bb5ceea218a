package diff

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
)

// patTree interns patterns: a node is its parent's pattern followed by one
// segment, a member key or "[*]", and the root is "$". A walk finds the
// pattern of a difference by looking up its path's segments, with no
// rendering; the text of a pattern is rendered once, when a result first
// needs it. The tree lives in the pooled scratch and outlives walks (a
// pattern's text does not depend on the documents or the rules), and so does
// the cache of pattern sets (see set), so that a mismatch of a shape seen
// before costs no rendering, sorting or hashing of text. Both are bounded
// and start over when full.
type patTree struct {
	nodes []patNode
	tab   []int32 // open addressing: index into nodes + 1, 0 for empty
	keys  []byte  // decoded keys of nodes
	sets  map[uint64]*patSet
	nset  int     // members of the sets in the cache
	last  *patSet // the set found last, checked before the map
	buf   []byte
	chain []int32
}

// patNode is an interned pattern.
type patNode struct {
	parent int32 // -1 for the root, "$"
	index  bool  // the segment is "[*]", else the member key keys[key]
	kinds  uint8 // bit k: (this pattern, kind k) is in the current walk's set
	key    span
	kx, ky uint64 // keyWords of the key
	h      uint64
	str    string // the rendered pattern, once a result needed it
}

// patSet is a set of (pattern, kind) and what a result reports for it.
type patSet struct {
	members  []uint32 // node<<2 | kind
	patterns []PatternKind
	sig      string
}

// Bounds of the pattern tree and set cache kept between walks.
const (
	maxPatNodes      = 1 << 13
	maxPatKeyBytes   = 1 << 17
	maxPatSets       = 1 << 10
	maxPatSetMembers = 1 << 14
)

// patSeed seeds the hashes of pattern segments; they only find patterns in
// one process's tree, so a per-process seed is fine.
var (
	patSeed     = maphash.MakeSeed()
	patSeedWord = maphash.Bytes(patSeed, []byte("parity"))
)

// keyWords packs a member key of up to 16 bytes (nearly all) into two words
// that determine it, given its length; long is set for longer keys.
func keyWords(b []byte) (x, y uint64, long bool) {
	switch n := len(b); {
	case n > 16:
		return 0, 0, true
	case n >= 8:
		return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:]), false
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[n-4:])), false
	case n > 0:
		return uint64(b[0])<<16 | uint64(b[n>>1])<<8 | uint64(b[n-1]), 0, false
	}
	return 0, 0, false
}

// begin prepares t for a walk: it clears the kinds the previous walk's set
// (prev) left, and starts over when t has grown past its bounds.
func (t *patTree) begin(prev []patRec) {
	for _, p := range prev {
		t.nodes[p.node].kinds = 0
	}
	if len(t.nodes) == 0 || len(t.nodes) > maxPatNodes || len(t.keys) > maxPatKeyBytes {
		t.reset()
	}
}

// reset empties the tree, keeping only the root, and the set cache.
func (t *patTree) reset() {
	const size = 64
	if cap(t.tab) < size || cap(t.tab) > 4*maxPatNodes {
		t.tab = make([]int32, size)
	}
	t.tab = t.tab[:size]
	clear(t.tab)
	t.nodes = append(t.nodes[:0], patNode{parent: -1, h: 0x9e3779b97f4a7c15, str: "$"})
	t.keys = t.keys[:0]
	clear(t.sets)
	t.nset = 0
	t.last = nil
}

// intern returns the node of parent's pattern followed by "[*]" (index) or
// the member key, adding it when create is set, else returning -1 when there
// is none.
func (t *patTree) intern(parent int32, index bool, key []byte, create bool) int32 {
	var h, x, y uint64
	if index {
		h = (t.nodes[parent].h ^ 0x2545f4914f6cdd1d) * 0x94d049bb133111eb
		h ^= h >> 29
	} else {
		var long bool
		if x, y, long = keyWords(key); long {
			x = maphash.Bytes(patSeed, key)
		}
		h = (t.nodes[parent].h^x^patSeedWord)*0x9e3779b97f4a7c15 + (y^uint64(len(key))<<56)*0xbf58476d1ce4e5b9
		h ^= h >> 29
	}
	mask := uint64(len(t.tab) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := t.tab[i]
		if e == 0 {
			break
		}
		n := &t.nodes[e-1]
		if n.h == h && n.parent == parent && n.index == index && n.kx == x && n.ky == y && n.key.hi-n.key.lo == uint32(len(key)) &&
			(len(key) <= 16 || string(t.keys[n.key.lo:n.key.hi]) == string(key)) {
			return e - 1
		}
	}
	if !create {
		return -1
	}
	lo := uint32(len(t.keys))
	t.keys = append(t.keys, key...)
	id := int32(len(t.nodes))
	t.nodes = append(t.nodes, patNode{parent: parent, index: index, key: span{lo, uint32(len(t.keys))}, kx: x, ky: y, h: h})
	if 2*len(t.nodes) > len(t.tab) {
		t.rehash(2 * len(t.tab))
	} else {
		t.place(id)
	}
	return id
}

// place puts node id in the hash table.
func (t *patTree) place(id int32) {
	mask := uint64(len(t.tab) - 1)
	i := t.nodes[id].h & mask
	for t.tab[i] != 0 {
		i = (i + 1) & mask
	}
	t.tab[i] = id + 1
}

// rehash rebuilds the hash table with size slots.
func (t *patTree) rehash(size int) {
	if cap(t.tab) < size {
		t.tab = make([]int32, size)
	}
	t.tab = t.tab[:size]
	clear(t.tab)
	for id := range t.nodes {
		t.place(int32(id))
	}
}

// text returns the rendered pattern of node id ("items[*].price"),
// rendering it the first time.
func (t *patTree) text(id int32) string {
	n := &t.nodes[id]
	if n.str != "" {
		return n.str
	}
	chain := t.chain[:0]
	for c := id; c > 0; c = t.nodes[c].parent {
		chain = append(chain, c)
	}
	b := t.buf[:0]
	for i := len(chain) - 1; i >= 0; i-- {
		c := &t.nodes[chain[i]]
		if c.index {
			b = append(b, "[*]"...)
		} else {
			b = appendKeySeg(b, t.keys[c.key.lo:c.key.hi], i == len(chain)-1)
		}
	}
	t.chain, t.buf = chain, b
	n.str = string(b)
	return n.str
}

// set returns the patterns and signature of the set of (pattern, kind) in
// recs, whose kinds are marked in the nodes. A set seen before comes from
// the cache, checked member by member.
func (t *patTree) set(recs []patRec) *patSet {
	if s := t.last; s != nil && t.holds(s, recs) {
		return s
	}
	key := uint64(len(recs))
	for _, p := range recs {
		key += mix(uint64(p.node)<<2 | uint64(p.kind) + 0x9e3779b97f4a7c15)
	}
	if s := t.sets[key]; s != nil && t.holds(s, recs) {
		t.last = s
		return s
	}
	s := &patSet{members: make([]uint32, len(recs)), patterns: make([]PatternKind, len(recs))}
	for i, p := range recs {
		s.members[i] = uint32(p.node)<<2 | uint32(p.kind)
		s.patterns[i] = PatternKind{Pattern: t.text(p.node), Kind: kindNames[p.kind]}
	}
	slices.SortFunc(s.patterns, cmpPatternKind)
	s.sig = Signature(s.patterns)
	if t.sets == nil {
		t.sets = make(map[uint64]*patSet)
	} else if len(t.sets) >= maxPatSets || t.nset+len(recs) > maxPatSetMembers {
		clear(t.sets)
		t.nset = 0
	}
	t.sets[key] = s
	t.nset += len(recs)
	t.last = s
	return s
}

// holds reports whether s is the set of recs, whose kinds are marked in the
// nodes.
func (t *patTree) holds(s *patSet, recs []patRec) bool {
	if len(s.members) != len(recs) {
		return false
	}
	for _, m := range s.members {
		if t.nodes[m>>2].kinds&(1<<(m&3)) == 0 {
			return false
		}
	}
	return true
}
