package demo

import (
	"bytes"
	"testing"
	"time"
)

// The README promises one segment diverging in 8% of its pairs and every
// other agreeing; the schedule makes that exact from the first pairs on.
func TestScheduleIsExact(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	type counts struct{ pairs, divergent int }
	seg := map[string]*counts{}
	var inPro []bool // whether each country=IN,plan=pro pair diverged, in order
	for i := range uint64(80_000) {
		p := Pair(i, now)
		key := "country=" + p.User.Attrs["country"] + ",plan=" + p.User.Attrs["plan"]
		c := seg[key]
		if c == nil {
			c = &counts{}
			seg[key] = c
		}
		c.pairs++
		differs := !bytes.Equal(p.Control.Value, p.Candidate.Value)
		if differs {
			c.divergent++
		}
		if key == DivergentSegment {
			inPro = append(inPro, differs)
		}
	}
	if len(seg) != Segments {
		t.Fatalf("%d segments, want %d", len(seg), Segments)
	}
	for key, c := range seg {
		if c.pairs != 10_000 {
			t.Errorf("%s: %d pairs of 80,000, want one in eight", key, c.pairs)
		}
		if key != DivergentSegment && c.divergent != 0 {
			t.Errorf("%s: %d divergent pairs, want none", key, c.divergent)
		}
	}
	// Every run of 100 consecutive pairs of the segment, wherever it starts
	// (a dashboard window starts anywhere), holds exactly 8 divergent ones;
	// every run of 25 holds exactly 2.
	for _, w := range []struct{ size, want int }{{100, 8}, {25, 2}} {
		n := 0
		for i, d := range inPro {
			if d {
				n++
			}
			if i >= w.size && inPro[i-w.size] {
				n--
			}
			if i >= w.size-1 && n != w.want {
				t.Fatalf("pairs %d..%d of %s: %d divergent, want exactly %d", i-w.size+1, i, DivergentSegment, n, w.want)
			}
		}
	}
	if got := seg[DivergentSegment].divergent; got != 800 {
		t.Errorf("%s: %d divergent of 10,000, want exactly 800 (8%%)", DivergentSegment, got)
	}
}

// A divergent pair differs where the README says: items[1].price.
func TestDivergenceIsThePrice(t *testing.T) {
	p := Pair(4, time.Now()) // k = 0 of country=IN,plan=pro: divergent
	if bytes.Equal(p.Control.Value, p.Candidate.Value) {
		t.Fatal("pair 4 agrees; the schedule starts with a divergent pair")
	}
	if !bytes.Contains(p.Control.Value, []byte(`"price":550`)) || !bytes.Contains(p.Candidate.Value, []byte(`"price":549`)) {
		t.Errorf("control %s, candidate %s: want items[1].price 550 vs 549", p.Control.Value, p.Candidate.Value)
	}
}
