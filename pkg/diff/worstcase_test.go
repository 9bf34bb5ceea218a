package diff

import (
	"fmt"
	"strings"
	"testing"
)

// worstPair returns two JSON arrays of about size bytes each whose elements
// all differ (objects with a number, a string and a nested array), and a
// typical pair of the same size: the same elements, in the same order, with
// ten changed.
func worstPair(size int) (control, candidate, typical []byte) {
	elem := func(i int) string {
		return fmt.Sprintf(`{"id":%d,"name":"item-%d","tags":["a%d","b"],"price":%d.5}`, i, i, i%7, i%1000)
	}
	var a, b, c strings.Builder
	a.WriteByte('[')
	b.WriteByte('[')
	c.WriteByte('[')
	for i := 0; a.Len() < size; i++ {
		if i > 0 {
			a.WriteByte(',')
			b.WriteByte(',')
			c.WriteByte(',')
		}
		a.WriteString(elem(i))
		b.WriteString(elem(-i - 1)) // every element different
		if i%1000 == 999 {
			c.WriteString(elem(-i - 1))
		} else {
			c.WriteString(elem(i))
		}
	}
	a.WriteByte(']')
	b.WriteByte(']')
	c.WriteByte(']')
	return []byte(a.String()), []byte(b.String()), []byte(c.String())
}

// worstRules are the rules that make matching hardest: the arrays are
// multisets (or keyed), and a tolerance below their elements means equal
// under the rules is not the same as equal text, so hashing alone cannot
// match them.
func worstRules(t testing.TB) map[string]*Differ {
	out := map[string]*Differ{}
	for name, r := range map[string]Rules{
		"unordered":                    {Default: OperationRules{Arrays: []ArrayRule{{Path: "**", Unordered: true}}}},
		"unordered with a number rule": {Default: OperationRules{Arrays: []ArrayRule{{Path: "**", Unordered: true}}, Numbers: []NumberRule{{Path: "[*].price", Absolute: 0.01}}}},
		"keyed":                        {Default: OperationRules{Arrays: []ArrayRule{{Path: "$", Key: "id"}}}},
		// No rules: the text is matched in lockstep (see fused.go).
		"exact": {},
	} {
		d, err := Compile(r)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = d
	}
	return out
}

// TestWorstCaseWorkBounded: two 1 MB arrays with every element different,
// under the rules that make matching hardest, cost work linear in their
// size — judged and explained alike. Work is counted (values compared,
// hashed or scanned), not timed. Before the bound, matching unordered
// elements pair by pair spent 32 work units per token (about 5 per byte
// here, ~1 s of CPU).
func TestWorstCaseWorkBounded(t *testing.T) {
	control, candidate, _ := worstPair(1 << 20)
	size := len(control) + len(candidate)
	for name, d := range worstRules(t) {
		t.Run(name, func(t *testing.T) {
			for _, explain := range []bool{false, true} {
				var work int
				r := d.values(d.program(""), control, candidate, explain, &work)
				if r.Verdict != VerdictMismatch {
					t.Fatalf("verdict %s (%s), want mismatch", r.Verdict, r.Reason)
				}
				const perByte = 1.0
				t.Logf("explain %v: %d work units for %d bytes (%.2f a byte)", explain, work, size, float64(work)/float64(size))
				if float64(work) > perByte*float64(size) {
					t.Errorf("explain %v: %d work units for %d bytes, want at most %.0f a byte", explain, work, size, perByte)
				}
			}
		})
	}
}

// BenchmarkWorstCase is point 10 of issue 18: the cost per KB of the worst
// pair (two 1 MB arrays, every element different, matched as multisets
// under a number rule) against a typical pair of the same size ("typical":
// ten differences), and against parsing the worst pair. benchratio prints
// both ratios with their targets.
func BenchmarkWorstCase(b *testing.B) {
	control, candidate, typical := worstPair(1 << 20)
	d := worstRules(b)["unordered with a number rule"]
	kb := float64(len(control)+len(candidate)) / 1024
	perKB := func(b *testing.B, f func()) {
		b.ReportAllocs()
		b.SetBytes(int64(len(control) + len(candidate)))
		for b.Loop() {
			f()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/kb, "us/KB")
	}
	judge := func(ctl, cand []byte, explain bool) func() {
		return func() {
			if r := d.values(d.program(""), ctl, cand, explain, nil); r.Verdict != VerdictMismatch {
				b.Fatal(r.Verdict, r.Reason)
			}
		}
	}
	b.Run("judge-vs-typical/reference", func(b *testing.B) { perKB(b, judge(control, typical, false)) })
	b.Run("judge-vs-typical/parity", func(b *testing.B) { perKB(b, judge(control, candidate, false)) })
	b.Run("explain-vs-typical/reference", func(b *testing.B) { perKB(b, judge(control, typical, true)) })
	b.Run("explain-vs-typical/parity", func(b *testing.B) { perKB(b, judge(control, candidate, true)) })
	parse := func() {
		var pa, pb parser
		if !pa.parse(control, DefaultMaxDepth) || !pb.parse(candidate, DefaultMaxDepth) {
			b.Fatal("parse failed")
		}
	}
	b.Run("judge-vs-parse/reference", func(b *testing.B) { perKB(b, parse) })
	b.Run("judge-vs-parse/parity", func(b *testing.B) { perKB(b, judge(control, candidate, false)) })
}

// TestFallbackWorkBounded: when the lockstep and fused comparisons give up
// at the end of the documents (the candidate's last element has another
// key), the walk compares them again; the work of all three stays linear
// in their size.
func TestFallbackWorkBounded(t *testing.T) {
	control, candidate, _ := worstPair(1 << 20)
	candidate = append(candidate[:len(candidate)-2:len(candidate)-2], `,"extra":1}]`...)
	d := Exact()
	var work int
	r := d.values(d.program(""), control, candidate, false, &work)
	if r.Verdict != VerdictMismatch {
		t.Fatalf("verdict %s (%s), want mismatch", r.Verdict, r.Reason)
	}
	size := len(control) + len(candidate)
	const perByte = 1.0
	t.Logf("%d work units for %d bytes (%.2f a byte)", work, size, float64(work)/float64(size))
	if float64(work) > perByte*float64(size) {
		t.Errorf("%d work units for %d bytes, want at most %.0f a byte", work, size, perByte)
	}
}
