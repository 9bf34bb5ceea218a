package diff

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// raceEnabled is set under the race detector, which makes sync.Pool drop
// items (so allocation counts are meaningless) and everything slower.
var raceEnabled bool

// This file is the differential test: thousands of random JSON documents and
// random mutations, judged by the Differ and by go-cmp on the values decoded
// by encoding/json, under equivalent options. go-cmp is the oracle.

var genKeys = []string{"a", "b", "c", "id", "k3", "price", "we.ird", "x y", "é", "*", `q"`, "0"}

// genValue builds a random JSON value (as encoding/json decodes it).
func genValue(r *rand.Rand, depth int) any {
	k := r.IntN(10)
	if depth <= 0 && k >= 7 {
		k = r.IntN(7)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2, 3:
		return genNumber(r)
	case 4, 5, 6:
		return genString(r)
	case 7, 8:
		n := r.IntN(5)
		a := make([]any, n)
		for i := range a {
			a[i] = genValue(r, depth-1)
		}
		return a
	default:
		n := r.IntN(5)
		m := make(map[string]any, n)
		for i := 0; i < n; i++ {
			m[genKeys[r.IntN(len(genKeys))]] = genValue(r, depth-1)
		}
		return m
	}
}

func genNumber(r *rand.Rand) float64 {
	switch r.IntN(4) {
	case 0:
		return float64(r.IntN(2000) - 1000)
	case 1:
		return float64(r.IntN(100000)) / 100
	case 2:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
	default:
		return float64(r.Int64N(1 << 53))
	}
}

func genString(r *rand.Rand) string {
	words := []string{"", "a", "b", "hello", "Ünïcödé", "日本", "tab\there", "quote\"", `back\slash`, "😀", "a/b", "\u2028"}
	return words[r.IntN(len(words))]
}

// node is a place in a generated document: a container and a key or index.
type place struct {
	obj map[string]any
	key string
	arr []any
	idx int
}

func places(v any, out []place) []place {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			out = append(out, place{obj: v, key: k})
			out = places(c, out)
		}
	case []any:
		for i, c := range v {
			out = append(out, place{arr: v, idx: i})
			out = places(c, out)
		}
	}
	return out
}

func containers(v any, out []any) []any {
	switch v := v.(type) {
	case map[string]any:
		out = append(out, v)
		for _, c := range v {
			out = containers(c, out)
		}
	case []any:
		out = append(out, v)
		for _, c := range v {
			out = containers(c, out)
		}
	}
	return out
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, c := range v {
			m[k] = deepCopy(c)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, c := range v {
			a[i] = deepCopy(c)
		}
		return a
	}
	return v
}

type mutation int

const (
	mutReplace mutation = iota
	mutDelete
	mutAdd
	mutNudge
	mutShuffle
	mutInsert
)

// mutate applies one random mutation of the allowed kinds to root (which
// must be a container) and returns the (possibly new) root.
func mutateDoc(r *rand.Rand, root any, kinds []mutation) any {
	switch kinds[r.IntN(len(kinds))] {
	case mutReplace:
		ps := places(root, nil)
		if len(ps) == 0 {
			return genValue(r, 2)
		}
		p := ps[r.IntN(len(ps))]
		if p.obj != nil {
			p.obj[p.key] = genValue(r, 2)
		} else {
			p.arr[p.idx] = genValue(r, 2)
		}
	case mutDelete:
		for _, c := range shuffled(r, containers(root, nil)) {
			if m, ok := c.(map[string]any); ok && len(m) > 0 {
				keys := sortedKeys(m)
				delete(m, keys[r.IntN(len(keys))])
				break
			}
		}
	case mutAdd:
		for _, c := range shuffled(r, containers(root, nil)) {
			if m, ok := c.(map[string]any); ok {
				m[genKeys[r.IntN(len(genKeys))]] = genValue(r, 2)
				break
			}
		}
	case mutNudge:
		ps := places(root, nil)
		for _, i := range r.Perm(len(ps)) {
			p := ps[i]
			get := func() any {
				if p.obj != nil {
					return p.obj[p.key]
				}
				return p.arr[p.idx]
			}
			f, ok := get().(float64)
			if !ok {
				continue
			}
			switch r.IntN(3) {
			case 0:
				f += 0.001
			case 1:
				f *= 1 + 1e-7
			default:
				f += 1
			}
			if p.obj != nil {
				p.obj[p.key] = f
			} else {
				p.arr[p.idx] = f
			}
			break
		}
	case mutShuffle:
		for _, c := range shuffled(r, containers(root, nil)) {
			if a, ok := c.([]any); ok && len(a) > 1 {
				r.Shuffle(len(a), func(i, j int) { a[i], a[j] = a[j], a[i] })
				break
			}
		}
	case mutInsert:
		// Insert into or remove from an array: arrays are values of their
		// parents, so rebuild through the parent.
		ps := places(root, nil)
		for _, i := range r.Perm(len(ps)) {
			p := ps[i]
			var a []any
			if p.obj != nil {
				a, _ = p.obj[p.key].([]any)
			} else {
				a, _ = p.arr[p.idx].([]any)
			}
			if a == nil {
				continue
			}
			if len(a) > 0 && r.IntN(2) == 0 {
				k := r.IntN(len(a))
				a = slices.Delete(slices.Clone(a), k, k+1)
			} else {
				a = slices.Insert(slices.Clone(a), r.IntN(len(a)+1), genValue(r, 1))
			}
			if p.obj != nil {
				p.obj[p.key] = a
			} else {
				p.arr[p.idx] = a
			}
			break
		}
	}
	return root
}

