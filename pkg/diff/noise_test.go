package diff

import (
	"fmt"
	"slices"
	"testing"
)

func TestNoise(t *testing.T) {
	d := Exact()
	nt, err := NewNoiseTracker(NoiseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// get_user: 300 pairs; read_at differs in all, etag in 290 (96.7%),
	// name in 10, and the whole value in 2 (the root is never noise).
	for i := 0; i < 300; i++ {
		etag := "1"
		if i%30 != 0 {
			etag = fmt.Sprint("e", i)
		}
		name := "ann"
		if i < 10 {
			name = "bob"
		}
		a := fmt.Sprintf(`{"read_at":%d,"meta":{"etag":"1"},"items":[{"name":"ann"}]}`, i)
		b := fmt.Sprintf(`{"read_at":%d,"meta":{"etag":%q},"items":[{"name":%q}]}`, i+1, etag, name)
		r := d.Values([]byte(a), []byte(b))
		nt.Observe("get_user", &r)
	}
	// list: too few pairs to judge.
	for i := 0; i < 199; i++ {
		r := d.Values([]byte(`{"t":1}`), []byte(`{"t":2}`))
		nt.Observe("list", &r)
	}
	// Counts from elsewhere: exactly at the threshold is not enough.
	nt.Add("search", 200, map[string]int64{"took": 190, "hits[*].score": 191, "$": 200})

	got := nt.Proposals()
	want := []Proposal{
		{Operation: "get_user", Pattern: "meta.etag", Mismatches: 290, Pairs: 300, Fraction: 290.0 / 300},
		{Operation: "get_user", Pattern: "read_at", Mismatches: 300, Pairs: 300, Fraction: 1},
		{Operation: "search", Pattern: "hits[*].score", Mismatches: 191, Pairs: 200, Fraction: 0.955},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("proposals:\n got %+v\nwant %+v", got, want)
	}
	if ev := got[0].Evidence(); ev != "meta.etag differed in 290 of 300 pairs (96.7%) of operation get_user" {
		t.Errorf("evidence = %q", ev)
	}
	// Applying a proposal adds the rule and leaves the input alone.
	base := Rules{Operations: map[string]OperationRules{"get_user": {Ignore: []string{"x"}}}}
	applied := got[0].Apply(base)
	if !slices.Equal(applied.Operations["get_user"].Ignore, []string{"x", "meta.etag"}) || len(base.Operations["get_user"].Ignore) != 1 {
		t.Errorf("apply: %+v (base %+v)", applied.Operations, base.Operations)
	}
	// The applied rules silence the noise.
	d2, err := Compile(got[1].Apply(applied))
	if err != nil {
		t.Fatal(err)
	}
	if r := d2.ValuesFor("get_user", []byte(`{"read_at":1,"meta":{"etag":"1"}}`), []byte(`{"read_at":2,"meta":{"etag":"2"}}`)); r.Verdict != VerdictMatch {
		t.Errorf("after applying: %+v", r)
	}
	for _, o := range []NoiseOptions{{Threshold: 1.5}, {Threshold: -1}, {MinPairs: -1}} {
		if _, err := NewNoiseTracker(o); err == nil {
			t.Errorf("NewNoiseTracker(%+v) accepted", o)
		}
	}
}
