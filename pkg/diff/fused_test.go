package diff

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// checkFused compares a and b under d with the lockstep and fused
// comparisons, each alone and both, and with neither (the walk), and fails
// unless the results are identical: verdict, reason, patterns, their
// truncation and the signature. It reports which of the two decided (did
// not give up).
func checkFused(t *testing.T, d *Differ, a, b []byte) (lock, fused bool) {
	t.Helper()
	p := d.program("")
	want := d.compareValues(p, a, b, false, 0, nil)
	for _, try := range []int{tryLockstep | tryFused, tryLockstep, tryFused} {
		got := d.compareValues(p, a, b, false, try, nil)
		if got.Verdict != want.Verdict || got.Reason != want.Reason || got.Signature != want.Signature ||
			got.PatternsTruncated != want.PatternsTruncated || !reflect.DeepEqual(got.Patterns(), want.Patterns()) {
			t.Fatalf("%q vs %q, try %b:\ngot  %s %q %v (truncated %v) %s\nwalk %s %q %v (truncated %v) %s", a, b, try,
				got.Verdict, got.Reason, got.Patterns(), got.PatternsTruncated, got.Signature,
				want.Verdict, want.Reason, want.Patterns(), want.PatternsTruncated, want.Signature)
		}
	}
	if len(a) == 0 || len(b) == 0 || p.trie != nil || string(a) == string(b) {
		return false, false
	}
	s := getScratch()
	defer putScratch(s)
	if !s.pa.parse(a, d.maxDepth) {
		return false, false
	}
	w := &s.w
	g := &doc{src: a, tape: s.pa.tape}
	w.a, w.b = *g, doc{src: b}
	w.maxDiffs, w.maxVal = d.maxDiffs, d.maxValueBytes
	w.reset(p, d.maxDepth, false)
	lock = s.pb.lockstep(b, d.maxDepth, g, w)
	w.reset(p, d.maxDepth, false)
	fused = s.pb.parseCompare(b, d.maxDepth, g, w) && s.pb.cmp != nil
	return lock, fused
}

// fusedPair derives a pair of documents of the same shape, mostly, from a
// seed: a random document and a copy with a few values replaced, nudged,
// deleted, added or shuffled, written compactly or indented, sometimes with
// numbers respelled, escapes or duplicate keys.
func fusedPair(seed uint64) (a, b []byte) {
	r := rand.New(rand.NewPCG(seed, 7))
	root := genRoot(r)
	cand := deepCopy(root)
	kinds := []mutation{mutReplace, mutNudge, mutNudge, mutReplace}
	if r.IntN(4) == 0 {
		kinds = append(kinds, mutDelete, mutAdd, mutShuffle, mutInsert)
	}
	for k := r.IntN(12); k > 0; k-- {
		cand = mutateDoc(r, cand, kinds)
	}
	a, _ = json.Marshal(root)
	b, _ = json.Marshal(cand)
	switch r.IntN(6) {
	case 0:
		var buf bytes.Buffer
		json.Indent(&buf, b, "", "  ")
		b = buf.Bytes()
	case 1:
		// Respelled numbers and escapes: equal values, other text.
		s := strings.NewReplacer(`":1,`, `":1.0,`, `":0,`, `":-0,`, `"a"`, `"\u0061"`, `é`, `\u00e9`).Replace(string(b))
		b = []byte(s)
	case 2:
		// A duplicate key on both sides, the last one differing or not.
		s := strings.Replace(string(a), `{"a":`, `{"a":[1,{"x":2}],"a":`, 1)
		a = []byte(s)
		s = strings.Replace(string(b), `{"a":`, `{"a":[1,{"x":3}],"a":`, 1)
		b = []byte(s)
	case 3:
		var x, y strings.Builder
		writeJSON(r, &x, root)
		writeJSON(r, &y, cand)
		a, b = []byte(x.String()), []byte(y.String())
	}
	return a, b
}

