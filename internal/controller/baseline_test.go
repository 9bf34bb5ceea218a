package controller

import (
	"encoding/json"
	"strings"
	"testing"

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
