package diff

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/parityhq/parity/pkg/envelope"
)

// Judging equal values allocates nothing, with or without rules, whether the
// texts are identical, reformatted or reordered (B2).
func TestAllocsEqual(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so allocation counts are meaningless")
	}
	control, _ := json.Marshal(benchDoc(4096))
	var indented bytes.Buffer
	json.Indent(&indented, control, "", "\t")
	reordered := []byte(`{"b":[1,2,{"y":"é","x":null}],"a":{"k":"v\u0041"},"c":1.50}`)
	reorderedCtl := []byte(`{"a":{"k":"vA"},"c":1.5,"b":[1,2,{"x":null,"y":"\u00e9"}]}`)
	rules, err := Compile(Rules{Default: OperationRules{
		Ignore:            []string{"meta.etag", "**.updated_at"},
		Numbers:           []NumberRule{{Path: "items[*].price", Absolute: 0.01}},
		Arrays:            []ArrayRule{{Path: "items", Key: "id"}, {Path: "tags", Unordered: true}},
		Strings:           []StringRule{{Path: "**", Trim: true}},
		NullEqualsMissing: []string{"**"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		d    *Differ
		a, b []byte
	}{
		{"identical", Exact(), control, bytes.Clone(control)},
		{"indented", Exact(), control, indented.Bytes()},
		{"reordered keys", Exact(), reorderedCtl, reordered},
		{"rules, indented", rules, control, indented.Bytes()},
		{"rules, reordered", rules, reorderedCtl, reordered},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := c.d.Values(c.a, c.b); r.Verdict != VerdictMatch {
				t.Fatalf("verdict %s: %+v", r.Verdict, r.Diffs)
			}
			if n := testing.AllocsPerRun(200, func() { c.d.Values(c.a, c.b) }); n != 0 {
				t.Errorf("Values allocates %v times per call", n)
			}
			p := pair("op", obs(string(c.a), "", ""), obs(string(c.b), "", ""))
			if n := testing.AllocsPerRun(200, func() { c.d.Judge(p) }); n != 0 {
				t.Errorf("Judge allocates %v times per call", n)
			}
		})
	}
	// Verdicts about errors allocate nothing either.
	p := pair("op", obs("", "boom", ""), obs("", "boom", envelope.StatusError))
	if n := testing.AllocsPerRun(200, func() { Exact().Judge(p) }); n != 0 {
		t.Errorf("Judge of two errors allocates %v times per call", n)
	}
}
