package diff

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValuesRules(t *testing.T) {
	type ruleCase struct {
		rules Rules
		op    string
		valuesCase
	}
	sec := func(r OperationRules) Rules { return Rules{Default: r} }
	cases := []ruleCase{
		{rules: sec(OperationRules{Ignore: []string{"items[*].updated_at"}}), valuesCase: valuesCase{
			name: "ignore in array elements", control: `{"items":[{"a":1,"updated_at":1},{"a":2,"updated_at":2}]}`, candidate: `{"items":[{"a":1,"updated_at":5},{"a":3}]}`,
			verdict: VerdictMismatch, diffs: []Difference{df("items[1].a", "items[*].a", Changed, "2", "3")},
			explanation: "an ignored member may differ or be missing"}},
		{rules: sec(OperationRules{Ignore: []string{"*.etag"}}), valuesCase: valuesCase{
			name: "star is one member", control: `{"a":{"etag":1},"b":{"c":{"etag":1}}}`, candidate: `{"a":{"etag":2},"b":{"c":{"etag":2}}}`,
			verdict: VerdictMismatch, diffs: []Difference{df("b.c.etag", "b.c.etag", Changed, "1", "2")},
			explanation: "* matches exactly one object member; use ** for any depth"}},
		{rules: sec(OperationRules{Ignore: []string{"**.etag"}}), valuesCase: valuesCase{
			name: "globstar is any depth", control: `{"etag":0,"a":{"etag":1},"b":[{"c":{"etag":1}}]}`, candidate: `{"etag":9,"a":{"etag":2},"b":[{"c":{"etag":2}}]}`,
			verdict: VerdictMatch}},
		{rules: sec(OperationRules{Ignore: []string{"meta.**"}}), valuesCase: valuesCase{
			name: "globstar at the end covers the subtree and the member", control: `{"meta":{"x":[1]},"v":1}`, candidate: `{"v":1}`,
			verdict: VerdictMatch}},
		{rules: sec(OperationRules{Ignore: []string{`["we.ird"]`}}), valuesCase: valuesCase{
			name: "quoted keys in patterns", control: `{"we.ird":1,"we":{"ird":1}}`, candidate: `{"we.ird":2,"we":{"ird":2}}`,
			verdict: VerdictMismatch, diffs: []Difference{df("we.ird", "we.ird", Changed, "1", "2")}}},
		{rules: sec(OperationRules{Ignore: []string{"$"}}), valuesCase: valuesCase{
			name: "ignoring the root", control: `1`, candidate: `2`, verdict: VerdictMatch}},
		{rules: sec(OperationRules{Ignore: []string{"tags[*]"}}), valuesCase: valuesCase{
			name: "ignoring every element ignores the length", control: `{"tags":[1,2]}`, candidate: `{"tags":[3]}`, verdict: VerdictMatch}},
		{rules: sec(OperationRules{Numbers: []NumberRule{{Path: "**", Absolute: 0.01}}}), valuesCase: valuesCase{
			name: "absolute tolerance", control: `{"a":1.000,"b":[2.0],"c":3}`, candidate: `{"a":1.005,"b":[2.02],"c":3.01}`,
			verdict: VerdictMismatch, diffs: []Difference{df("b[0]", "b[*]", Changed, "2.0", "2.02")}}},
		{rules: sec(OperationRules{Numbers: []NumberRule{{Path: "price", Relative: 0.01}}}), valuesCase: valuesCase{
			name: "relative tolerance of the smaller magnitude", control: `{"price":100,"qty":100}`, candidate: `{"price":101,"qty":101}`,
			verdict: VerdictMismatch, diffs: []Difference{df("qty", "qty", Changed, "100", "101")},
			explanation: "|100-101| <= 0.01*min(100,101), as cmpopts.EquateApprox"}},
		{rules: sec(OperationRules{Numbers: []NumberRule{{Path: "**", Relative: 1e-9}}}), valuesCase: valuesCase{
			name: "tolerance beyond float64 falls back to exact", control: `[1e400]`, candidate: `[1.0000000001e400]`,
			verdict: VerdictMismatch, diffs: []Difference{df("[0]", "[*]", Changed, "1e400", "1.0000000001e400")}}},
		{rules: sec(OperationRules{Arrays: []ArrayRule{{Path: "tags", Unordered: true}}}), valuesCase: valuesCase{
			name: "unordered array equal", control: `{"tags":["a","b","b",{"x":1}]}`, candidate: `{"tags":[{"x":1},"b","a","b"]}`, verdict: VerdictMatch}},
		{rules: sec(OperationRules{Arrays: []ArrayRule{{Path: "tags", Unordered: true}}}), valuesCase: valuesCase{
			name: "unordered is a multiset", control: `{"tags":["a","b","b"]}`, candidate: `{"tags":["b","a","a"]}`,
			verdict: VerdictMismatch, diffs: []Difference{df("tags[2]", "tags[*]", Changed, `"b"`, `"a"`)},
			explanation: "unmatched elements are paired in order and compared; the path has the control index"}},
		{rules: sec(OperationRules{Arrays: []ArrayRule{{Path: "tags", Unordered: true}}}), valuesCase: valuesCase{
			name: "unordered leftovers", control: `{"tags":[1,2,3]}`, candidate: `{"tags":[3,1]}`,
			verdict: VerdictMismatch, diffs: []Difference{df("tags[1]", "tags[*]", Missing, "2", "")}}},
		{rules: sec(OperationRules{Arrays: []ArrayRule{{Path: "tags", Unordered: true}}, Numbers: []NumberRule{{Path: "tags[*]", Absolute: 0.5}}}), valuesCase: valuesCase{
			name: "unordered with tolerance", control: `{"tags":[1,2,3]}`, candidate: `{"tags":[3.2,1.1,2.4]}`, verdict: VerdictMatch}},
		{rules: sec(OperationRules{Arrays: []ArrayRule{{Path: "items", Key: "id"}}}), valuesCase: valuesCase{
			name: "keyed array", control: `{"items":[{"id":1,"p":10},{"id":2,"p":20},{"id":3,"p":30}]}`, candidate: `{"items":[{"id":3,"p":30},{"id":4,"p":40},{"id":1,"p":11}]}`,
			verdict: VerdictMismatch, diffs: []Difference{
				df("items[0].p", "items[*].p", Changed, "10", "11"),
				df("items[1]", "items[*]", Missing, `{"id":2,"p":20}`, ""),
				df("items[1]", "items[*]", Extra, "", `{"id":4,"p":40}`),
			},
			explanation: "matched elements are compared under the control index; unmatched ones are missing (control index) or extra (candidate index)"}},
		{rules: sec(OperationRules{Arrays: []ArrayRule{{Path: "items", Key: "id"}}}), valuesCase: valuesCase{
			name: "keyed array: key values compare exactly, without key, duplicates in order", control: `{"items":[{"id":1.0,"v":1},{"v":"a"},{"id":1,"v":2}]}`, candidate: `{"items":[{"v":"a"},{"id":1,"v":1},{"id":1,"v":2}]}`,
			verdict: VerdictMatch}},
		{rules: sec(OperationRules{Timestamps: []TimestampRule{{Path: "**.at", Tolerance: Duration(time.Second)}}}), valuesCase: valuesCase{
			name:      "timestamps across formats",
			control:   `{"a":{"at":"2024-01-02T03:04:05Z"},"b":{"at":"2024-01-02T03:04:05.5+01:00"},"c":{"at":1704164645},"d":{"at":"1704164645123"},"e":{"at":"2024-01-02T03:04:05Z"}}`,
			candidate: `{"a":{"at":1704164645000},"b":{"at":"2024-01-02T02:04:05Z"},"c":{"at":"2024-01-02T03:04:05.999999999Z"},"d":{"at":1704164645.5},"e":{"at":"2024-01-02T03:04:07Z"}}`,
			verdict:   VerdictMismatch, diffs: []Difference{df("e.at", "e.at", Changed, `"2024-01-02T03:04:05Z"`, `"2024-01-02T03:04:07Z"`)}}},
		{rules: sec(OperationRules{Timestamps: []TimestampRule{{Path: "at", Unit: "ms"}}}), valuesCase: valuesCase{
			name: "forced unit", control: `{"at":1000}`, candidate: `{"at":"1970-01-01T00:00:01Z"}`, verdict: VerdictMatch}},
		{rules: sec(OperationRules{Timestamps: []TimestampRule{{Path: "at"}}}), valuesCase: valuesCase{
			name: "not a time compares as usual", control: `{"at":"soon"}`, candidate: `{"at":"later"}`,
			verdict: VerdictMismatch, diffs: []Difference{df("at", "at", Changed, `"soon"`, `"later"`)}}},
		{rules: sec(OperationRules{NullEqualsMissing: []string{"**"}}), valuesCase: valuesCase{
			name: "null equals missing", control: `{"a":null,"b":{"c":null},"e":""}`, candidate: `{"b":{},"d":null}`,
			verdict: VerdictMismatch, diffs: []Difference{df("e", "e", Missing, `""`, "")}}},
		{rules: sec(OperationRules{EmptyEqualsMissing: []string{"**"}}), valuesCase: valuesCase{
			name: "empty equals missing", control: `{"a":"","b":[],"c":{},"d":null,"e":[0]}`, candidate: `{}`,
			verdict: VerdictMismatch, diffs: []Difference{df("e", "e", Missing, `[0]`, "")}}},
		{rules: sec(OperationRules{EmptyEqualsMissing: []string{"**"}}), valuesCase: valuesCase{
			name: "empty equals missing, absent value", control: `[]`, candidate: ``, verdict: VerdictMatch}},
		{rules: sec(OperationRules{Strings: []StringRule{{Path: "**", Trim: true, Fold: true}}}), valuesCase: valuesCase{
			name: "trim and fold", control: `{"e":" Ann@X.org\n","f":"Straße"}`, candidate: `{"e":"ann@x.ORG","f":"STRASSE"}`,
			verdict: VerdictMismatch, diffs: []Difference{df("f", "f", Changed, `"Straße"`, `"STRASSE"`)},
			explanation: "simple case folding (bytes.EqualFold), not full folding"}},
		{rules: sec(OperationRules{Strings: []StringRule{{Path: "name", Trim: true}}}), valuesCase: valuesCase{
			name: "trim only where configured", control: `{"name":" a","other":" a"}`, candidate: `{"name":"a","other":"a"}`,
			verdict: VerdictMismatch, diffs: []Difference{df("other", "other", Changed, `" a"`, `"a"`)}}},
		{rules: sec(OperationRules{NumericStrings: []string{"**"}}), valuesCase: valuesCase{
			name: "numeric strings", control: `{"a":42,"b":"1.50","c":"x","d":"1"}`, candidate: `{"a":"42","b":1.5,"c":1,"d":"1.0"}`,
			verdict: VerdictMismatch, diffs: []Difference{df("c", "c", TypeChanged, `"x"`, "1"), df("d", "d", Changed, `"1"`, `"1.0"`)},
			explanation: "a number equals a string holding it; two strings still compare as strings"}},
		{rules: sec(OperationRules{NumericStrings: []string{"**"}, Numbers: []NumberRule{{Path: "**", Absolute: 0.1}}}), valuesCase: valuesCase{
			name: "numeric strings with tolerance", control: `{"a":42}`, candidate: `{"a":"42.05"}`, verdict: VerdictMatch}},
		{rules: Rules{Default: OperationRules{Ignore: []string{"a"}}, Operations: map[string]OperationRules{"op": {Ignore: []string{"b"}}}}, op: "op", valuesCase: valuesCase{
			name: "operation rules add to the default", control: `{"a":1,"b":1,"c":1}`, candidate: `{"a":2,"b":2,"c":2}`,
			verdict: VerdictMismatch, diffs: []Difference{df("c", "c", Changed, "1", "2")}}},
		{rules: Rules{Default: OperationRules{Ignore: []string{"a"}}, Operations: map[string]OperationRules{"op": {Replace: true, Ignore: []string{"b"}}}}, op: "op", valuesCase: valuesCase{
			name: "replace drops the default", control: `{"a":1,"b":1}`, candidate: `{"a":2,"b":2}`,
			verdict: VerdictMismatch, diffs: []Difference{df("a", "a", Changed, "1", "2")}}},
		{rules: Rules{Default: OperationRules{Numbers: []NumberRule{{Path: "**", Absolute: 10}}}, Operations: map[string]OperationRules{"op": {Numbers: []NumberRule{{Path: "x", Absolute: 0}}}}}, op: "op", valuesCase: valuesCase{
			name: "the operation's rule wins a conflict", control: `{"x":1,"y":1}`, candidate: `{"x":2,"y":2}`,
			verdict: VerdictMismatch, diffs: []Difference{df("x", "x", Changed, "1", "2")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Compile(c.rules)
			if err != nil {
				t.Fatal(err)
			}
			checkValues(t, d, c.op, c.valuesCase)
		})
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name  string
		rules Rules
		want  string
	}{
		{"empty pattern", Rules{Default: OperationRules{Ignore: []string{"a", "b", ""}}}, `diff: rule default.ignore[2]: empty pattern`},
		{"double dot", Rules{Default: OperationRules{Ignore: []string{"a..b"}}}, `diff: rule default.ignore[0]: pattern "a..b" at offset 2: unexpected '.'`},
		{"trailing dot", Rules{Default: OperationRules{Ignore: []string{"a."}}}, `pattern ends with '.'`},
		{"index", Rules{Default: OperationRules{Ignore: []string{"a[3]"}}}, `array indices are not supported`},
		{"dot bracket", Rules{Default: OperationRules{Ignore: []string{"a.[*]"}}}, `'[' right after '.'`},
		{"bad quote", Rules{Default: OperationRules{Ignore: []string{`["a]`}}}, `unterminated`},
		{"space", Rules{Default: OperationRules{Ignore: []string{`a b`}}}, `expected '.' or '['`},
		{"negative tolerance", Rules{Default: OperationRules{Numbers: []NumberRule{{Path: "a", Absolute: -1}}}}, `diff: rule default.numbers[0]: absolute and relative must be finite and not negative`},
		{"array rule both", Rules{Default: OperationRules{Arrays: []ArrayRule{{Path: "a", Unordered: true, Key: "id"}}}}, `diff: rule default.arrays[0]: set exactly one of unordered and key`},
		{"array rule neither", Rules{Default: OperationRules{Arrays: []ArrayRule{{Path: "a"}}}}, `set exactly one of unordered and key`},
		{"time unit", Rules{Default: OperationRules{Timestamps: []TimestampRule{{Path: "a", Unit: "us"}}}}, `diff: rule default.timestamps[0]: unit "us"`},
		{"negative time tolerance", Rules{Default: OperationRules{Timestamps: []TimestampRule{{Path: "a", Tolerance: -1}}}}, `negative tolerance`},
		{"string rule empty", Rules{Default: OperationRules{Strings: []StringRule{{Path: "a"}}}}, `diff: rule default.strings[0]: set trim, fold or both`},
		{"error class empty", Rules{Default: OperationRules{Errors: []ErrorClass{{Contains: "x"}}}}, `diff: rule default.errors[0]: empty class`},
		{"error class both", Rules{Default: OperationRules{Errors: []ErrorClass{{Class: "c", Contains: "x", Regexp: "y"}}}}, `set exactly one of contains and regexp`},
		{"bad regexp", Rules{Default: OperationRules{Errors: []ErrorClass{{Class: "c", Regexp: "("}}}}, `diff: rule default.errors[0]: error parsing regexp`},
		{"operation rule", Rules{Operations: map[string]OperationRules{"get": {NullEqualsMissing: []string{"ok", "x[y"}}}}, `diff: rule operations["get"].null_equals_missing[1]: pattern`},
		{"operation name", Rules{Operations: map[string]OperationRules{"a.b": {}}}, `diff: rule operations["a.b"]: operation names`},
		{"default replace", Rules{Default: OperationRules{Replace: true}}, `diff: rule default.replace`},
		{"max diffs", Rules{MaxDiffs: -1}, `diff: rule max_diffs`},
		{"max depth", Rules{MaxDepth: 100000}, `diff: rule max_depth`},
		{"max value bytes", Rules{MaxValueBytes: 1 << 20}, `diff: rule max_value_bytes`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.rules)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Compile error = %v, want it to contain %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "diff: ") {
				t.Errorf("error %q lacks the diff: prefix", err)
			}
		})
	}
}

