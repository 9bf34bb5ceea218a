package diff

import (
	"fmt"
	"slices"
	"testing"
)

// Results do not share mutable memory: changing the patterns a result
// returned changes neither that result's nor the next one's, though their
// pattern sets are interned.
func TestResultsIndependent(t *testing.T) {
	a, b := []byte(`{"x":[1,2],"y":"a"}`), []byte(`{"x":[1,3],"y":"b"}`)
	want := []PatternKind{{"x[*]", Changed}, {"y", Changed}}
	r1 := Exact().Values(a, b)
	got := r1.Patterns()
	if !slices.Equal(got, want) {
		t.Fatalf("patterns %v, want %v", got, want)
	}
	got[0] = PatternKind{"oops", Extra}
	if again := r1.Patterns(); !slices.Equal(again, want) {
		t.Errorf("patterns %v after changing the slice they returned, want %v", again, want)
	}
	r2 := Exact().Values(a, b)
	if p := r2.Patterns(); !slices.Equal(p, want) {
		t.Errorf("patterns %v after changing an earlier result's, want %v", p, want)
	}
	if p := r2.Patterns(); len(p) > 0 && &p[0] == &r1.Patterns()[0] {
		t.Error("two calls return the same slice")
	}
	if r := Exact().Values(a, a); r.Patterns() != nil || r.Describe() != "" {
		t.Errorf("a match has patterns %v, described %q", r.Patterns(), r.Describe())
	}
}

// The pattern tree and set cache kept between calls are bounded and start
// over when full; results stay exact throughout, for new patterns, for sets
// that are subsets, supersets or the same patterns with other kinds of sets
// seen before, and across the restarts.
func TestPatternCache(t *testing.T) {
	type tc struct{ a, b string }
	var cases []tc
	for i := 0; i < 3*maxPatNodes; i++ {
		// A new pattern each time, which fills the tree.
		cases = append(cases, tc{fmt.Sprintf(`{"k%d":1,"z":[1]}`, i), fmt.Sprintf(`{"k%d":2,"z":[2]}`, i)})
		if i%97 == 0 {
			// Sets over the same few patterns, with other kinds.
			cases = append(cases,
				tc{`{"a":1,"b":1}`, `{"a":2,"b":2}`},
				tc{`{"a":1,"b":1}`, `{"a":2,"b":1}`},
				tc{`{"a":1,"b":1}`, `{"a":1,"b":"1"}`},
				tc{`{"a":1,"b":1}`, `{"a":1}`},
				tc{`{"a":1}`, `{"a":1,"b":1}`},
				tc{`{"a":1,"b":1}`, `{"b":2}`},
			)
		}
	}
	for i := 0; i < maxPatSets+10; i++ {
		// Many sets over few patterns, which fills the set cache.
		var a, b []byte
		a, b = append(a, '['), append(b, '[')
		for k := 0; k < 12; k++ {
			if k > 0 {
				a, b = append(a, ','), append(b, ',')
			}
			a = fmt.Appendf(a, `{"p%d":1}`, k)
			if i>>k&1 == 1 {
				b = fmt.Appendf(b, `{"p%d":2}`, k)
			} else {
				b = fmt.Appendf(b, `{"p%d":1}`, k)
			}
		}
		cases = append(cases, tc{string(append(a, ']')), string(append(b, ']'))})
	}
	for i, c := range cases {
		got := Exact().ExplainValues("", []byte(c.a), []byte(c.b))
		sameShape(t, Exact().Values([]byte(c.a), []byte(c.b)), got)
		if t.Failed() {
			t.Fatalf("case %d: %s vs %s", i, c.a, c.b)
		}
	}
}

// numEqual's shortcut for numbers without exponents agrees with exact
// decimal comparison.
func TestNumEqual(t *testing.T) {
	for _, c := range []struct {
		a, b string
		eq   bool
	}{
		{"1", "1.0", true}, {"1.50", "1.5", true}, {"0", "-0", true}, {"-0.0", "0", true}, {"0.000", "-0", true},
		{"100", "100.00", true}, {"-0.5", "-0.50", true}, {"10", "1e1", true}, {"0.1", "1E-1", true},
		{"1", "2", false}, {"1.5", "1.05", false}, {"-1", "1", false}, {"10", "1", false}, {"0.5", "-0.5", false},
		{"784.42", "785.42", false}, {"12345678901234567890", "12345678901234567891", false}, {"100", "1e3", false},
	} {
		if got := numEqual([]byte(c.a), []byte(c.b)); got != c.eq {
			t.Errorf("numEqual(%s, %s) = %v", c.a, c.b, got)
		}
		if got := numEqual([]byte(c.b), []byte(c.a)); got != c.eq {
			t.Errorf("numEqual(%s, %s) = %v", c.b, c.a, got)
		}
	}
}
