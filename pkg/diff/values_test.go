package diff

import (
	"slices"
	"strings"
	"testing"
)

// df builds an expected Difference.
func df(path, pattern string, kind DiffKind, control, candidate string) Difference {
	return Difference{Path: path, Pattern: pattern, Kind: kind, Control: control, Candidate: candidate}
}

type valuesCase struct {
	name               string
	control, candidate string
	verdict            Verdict
	diffs              []Difference
	truncated          bool
	reason             string // a substring of Result.Reason
	explanation        string // why, when the case encodes a contract
}

// sameShape checks that the hot path's result (Judge, Values) is the
// explained one (Explain, ExplainValues) without the listed differences: the
// same verdict, pattern set and signature, and no Diffs.
func sameShape(t *testing.T, hot, explained Result) {
	t.Helper()
	if hot.Verdict != explained.Verdict || hot.Signature != explained.Signature || !slices.Equal(hot.Patterns(), explained.Patterns()) ||
		hot.PatternsTruncated != explained.PatternsTruncated || hot.RulesVersion != explained.RulesVersion || hot.Reason != explained.Reason {
		t.Errorf("hot path and explanation disagree:\n hot       %s %q %v (truncated %v) v%d %q\n explained %s %q %v (truncated %v) v%d %q",
			hot.Verdict, hot.Signature, hot.Patterns(), hot.PatternsTruncated, hot.RulesVersion, hot.Reason,
			explained.Verdict, explained.Signature, explained.Patterns(), explained.PatternsTruncated, explained.RulesVersion, explained.Reason)
	}
	if len(hot.Diffs) != 0 || hot.Truncated {
		t.Errorf("hot path lists differences: %+v (truncated %v)", hot.Diffs, hot.Truncated)
	}
	if explained.Verdict != VerdictMismatch {
		return
	}
	// The set is computed apart from the listed differences (and cached
	// between calls); when every difference is listed, it is theirs.
	if want := Signature(explained.Patterns()); explained.Signature != want {
		t.Errorf("signature %q, want Signature(patterns) = %q", explained.Signature, want)
	}
	if !explained.Truncated && !explained.PatternsTruncated {
		var want []PatternKind
		for _, d := range explained.Diffs {
			want = append(want, PatternKind{d.Pattern, d.Kind})
		}
		want = slices.Compact(sortPatterns(want))
		if !slices.Equal(explained.Patterns(), want) {
			t.Errorf("patterns %v, want those of the differences, %v", explained.Patterns(), want)
		}
	}
}

func checkValues(t *testing.T, d *Differ, op string, c valuesCase) {
	t.Helper()
	got := d.ExplainValues(op, []byte(c.control), []byte(c.candidate))
	sameShape(t, d.ValuesFor(op, []byte(c.control), []byte(c.candidate)), got)
	if got.Verdict != c.verdict {
		t.Errorf("verdict = %s, want %s (%s)\ndiffs: %+v\nreason: %s", got.Verdict, c.verdict, c.explanation, got.Diffs, got.Reason)
	}
	if !slices.Equal(got.Diffs, c.diffs) {
		t.Errorf("diffs (%s):\n got %+v\nwant %+v", c.explanation, got.Diffs, c.diffs)
	}
	if got.Truncated != c.truncated {
		t.Errorf("truncated = %v, want %v", got.Truncated, c.truncated)
	}
	if c.reason == "" && got.Reason != "" || !strings.Contains(got.Reason, c.reason) {
		t.Errorf("reason = %q, want it to contain %q", got.Reason, c.reason)
	}
	// The signature is derived from the patterns, and present exactly on a mismatch.
	if (got.Signature != "") != (got.Verdict == VerdictMismatch) {
		t.Errorf("signature %q with verdict %s", got.Signature, got.Verdict)
	}
	if got.Verdict == VerdictMismatch {
		if want := Signature(got.Patterns()); got.Signature != want {
			t.Errorf("signature %q, want Signature(patterns) = %q", got.Signature, want)
		}
		for _, d := range got.Diffs {
			if !slices.Contains(got.Patterns(), PatternKind{d.Pattern, d.Kind}) {
				t.Errorf("patterns %v lack the difference %+v", got.Patterns(), d)
			}
		}
	}
	if got.RulesVersion != d.version {
		t.Errorf("rules version %d, want %d", got.RulesVersion, d.version)
	}
}