func shuffled(r *rand.Rand, xs []any) []any {
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	return xs
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeJSON serialises v with random member order, whitespace, number
// spellings and string escapes, all denoting the same value.
func writeJSON(r *rand.Rand, b *strings.Builder, v any) {
	ws := func() {
		if r.IntN(4) == 0 {
			b.WriteString([]string{" ", "\n", "\t", "\r\n  "}[r.IntN(4)])
		}
	}
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			s = strconv.FormatFloat(v, 'f', -1, 64)
			switch r.IntN(4) {
			case 0:
				s += ".0"
			case 1:
				s += "e0"
			case 2:
				if v != 0 {
					s += "00E-2"
				}
			}
		}
		b.WriteString(s)
	case string:
		b.WriteByte('"')
		for _, c := range v {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteRune(c)
			case c < 0x20:
				fmt.Fprintf(b, `\u%04x`, c)
			case c == '/' && r.IntN(2) == 0:
				b.WriteString(`\/`)
			case (c > 0x7e || r.IntN(8) == 0) && r.IntN(2) == 0:
				if c > 0xffff {
					c -= 0x10000
					fmt.Fprintf(b, `\u%04x\u%04X`, 0xd800+(c>>10), 0xdc00+(c&0x3ff))
				} else {
					fmt.Fprintf(b, `\u%04x`, c)
				}
			default:
				b.WriteRune(c)
			}
		}
		b.WriteByte('"')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			writeJSON(r, b, e)
		}
		ws()
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		keys := sortedKeys(v)
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			writeJSON(r, b, k)
			b.WriteByte(':')
			ws()
			writeJSON(r, b, v[k])
		}
		ws()
		b.WriteByte('}')
	}
}

// cmpReporter collects go-cmp's differing places in Parity's path syntax,
// and the arrays where go-cmp aligned elements at different indices.
type cmpReporter struct {
	path      cmp.Path
	diffs     []string
	realigned map[string]bool
}

func (r *cmpReporter) PushStep(ps cmp.PathStep) { r.path = append(r.path, ps) }
func (r *cmpReporter) PopStep()                 { r.path = r.path[:len(r.path)-1] }
func (r *cmpReporter) Report(rs cmp.Result) {
	if rs.Equal() {
		return
	}
	r.diffs = append(r.diffs, r.render())
}

func (r *cmpReporter) render() string {
	var b []byte
	first := true
	for _, st := range r.path {
		switch st := st.(type) {
		case cmp.MapIndex:
			b = appendKeySeg(b, []byte(st.Key().String()), first)
			first = false
		case cmp.SliceIndex:
			ix, iy := st.SplitKeys()
			if ix != iy {
				r.realigned[string(b)] = true
			}
			i := ix
			if i < 0 {
				i = iy
			}
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, ']')
			first = false
		}
	}
	if len(b) == 0 {
		return "$"
	}
	return string(b)
}

// normalise truncates every path below an array that go-cmp realigned to
// that array: there, go-cmp's edit script and Parity's prefix/suffix
// alignment may legitimately name different elements.
func normalise(paths []string, realigned map[string]bool) []string {
	out := map[string]bool{}
	for _, p := range paths {
		best := p
		for a := range realigned {
			if (p == a || strings.HasPrefix(p, a+"[") || a == "" && strings.HasPrefix(p, "[")) && len(a) < len(best) {
				best = a
			}
		}
		if best == "" {
			best = "$"
		}
		out[best] = true
	}
	s := make([]string, 0, len(out))
	for p := range out {
		s = append(s, p)
	}
	sort.Strings(s)
	return s
}

