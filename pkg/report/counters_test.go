package report

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestCountersFields checks that Fields, Values and CounterNames cover every
// field of Counters, in declaration order, under its JSON name: a counter
// added to the struct but not to them fails here.
func TestCountersFields(t *testing.T) {
	typ := reflect.TypeFor[Counters]()
	if typ.NumField() != NumCounters {
		t.Fatalf("Counters has %d fields, NumCounters is %d", typ.NumField(), NumCounters)
	}
	var c Counters
	v := reflect.ValueOf(&c).Elem()
	for i, p := range c.Fields() {
		if want := v.Field(i).Addr().Interface().(*int64); p != want {
			t.Errorf("Fields()[%d] is not &%s", i, typ.Field(i).Name)
		}
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if CounterNames[i] != tag {
			t.Errorf("CounterNames[%d] = %q, field %s is %q in JSON", i, CounterNames[i], typ.Field(i).Name, tag)
		}
		*p = int64(i + 1)
	}
	for i, x := range c.Values() {
		if x != int64(i+1) {
			t.Errorf("Values()[%d] = %d, want %d", i, x, i+1)
		}
	}
}

func TestCountersArithmetic(t *testing.T) {
	a := Counters{Pairs: 100, Divergent: 2, ControlErrors: 1, CandidateErrors: 3, Skipped: 4, Timeouts: 5, AAPairs: 7, AADivergent: 1}
	b := Counters{Pairs: 50, Divergent: 1, CandidateErrors: 2, Skipped: 1, Timeouts: 1, AAPairs: 3}
	sum := a
	sum.Add(b)
	want := Counters{Pairs: 150, Divergent: 3, ControlErrors: 1, CandidateErrors: 5, Skipped: 5, Timeouts: 6, AAPairs: 10, AADivergent: 1}
	if sum != want {
		t.Fatalf("a+b = %+v, want %+v", sum, want)
	}
	if m := Merge(b, a); m != want {
		t.Errorf("Merge(b, a) = %+v, want %+v", m, want)
	}
	if m := Merge(); !m.IsZero() {
		t.Errorf("Merge() = %+v, want zero", m)
	}
	sum.Sub(a)
	if sum != b {
		t.Errorf("a+b-a = %+v, want %+v", sum, b)
	}
	if b.IsZero() {
		t.Error("IsZero of non-zero counters")
	}
}

func TestCountersJSON(t *testing.T) {
	c := Counters{Pairs: 10, Divergent: 1, ControlErrors: 2, CandidateErrors: 3, Skipped: 4, Timeouts: 5}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"pairs":10,"divergent":1,"control_errors":2,"candidate_errors":3,"skipped_writes":4,"candidate_timeouts":5}`
	if string(b) != want {
		t.Errorf("JSON %s, want %s (A/A counters left out when zero)", b, want)
	}
	c.AAPairs, c.AADivergent = 9, 8
	b, _ = json.Marshal(c)
	var back Counters
	if err := json.Unmarshal(b, &back); err != nil || back != c {
		t.Errorf("round trip of %s: %+v, %v", b, back, err)
	}
	// Embedded in SegmentStats, the counters are inline beside the latencies.
	st := SegmentStats{Counters: Counters{Pairs: 3, Divergent: 1}}
	b, _ = json.Marshal(st)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["pairs"]) != "3" || string(m["divergent"]) != "1" || m["control_latency"] == nil {
		t.Errorf("SegmentStats JSON %s: want pairs, divergent and control_latency at the top level", b)
	}
	var st2 SegmentStats
	if err := json.Unmarshal(b, &st2); err != nil || st2.Pairs != 3 || st2.Divergent != 1 {
		t.Errorf("SegmentStats round trip: %+v, %v", st2, err)
	}
}
