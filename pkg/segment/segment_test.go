package segment

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		def  Definition
		want string // empty: valid
	}{
		{"two attributes", Definition{Attrs: []string{"country", "plan"}, Cap: 100}, ""},
		{"no attributes", Definition{Attrs: nil, Cap: 1}, ""},
		{"largest cap", Definition{Cap: MaxCap}, ""},
		{"cap zero", Definition{Attrs: []string{"a"}}, "cap: 0"},
		{"cap too large", Definition{Cap: MaxCap + 1}, "cap: 10001"},
		{"empty name", Definition{Attrs: []string{""}, Cap: 1}, "attrs[0]"},
		{"comma", Definition{Attrs: []string{"a", "b,c"}, Cap: 1}, "attrs[1]"},
		{"equals sign", Definition{Attrs: []string{"a=b"}, Cap: 1}, "attrs[0]"},
		{"space", Definition{Attrs: []string{"a b"}, Cap: 1}, "attrs[0]"},
		{"repeated", Definition{Attrs: []string{"a", "a"}, Cap: 1}, "listed twice"},
		{"too many", Definition{Attrs: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}, Cap: 1}, "at most 8"},
	}
	for _, tt := range tests {
		err := tt.def.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tt.name, err)
		case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want ErrInvalid naming %q", tt.name, err, tt.want)
		}
	}
}

func TestKey(t *testing.T) {
	d := Definition{Attrs: []string{"country", "plan"}, Cap: 10}
	key, vals := d.Key(map[string]string{"country": "IN", "plan": "pro,max", "id": "u1"})
	if key != "country=IN,plan=pro_max" || vals["plan"] != "pro_max" || len(vals) != 2 {
		t.Errorf("Key = %q, %v", key, vals)
	}
	if key, _ := d.Key(nil); key != "country=(none),plan=(none)" {
		t.Errorf("Key of no attributes = %q", key)
	}
	if key, vals := (Definition{Cap: 1}).Key(map[string]string{"country": "IN"}); key != All || vals != nil {
		t.Errorf("Key without attributes = %q, %v; want %q", key, vals, All)
	}
	if !d.Equal(Definition{Attrs: []string{"country", "plan"}, Cap: 10}) || d.Equal(Definition{Attrs: []string{"plan", "country"}, Cap: 10}) {
		t.Error("Equal: order of attributes must matter, nothing else differs")
	}
}

// TestAdmission: known names stay, new ones are admitted in order up to the
// limit, the other name always passes and never counts.
func TestAdmission(t *testing.T) {
	known := map[string]bool{"a": true, "b": true}
	ad := NewAdmission(4, 2, Other, func(n string) bool { return known[n] })
	type res struct{ ok, fresh bool }
	for _, step := range []struct {
		name string
		want res
	}{
		{"a", res{true, false}},
		{Other, res{true, false}},
		{"c", res{true, true}},
		{"c", res{true, false}}, // admitted a moment ago
		{"d", res{true, true}},
		{"e", res{false, false}}, // 4 admitted: the limit
		{"b", res{true, false}},
		{Other, res{true, false}},
	} {
		ok, fresh := ad.Admit(step.name)
		if (res{ok, fresh}) != step.want {
			t.Errorf("Admit(%q) = %v, %v; want %+v", step.name, ok, fresh, step.want)
		}
	}
}
