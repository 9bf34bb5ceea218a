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
			if n := testing.AllocsPerRun(200, func() { c.d.Explain(p) }); n != 0 {
				t.Errorf("Explain allocates %v times per call", n)
			}
		})
	}
	// Verdicts about errors allocate nothing either.
	p := pair("op", obs("", "boom", ""), obs("", "boom", envelope.StatusError))
	if n := testing.AllocsPerRun(200, func() { Exact().Judge(p) }); n != 0 {
		t.Errorf("Judge of two errors allocates %v times per call", n)
	}
}

// Judging a mismatch allocates nothing, however many differences there
// are, once the scratch has seen the pattern set: the patterns, their text
// and the signature are interned (Result.Patterns copies them on demand).
// Explaining it allocates twice: Diffs and one string with all the Diffs'
// text.
func TestAllocsMismatch(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so allocation counts are meaningless")
	}
	const judgeAllocs, explainAllocs = 0, 2
	rules, err := Compile(Rules{Default: OperationRules{
		Ignore:  []string{"meta.etag"},
		Numbers: []NumberRule{{Path: "items[*].price", Absolute: 0.01}},
		Arrays:  []ArrayRule{{Path: "tags", Unordered: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b2Cases() {
		for _, d := range []struct {
			name string
			d    *Differ
		}{{"exact", Exact()}, {"rules", rules}} {
			p := pair("op", obs(string(c.control), "", ""), obs(string(c.candidate), "", ""))
			r := d.d.Explain(p)
			if r.Verdict != VerdictMismatch {
				continue
			}
			t.Run(c.name+"/"+d.name, func(t *testing.T) {
				if n := testing.AllocsPerRun(200, func() { d.d.Judge(p) }); n > judgeAllocs {
					t.Errorf("Judge allocates %v times per call, want at most %d (%d differences)", n, judgeAllocs, len(r.Diffs))
				}
				if n := testing.AllocsPerRun(200, func() { d.d.Values(c.control, c.candidate) }); n > judgeAllocs {
					t.Errorf("Values allocates %v times per call, want at most %d", n, judgeAllocs)
				}
				if n := testing.AllocsPerRun(200, func() { d.d.Explain(p) }); n > explainAllocs {
					t.Errorf("Explain allocates %v times per call, want at most %d", n, explainAllocs)
				}
			})
		}
	}
}