func TestValuesExact(t *testing.T) {
	cases := []valuesCase{
		{name: "equal scalars", control: `1`, candidate: `1`, verdict: VerdictMatch},
		{name: "equal documents, other whitespace", control: `{"a": [1, 2, {"b": null}], "c": "x"}`, candidate: `{"a":[1,2,{"b":null}],"c":"x"}`, verdict: VerdictMatch},
		{name: "member order does not matter", control: `{"a":1,"b":2,"c":3}`, candidate: `{"c":3,"a":1,"b":2}`, verdict: VerdictMatch,
			explanation: "JSON objects are unordered; PostgreSQL jsonb reorders keys"},
		{name: "number spellings", control: `[1, 1.0, 1e2, -0, 0.5, 10]`, candidate: `[1.00, 1, 100, 0, 5e-1, 1E1]`, verdict: VerdictMatch,
			explanation: "numbers are compared as exact decimal values"},
		{name: "big integers differ exactly", control: `12345678901234567890`, candidate: `12345678901234567891`, verdict: VerdictMismatch,
			diffs:       []Difference{df("$", "$", Changed, "12345678901234567890", "12345678901234567891")},
			explanation: "both round to the same float64, but they are different numbers"},
		{name: "numbers beyond float64", control: `[1e400, 1e400]`, candidate: `[10e399, 2e400]`, verdict: VerdictMismatch,
			diffs: []Difference{df("[1]", "[*]", Changed, "1e400", "2e400")}},
		{name: "huge exponents compare by text", control: `[1e999999999999999999999, 1e999999999999999999999]`, candidate: `[1e999999999999999999999, 1e999999999999999999998]`, verdict: VerdictMismatch,
			diffs: []Difference{df("[1]", "[*]", Changed, "1e999999999999999999999", "1e999999999999999999998")}},
		{name: "string escapes are decoded", control: `{"k":"caf\u00e9 \"q\" \/"}`, candidate: `{"k":"café \"q\" /"}`, verdict: VerdictMatch},
		{name: "escaped keys match", control: `{"\u0061":1}`, candidate: `{"a":1}`, verdict: VerdictMatch},
		{name: "changed leaf", control: `{"items":[{"id":1,"price":10},{"id":2,"price":20}]}`, candidate: `{"items":[{"id":1,"price":10},{"id":2,"price":21}]}`, verdict: VerdictMismatch,
			diffs: []Difference{df("items[1].price", "items[*].price", Changed, "20", "21")}},
		{name: "missing and extra members", control: `{"a":1,"b":2}`, candidate: `{"a":1,"c":3}`, verdict: VerdictMismatch,
			diffs: []Difference{df("b", "b", Missing, "2", ""), df("c", "c", Extra, "", "3")}},
		{name: "type changed", control: `{"a":1,"b":"1","c":true,"d":null}`, candidate: `{"a":"1","b":1,"c":false,"d":{}}`, verdict: VerdictMismatch,
			diffs: []Difference{
				df("a", "a", TypeChanged, "1", `"1"`),
				df("b", "b", TypeChanged, `"1"`, "1"),
				df("c", "c", Changed, "true", "false"),
				df("d", "d", TypeChanged, "null", "{}"),
			},
			explanation: "true and false are one type, so they are changed, not type_changed"},
		{name: "null is not missing by default", control: `{"a":null}`, candidate: `{}`, verdict: VerdictMismatch,
			diffs: []Difference{df("a", "a", Missing, "null", "")}},
		{name: "keys needing quotes", control: `{"we.ird":{"x y":1,"*":2,"ok_-9":3}}`, candidate: `{"we.ird":{"x y":2,"*":3,"ok_-9":4}}`, verdict: VerdictMismatch,
			diffs: []Difference{
				df(`["we.ird"]["x y"]`, `["we.ird"]["x y"]`, Changed, "1", "2"),
				df(`["we.ird"]["*"]`, `["we.ird"]["*"]`, Changed, "2", "3"),
				df(`["we.ird"].ok_-9`, `["we.ird"].ok_-9`, Changed, "3", "4"),
			}},
		{name: "quoted key escapes", control: `{"a\"b\\c\u0001":1}`, candidate: `{"a\"b\\c\u0001":2}`, verdict: VerdictMismatch,
			diffs: []Difference{df(`["a\"b\\c\u0001"]`, `["a\"b\\c\u0001"]`, Changed, "1", "2")}},
		{name: "top-level array", control: `[{"a":1}]`, candidate: `[{"a":2}]`, verdict: VerdictMismatch,
			diffs: []Difference{df("[0].a", "[*].a", Changed, "1", "2")}},
		{name: "element removed in the middle", control: `[1,2,3,4,5]`, candidate: `[1,2,4,5]`, verdict: VerdictMismatch,
			diffs:       []Difference{df("[2]", "[*]", Missing, "3", "")},
			explanation: "arrays of different lengths align their common prefix and suffix, so one removal is one difference"},
		{name: "element inserted at the front", control: `[1,2]`, candidate: `[0,1,2]`, verdict: VerdictMismatch,
			diffs: []Difference{df("[0]", "[*]", Extra, "", "0")}},
		{name: "array shorter and changed", control: `[1,2,3]`, candidate: `[9]`, verdict: VerdictMismatch,
			diffs: []Difference{df("[0]", "[*]", Changed, "1", "9"), df("[1]", "[*]", Missing, "2", ""), df("[2]", "[*]", Missing, "3", "")}},
		{name: "duplicate keys: last wins", control: `{"a":1,"a":2}`, candidate: `{"a":2}`, verdict: VerdictMatch,
			explanation: "like encoding/json, the last of duplicate keys is the member's value"},
		{name: "duplicate keys on both sides, first differs", control: `{"a":1,"a":2}`, candidate: `{"a":3,"a":2}`, verdict: VerdictMatch},
		{name: "duplicate keys, last differs", control: `{"a":1,"a":2}`, candidate: `{"a":1,"a":3}`, verdict: VerdictMismatch,
			diffs: []Difference{df("a", "a", Changed, "2", "3")}},
		{name: "value rendering is compact", control: `{"a": {"x": [1, 2], "s": "a b"}}`, candidate: `{"a": 1}`, verdict: VerdictMismatch,
			diffs: []Difference{df("a", "a", TypeChanged, `{"x":[1,2],"s":"a b"}`, "1")}},
		{name: "both absent", control: ``, candidate: ``, verdict: VerdictMatch},
		{name: "candidate absent", control: `{"a":1}`, candidate: ``, verdict: VerdictMismatch,
			diffs: []Difference{df("$", "$", Missing, `{"a":1}`, "")}},
		{name: "control absent", control: ``, candidate: `null`, verdict: VerdictMismatch,
			diffs: []Difference{df("$", "$", Extra, "", "null")}},
		{name: "invalid control", control: `{"a":}`, candidate: `{}`, verdict: VerdictInvalidJSON, reason: "control value is not valid JSON: at offset 5"},
		{name: "invalid candidate", control: `{}`, candidate: `{} x`, verdict: VerdictInvalidJSON, reason: "candidate value is not valid JSON: at offset 3: unexpected data after the value"},
		{name: "invalid UTF-8", control: "\"a\xffb\"", candidate: `"a"`, verdict: VerdictInvalidJSON, reason: "invalid UTF-8",
			explanation: "JSON text must be UTF-8 (RFC 8259); envelope.Decode rejects it too"},
		{name: "trailing comma", control: `[1,]`, candidate: `[1]`, verdict: VerdictInvalidJSON, reason: "control value is not valid JSON"},
		{name: "leading zero", control: `01`, candidate: `1`, verdict: VerdictInvalidJSON, reason: "control value is not valid JSON"},
		{name: "control character in a string", control: "\"a\tb\"", candidate: `"a"`, verdict: VerdictInvalidJSON, reason: "control character"},
		{name: "lone surrogate escapes decode to U+FFFD", control: `"\ud800"`, candidate: `"\ufffd"`, verdict: VerdictMatch,
			explanation: "as encoding/json decodes them"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkValues(t, Exact(), "", c) })
	}
}

