package store

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
)

func TestFixEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want    string
		explanation string
	}{
		{`{"a":"b"}`, `{"a":"b"}`, "nothing to repair"},
		{`"\u00e9"`, `"\u00e9"`, "ordinary escapes stay"},
		{`"\u0000"`, `"\ufffd"`, "jsonb refuses \\u0000"},
		{`"x\u0000y\u0000"`, `"x\ufffdy\ufffd"`, "every one"},
		{`"\\u0000"`, `"\\u0000"`, "an escaped backslash followed by u0000 is text, not an escape"},
		{`"\\\u0000"`, `"\\\ufffd"`, "an escaped backslash, then a real escape"},
		{`"\ud83d\ude00"`, `"\ud83d\ude00"`, "a surrogate pair stays"},
		{`"\ud83d"`, `"\ufffd"`, "a high surrogate at the end"},
		{`"\ud83dx"`, `"\ufffdx"`, "a high surrogate followed by text"},
		{`"\ud83d\u0041"`, `"\ufffd\u0041"`, "a high surrogate followed by a non-surrogate escape"},
		{`"\ude00"`, `"\ufffd"`, "a lone low surrogate"},
		{`"\uD83D\uDE00"`, `"\uD83D\uDE00"`, "upper-case hex"},
	}
	for _, tt := range tests {
		if !json.Valid([]byte(tt.in)) {
			t.Fatalf("test input %s is not JSON", tt.in)
		}
		if got := fixEscapes(tt.in); got != tt.want {
			t.Errorf("fixEscapes(%s) = %s, want %s (%s)", tt.in, got, tt.want, tt.explanation)
		}
	}
}

func TestCleanJSON(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	tests := []struct {
		in   string
		want *string
	}{
		{"", nil},
		{`{"a":1}`, str(`{"a":1}`)},
		{"not json", str(`"not json"`)},
		{"\x00", str(`"\ufffd"`)},
		{"\"\xff\"", str("\"\uFFFD\"")},
	}
	for _, tt := range tests {
		got := cleanJSON(json.RawMessage(tt.in))
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("cleanJSON(%q) = %v, want %v", tt.in, deref(got), deref(tt.want))
		}
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func TestCleanText(t *testing.T) { // not parallel: AllocsPerRun
	for in, want := range map[string]string{
		"":         "",
		"plain":    "plain",
		"héllo":    "héllo",
		"a\x00b":   "a\uFFFDb",
		"a\xffb":   "a\uFFFDb",
		"\xff\x00": "\uFFFD\uFFFD",
	} {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = cleanText("country=IN,plan=pro") }); n != 0 {
		t.Errorf("cleanText of a clean string allocates %v times", n)
	}
}

func TestSeqRuns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     []uint64
		lo, hi []int64
	}{
		{nil, nil, nil},
		{[]uint64{5}, []int64{5}, []int64{5}},
		{[]uint64{3, 1, 2}, []int64{1}, []int64{3}},
		{[]uint64{1, 2, 2, 4, 5, 9}, []int64{1, 4, 9}, []int64{2, 5, 9}},
		{[]uint64{math.MaxInt64 - 1}, []int64{math.MaxInt64 - 1}, []int64{math.MaxInt64 - 1}},
	}
	for _, tt := range tests {
		lo, hi, err := seqRuns(tt.in)
		if err != nil || !slices.Equal(lo, tt.lo) || !slices.Equal(hi, tt.hi) {
			t.Errorf("seqRuns(%v) = %v, %v, %v; want %v, %v", tt.in, lo, hi, err, tt.lo, tt.hi)
		}
	}
	if _, _, err := seqRuns([]uint64{1, math.MaxInt64}); err == nil {
		t.Error("seqRuns accepted a sequence past int8range's reach")
	}
}

func TestJSONBNumbers(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"a":1e999999}`:                 false,
		`{"a":1e308,"b":-2.5E-10}`:       true,
		`{"a":"1e999999"}`:               true, // a string, not a number
		`[12345678901234567890, 1e1000]`: false,
		`{"a":"x\"1e99999"}`:             true,
	} {
		if got := jsonbNumbers([]byte(raw)); got != want {
			t.Errorf("jsonbNumbers(%s) = %v, want %v", raw, got, want)
		}
	}
}
