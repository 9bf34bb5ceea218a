package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func minute(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

// count is a Count with the fields tests vary.
func count(exp, op, seg string, min int, pairs, divergent int64) store.Count {
	return store.Count{Counters: report.Counters{Pairs: pairs, Divergent: divergent}, Experiment: exp, Operation: op, Segment: seg, Attrs: map[string]string{"seg": seg}, Minute: minute(min), LastStage: "shadow", LastSeen: minute(min).Add(30 * time.Second)}
}

func sample(exp, op, seg string, at time.Time) store.Sample {
	return store.Sample{
		PairID: fmt.Sprintf("p-%s-%d", seg, at.UnixNano()), Experiment: exp, Operation: op, Segment: seg,
		Kind: "read", Stage: "shadow", UserKey: "u1", Time: at,
		Control: json.RawMessage(`{"value":1}`), Candidate: json.RawMessage(`{"value":2}`), Paths: []string{"value"},
	}
}

func apply(t *testing.T, s *store.Store, b *store.Batch) {
	t.Helper()
	if err := s.Apply(t.Context(), b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func segments(t *testing.T, s *store.Store, exp string, q store.SegmentQuery) []store.SegmentCount {
	t.Helper()
	got, err := s.Segments(t.Context(), exp, q)
	if err != nil {
		t.Fatalf("Segments(%q, %+v): %v", exp, q, err)
	}
	return got
}

// pairsBySegment reduces segment rows to segment → pairs/divergent.
func pairsBySegment(rows []store.SegmentCount) map[string][2]int64 {
	m := map[string][2]int64{}
	for _, r := range rows {
		m[r.Segment] = [2]int64{r.Pairs, r.Divergent}
	}
	return m
}

func TestApplySumsCountsExactly(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	exps, ops, segs := []string{"checkout", "search"}, []string{"get", "put", "list"}, []string{"a", "b", "c", "d"}
	type key struct{ exp, seg string }
	want := map[key][6]int64{}
	wantTotals := map[string][2]int64{}
	for range 20 {
		b := &store.Batch{}
		for range 30 { // keys repeat within a batch and across batches
			c := count(exps[rng.IntN(2)], ops[rng.IntN(3)], segs[rng.IntN(4)], rng.IntN(5), rng.Int64N(1000), 0)
			c.Divergent, c.ControlErrors, c.CandidateErrors = rng.Int64N(10), rng.Int64N(10), rng.Int64N(10)
			c.Skipped, c.Timeouts = rng.Int64N(10), rng.Int64N(10)
			b.Counts = append(b.Counts, c)
			k := key{c.Experiment, c.Segment}
			w := want[k]
			for i, v := range []int64{c.Pairs, c.Divergent, c.ControlErrors, c.CandidateErrors, c.Skipped, c.Timeouts} {
				w[i] += v
			}
			want[k] = w
			tot := wantTotals[c.Experiment]
			wantTotals[c.Experiment] = [2]int64{tot[0] + c.Pairs, tot[1] + c.Divergent}
		}
		apply(t, s, b)
	}

	for _, exp := range exps {
		rows := segments(t, s, exp, store.SegmentQuery{})
		if !slices.IsSortedFunc(rows, func(a, b store.SegmentCount) int { return strings.Compare(a.Segment, b.Segment) }) {
			t.Errorf("%s: segments not sorted: %v", exp, rows)
		}
		for _, r := range rows {
			got := [6]int64{r.Pairs, r.Divergent, r.ControlErrors, r.CandidateErrors, r.Skipped, r.Timeouts}
			if w := want[key{exp, r.Segment}]; got != w {
				t.Errorf("%s/%s: counts %v, want %v", exp, r.Segment, got, w)
			}
			if r.Attrs["seg"] != r.Segment {
				t.Errorf("%s/%s: attrs %v", exp, r.Segment, r.Attrs)
			}
		}
		if len(rows) != len(segs) {
			t.Errorf("%s: %d segments, want %d", exp, len(rows), len(segs))
		}
	}
	got, err := s.Experiments(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "checkout" || got[1].Name != "search" {
		t.Fatalf("Experiments = %+v", got)
	}
	for _, e := range got {
		if w := wantTotals[e.Name]; e.Pairs != w[0] || e.Divergent != w[1] {
			t.Errorf("%s: totals %d/%d, want %d/%d", e.Name, e.Pairs, e.Divergent, w[0], w[1])
		}
	}
}

func TestApplyEmptyBatch(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	for _, b := range []*store.Batch{nil, {}} {
		if err := s.Apply(t.Context(), b); err != nil {
			t.Errorf("Apply(%v): %v", b, err)
		}
	}
}

func TestExperimentsTrackStageAndTimes(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	c1 := count("x", "get", "a", 5, 10, 1)
	c1.LastStage = "live"
	c2 := count("x", "get", "a", 2, 10, 1) // older, applied later: must not win the stage
	c2.LastStage = "shadow"
	apply(t, s, &store.Batch{Counts: []store.Count{c1}})
	apply(t, s, &store.Batch{Counts: []store.Count{c2}})
	got, err := s.Experiments(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Experiment{{
		Name: "x", Pairs: 20, Divergent: 2, Stage: "live",
		FirstSeen: minute(2), LastSeen: minute(5).Add(30 * time.Second),
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Experiments (-want +got):\n%s", diff)
	}
}

func TestSegmentCapFoldsIntoOther(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{SegmentCap: 2})
	ctx := t.Context()

	// Two segments fill the cap; a third folds, counts and samples alike.
	apply(t, s, &store.Batch{Counts: []store.Count{count("x", "get", "a", 0, 10, 0), count("x", "get", "b", 0, 20, 0)}})
	apply(t, s, &store.Batch{
		Counts:  []store.Count{count("x", "get", "c", 0, 30, 3)},
		Samples: []store.Sample{sample("x", "get", "c", minute(0))},
	})
	// An admitted segment stays admitted; a fourth folds too.
	apply(t, s, &store.Batch{Counts: []store.Count{count("x", "get", "a", 1, 1, 0), count("x", "get", "d", 1, 4, 0)}})

	want := map[string][2]int64{"a": {11, 0}, "b": {20, 0}, store.OtherSegment: {34, 3}}
	if diff := cmp.Diff(want, pairsBySegment(segments(t, s, "x", store.SegmentQuery{}))); diff != "" {
		t.Errorf("segments (-want +got):\n%s", diff)
	}
	samples, err := s.Samples(ctx, "x", store.SampleQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 1 || samples[0].Segment != store.OtherSegment {
		t.Errorf("samples = %+v, want one in %q", samples, store.OtherSegment)
	}

	// The cap is per experiment, and within one batch segments are admitted
	// in the order they first appear.
	apply(t, s, &store.Batch{
		Samples: []store.Sample{sample("y", "get", "z", minute(0))}, // appears after the counts' segments
		Counts: []store.Count{
			count("y", "get", "q", 0, 1, 0), count("y", "get", "p", 0, 2, 0), count("y", "get", "z", 0, 4, 1),
		},
	})
	want = map[string][2]int64{"q": {1, 0}, "p": {2, 0}, store.OtherSegment: {4, 1}}
	if diff := cmp.Diff(want, pairsBySegment(segments(t, s, "y", store.SegmentQuery{}))); diff != "" {
		t.Errorf("segments of y (-want +got):\n%s", diff)
	}
}

func TestApplyFoldsOntoOneKeyWithoutConflict(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{SegmentCap: 1})
	apply(t, s, &store.Batch{Counts: []store.Count{count("x", "get", "a", 0, 1, 0)}})
	// b, c and a literal "other" all land on (x, get, other, minute 0) in one
	// upsert, which must not hit that row twice (SQLSTATE 21000).
	apply(t, s, &store.Batch{
		Counts: []store.Count{
			count("x", "get", "b", 0, 2, 1), count("x", "get", "c", 0, 4, 1), count("x", "get", store.OtherSegment, 0, 8, 0),
		},
		Samples: []store.Sample{sample("x", "get", "b", minute(0)), sample("x", "get", "c", minute(0))},
	})
	want := map[string][2]int64{"a": {1, 0}, store.OtherSegment: {14, 2}}
	if diff := cmp.Diff(want, pairsBySegment(segments(t, s, "x", store.SegmentQuery{}))); diff != "" {
		t.Errorf("segments (-want +got):\n%s", diff)
	}
}

func TestSamplesTrimmedToNewest(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{SamplesPerKey: 3})
	ctx := t.Context()
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

	var b store.Batch
	for _, sec := range []int{3, 1, 5, 2, 4} { // more than the limit in one batch, out of order
		b.Samples = append(b.Samples, sample("x", "get", "a", at(sec)))
	}
	b.Samples = append(b.Samples, sample("x", "put", "a", at(0))) // another key, untouched later
	apply(t, s, &b)
	apply(t, s, &store.Batch{Samples: []store.Sample{sample("x", "get", "a", at(0)), sample("x", "get", "a", at(6))}})

	got, err := s.Samples(ctx, "x", store.SampleQuery{Operation: "get", Segment: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var secs []int
	for _, sm := range got {
		secs = append(secs, int(sm.Time.Sub(t0)/time.Second))
	}
	if want := []int{6, 5, 4}; !slices.Equal(secs, want) {
		t.Errorf("kept samples at %v s, want %v", secs, want)
	}
	var stored int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM samples`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 4 {
		t.Errorf("%d samples stored, want 4 (3 + 1 of the other key)", stored)
	}
	if got, _ := s.Samples(ctx, "x", store.SampleQuery{Limit: 2}); len(got) != 2 {
		t.Errorf("Samples with Limit 2 returned %d", len(got))
	}
}

func TestSampleRoundTrip(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	in := store.Sample{
		PairID: "pair-1", Experiment: "x", Operation: "get", Segment: "country=IN", Kind: "read", Stage: "live",
		UserKey: "user-42", Time: t0.Add(1234567 * time.Microsecond),
		Control:   json.RawMessage(`{"value":{"items":[1,2]},"status":"ok"}`),
		Candidate: nil, // e.g. a candidate that was not run
		Paths:     []string{"value.items[1]", "status", "a,b{c}\"d"},
		Verdict:   "mismatch", Signature: "sig-9f2c", RulesVersion: 7,
		Diffs: json.RawMessage(`[{"path":"value.items[1]","pattern":"value.items[*]","kind":"changed","control":"2","candidate":"3"}]`),
	}
	apply(t, s, &store.Batch{Samples: []store.Sample{in}})
	list, err := s.Samples(ctx, "x", store.SampleQuery{})
	if err != nil || len(list) != 1 {
		t.Fatalf("Samples = %v, %v", list, err)
	}
	got, err := s.Sample(ctx, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.ID = list[0].ID
	// jsonb keeps the JSON's meaning, not its bytes (key order, spacing).
	jsonEqual := cmp.Comparer(func(a, b json.RawMessage) bool {
		if a == nil || b == nil {
			return a == nil && b == nil
		}
		var x, y any
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
	})
	if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
		t.Errorf("Sample (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(list[0], got); diff != "" {
		t.Errorf("Samples and Sample differ (-list +one):\n%s", diff)
	}
}

func TestApplyRepairsStringsPostgresRefuses(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	sm := sample("x", "get", "bad\xffseg", t0)
	sm.UserKey = "nul\x00key"
	sm.Paths = []string{"a\x00b"}
	sm.Control = json.RawMessage(`{"s":"nul \u0000 and lone \ud800 and pair \ud83d\ude00","t":"\\u0000"}`)
	sm.Candidate = json.RawMessage(`not json`)
	c := count("x", "get", "bad\xffseg", 0, 1, 1)
	c.Attrs = map[string]string{"k\x00": "v\xff"}
	d := store.DeadLetter{Source: "nats", Subject: "s\x00", Reason: "r\xff", Data: []byte{0, 0xff}}
	apply(t, s, &store.Batch{Counts: []store.Count{c}, Samples: []store.Sample{sm}, DeadLetters: []store.DeadLetter{d}})

	got, err := s.Samples(ctx, "x", store.SampleQuery{})
	if err != nil || len(got) != 1 {
		t.Fatalf("Samples = %v, %v", got, err)
	}
	g := got[0]
	if g.Segment != "bad\uFFFDseg" || g.UserKey != "nul\uFFFDkey" || g.Paths[0] != "a\uFFFDb" {
		t.Errorf("strings not repaired: %q %q %q", g.Segment, g.UserKey, g.Paths)
	}
	var control map[string]string
	if err := json.Unmarshal(g.Control, &control); err != nil {
		t.Fatal(err)
	}
	if want := "nul \uFFFD and lone \uFFFD and pair 😀"; control["s"] != want || control["t"] != `\u0000` {
		t.Errorf("control = %q, want s=%q and t=%q", control, want, `\u0000`)
	}
	var candidate string
	if err := json.Unmarshal(g.Candidate, &candidate); err != nil || candidate != "not json" {
		t.Errorf("candidate = %s, want the JSON string \"not json\"", g.Candidate)
	}
	rows := segments(t, s, "x", store.SegmentQuery{})
	if len(rows) != 1 || rows[0].Attrs["k\uFFFD"] != "v\uFFFD" {
		t.Errorf("segments = %+v", rows)
	}
	dl, err := s.DeadLetters(ctx, 0)
	if err != nil || len(dl) != 1 || dl[0].Subject != "s\uFFFD" || string(dl[0].Data) != "\x00\xff" {
		t.Errorf("DeadLetters = %+v, %v", dl, err)
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	big := []byte(strings.Repeat("x", store.MaxDeadLetterBytes+1000))
	apply(t, s, &store.Batch{DeadLetters: []store.DeadLetter{
		{Source: "nats", Subject: "parity.pairs.x", Reason: "too big", Data: big, At: t0.Add(2 * time.Second)},
		{Source: "http", Subject: "/v1/pairs", Reason: "bad version", Data: []byte(`{"v":9}`), At: t0},
	}})
	apply(t, s, &store.Batch{DeadLetters: []store.DeadLetter{
		{Source: "nats", Subject: "parity.pairs.y", Reason: "truncated", Data: []byte(`{`), Size: 4096, At: t0.Add(time.Second)},
	}})

	got, err := s.DeadLetters(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].ID = 0
	}
	want := []store.DeadLetter{
		{Source: "nats", Subject: "parity.pairs.x", Reason: "too big", Data: big[:store.MaxDeadLetterBytes], Size: len(big), At: t0.Add(2 * time.Second)},
		{Source: "nats", Subject: "parity.pairs.y", Reason: "truncated", Data: []byte(`{`), Size: 4096, At: t0.Add(time.Second)},
		{Source: "http", Subject: "/v1/pairs", Reason: "bad version", Data: []byte(`{"v":9}`), Size: 7, At: t0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DeadLetters (-want +got):\n%s", diff)
	}
	if got, _ := s.DeadLetters(ctx, 1); len(got) != 1 || got[0].Subject != "parity.pairs.x" {
		t.Errorf("DeadLetters(1) = %+v", got)
	}
	if n, err := s.DeadLetterCount(ctx); err != nil || n != 3 {
		t.Errorf("DeadLetterCount = %d, %v; want 3", n, err)
	}
}

func TestAppliedAndPrune(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	const stream = "PARITY_PAIRS@1"
	apply(t, s, &store.Batch{Stream: stream, Seqs: []uint64{8, 1, 2, 3, 7, 3}, Counts: []store.Count{count("x", "get", "a", 0, 5, 0)}})
	// A batch of only dead letters still records its sequences.
	apply(t, s, &store.Batch{Stream: stream, Seqs: []uint64{20}, DeadLetters: []store.DeadLetter{{Source: "nats", Reason: "r"}}})

	tests := []struct {
		stream string
		ask    []uint64
		want   map[uint64]bool
	}{
		{stream, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21}, map[uint64]bool{1: true, 2: true, 3: true, 7: true, 8: true, 20: true}},
		{stream, []uint64{4, 5}, map[uint64]bool{}},
		{stream, nil, map[uint64]bool{}},
		{"PARITY_PAIRS@2", []uint64{1, 2, 3}, map[uint64]bool{}}, // a recreated stream reuses sequences
	}
	for _, tt := range tests {
		got, err := s.Applied(ctx, tt.stream, tt.ask)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Applied(%q, %v) (-want +got):\n%s", tt.stream, tt.ask, diff)
		}
	}

	// A batch claiming an applied sequence is refused whole.
	err := s.Apply(ctx, &store.Batch{Stream: stream, Seqs: []uint64{9, 8}, Counts: []store.Count{count("x", "get", "a", 0, 100, 0)}})
	if !errors.Is(err, store.ErrAlreadyApplied) {
		t.Fatalf("Apply of an applied sequence = %v, want ErrAlreadyApplied", err)
	}
	if got := pairsBySegment(segments(t, s, "x", store.SegmentQuery{}))["a"]; got[0] != 5 {
		t.Errorf("refused batch was counted: pairs %d, want 5", got[0])
	}
	if got, _ := s.Applied(ctx, stream, []uint64{9}); got[9] {
		t.Error("refused batch recorded its sequences")
	}
	// A batch whose sequences are all recorded already (a retry after a lost
	// commit reply, or another worker first) writes nothing and says so.
	if err := s.Apply(ctx, &store.Batch{Stream: stream, Seqs: []uint64{2, 1}, Counts: []store.Count{count("x", "get", "a", 0, 100, 0)}}); !errors.Is(err, store.ErrAllApplied) {
		t.Errorf("Apply of an all-applied batch = %v, want ErrAllApplied", err)
	}
	if got := pairsBySegment(segments(t, s, "x", store.SegmentQuery{}))["a"]; got[0] != 5 {
		t.Errorf("all-applied batch was counted: pairs %d, want 5", got[0])
	}
	// The same sequences on another stream are fine.
	apply(t, s, &store.Batch{Stream: "PARITY_PAIRS@2", Seqs: []uint64{8, 9}})

	if n, err := s.PruneApplied(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("PruneApplied(an hour ago) = %d, %v; want 0", n, err)
	}
	if n, err := s.PruneApplied(ctx, time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Errorf("PruneApplied(in an hour) = %d, %v; want 3", n, err)
	}
	if got, _ := s.Applied(ctx, stream, []uint64{1, 20}); len(got) != 0 {
		t.Errorf("Applied after prune = %v", got)
	}
}

func TestApplyRaceOnSameSequences(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		seqs        func(worker int) []uint64
		wantApplied int // Apply calls that return nil
		wantAll     int // Apply calls that return ErrAllApplied
		explanation string
	}{
		{
			name:        "overlap in part",
			seqs:        func(w int) []uint64 { return []uint64{uint64(10 + w), 100} },
			wantApplied: 1,
			explanation: "two workers hold the same redelivered message (100): one batch wins, the others fail with ErrAlreadyApplied",
		},
		{
			name:        "identical",
			seqs:        func(int) []uint64 { return []uint64{100, 101} },
			wantApplied: 1,
			wantAll:     3,
			explanation: "the same batch sent again (a retry after a lost reply) writes nothing and says all was applied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, store.Options{})
			const workers = 4
			var wg sync.WaitGroup
			errs := make([]error, workers)
			for i := range workers {
				wg.Go(func() {
					errs[i] = s.Apply(t.Context(), &store.Batch{
						Stream: "S@1", Seqs: tt.seqs(i), Counts: []store.Count{count("x", "get", "a", 0, 1, 0)},
					})
				})
			}
			wg.Wait()
			ok, all := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrAllApplied):
					all++
				case !errors.Is(err, store.ErrAlreadyApplied):
					t.Errorf("Apply: %v", err)
				}
			}
			if ok != tt.wantApplied || all != tt.wantAll {
				t.Errorf("%d Apply calls succeeded and %d found all applied, want %d and %d: %s", ok, all, tt.wantApplied, tt.wantAll, tt.explanation)
			}
			if got := pairsBySegment(segments(t, s, "x", store.SegmentQuery{}))["a"][0]; got != 1 {
				t.Errorf("pairs = %d, want 1: %s", got, tt.explanation)
			}
		})
	}
}

func TestConcurrentApplyRespectsCapAndSums(t *testing.T) {
	t.Parallel()
	const segmentCap = 5
	s := openStore(t, store.Options{SegmentCap: segmentCap})
	const workers, batches = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		wg.Go(func() {
			for i := range batches {
				// Two experiments in opposite orders, to provoke a deadlock if
				// locks were not taken in name order.
				b := &store.Batch{Counts: []store.Count{
					count("x", "get", fmt.Sprintf("s%d-%d", w, i), i%3, 1, 0),
					count("y", "get", fmt.Sprintf("s%d-%d", w, i), i%3, 1, 0),
					count("x", "get", "shared", 0, 1, 0),
				}}
				if w%2 == 1 {
					slices.Reverse(b.Counts)
				}
				if err := s.Apply(t.Context(), b); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Apply: %v", err)
	}
	for _, exp := range []string{"x", "y"} {
		rows := segments(t, s, exp, store.SegmentQuery{})
		var pairs int64
		named := 0
		for _, r := range rows {
			pairs += r.Pairs
			if r.Segment != store.OtherSegment {
				named++
			}
		}
		want := int64(workers * batches)
		if exp == "x" {
			want *= 2
		}
		if pairs != want || named != segmentCap {
			t.Errorf("%s: %d pairs in %d named segments, want %d in %d", exp, pairs, named, want, segmentCap)
		}
	}
}

func TestSegmentsWindowAndOperation(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	apply(t, s, &store.Batch{Counts: []store.Count{
		count("x", "get", "a", 0, 1, 0),
		count("x", "get", "a", 1, 2, 0),
		count("x", "put", "a", 1, 4, 1),
		count("x", "get", "b", 2, 8, 0),
		count("x", "put", "b", 3, 16, 2),
	}})
	tests := []struct {
		name string
		q    store.SegmentQuery
		want map[string][2]int64
	}{
		{"everything", store.SegmentQuery{}, map[string][2]int64{"a": {7, 1}, "b": {24, 2}}},
		{"since", store.SegmentQuery{Since: minute(1)}, map[string][2]int64{"a": {6, 1}, "b": {24, 2}}},
		{"until is exclusive", store.SegmentQuery{Until: minute(2)}, map[string][2]int64{"a": {7, 1}}},
		{"window", store.SegmentQuery{Since: minute(1), Until: minute(3)}, map[string][2]int64{"a": {6, 1}, "b": {8, 0}}},
		{"operation", store.SegmentQuery{Operation: "put"}, map[string][2]int64{"a": {4, 1}, "b": {16, 2}}},
		{"window and operation", store.SegmentQuery{Since: minute(1), Until: minute(3), Operation: "get"}, map[string][2]int64{"a": {2, 0}, "b": {8, 0}}},
		{"empty window", store.SegmentQuery{Since: minute(10)}, map[string][2]int64{}},
		{"unknown operation", store.SegmentQuery{Operation: "delete"}, map[string][2]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := segments(t, s, "x", tt.q)
			if diff := cmp.Diff(tt.want, pairsBySegment(rows)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if rows == nil {
				t.Error("nil slice; want an empty one for JSON []")
			}
		})
	}
	rows := segments(t, s, "x", store.SegmentQuery{Operation: "put"})
	if want := minute(3).Add(30 * time.Second); !rows[1].LastSeen.Equal(want) || rows[1].LastSeen.Location() != time.UTC {
		t.Errorf("LastSeen = %v, want %v in UTC", rows[1].LastSeen, want)
	}

	ops, err := s.Operations(t.Context(), "x")
	if err != nil || !slices.Equal(ops, []string{"get", "put"}) {
		t.Errorf("Operations = %v, %v", ops, err)
	}
}

func TestUnknownIsNotFound(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	apply(t, s, &store.Batch{Samples: []store.Sample{sample("known", "get", "a", t0)}})
	_, errSegments := s.Segments(ctx, "nope", store.SegmentQuery{})
	_, errOperations := s.Operations(ctx, "nope")
	_, errSamples := s.Samples(ctx, "nope", store.SampleQuery{})
	_, errSample := s.Sample(ctx, 999999)
	for name, err := range map[string]error{
		"Segments": errSegments, "Operations": errOperations, "Samples": errSamples, "Sample": errSample,
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of unknown = %v, want ErrNotFound", name, err)
		}
	}
	// A known experiment with nothing to show is not an error.
	if rows, err := s.Segments(ctx, "known", store.SegmentQuery{}); err != nil || len(rows) != 0 {
		t.Errorf("Segments(known) = %v, %v", rows, err)
	}
	if ops, err := s.Operations(ctx, "known"); err != nil || len(ops) != 0 {
		t.Errorf("Operations(known) = %v, %v", ops, err)
	}
	if got, err := s.Samples(ctx, "known", store.SampleQuery{Operation: "put"}); err != nil || len(got) != 0 {
		t.Errorf("Samples(known, put) = %v, %v", got, err)
	}
}

// TestExperimentPage: search, sort and page in the database, with rollouts
// planned before any pair listed too.
func TestExperimentPage(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	var b store.Batch
	for i := range 30 {
		c := count(fmt.Sprintf("Exp-%02d", i), "get", "a", i%5, int64(100+i), int64(i%4))
		b.Counts = append(b.Counts, c)
	}
	apply(t, s, &b)
	if _, err := s.Pool().Exec(t.Context(), `INSERT INTO rollouts (experiment, flag, plan, step, status, revision, entered_at)
		VALUES ('planned-exp', 'planned-exp', '{}', 0, 'paused', 1, now())`); err != nil {
		t.Fatal(err)
	}
	names := func(page []store.Experiment) string {
		var out []string
		for _, e := range page {
			out = append(out, e.Name)
		}
		return strings.Join(out, " ")
	}
	page, matched, total, err := s.ExperimentPage(t.Context(), store.ExperimentQuery{Sort: "name", Limit: 3})
	if err != nil || names(page) != "Exp-00 Exp-01 Exp-02" || matched != 31 || total != 31 {
		t.Fatalf("first page: %q %d %d %v", names(page), matched, total, err)
	}
	page, matched, _, err = s.ExperimentPage(t.Context(), store.ExperimentQuery{Search: "exp-1", Sort: "pairs", Desc: true, Limit: 4, Offset: 4})
	if err != nil || names(page) != "Exp-15 Exp-14 Exp-13 Exp-12" || matched != 10 {
		t.Errorf("search exp-1 by pairs, second page: %q %d %v", names(page), matched, err)
	}
	page, _, _, err = s.ExperimentPage(t.Context(), store.ExperimentQuery{Sort: "rate", Desc: true, Limit: 2})
	if err != nil || names(page) != "Exp-03 Exp-07" { // 3/103 is the highest rate, then 3/107
		t.Errorf("by rate: %q %v", names(page), err)
	}
	page, _, _, err = s.ExperimentPage(t.Context(), store.ExperimentQuery{Search: "planned", Sort: "last", Desc: true})
	if err != nil || len(page) != 1 || page[0].Name != "planned-exp" || !page[0].LastSeen.IsZero() {
		t.Errorf("a planned rollout: %+v %v", page, err)
	}
	page, matched, total, err = s.ExperimentPage(t.Context(), store.ExperimentQuery{Search: "exp-", Sort: "name", Limit: 10, Offset: 100})
	if err != nil || len(page) != 0 || matched != 30 || total != 31 {
		t.Errorf("past the last page: %d rows, %d matched, %d total, %v", len(page), matched, total, err)
	}
	if _, _, _, err := s.ExperimentPage(t.Context(), store.ExperimentQuery{Sort: "size"}); !errors.Is(err, store.ErrInvalidQuery) {
		t.Errorf("a bad sort: %v", err)
	}
}
