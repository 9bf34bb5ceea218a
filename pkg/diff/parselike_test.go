package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// checkParseLike parses src guided by g (itself parsed) and alone, and
// fails unless the two agree exactly: validity, error and tape.
func checkParseLike(t *testing.T, g, src []byte, maxDepth int) {
	t.Helper()
	var pg, want, got parser
	if !pg.parse(g, maxDepth) {
		return // only valid documents guide
	}
	okWant := want.parse(src, maxDepth)
	okGot := got.parseLike(src, maxDepth, &doc{src: g, tape: pg.tape})
	if okGot != okWant || got.err != want.err {
		t.Fatalf("guided by %q, %q: ok %v err %q, want ok %v err %q", g, src, okGot, got.err.Error(), okWant, want.err.Error())
	}
	if okWant && !slices.Equal(got.tape, want.tape) {
		t.Fatalf("guided by %q, %q: tape\n%v\nwant\n%v", g, src, got.tape, want.tape)
	}
}

// Parsing a document like another gives exactly the tape and the error of
// parsing it alone: for the B2 pairs, reformatted, and for every truncation
// and many one-byte changes of small documents whose guide shares most of
// their text (a number that grows a digit, a literal that runs on, a string
// that loses its quote, a depth limit reached inside a copied value).
func TestParseLikeMatchesParse(t *testing.T) {
	for _, m := range []struct {
		copy  int
		guide uint32
	}{{1, 0}, {minCopy, minGuide}} {
		t.Run(fmt.Sprintf("minCopy=%d,minGuide=%d", m.copy, m.guide), func(t *testing.T) {
			defer func(c int, g uint32) { minCopy, minGuide = c, g }(minCopy, minGuide)
			minCopy, minGuide = m.copy, m.guide // copy even the shortest values
			testParseLike(t)
		})
	}
}

func testParseLike(t *testing.T) {
	for _, c := range b2Cases() {
		var ind bytes.Buffer
		json.Indent(&ind, c.candidate, "", " ")
		for _, pair := range [][2][]byte{{c.control, c.candidate}, {c.candidate, c.control}, {c.control, ind.Bytes()}, {ind.Bytes(), c.candidate}} {
			checkParseLike(t, pair[0], pair[1], DefaultMaxDepth)
		}
	}
	docs := []string{
		`{"a":1,"b":[1,2,{"c":"d"}],"e":{"f":true,"g":null},"h":"x\u0041y","i":-0.5e3}`,
		`[1,"two",[3,[4,{"five":5}]],{"six":[6]},true,false,null,12]`,
		`{"k":12,"l":tru,"m":"s"}`,
		`{"a":{"b":{"c":{"d":[[[1]]]}}},"z":0}`,
		` { "a" : [ 1 , 2 ] , "b" : { } , "c" : [ ] } `,
		`"just a string"`, `42`, `null`, `[]`, `{}`,
	}
	extra := []string{
		strings.Replace(docs[0], `"a":1`, `"a":12`, 1), strings.Replace(docs[0], `true`, `truex`, 1),
		strings.Replace(docs[1], `12]`, `123]`, 1), strings.Replace(docs[0], `"d"`, `"d`, 1),
	}
	for _, d := range docs {
		variants := append([]string{d}, extra...)
		for i := 0; i <= len(d); i++ {
			variants = append(variants, d[:i], d[:i]+d[min(i+1, len(d)):])
			for _, ins := range []string{"3", "e", "x", "\"", ",", "}", "]", " ", "\\"} {
				variants = append(variants, d[:i]+ins+d[i:])
			}
		}
		// Every variant guided by the document, and by some of the others.
		for k, g := range variants {
			if k > len(extra) && k%17 != 0 {
				continue
			}
			for _, src := range variants {
				for _, depth := range []int{DefaultMaxDepth, 1, 3} {
					checkParseLike(t, []byte(g), []byte(src), depth)
				}
			}
			if t.Failed() {
				return
			}
		}
	}
}

func FuzzParseLike(f *testing.F) {
	for _, c := range b2Cases()[:4] {
		f.Add(c.control, c.candidate, 8)
	}
	f.Add([]byte(`{"a":[1,{"b":2}]}`), []byte(`{"a":[1,{"b":23}]}`), 3)
	defer func(c int, g uint32) { minCopy, minGuide = c, g }(minCopy, minGuide)
	minCopy, minGuide = 1, 0 // copy even the shortest values
	f.Fuzz(func(t *testing.T, g, src []byte, depth int) {
		if depth < 1 || depth > 64 {
			depth = DefaultMaxDepth
		}
		checkParseLike(t, g, src, depth)
	})
}

// BenchmarkParseLike measures parsing the B2 candidates alone (reference)
// and like their control (parity), as Values does.
func BenchmarkParseLike(b *testing.B) {
	for _, c := range b2Cases() {
		b.Run(c.name, func(b *testing.B) {
			var pa parser
			if !pa.parse(c.control, DefaultMaxDepth) {
				b.Fatal("parse failed")
			}
			g := doc{src: c.control, tape: pa.tape}
			b.Run("reference", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.candidate)))
				var p parser
				for b.Loop() {
					if !p.parse(c.candidate, DefaultMaxDepth) {
						b.Fatal("parse failed")
					}
				}
			})
			b.Run("parity", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.candidate)))
				var p parser
				for b.Loop() {
					if !p.parseLike(c.candidate, DefaultMaxDepth, &g) {
						b.Fatal("parse failed")
					}
				}
			})
		})
	}
}
