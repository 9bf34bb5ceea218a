package diff

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	cases := []struct {
		name               string
		control, candidate string
		contains           []string // substrings of the rendering; none means ""
		err                string
	}{
		{name: "equal", control: `{"a":[1,2]}`, candidate: `{"a": [1, 2.0]}`},
		{name: "changed leaf", control: `{"a":1,"b":"x"}`, candidate: `{"a":2,"b":"x"}`, contains: []string{`-`, `"a": float64(1)`, `+`, `"a": float64(2)`}},
		{name: "missing member", control: `{"a":1,"gone":true}`, candidate: `{"a":1}`, contains: []string{`-`, `"gone": bool(true)`}},
		{name: "absent candidate", control: `1`, candidate: ``, contains: []string{`-`, `float64(1)`}},
		{name: "invalid control", control: `{`, candidate: `{}`, err: "diff: render control value: unexpected end of JSON input"},
		{name: "invalid candidate", control: `{}`, candidate: `[1,]`, err: "diff: render candidate value: invalid character ']'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Render([]byte(c.control), []byte(c.candidate))
			if c.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), c.err) {
					t.Fatalf("error = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.contains) == 0 && got != "" {
				t.Errorf("rendering of equal values = %q, want empty", got)
			}
			for _, s := range c.contains {
				if !strings.Contains(got, s) {
					t.Errorf("rendering lacks %q:\n%s", s, got)
				}
			}
		})
	}
}
