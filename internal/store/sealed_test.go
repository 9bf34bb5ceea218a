package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

// TestSealedReadsMatchUncached checks that Segments, Signatures, Latencies
// and Series, which
// answer sealed hours from the store's cache, answer exactly what the same
// reads without the cache do, over windows that start anywhere from inside
// the last hour to before the kept minutes (and all history), per
// operation and segment; that a second pass reads no sealed hour again,
// even after a write into the current hour; and that a late write into a
// sealed hour or into the cached minutes at a window's start is in the very
// next answer.
func TestSealedReadsMatchUncached(t *testing.T) {
	ctx := t.Context()
	const retention = 30 * time.Hour
	s, err := Open(ctx, testutil.FreshDatabase(t), Options{MinuteRetention: retention})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	const exp = "sealed"
	rng := rand.New(rand.NewPCG(17, 4))
	now := time.Now().UTC().Truncate(time.Minute)
	count := func(at time.Time, seg int) Count {
		c := Count{Experiment: exp, Operation: fmt.Sprintf("op-%d", rng.IntN(2)), Segment: fmt.Sprintf("seg-%d", seg),
			Minute: at, Counters: report.Counters{Pairs: 1 + rng.Int64N(20), Divergent: rng.Int64N(3), Timeouts: rng.Int64N(2)}}
		c.LastSeen = at.Add(time.Duration(rng.IntN(60)) * time.Second)
		return c
	}
	signature := func(at time.Time, seg int) SignatureCount {
		first := at.Add(time.Duration(rng.IntN(30)) * time.Second)
		return SignatureCount{Experiment: exp, Operation: fmt.Sprintf("op-%d", rng.IntN(2)), Segment: fmt.Sprintf("seg-%d", seg),
			Minute: at, Signature: fmt.Sprintf("sig-%d", rng.IntN(5)), Count: 1 + rng.Int64N(4),
			FirstSeen: first, LastSeen: first.Add(time.Duration(rng.IntN(30)) * time.Second)}
	}
	latency := func(at time.Time, seg int) Latency {
		var h [2]report.Histogram
		for i := range h {
			for range 1 + rng.IntN(5) {
				h[i].Observe(time.Duration(1+rng.IntN(1e6)) * time.Microsecond)
			}
		}
		return Latency{Experiment: exp, Operation: fmt.Sprintf("op-%d", rng.IntN(2)), Segment: fmt.Sprintf("seg-%d", seg),
			Hour: at.Truncate(time.Hour), Control: h[0].Encode(), Candidate: h[1].Encode()}
	}
	// Fifty hours of history, then the compactor and the retention as a
	// running collector leaves them.
	for range 20 {
		var b Batch
		for range 60 {
			at := now.Add(-time.Duration(rng.IntN(50*60)) * time.Minute)
			b.Counts = append(b.Counts, count(at, rng.IntN(4)))
			if rng.IntN(3) == 0 {
				b.Signatures = append(b.Signatures, signature(at, rng.IntN(4)))
			}
		}
		for range 10 {
			b.Latencies = append(b.Latencies, latency(now.Add(-time.Duration(rng.IntN(50*60))*time.Minute), rng.IntN(4)))
		}
		if err := s.Apply(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PruneMinutes(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}

	var windows []time.Time
	for _, d := range []time.Duration{0, 40*time.Hour + 7*time.Minute, 29*time.Hour + 3*time.Minute, 24 * time.Hour,
		24*time.Hour - 13*time.Minute, 5*time.Hour + 30*time.Second, 3*time.Hour + time.Minute, 2 * time.Hour, 90 * time.Minute,
		10 * time.Minute} {
		if d == 0 {
			windows = append(windows, time.Time{})
		} else {
			windows = append(windows, now.Add(-d))
		}
	}
	// pass reads every window both ways and reports the cache's misses.
	pass := func(what string) int {
		t.Helper()
		for _, since := range windows {
			for _, op := range []string{"", "op-1"} {
				q := SegmentQuery{Since: since, Operation: op}
				got, err := s.Segments(ctx, exp, q)
				if err != nil {
					t.Fatalf("%s: Segments %+v: %v", what, q, err)
				}
				want, err := s.segmentsRead(ctx, exp, q)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: Segments since %v op %q (-uncached +cached):\n%s", what, since, op, diff)
				}
				lat, err := s.Latencies(ctx, exp, q)
				if err != nil {
					t.Fatalf("%s: Latencies %+v: %v", what, q, err)
				}
				wantLat, err := s.latenciesRead(ctx, exp, op, since.Truncate(time.Hour), time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(wantLat, lat); diff != "" {
					t.Errorf("%s: Latencies since %v op %q (-uncached +cached):\n%s", what, since, op, diff)
				}
				for _, step := range []time.Duration{time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, day} {
					q := q
					if step >= time.Hour {
						q.Since = q.Since.Truncate(step) // as the dashboard asks
					}
					got, err := s.Series(ctx, exp, q, step)
					if err != nil {
						t.Fatalf("%s: Series %+v step %v: %v", what, q, step, err)
					}
					want, err := s.seriesRead(ctx, exp, q, step)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s: Series since %v op %q step %v (-uncached +cached):\n%s", what, q.Since, op, step, diff)
					}
				}
				for _, seg := range []string{"", "seg-2"} {
					q := SignatureQuery{Since: since, Operation: op, Segment: seg, Limit: 3}
					got, err := s.Signatures(ctx, exp, q)
					if err != nil {
						t.Fatalf("%s: Signatures %+v: %v", what, q, err)
					}
					want, err := s.signaturesRead(ctx, exp, q, 3)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s: Signatures since %v op %q segment %q (-uncached +cached):\n%s", what, since, op, seg, diff)
					}
				}
			}
		}
		s.sealed.mu.Lock()
		defer s.sealed.mu.Unlock()
		return s.sealed.misses
	}
	// stable runs f until the sealed hours stay put while it runs (an hour
	// may turn during a pass, which moves what is sealed).
	stable := func(f func()) {
		for range 3 {
			before := sealedBefore(time.Now())
			f()
			if sealedBefore(time.Now()).Equal(before) {
				return
			}
		}
		t.Fatal("the hour kept turning")
	}

	stable(func() {
		first := pass("cold")
		if first == 0 {
			t.Fatal("no read used the cache")
		}
		if again := pass("warm"); again != first {
			t.Errorf("a second pass missed the cache %d times", again-first)
		}
		// A write into the current hour leaves the sealed hours alone.
		if err := s.Apply(ctx, &Batch{Counts: []Count{count(time.Now().UTC().Truncate(time.Minute), 1)},
			Signatures: []SignatureCount{signature(time.Now().UTC().Truncate(time.Minute), 1)}}); err != nil {
			t.Fatal(err)
		}
		if again := pass("after a write into the current hour"); again != first {
			t.Errorf("a write into the current hour made reads miss the cache %d times", again-first)
		}
	})

	// Late writes: into a sealed hour, and into the minutes of the hour a
	// 24-hour window starts in, after its start.
	late := now.Add(-24*time.Hour + 13*time.Minute).Truncate(time.Hour).Add(59 * time.Minute)
	for _, at := range []time.Time{now.Add(-20 * time.Hour), late} {
		c, g, l := count(at, 2), signature(at, 2), latency(at, 2)
		c.Operation, g.Operation, l.Operation = "op-1", "op-1", "op-1"
		g.Signature = "sig-late"
		g.Count = 1000 // to the top of every selection it is in
		if err := s.Apply(ctx, &Batch{Counts: []Count{c}, Signatures: []SignatureCount{g}, Latencies: []Latency{l}}); err != nil {
			t.Fatal(err)
		}
		stable(func() { pass(fmt.Sprintf("after a late write at %v", at)) })
	}
}
