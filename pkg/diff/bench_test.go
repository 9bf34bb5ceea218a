package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// benchDoc builds a realistic order document with about size bytes of JSON.
func benchDoc(size int) map[string]any {
	r := rand.New(rand.NewPCG(1, 2))
	doc := map[string]any{
		"id":         "ord_8f14e45fceea167a5a36dedd4bea2543",
		"status":     "shipped",
		"created_at": "2026-11-02T10:04:05.123Z",
		"customer": map[string]any{
			"id": 81723, "email": "ann.example@example.org", "name": "Ann Example",
			"address": map[string]any{"line1": "1 Main Street", "city": "Springfield", "country": "US", "zip": "12345"},
			"vip":     false,
		},
		"currency": "USD",
		"total":    0.0,
		"tags":     []any{"gift", "express"},
		"meta":     map[string]any{"etag": "W/\"5e3b\"", "version": 17, "source": "web"},
	}
	var items []any
	for i := 0; ; i++ {
		b, _ := json.Marshal(doc)
		if len(b) >= size-150 {
			break
		}
		items = append(items, map[string]any{
			"id": 1000 + i, "sku": fmt.Sprintf("SKU-%05d", r.IntN(100000)), "qty": 1 + r.IntN(5),
			"price": float64(r.IntN(100000)) / 100, "discounted": r.IntN(2) == 0,
			"name": "Widget " + strings.Repeat("x", r.IntN(12)),
		})
		doc["items"] = items
	}
	return doc
}

type b2Case struct {
	name               string
	control, candidate []byte
}

// b2Cases are the B2 benchmark documents: 0.7 KB and 4 KB, with 0, 1 and 10
// differing leaves.
func b2Cases() []b2Case {
	var cases []b2Case
	for _, size := range []struct {
		name  string
		bytes int
	}{{"0.7KB", 700}, {"4KB", 4096}} {
		doc := benchDoc(size.bytes)
		control, _ := json.Marshal(doc)
		for _, n := range []int{0, 1, 10} {
			cand := benchDoc(size.bytes)
			mutate(cand, n)
			candidate, _ := json.Marshal(cand)
			cases = append(cases, b2Case{fmt.Sprintf("%s-%ddiff", size.name, n), control, candidate})
		}
		// The same document serialised differently (indented), so that no
		// subtree is textually identical and the walk does all its work.
		var indented bytes.Buffer
		if err := json.Indent(&indented, control, "", "  "); err != nil {
			panic(err)
		}
		cases = append(cases, b2Case{size.name + "-0diff-indented", control, indented.Bytes()})
	}
	return cases
}

// mutate changes n leaves of a benchDoc.
func mutate(doc map[string]any, n int) {
	items := doc["items"].([]any)
	leaves := []func(){
		func() { doc["status"] = "delivered" },
		func() { doc["customer"].(map[string]any)["vip"] = true },
		func() { doc["meta"].(map[string]any)["version"] = 18 },
		func() { doc["customer"].(map[string]any)["address"].(map[string]any)["city"] = "Shelbyville" },
		func() { doc["tags"].([]any)[1] = "standard" },
		func() { doc["created_at"] = "2026-11-02T10:04:06.123Z" },
		func() { doc["customer"].(map[string]any)["email"] = "ann@example.org" },
	}
	for i := range items {
		it := items[i].(map[string]any)
		leaves = append(leaves, func() { it["price"] = it["price"].(float64) + 1 }, func() { it["qty"] = it["qty"].(int) + 1 })
	}
	for i := 0; i < n; i++ {
		if i >= len(leaves) {
			panic("not enough leaves")
		}
		leaves[i]()
	}
}

func BenchmarkB2(b *testing.B) {
	for _, c := range b2Cases() {
		b.Run(c.name, func(b *testing.B) {
			b.Run("reference", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.control) + len(c.candidate)))
				var pa, pb parser
				for b.Loop() {
					if !pa.parse(c.control, DefaultMaxDepth) || !pb.parse(c.candidate, DefaultMaxDepth) {
						b.Fatal("parse failed")
					}
				}
			})
			b.Run("parity", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.control) + len(c.candidate)))
				d := Exact()
				for b.Loop() {
					if r := d.Values(c.control, c.candidate); r.Verdict == VerdictInvalidJSON {
						b.Fatal(r.Reason)
					}
				}
			})
		})
	}
}