// Rules round-trip through JSON, so they can be stored and edited.
func TestRulesJSON(t *testing.T) {
	in := `{
  "version": 3,
  "max_diffs": 10,
  "default": {
    "ignore": ["**.etag", "meta.**"],
    "numbers": [{"path": "**", "absolute": 0.001, "relative": 1e-9}],
    "arrays": [{"path": "items", "key": "id"}, {"path": "tags", "unordered": true}],
    "timestamps": [{"path": "**.updated_at", "tolerance": "1.5s", "unit": "ms"}],
    "strings": [{"path": "email", "trim": true, "fold": true}],
    "numeric_strings": ["**"],
    "null_equals_missing": ["**"],
    "empty_equals_missing": ["tags"],
    "errors": [{"class": "not_found", "contains": "no rows"}, {"class": "not_found", "regexp": "(?i)not found"}]
  },
  "operations": {"get_user": {"replace": true, "ignore": ["session"]}}
}`
	var r Rules
	dec := json.NewDecoder(strings.NewReader(in))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Default.Timestamps[0].Tolerance != Duration(1500*time.Millisecond) {
		t.Errorf("tolerance = %v", r.Default.Timestamps[0].Tolerance)
	}
	if _, err := Compile(r); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Rules
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, back) {
		t.Errorf("round trip changed the rules:\n%+v\n%+v", r, back)
	}
	if err := json.Unmarshal([]byte(`{"path":"a","tolerance":5}`), &TimestampRule{}); err == nil {
		t.Error("a numeric tolerance was accepted")
	}
}

// Every rendered pattern parses back and matches its own place.
func TestPatternRoundTrip(t *testing.T) {
	keys := []string{"a", "we.ird", "x y", "*", "**", "[*]", `q"`, `b\s`, "\x01", "é", "", "0", "a-b_c"}
	for _, k := range keys {
		doc := `{` + string(appendQuoted(nil, []byte(k))) + `:{"z":[1]}}`
		r := Exact().ExplainValues("", []byte(doc), []byte(`{}`))
		if len(r.Diffs) != 1 {
			t.Fatalf("key %q: %+v", k, r)
		}
		pat := r.Diffs[0].Pattern
		d, err := Compile(Rules{Default: OperationRules{Ignore: []string{pat}}})
		if err != nil {
			t.Fatalf("key %q: pattern %q does not compile: %v", k, pat, err)
		}
		if got := d.ExplainValues("", []byte(doc), []byte(`{}`)); got.Verdict != VerdictMatch {
			t.Errorf("key %q: ignoring %q does not ignore it: %+v", k, pat, got.Diffs)
		}
	}
}
