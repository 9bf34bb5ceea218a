package diff

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
)

// fuzzDiffers are rule sets the fuzzers pick from.
var fuzzDiffers = func() []*Differ {
	rules := []Rules{
		{},
		{MaxDiffs: 1, MaxValueBytes: 5, MaxDepth: 20},
		{Default: OperationRules{
			Ignore:             []string{"**.a", "b[*]"},
			Numbers:            []NumberRule{{Path: "**", Absolute: 0.5, Relative: 0.01}},
			Arrays:             []ArrayRule{{Path: "*", Unordered: true}, {Path: "**", Key: "id"}},
			Timestamps:         []TimestampRule{{Path: "**.t", Tolerance: Duration(time.Second)}},
			Strings:            []StringRule{{Path: "**", Trim: true, Fold: true}},
			NumericStrings:     []string{"**"},
			NullEqualsMissing:  []string{"**"},
			EmptyEqualsMissing: []string{"x.**"},
			Errors:             []ErrorClass{{Class: "nf", Regexp: "(?i)not.found"}, {Class: "nf", Contains: "no rows"}},
		}},
		{Default: OperationRules{Arrays: []ArrayRule{{Path: "**", Unordered: true}}, Timestamps: []TimestampRule{{Path: "**"}}}},
	}
	var ds []*Differ
	for _, r := range rules {
		d, err := Compile(r)
		if err != nil {
			panic(err)
		}
		ds = append(ds, d)
	}
	return ds
}()

func FuzzValues(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":1,"b":[1,2,3]}`, `{"b":[3,2,1],"a":1.0}`},
		{`[{"id":1,"t":"2024-01-01T00:00:00Z"}]`, `[{"id":1,"t":1704067200}]`},
		{`{"x":{"y":null}}`, `{"x":{}}`},
		{`{"a":"\u00e9","a":2}`, `{"a":2}`},
		{`1e400`, `10e399`},
		{`[[[[[]]]]]`, `[[[[{}]]]]`},
		{"\"\xff\"", `""`},
		{``, `null`},
	} {
		for i := range fuzzDiffers {
			f.Add([]byte(s[0]), []byte(s[1]), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte, which uint8) {
		d := fuzzDiffers[int(which)%len(fuzzDiffers)]
		r := d.ExplainValues("", a, b)
		checkResult(t, d, r)
		sameShape(t, d.Values(a, b), r)
		rev := d.ExplainValues("", b, a)
		checkResult(t, d, rev)
		sameShape(t, d.Values(b, a), rev)
		if (r.Verdict == VerdictMatch) != (rev.Verdict == VerdictMatch) && d == Exact() {
			t.Errorf("exact comparison is not symmetric: %s vs %s", r.Verdict, rev.Verdict)
		}
		validA, validB := fuzzValid(t, d, a), fuzzValid(t, d, b)
		if (r.Verdict == VerdictInvalidJSON) != (!validA || !validB) {
			t.Errorf("verdict %s (%s), valid %v %v", r.Verdict, r.Reason, validA, validB)
		}
		if validA && len(a) > 0 {
			if self := d.Values(a, a); self.Verdict != VerdictMatch {
				t.Errorf("a value differs from itself: %+v", self)
			}
			if self := d.Values(a, append([]byte(" "), a...)); self.Verdict != VerdictMatch {
				t.Errorf("a value differs from itself with a space: %+v", self)
			}
		}
		// Exact agrees with encoding/json where that can decode both.
		if d == Exact() && validA && validB && len(a) > 0 && len(b) > 0 {
			var va, vb any
			if json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil {
				if r.Verdict == VerdictMatch && !reflect.DeepEqual(va, vb) {
					t.Errorf("match, but encoding/json decodes different values: %#v %#v", va, vb)
				}
				if r.Verdict == VerdictMismatch && reflect.DeepEqual(va, vb) && !bigNumbers(a, b) {
					t.Errorf("mismatch, but encoding/json decodes equal values: %+v", r.Diffs)
				}
			}
		}
	})
}

// fuzzValid is whether the parser should accept v: what json.Valid accepts,
// minus invalid UTF-8 and nesting beyond the limit. Empty means absent.
func fuzzValid(t *testing.T, d *Differ, v []byte) bool {
	if len(v) == 0 {
		return true
	}
	var p parser
	ok := p.parse(v, d.maxDepth)
	if ok && !json.Valid(v) {
		t.Errorf("parser accepts what encoding/json rejects: %q", v)
	}
	if !ok && json.Valid(v) && !strings.Contains(p.err.msg, "UTF-8") && !strings.Contains(p.err.msg, "depth limit") {
		t.Errorf("parser rejects valid JSON %q: %v", v, &p.err)
	}
	return ok
}