// BenchmarkB2Interleaved runs B2's reference and parity in alternating
// rounds of a few hundred pairs, in both orders, so that both see the same
// load on a shared machine, and reports per pair the fastest round of each
// and their ratio (parity/ref), and the ratio of their total times
// (parity/ref-mean, which counts garbage collection): steadier than B2's
// separate runs when other work competes for the cores. B2 stays the
// benchmark of record.
func BenchmarkB2Interleaved(b *testing.B) {
	for _, c := range b2Cases() {
		b.Run(c.name, func(b *testing.B) {
			var pa, pb parser
			d := Exact()
			ref := func() {
				if !pa.parse(c.control, DefaultMaxDepth) || !pb.parse(c.candidate, DefaultMaxDepth) {
					b.Fatal("parse failed")
				}
			}
			par := func() {
				if r := d.Values(c.control, c.candidate); r.Verdict == VerdictInvalidJSON {
					b.Fatal(r.Reason)
				}
			}
			n := 1 + 300000/(len(c.control)+len(c.candidate))
			round := func(f func()) time.Duration {
				t0 := time.Now()
				for i := 0; i < n; i++ {
					f()
				}
				return time.Since(t0)
			}
			minR, minP := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
			var sumR, sumP time.Duration
			k := 0
			for b.Loop() {
				var r, p time.Duration
				if k++; k%2 == 0 {
					r, p = round(ref), round(par)
				} else {
					p, r = round(par), round(ref)
				}
				minR, minP, sumR, sumP = min(minR, r), min(minP, p), sumR+r, sumP+p
			}
			b.ReportMetric(float64(minR.Nanoseconds())/float64(n), "ref-ns/pair")
			b.ReportMetric(float64(minP.Nanoseconds())/float64(n), "parity-ns/pair")
			b.ReportMetric(float64(minP)/float64(minR), "parity/ref")
			b.ReportMetric(float64(sumP)/float64(sumR), "parity/ref-mean")
		})
	}
}

// BenchmarkExplain measures the sample path, Explain, against the hot path,
// Values (B2's parity), on the B2 documents.
func BenchmarkExplain(b *testing.B) {
	for _, c := range b2Cases() {
		b.Run(c.name, func(b *testing.B) {
			d := Exact()
			b.Run("values", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.control) + len(c.candidate)))
				for b.Loop() {
					d.Values(c.control, c.candidate)
				}
			})
			b.Run("explain", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.control) + len(c.candidate)))
				for b.Loop() {
					d.ExplainValues("", c.control, c.candidate)
				}
			})
		})
	}
}

// BenchmarkWalk measures the walk alone, after parsing: the comparison
// under path rules, and without them when the documents' shapes differ
// (B2's parity, without rules, matches the texts in lockstep instead; see
// fused.go).
func BenchmarkWalk(b *testing.B) {
	for _, c := range b2Cases() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			d := Exact()
			s := getScratch()
			if !s.pa.parse(c.control, d.maxDepth) || !s.pb.parse(c.candidate, d.maxDepth) {
				b.Fatal("parse failed")
			}
			w := &s.w
			for b.Loop() {
				w.a = doc{src: c.control, tape: s.pa.tape}
				w.b = doc{src: c.candidate, tape: s.pb.tape}
				w.maxDiffs, w.maxVal = d.maxDiffs, d.maxValueBytes
				w.reset(d.def, d.maxDepth, false)
				if !w.root() {
					var res Result
					w.result(&res)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	data, _ := json.Marshal(benchDoc(4096))
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parity", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var p parser
		for b.Loop() {
			if !p.parse(data, DefaultMaxDepth) {
				b.Fatal(p.err.Error())
			}
		}
	})
}

// BenchmarkRules measures the cost of path rules on equal 4 KB documents
// (the candidate indented, so that the walk does all its work).
func BenchmarkRules(b *testing.B) {
	data, _ := json.Marshal(benchDoc(4096))
	var indented bytes.Buffer
	json.Indent(&indented, data, "", "  ")
	cand := indented.Bytes()
	d, err := Compile(Rules{Default: OperationRules{
		Ignore:            []string{"meta.etag", "**.updated_at"},
		Numbers:           []NumberRule{{Path: "items[*].price", Absolute: 0.01}},
		Arrays:            []ArrayRule{{Path: "items", Key: "id"}, {Path: "tags", Unordered: true}},
		NullEqualsMissing: []string{"**"},
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data) + len(cand)))
	for b.Loop() {
		if r := d.Values(data, cand); r.Verdict != VerdictMatch {
			b.Fatal(r.Verdict)
		}
	}
}
