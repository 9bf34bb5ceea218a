package diff

import (
	"fmt"
	"testing"
)

func TestPatternMatches(t *testing.T) {
	tests := []struct {
		pattern string
		path    []any
		match   bool
		below   bool
	}{
		{"user.email", []any{"user", "email"}, true, false},
		{"user.email", []any{"user"}, false, true},
		{"user.email", []any{"user", "name"}, false, false},
		{"items[*].card", []any{"items", 3, "card"}, true, false},
		{"items[*].card", []any{"items", "x", "card"}, false, false},
		{"items[*].card", []any{"items"}, false, true},
		{"**.ssn", []any{"a", 1, "ssn"}, true, true}, // a nested "ssn" inside would match too
		{"**.ssn", []any{"ssn"}, true, true},
		{"**.ssn", []any{"a", 1}, false, true},
		{"meta.**", []any{"meta"}, true, true},
		{"meta.**", []any{"meta", "x", 2}, true, true},
		{"*.etag", []any{"x", "etag"}, true, false},
		{"$", nil, true, false},
		{`["we.ird"].x`, []any{"we.ird", "x"}, true, false},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
		}
		if got := p.Matches(tt.path); got != tt.match {
			t.Errorf("%q.Matches(%v) = %v, want %v", tt.pattern, tt.path, got, tt.match)
		}
		if got := p.MatchesBelow(tt.path); got != tt.below {
			t.Errorf("%q.MatchesBelow(%v) = %v, want %v", tt.pattern, tt.path, got, tt.below)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := map[string]string{
		"items[3].price":   "[items 3 price]",
		"$":                "[]",
		`["we.ird"].x[0]`:  "[we.ird x 0]",
		`a["q\"]uote"].b`:  `[a q"]uote b]`,
		"a.b-c_d[12][3].e": "[a b-c_d 12 3 e]",
	}
	for in, want := range tests {
		p, err := ParsePath(in)
		if err != nil || fmt.Sprint(p) != want && !(want == "[]" && len(p) == 0) {
			t.Errorf("ParsePath(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"a[3", "a..b?", "a[x]"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted", bad)
		}
	}
}

// Every difference's Path must parse and be matched by its own Pattern.
func TestDifferencePathsMatchTheirPatterns(t *testing.T) {
	res := Exact().ExplainValues("", []byte(`{"items":[{"p":1},{"p":2}],"we.ird":{"x":1},"a":[[1]]}`),
		[]byte(`{"items":[{"p":1},{"p":3}],"we.ird":{"x":2},"a":[[2]]}`))
	if len(res.Diffs) != 3 {
		t.Fatalf("diffs %+v", res.Diffs)
	}
	for _, d := range res.Diffs {
		path, err := ParsePath(d.Path)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", d.Path, err)
		}
		p, err := ParsePattern(d.Pattern)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Matches(path) {
			t.Errorf("pattern %q does not match its path %q (%v)", d.Pattern, d.Path, path)
		}
	}
}