// bigNumbers reports whether the texts hold numbers float64 cannot tell
// apart, where exact comparison and encoding/json legitimately disagree.
func bigNumbers(a, b []byte) bool {
	digits := 0
	for _, c := range append(append([]byte{}, a...), b...) {
		if c >= '0' && c <= '9' {
			digits++
			if digits > 15 {
				return true
			}
		} else if c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+' {
			digits = 0
		}
	}
	return false
}

func checkResult(t *testing.T, d *Differ, r Result) {
	t.Helper()
	if strings.Contains(r.Reason, "internal error") {
		t.Fatalf("internal error: %s", r.Reason)
	}
	switch r.Verdict {
	case VerdictMatch, VerdictInvalidJSON:
		if len(r.Diffs) > 0 || r.Signature != "" {
			t.Errorf("%s with diffs %+v / signature %q", r.Verdict, r.Diffs, r.Signature)
		}
	case VerdictMismatch:
		if len(r.Diffs) == 0 || len(r.Diffs) > d.maxDiffs || r.Signature == "" || len(r.Patterns()) == 0 {
			t.Errorf("mismatch with %d diffs, signature %q, patterns %v", len(r.Diffs), r.Signature, r.Patterns())
		}
		for _, df := range r.Diffs {
			if _, err := parsePattern(df.Pattern); err != nil {
				t.Errorf("pattern %q does not parse: %v", df.Pattern, err)
			}
			if len(df.Control) > d.maxValueBytes+len("…") || len(df.Candidate) > d.maxValueBytes+len("…") {
				t.Errorf("values longer than %d: %q %q", d.maxValueBytes, df.Control, df.Candidate)
			}
		}
	default:
		if r.Verdict != VerdictMatch {
			t.Errorf("Values returned verdict %s", r.Verdict)
		}
	}
}

var fuzzStatuses = []envelope.Status{"", envelope.StatusOK, envelope.StatusError, envelope.StatusTimeout, envelope.StatusSkipped, envelope.StatusPanic, "bogus"}

func FuzzJudge(f *testing.F) {
	f.Add([]byte(`{"a":1}`), []byte(`{"a":2}`), "", "", uint8(0), uint8(0), "op", uint8(0))
	f.Add([]byte(``), []byte(``), "sql: no rows in result set", "Not Found", uint8(2), uint8(2), "op", uint8(2))
	f.Add([]byte(`1`), []byte(``), "", "deadline", uint8(1), uint8(3), "op", uint8(1))
	f.Add([]byte(`1`), []byte(`1`), "", "", uint8(4), uint8(5), "", uint8(3))
	f.Fuzz(func(t *testing.T, a, b []byte, errA, errB string, sa, sb uint8, op string, which uint8) {
		d := fuzzDiffers[int(which)%len(fuzzDiffers)]
		p := pair(op, envelope.Observation{Value: a, Error: errA, Status: fuzzStatuses[int(sa)%len(fuzzStatuses)]},
			envelope.Observation{Value: b, Error: errB, Status: fuzzStatuses[int(sb)%len(fuzzStatuses)]})
		r := d.Judge(p)
		sameShape(t, r, d.Explain(p))
		if strings.Contains(r.Reason, "internal error") {
			t.Fatalf("internal error: %s", r.Reason)
		}
		co, ca := p.Control.Outcome(), p.Candidate.Outcome()
		var want []Verdict
		switch {
		case co == envelope.StatusSkipped || ca == envelope.StatusSkipped:
			want = []Verdict{VerdictWriteSkipped}
		case co == envelope.StatusOK && ca == envelope.StatusOK:
			want = []Verdict{VerdictMatch, VerdictMismatch, VerdictInvalidJSON}
			if v := d.Values(a, b); v.Verdict != r.Verdict {
				t.Errorf("Judge %s but Values %s", r.Verdict, v.Verdict)
			}
		case ca == envelope.StatusTimeout && co == envelope.StatusOK:
			want = []Verdict{VerdictCandidateTimeout}
		case co != envelope.StatusOK && ca == envelope.StatusOK:
			want = []Verdict{VerdictControlError}
		case ca != envelope.StatusOK && co == envelope.StatusOK:
			want = []Verdict{VerdictCandidateError}
		default:
			want = []Verdict{VerdictBothErrorSame, VerdictBothErrorDiff}
		}
		found := false
		for _, v := range want {
			found = found || v == r.Verdict
		}
		if !found {
			t.Errorf("statuses %q/%q: verdict %s, want one of %v", co, ca, r.Verdict, want)
		}
	})
}
