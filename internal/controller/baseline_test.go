package controller

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

// TestBaselineByName checks that a baseline is stored with its counters by
// name and that one stored before, with positional arrays, still reads.
func TestBaselineByName(t *testing.T) {
	old := `{"since":"2026-01-02T03:04:00Z","taken":true,"at":"2026-01-02T03:04:05Z","segments":{"get a":[10,1,2,3,4,5]}}`
	var b baseline
	if err := json.Unmarshal([]byte(old), &b); err != nil {
		t.Fatal(err)
	}
	want := report.Counters{Pairs: 10, Divergent: 1, ControlErrors: 2, CandidateErrors: 3, Skipped: 4, Timeouts: 5}
	if !b.Taken || b.Since.Minute() != 4 || b.Segments["get a"] != want {
		t.Fatalf("positional baseline read as %+v, want segment %+v", b, want)
	}
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"get a":{"pairs":10,"divergent":1,"control_errors":2,"candidate_errors":3,"skipped_writes":4,"candidate_timeouts":5}`) {
		t.Errorf("baseline stored as %s, want counters by name", js)
	}
	var back baseline
	if err := json.Unmarshal(js, &back); err != nil || back.Segments["get a"] != want || !back.At.Equal(b.At) {
		t.Errorf("named baseline read back as %+v, %v", back, err)
	}
	for _, bad := range []string{`{"segments":{"x":[1,2,3,4,5,6,7,8,9]}}`, `{"segments":{"x":"ten"}}`} {
		if err := json.Unmarshal([]byte(bad), &b); err == nil {
			t.Errorf("baseline %s read without an error", bad)
		}
	}
}

// TestStepMinutes: the change detector's series of a step is its stored
// minutes less the pairs counted before the step settled, taken from the
// earliest minutes; every minute stays valid.
func TestStepMinutes(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	mc := func(i int, pairs, div int64) store.MinuteCount {
		return store.MinuteCount{Segment: "s", Minute: t0.Add(time.Duration(i) * time.Minute), Counters: report.Counters{Pairs: pairs, Divergent: div}}
	}
	m := func(i int, pairs, div int64) report.Minute {
		return report.Minute{At: t0.Add(time.Duration(i) * time.Minute), Pairs: pairs, Divergent: div}
	}
	tests := []struct {
		name string
		ms   []store.MinuteCount
		base report.Counters
		want []report.Minute
	}{
		{name: "no baseline", ms: []store.MinuteCount{mc(0, 10, 1), mc(1, 20, 0)}, want: []report.Minute{m(0, 10, 1), m(1, 20, 0)}},
		{name: "first minute partly before the step", ms: []store.MinuteCount{mc(0, 10, 1), mc(1, 20, 0)},
			base: report.Counters{Pairs: 4}, want: []report.Minute{m(0, 6, 1), m(1, 20, 0)}},
		{name: "a whole minute before", ms: []store.MinuteCount{mc(0, 10, 1), mc(1, 20, 2)},
			base: report.Counters{Pairs: 10, Divergent: 1}, want: []report.Minute{m(1, 20, 2)}},
		{name: "divergent pairs after the split stay valid", ms: []store.MinuteCount{mc(0, 10, 5)},
			base: report.Counters{Pairs: 8}, want: []report.Minute{m(0, 5, 5)}},
		{name: "none", ms: nil, want: []report.Minute{}},
	}
	for _, tt := range tests {
		got := StepMinutes(tt.ms, tt.base)
		if got == nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