func TestValuesTruncation(t *testing.T) {
	d, err := Compile(Rules{MaxDiffs: 2, MaxValueBytes: 8})
	if err != nil {
		t.Fatal(err)
	}
	cases := []valuesCase{
		{name: "diffs capped", control: `[1,2,3,4]`, candidate: `[5,6,7,8]`, verdict: VerdictMismatch, truncated: true,
			diffs: []Difference{df("[0]", "[*]", Changed, "1", "5"), df("[1]", "[*]", Changed, "2", "6")}},
		{name: "values cut at a character boundary", control: `"ééééé"`, candidate: `"abcdefghijk"`, verdict: VerdictMismatch,
			diffs: []Difference{df("$", "$", Changed, `"ééé…`, `"abcdefg…`)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkValues(t, d, "", c) })
	}
	// Patterns cover every difference, not just the listed ones.
	r := d.ExplainValues("", []byte(`{"a":[1,2,3],"b":1}`), []byte(`{"a":[4,5,6],"b":2}`))
	want := []PatternKind{{"a[*]", Changed}, {"b", Changed}}
	if !slices.Equal(r.Patterns(), want) || !r.Truncated {
		t.Errorf("patterns = %v (truncated %v), want %v and truncated", r.Patterns(), r.Truncated, want)
	}
	sameShape(t, d.Values([]byte(`{"a":[1,2,3],"b":1}`), []byte(`{"a":[4,5,6],"b":2}`)), r)
}
