package diff

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// Hostile and extreme inputs: every one gets a verdict, in bounded time, and
// nothing panics or overflows the stack.
func TestBadInput(t *testing.T) {
	deep := func(n int, open, close string) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	bigArray := func(n int, f func(i int) string) string {
		var b strings.Builder
		b.WriteByte('[')
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f(i))
		}
		b.WriteByte(']')
		return b.String()
	}
	bigObject := func(n int, reverse bool) string {
		var b strings.Builder
		b.WriteByte('{')
		for k := 0; k < n; k++ {
			i := k
			if reverse {
				i = n - 1 - k
			}
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, i)
		}
		b.WriteByte('}')
		return b.String()
	}
	unordered, _ := Compile(Rules{Default: OperationRules{Arrays: []ArrayRule{{Path: "**", Unordered: true}}}})
	keyed, _ := Compile(Rules{Default: OperationRules{Arrays: []ArrayRule{{Path: "$", Key: "id"}}}})
	const n = 100000
	cases := []struct {
		name               string
		d                  *Differ
		control, candidate string
		verdict            Verdict
		reason             string
		ndiffs             int
		explanation        string
	}{
		{name: "10,000 nested arrays", d: Exact(), control: deep(10000, "[", "]"), candidate: `1`, verdict: VerdictInvalidJSON,
			reason:      "control value is not valid JSON: at offset 1000: nesting deeper than the depth limit of 1000",
			explanation: "the depth limit bounds recursion; deeper values are a verdict, not a stack overflow"},
		{name: "10,000 nested objects", d: Exact(), control: `1`, candidate: deep(10000, `{"a":`, "}"), verdict: VerdictInvalidJSON,
			reason: "candidate value is not valid JSON: at offset 5000: nesting deeper than the depth limit of 1000"},
		{name: "1,000 levels is allowed", d: Exact(), control: deep(1000, "[", "]"), candidate: deep(1000, "[", "]") + " ", verdict: VerdictMatch},
		{name: "1,000 levels differing at the bottom", d: Exact(), control: deep(1000, "[", "]"), candidate: strings.Replace(deep(1000, "[", "]"), "1", "2", 1), verdict: VerdictMismatch, ndiffs: 1},
		{name: "unterminated deep array", d: Exact(), control: strings.Repeat("[", 999), candidate: `1`, verdict: VerdictInvalidJSON,
			reason: "control value is not valid JSON: at offset 999: unexpected end of input"},
		{name: "huge equal arrays", d: Exact(), control: bigArray(n, func(i int) string { return fmt.Sprint(i) }), candidate: bigArray(n, func(i int) string { return fmt.Sprint(i) + ".0" }), verdict: VerdictMatch},
		{name: "huge arrays all different", d: Exact(), control: bigArray(n, func(i int) string { return fmt.Sprint(i) }), candidate: bigArray(n, func(i int) string { return fmt.Sprint(i + 1) }),
			verdict: VerdictMismatch, ndiffs: DefaultMaxDiffs},
		{name: "huge arrays, one removed at the front", d: Exact(), control: bigArray(n, func(i int) string { return fmt.Sprint(i) }), candidate: bigArray(n-1, func(i int) string { return fmt.Sprint(i + 1) }),
			verdict: VerdictMismatch, ndiffs: 1},
		{name: "huge unordered arrays, reversed", d: unordered, control: bigArray(n, func(i int) string { return fmt.Sprint(i) }), candidate: bigArray(n, func(i int) string { return fmt.Sprint(n - 1 - i) }),
			verdict: VerdictMatch, explanation: "large multisets are matched by hash first, so this is not quadratic"},
		{name: "huge unordered arrays, all different", d: unordered, control: bigArray(n, func(i int) string { return fmt.Sprint(i) }), candidate: bigArray(n, func(i int) string { return fmt.Sprint(-i - 1) }),
			verdict: VerdictMismatch, ndiffs: DefaultMaxDiffs, explanation: "the matching budget bounds the work; leftovers are paired in order"},
		{name: "huge keyed arrays, reversed", d: keyed, control: bigArray(n, func(i int) string { return fmt.Sprintf(`{"id":%d}`, i) }), candidate: bigArray(n, func(i int) string { return fmt.Sprintf(`{"id":%d}`, n-1-i) }),
			verdict: VerdictMatch},
		{name: "huge object, reversed keys", d: Exact(), control: bigObject(n, false), candidate: bigObject(n, true), verdict: VerdictMatch},
		{name: "huge object, every value different", d: Exact(), control: bigObject(n, false), candidate: strings.ReplaceAll(bigObject(n, false), ":", ":1"),
			verdict: VerdictMismatch, ndiffs: DefaultMaxDiffs, explanation: "checking each difference for a duplicate key must not be quadratic"},
		{name: "huge object, many duplicate keys", d: Exact(), control: `{` + strings.Repeat(`"a":1,`, n) + `"a":2}`, candidate: `{"a":2}`, verdict: VerdictMatch,
			explanation: "duplicate keys: the last wins, like encoding/json"},
		{name: "huge string", d: Exact(), control: `"` + strings.Repeat("é", n) + `"`, candidate: `"` + strings.Repeat("é", n) + `x"`, verdict: VerdictMismatch, ndiffs: 1},
		{name: "invalid UTF-8 in a key", d: Exact(), control: "{\"a\xc3\":1}", candidate: `{}`, verdict: VerdictInvalidJSON, reason: "control value is not valid JSON: at offset 3: invalid UTF-8 in a string"},
		{name: "overlong UTF-8", d: Exact(), control: "\"\xc0\xaf\"", candidate: `""`, verdict: VerdictInvalidJSON, reason: "invalid UTF-8"},
		{name: "UTF-16 surrogate in UTF-8", d: Exact(), control: "\"\xed\xa0\x80\"", candidate: `""`, verdict: VerdictInvalidJSON, reason: "invalid UTF-8"},
		{name: "number with 100,000 digits", d: Exact(), control: "1" + strings.Repeat("0", n), candidate: "1e" + fmt.Sprint(n), verdict: VerdictMatch},
		{name: "number with 100,000 digits, last differs", d: Exact(), control: "1" + strings.Repeat("0", n), candidate: "1" + strings.Repeat("0", n-1) + "1", verdict: VerdictMismatch, ndiffs: 1},
		{name: "tiny numbers", d: Exact(), control: `[1e-400, 0.0000000000000000000000000000001]`, candidate: `[10e-401, 1e-31]`, verdict: VerdictMatch},
		{name: "NUL byte", d: Exact(), control: "[1]\x00", candidate: `[1]`, verdict: VerdictInvalidJSON, reason: "unexpected data after the value"},
		{name: "only whitespace", d: Exact(), control: " \n", candidate: `1`, verdict: VerdictInvalidJSON, reason: "unexpected end of input"},
		{name: "BOM", d: Exact(), control: "\xef\xbb\xbf1", candidate: `1`, verdict: VerdictInvalidJSON, reason: "unexpected character"},
		{name: "NaN", d: Exact(), control: `NaN`, candidate: `1`, verdict: VerdictInvalidJSON, reason: "unexpected character 'N'"},
		{name: "identical invalid", d: Exact(), control: `{"a":`, candidate: `{"a":`, verdict: VerdictInvalidJSON, reason: "control value is not valid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The work is counted, not timed: a bound on work holds on
			// any machine, however busy.
			var hotWork, work int
			hot := c.d.values(c.d.def, []byte(c.control), []byte(c.candidate), false, &hotWork)
			got := c.d.values(c.d.program(""), []byte(c.control), []byte(c.candidate), true, &work)
			size := len(c.control) + len(c.candidate)
			for _, w := range []struct {
				what string
				n    int
			}{{"judging", hotWork}, {"explaining", work}} {
				if bound := maxWork(size); w.n > bound {
					t.Errorf("%s cost %d work units for %d bytes, want at most %d", w.what, w.n, size, bound)
				}
			}
			sameShape(t, hot, got)
			if got.Verdict != c.verdict {
				t.Fatalf("verdict = %s, want %s (%s); reason %q; diffs %.300v", got.Verdict, c.verdict, c.explanation, got.Reason, got.Diffs)
			}
			if c.reason != "" && !strings.Contains(got.Reason, c.reason) || c.reason == "" && got.Reason != "" {
				t.Errorf("reason = %q, want %q", got.Reason, c.reason)
			}
			if len(got.Diffs) != c.ndiffs {
				t.Errorf("%d diffs, want %d: %.300v", len(got.Diffs), c.ndiffs, got.Diffs)
			}
			for _, d := range got.Diffs {
				if len(d.Control) > DefaultMaxValueBytes+3 || len(d.Candidate) > DefaultMaxValueBytes+3 {
					t.Errorf("value not truncated: %d, %d bytes", len(d.Control), len(d.Candidate))
				}
			}
		})
	}
}

// maxWork is the most work units a comparison of values of size bytes in
// all may cost: linear in their size.
func maxWork(size int) int { return 2*size + 100000 }

// A deep difference renders a long path, but a bounded one.
func TestDeepPath(t *testing.T) {
	a := strings.Repeat(`{"a":`, 999) + "1" + strings.Repeat("}", 999)
	b := strings.Repeat(`{"a":`, 999) + "2" + strings.Repeat("}", 999)
	r := Exact().ExplainValues("", []byte(a), []byte(b))
	sameShape(t, Exact().Values([]byte(a), []byte(b)), r)
	if r.Verdict != VerdictMismatch || len(r.Diffs) != 1 {
		t.Fatalf("%+v", r)
	}
	want := strings.TrimSuffix(strings.Repeat("a.", 999), ".")
	if r.Diffs[0].Path != want || r.Diffs[0].Pattern != want {
		t.Errorf("path %.40q…", r.Diffs[0].Path)
	}
	if bytes.Contains([]byte(r.Diffs[0].Control), []byte("…")) {
		t.Errorf("control %q", r.Diffs[0].Control)
	}
}
