package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// Reformatting a document changes nothing in a result: the flat token scan
// that settles reformatted values, and what the walk learns from it where it
// fails, agree with the walk of compact text.
func TestReformatted(t *testing.T) {
	rules, err := Compile(Rules{Default: OperationRules{
		Ignore:            []string{"meta.etag"},
		Numbers:           []NumberRule{{Path: "items[*].price", Absolute: 0.5}},
		Arrays:            []ArrayRule{{Path: "items", Key: "id"}, {Path: "tags", Unordered: true}},
		NullEqualsMissing: []string{"**"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	format := func(v []byte, prefix, indent string) []byte {
		if indent == "compact" {
			return v
		}
		var b bytes.Buffer
		if err := json.Indent(&b, v, prefix, indent); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	styles := [][2]string{{"", "compact"}, {"", "  "}, {"", "\t"}, {" ", ""}}
	control, _ := json.Marshal(benchDoc(4096))
	for n := 0; n <= 20; n++ {
		doc := benchDoc(4096)
		mutate(doc, n)
		candidate, _ := json.Marshal(doc)
		for _, d := range []*Differ{Exact(), rules} {
			want := d.ExplainValues("", control, candidate)
			for _, sa := range styles {
				for _, sb := range styles {
					a, b := format(control, sa[0], sa[1]), format(candidate, sb[0], sb[1])
					got := d.ExplainValues("", a, b)
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%d changes, control %q, candidate %q:\n got %+v\nwant %+v", n, sa, sb, got, want)
					}
					sameShape(t, d.Values(a, b), got)
				}
			}
		}
	}
	// A difference anywhere in a reformatted document, including in the
	// members the scan has already passed.
	for i := 0; i < 40; i++ {
		a := fmt.Sprintf(`{"a":[1,2,{"b":[%d,4]}],"c":{"d":"e","f":[{"g":1},{"g":%d}]},"h":%d}`, i%3, i%5, i%7)
		b := fmt.Sprintf(`{"a": [1, 2, {"b": [%d, 4]}], "c": {"d": "e", "f": [{"g": 1}, {"g": %d}]}, "h": %d}`, i%2, i%4, i%6)
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(b)); err != nil {
			t.Fatal(err)
		}
		want := Exact().ExplainValues("", []byte(a), compact.Bytes())
		got := Exact().ExplainValues("", []byte(a), []byte(b))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s vs %s:\n got %+v\nwant %+v", a, b, got, want)
		}
	}
}