// canonical renders v with arrays sorted recursively, so that two values
// are equal as nested multisets exactly when their canonical forms are.
func canonical(v any) string {
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = canonical(e)
		}
		sort.Strings(parts)
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		var parts []string
		for _, k := range sortedKeys(v) {
			parts = append(parts, strconv.Quote(k)+":"+canonical(v[k]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDifferential(t *testing.T) {
	modes := []struct {
		name      string
		rules     Rules
		opts      cmp.Options
		mutations []mutation
		paths     bool // compare the sets of differing paths, not just verdicts
	}{
		{name: "exact", paths: true,
			mutations: []mutation{mutReplace, mutDelete, mutAdd, mutNudge, mutShuffle, mutInsert}},
		{name: "tolerance", paths: true,
			rules:     Rules{Default: OperationRules{Numbers: []NumberRule{{Path: "**", Absolute: 0.01, Relative: 1e-6}}}},
			opts:      cmp.Options{cmpopts.EquateApprox(1e-6, 0.01)},
			mutations: []mutation{mutNudge, mutNudge, mutReplace}},
		{name: "ignore", paths: true,
			rules:     Rules{Default: OperationRules{Ignore: []string{"**.k3", "**.price"}}},
			opts:      cmp.Options{cmpopts.IgnoreMapEntries(func(k string, _ any) bool { return k == "k3" || k == "price" })},
			mutations: []mutation{mutReplace, mutDelete, mutAdd, mutInsert}},
		{name: "unordered",
			rules:     Rules{Default: OperationRules{Arrays: []ArrayRule{{Path: "**", Unordered: true}}}},
			opts:      cmp.Options{cmpopts.SortSlices(func(a, b any) bool { return canonical(a) < canonical(b) })},
			mutations: []mutation{mutShuffle, mutShuffle, mutReplace, mutInsert}},
	}
	n := 3000
	if testing.Short() || raceEnabled {
		n = 300
	}
	for mi, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			d, err := Compile(m.rules)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(uint64(mi), 42))
			matches := 0
			for i := 0; i < n; i++ {
				root := genRoot(r)
				cand := deepCopy(root)
				for k := r.IntN(4); k > 0; k-- {
					cand = mutateDoc(r, cand, m.mutations)
				}
				var ja, jb strings.Builder
				writeJSON(r, &ja, root)
				writeJSON(r, &jb, cand)
				check(t, d, m.opts, m.paths, ja.String(), jb.String())
				if t.Failed() {
					return
				}
				if d.Values([]byte(ja.String()), []byte(jb.String())).Verdict == VerdictMatch {
					matches++
				}
			}
			t.Logf("%d of %d cases matched", matches, n)
			// Both outcomes must be well represented for the test to mean anything.
			if matches < n/10 || matches > n*9/10 {
				t.Errorf("%d of %d cases matched; the generator is unbalanced", matches, n)
			}
		})
	}
}

func check(t *testing.T, d *Differ, opts cmp.Options, comparePaths bool, a, b string) {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("generated invalid JSON %s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("generated invalid JSON %s: %v", b, err)
	}
	rep := &cmpReporter{realigned: map[string]bool{}}
	want := cmp.Equal(va, vb, append(opts, cmp.Reporter(rep))...)
	got := d.ExplainValues("", []byte(a), []byte(b))
	// The hot path finds exactly the explanation's pattern set and signature.
	sameShape(t, d.Values([]byte(a), []byte(b)), got)
	p := pair("op", obs(a, "", ""), obs(b, "", ""))
	sameShape(t, d.Judge(p), d.Explain(p))
	if (got.Verdict == VerdictMatch) != want {
		t.Fatalf("verdict %s, go-cmp equal=%v\ncontrol:   %s\ncandidate: %s\ndiffs: %+v\ncmp.Diff: %s", got.Verdict, want, a, b, got.Diffs, cmp.Diff(va, vb, opts...))
	}
	if !comparePaths || want || got.Truncated {
		return
	}
	var mine []string
	for _, df := range got.Diffs {
		mine = append(mine, df.Path)
	}
	gp, mp := normalise(rep.diffs, rep.realigned), normalise(mine, rep.realigned)
	if !slices.Equal(gp, mp) {
		t.Fatalf("paths differ\n go-cmp: %q\n parity: %q\ncontrol:   %s\ncandidate: %s\ncmp.Diff: %s", gp, mp, a, b, cmp.Diff(va, vb, opts...))
	}
	for _, df := range got.Diffs {
		if !utf8.ValidString(df.Control) || !utf8.ValidString(df.Candidate) || !utf8.ValidString(df.Path) {
			t.Fatalf("invalid UTF-8 in %+v", df)
		}
	}
}

// genRoot returns a random document: an object of three members or an
// array of two, each a random value.
func genRoot(r *rand.Rand) any {
	if r.IntN(2) == 0 {
		return map[string]any{"a": genValue(r, 4), "items": genValue(r, 4), "k3": genValue(r, 3)}
	}
	return []any{genValue(r, 4), genValue(r, 4)}
}