// The lockstep and fused comparisons give exactly the walk's results, on
// random pairs of the same shape (where they decide) and of other shapes
// (where they give up), under rules without paths; and they decide on the
// B2 pairs that differ (lockstep: those not reformatted) and on many
// generated ones.
func TestFusedMatchesWalk(t *testing.T) {
	n := 20000
	if testing.Short() || raceEnabled {
		n = 2000
	}
	locked, fused := 0, 0
	for i := 0; i < n; i++ {
		a, b := fusedPair(uint64(i))
		for _, d := range fuzzDiffers[:2] {
			l, f := checkFused(t, d, a, b)
			if l {
				locked++
			}
			if f {
				fused++
			}
		}
	}
	t.Logf("of %d comparisons, the lockstep comparison decided %d, the fused one %d", 2*n, locked, fused)
	if locked < n/4 || fused < n/2 {
		t.Errorf("of %d comparisons, the lockstep comparison decided %d, the fused one %d; want at least %d and %d", 2*n, locked, fused, n/4, n/2)
	}
	for _, c := range b2Cases() {
		if string(c.control) == string(c.candidate) {
			continue
		}
		l, f := checkFused(t, Exact(), c.control, c.candidate)
		if !f {
			t.Errorf("%s: the fused comparison gave up", c.name)
		}
		if !l && !strings.Contains(c.name, "indented") {
			t.Errorf("%s: the lockstep comparison gave up", c.name)
		}
	}
	// Many differences: the pattern set is truncated the same way, in
	// small objects (in an array) and in a large one.
	for _, open := range []string{"[", "{"} {
		var x, y strings.Builder
		x.WriteString(open)
		y.WriteString(open)
		for i := 0; i < 600; i++ {
			if i > 0 {
				x.WriteByte(',')
				y.WriteByte(',')
			}
			key := `"k` + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + `"`
			if open == "[" {
				x.WriteString(`{` + key + `:{"v":1}}`)
				y.WriteString(`{` + key + `:{"v":2}}`)
			} else {
				x.WriteString(key + `:{"v":1}`)
				y.WriteString(key + `:{"v":2}`)
			}
		}
		x.WriteString(map[string]string{"[": "]", "{": "}"}[open])
		y.WriteString(map[string]string{"[": "]", "{": "}"}[open])
		l, _ := checkFused(t, Exact(), []byte(x.String()), []byte(y.String()))
		if r := Exact().Values([]byte(x.String()), []byte(y.String())); !r.PatternsTruncated {
			t.Errorf("%s: patterns not truncated", open)
		}
		if l != (open == "[") {
			t.Errorf("%s: lockstep decided %v", open, l)
		}
	}
}

// FuzzFused compares the lockstep and fused comparisons with the walk on pairs derived
// from a seed (see fusedPair) and on the fuzzer's own pairs.
func FuzzFused(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":1,"b":[1,2,3]}`, `{"a":1.0,"b":[1,2,4]}`},
		{`{"a":"\u00e9","a":2}`, `{"a":"x","a":2}`},
		{`{"a":{"b":1},"a":2}`, `{"a":{"b":3},"a":2}`},
		{`[[[[[]]]]]`, `[[[[{}]]]]`},
		{`{"x":{"y":null}}`, `{"x":{"y":[]}}`},
		{`[true,"a",null]`, `[false,"b",0]`},
		{`1`, `1.0`},
	} {
		f.Add(uint64(0), []byte(s[0]), []byte(s[1]), uint8(0))
	}
	for i := range 8 {
		f.Add(uint64(i), []byte(nil), []byte(nil), uint8(1))
	}
	f.Fuzz(func(t *testing.T, seed uint64, a, b []byte, which uint8) {
		d := fuzzDiffers[int(which)%2]
		if len(a) == 0 && len(b) == 0 {
			a, b = fusedPair(seed)
		}
		checkFused(t, d, a, b)
		checkFused(t, d, b, a)
	})
}
