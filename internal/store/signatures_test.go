package store_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parityhq/parity/internal/store"
)

// patterns returns a pattern set as the verifier sends it ([]diff.PatternKind).
func patterns(pk ...[2]string) json.RawMessage {
	type patternKind struct {
		Pattern string `json:"pattern"`
		Kind    string `json:"kind"`
	}
	list := []patternKind{}
	for _, p := range pk {
		list = append(list, patternKind{p[0], p[1]})
	}
	b, _ := json.Marshal(list)
	return b
}

// sigCount is a SignatureCount seen at the minute's 10th and 20th second.
func sigCount(exp, op, seg string, min int, sig string, n int64) store.SignatureCount {
	return store.SignatureCount{
		Experiment: exp, Operation: op, Segment: seg, Minute: minute(min), Signature: sig,
		Patterns: patterns([2]string{sig + ".field", "changed"}), Count: n,
		FirstSeen: minute(min).Add(10 * time.Second), LastSeen: minute(min).Add(20 * time.Second),
	}
}

// storedSignatureCounts sums signature_counts of exp by (segment, signature).
func storedSignatureCounts(t *testing.T, s *store.Store, exp string) map[[2]string]int64 {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), `
SELECT segment, signature, sum(count)::int8 FROM signature_counts WHERE experiment = $1 GROUP BY 1, 2`, exp)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[2]string]int64{}
	for rows.Next() {
		var seg, sig string
		var n int64
		if err := rows.Scan(&seg, &sig, &n); err != nil {
			t.Fatal(err)
		}
		out[[2]string{seg, sig}] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func signatures(t *testing.T, s *store.Store, exp string, q store.SignatureQuery) []store.SignatureSummary {
	t.Helper()
	got, err := s.Signatures(t.Context(), exp, q)
	if err != nil {
		t.Fatalf("Signatures(%q, %+v): %v", exp, q, err)
	}
	return got
}

func TestApplySumsSignatureCountsExactly(t *testing.T) {
	t.Parallel()
	const segmentCap = 3
	s := openStore(t, store.Options{SegmentCap: segmentCap})
	rng := rand.New(rand.NewPCG(3, 4))
	segs := []string{"a", "b", "c", "d", "e"} // more than the cap
	sigs := []string{"s1", "s2", "s3"}
	want := map[[2]string]int64{}
	admitted := map[string]bool{}
	for range 20 {
		b := &store.Batch{}
		for range 25 { // keys repeat within a batch, also after folding
			sc := sigCount("x", []string{"get", "put"}[rng.IntN(2)], segs[rng.IntN(len(segs))], rng.IntN(4),
				sigs[rng.IntN(len(sigs))], 1+rng.Int64N(50))
			b.Signatures = append(b.Signatures, sc)
			seg := sc.Segment
			if !admitted[seg] && len(admitted) < segmentCap {
				admitted[seg] = true // admitted in order of first appearance
			}
			if !admitted[seg] {
				seg = store.OtherSegment
			}
			want[[2]string{seg, sc.Signature}] += sc.Count
		}
		apply(t, s, b)
	}
	if diff := cmp.Diff(want, storedSignatureCounts(t, s, "x")); diff != "" {
		t.Errorf("signature counts by (segment, signature) (-want +got):\n%s", diff)
	}
	// The signature totals agree with the rows, and every summary row has
	// its patterns.
	wantTotal := map[string]int64{}
	for k, n := range want {
		wantTotal[k[1]] += n
	}
	gotTotal := map[string]int64{}
	for _, g := range signatures(t, s, "x", store.SignatureQuery{}) {
		gotTotal[g.Signature] = g.Count
		var pk []map[string]string
		if err := json.Unmarshal(g.Patterns, &pk); err != nil || len(pk) != 1 || pk[0]["pattern"] != g.Signature+".field" {
			t.Errorf("%s: patterns %s", g.Signature, g.Patterns)
		}
	}
	if diff := cmp.Diff(wantTotal, gotTotal); diff != "" {
		t.Errorf("signature totals (-want +got):\n%s", diff)
	}
}

func TestSignaturesFoldLikeCounts(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{SegmentCap: 1})
	// A signature alone admits its segment, as a sample would.
	apply(t, s, &store.Batch{Signatures: []store.SignatureCount{sigCount("x", "get", "a", 0, "s1", 1)}})
	// b, c and a literal "other" land on one key in one upsert, which must
	// not hit that row twice (SQLSTATE 21000); counts fold the same way.
	apply(t, s, &store.Batch{
		Counts: []store.Count{count("x", "get", "b", 0, 10, 3), count("x", "get", "a", 0, 5, 1)},
		Signatures: []store.SignatureCount{
			sigCount("x", "get", "b", 0, "s1", 2), sigCount("x", "get", "c", 0, "s1", 4),
			sigCount("x", "get", store.OtherSegment, 0, "s1", 8), sigCount("x", "get", "a", 0, "s1", 16),
		},
	})
	want := map[[2]string]int64{{"a", "s1"}: 17, {store.OtherSegment, "s1"}: 14}
	if diff := cmp.Diff(want, storedSignatureCounts(t, s, "x")); diff != "" {
		t.Errorf("signature counts (-want +got):\n%s", diff)
	}
	wantSegs := map[string][2]int64{"a": {5, 1}, store.OtherSegment: {10, 3}}
	if diff := cmp.Diff(wantSegs, pairsBySegment(segments(t, s, "x", store.SegmentQuery{}))); diff != "" {
		t.Errorf("segments (-want +got):\n%s", diff)
	}
	if g := signatures(t, s, "x", store.SignatureQuery{}); len(g) != 1 || g[0].Count != 31 || g[0].Segments != 2 {
		t.Errorf("Signatures = %+v, want s1 with 31 in 2 segments", g)
	}
}

func TestSignatureFirstAndLastSeen(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	with := func(first, last time.Time, pk json.RawMessage) store.SignatureCount {
		sc := sigCount("x", "get", "a", 0, "s1", 1)
		sc.FirstSeen, sc.LastSeen, sc.Patterns = first, last, pk
		return sc
	}
	// Patterns absent at first (and malformed later): filled in by the first
	// batch that has them, then never replaced.
	first := patterns([2]string{"items[*].price", "changed"}, [2]string{"etag", "missing"})
	apply(t, s, &store.Batch{Signatures: []store.SignatureCount{with(at(20), at(30), nil)}})
	apply(t, s, &store.Batch{Signatures: []store.SignatureCount{
		with(at(15), at(25), json.RawMessage(`{"not":"an array"}`)), // earlier first, earlier last
		with(at(40), at(35), first),                                 // reversed bounds are swapped
	}})
	apply(t, s, &store.Batch{Signatures: []store.SignatureCount{
		with(at(25), at(50), patterns([2]string{"other", "extra"})), // later last
		sigCount("x", "get", "a", 1, "s1", 1),                       // the next minute: 70 s to 80 s
	}})

	got := signatures(t, s, "x", store.SignatureQuery{Until: minute(1)})
	want := []store.SignatureSummary{{Signature: "s1", Patterns: first, Count: 4, Segments: 1, FirstSeen: at(15), LastSeen: at(50)}}
	if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
		t.Errorf("Signatures of minute 0 (-want +got):\n%s", diff)
	}
	got = signatures(t, s, "x", store.SignatureQuery{})
	want[0].Count, want[0].LastSeen = 5, at(80)
	if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
		t.Errorf("Signatures (-want +got):\n%s", diff)
	}
	if got[0].FirstSeen.Location() != time.UTC {
		t.Errorf("FirstSeen in %v, want UTC", got[0].FirstSeen.Location())
	}
	// The signatures table holds the same bounds, all time.
	var f, l time.Time
	var pk json.RawMessage
	if err := s.Pool().QueryRow(ctx, `SELECT first_seen, last_seen, patterns FROM signatures WHERE experiment = 'x' AND signature = 's1'`).
		Scan(&f, &l, &pk); err != nil {
		t.Fatal(err)
	}
	if !f.Equal(at(15)) || !l.Equal(at(80)) || !cmp.Equal(pk, first, jsonEqual) {
		t.Errorf("signatures row = %v, %v, %s; want %v, %v, %s", f, l, pk, at(15), at(80), first)
	}
}

// jsonEqual compares JSON by meaning: jsonb keeps neither key order nor spacing.
var jsonEqual = cmp.Comparer(func(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
})

func TestSignaturesTopWindowAndFilters(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	noPatterns := sigCount("x", "get", "b", 3, "s0", 7)
	noPatterns.Patterns = nil
	apply(t, s, &store.Batch{Signatures: []store.SignatureCount{
		sigCount("x", "get", "a", 0, "s1", 10),
		sigCount("x", "get", "b", 1, "s1", 1),
		sigCount("x", "put", "a", 1, "s2", 6),
		sigCount("x", "get", "a", 2, "s3", 6), // ties with s2 overall: by signature
		sigCount("x", "get", "b", 2, "s4", 2),
		noPatterns,
		sigCount("y", "get", "a", 0, "s9", 100), // another experiment
	}})
	type row struct {
		Sig         string
		Count, Segs int64
		FirstMinute int
		HasPatterns bool
	}
	reduce := func(gs []store.SignatureSummary) []row {
		out := []row{}
		for _, g := range gs {
			out = append(out, row{g.Signature, g.Count, g.Segments, int(g.FirstSeen.Sub(t0) / time.Minute), string(g.Patterns) != "[]"})
		}
		return out
	}
	tests := []struct {
		name string
		q    store.SignatureQuery
		want []row
	}{
		{"everything, by count then signature", store.SignatureQuery{}, []row{
			{"s1", 11, 2, 0, true}, {"s0", 7, 1, 3, false}, {"s2", 6, 1, 1, true}, {"s3", 6, 1, 2, true}, {"s4", 2, 1, 2, true},
		}},
		{"limit", store.SignatureQuery{Limit: 3}, []row{{"s1", 11, 2, 0, true}, {"s0", 7, 1, 3, false}, {"s2", 6, 1, 1, true}}},
		{"window", store.SignatureQuery{Since: minute(1), Until: minute(3)}, []row{
			{"s2", 6, 1, 1, true}, {"s3", 6, 1, 2, true}, {"s4", 2, 1, 2, true}, {"s1", 1, 1, 1, true},
		}},
		{"operation", store.SignatureQuery{Operation: "put"}, []row{{"s2", 6, 1, 1, true}}},
		{"segment", store.SignatureQuery{Segment: "b"}, []row{{"s0", 7, 1, 3, false}, {"s4", 2, 1, 2, true}, {"s1", 1, 1, 1, true}}},
		{"operation and segment", store.SignatureQuery{Operation: "get", Segment: "a", Limit: 1}, []row{{"s1", 10, 1, 0, true}}},
		{"empty window", store.SignatureQuery{Since: minute(10)}, []row{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, reduce(signatures(t, s, "x", tt.q))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := s.Signatures(ctx, "nope", store.SignatureQuery{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Signatures(unknown) = %v, want ErrNotFound", err)
	}
	// The default limit.
	b := &store.Batch{}
	for i := range store.DefaultSignatureLimit + 5 {
		b.Signatures = append(b.Signatures, sigCount("z", "get", "a", 0, string(rune('A'+i)), 1))
	}
	apply(t, s, b)
	if got := signatures(t, s, "z", store.SignatureQuery{}); len(got) != store.DefaultSignatureLimit {
		t.Errorf("Signatures with Limit 0 returned %d, want %d", len(got), store.DefaultSignatureLimit)
	}
}

func TestPatternStats(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	sig := func(op, seg string, min int, name string, n int64, pk json.RawMessage) store.SignatureCount {
		sc := sigCount("x", op, seg, min, name, n)
		sc.Patterns = pk
		return sc
	}
	s1 := patterns([2]string{"a", "changed"}, [2]string{"b", "missing"})
	s2 := patterns([2]string{"a", "changed"})
	s3 := patterns([2]string{"c", "extra"})
	dup := patterns([2]string{"d", "changed"}, [2]string{"d", "changed"}) // a repeated element counts once
	aa := count("x", "get", "a", 0, 100, 12)
	aa.AAPairs, aa.AADivergent = 1000, 900 // A/A pairs are not pairs
	apply(t, s, &store.Batch{
		Counts: []store.Count{aa, count("x", "get", "b", 5, 50, 2), count("x", "put", "a", 0, 10, 6)},
		Signatures: []store.SignatureCount{
			sig("get", "a", 0, "S1", 7, s1),
			sig("get", "a", 0, "S2", 3, s2),
			sig("get", "b", 5, "S2", 2, s2),
			sig("put", "a", 0, "S3", 4, s3),
			sig("put", "a", 0, "S1", 1, s1),
			sig("put", "a", 0, "S4", 1, dup),
			sig("put", "a", 0, "S5", 9, nil), // patterns never received: in no stat
		},
	})
	// An A/A-only operation has no pairs.
	onlyAA := count("x", "scan", "a", 0, 0, 0)
	onlyAA.AAPairs = 5
	apply(t, s, &store.Batch{Counts: []store.Count{onlyAA}})

	tests := []struct {
		name      string
		since     time.Time
		wantPairs map[string]int64
		wantStats []store.PatternStat
	}{
		{"all time", time.Time{}, map[string]int64{"get": 150, "put": 10}, []store.PatternStat{
			{Operation: "get", Pattern: "a", Kind: "changed", Count: 12}, // S1 7 + S2 3 + S2 2
			{Operation: "get", Pattern: "b", Kind: "missing", Count: 7},  // S1
			{Operation: "put", Pattern: "a", Kind: "changed", Count: 1},
			{Operation: "put", Pattern: "b", Kind: "missing", Count: 1},
			{Operation: "put", Pattern: "c", Kind: "extra", Count: 4},
			{Operation: "put", Pattern: "d", Kind: "changed", Count: 1},
		}},
		{"since minute 5", minute(5), map[string]int64{"get": 50}, []store.PatternStat{
			{Operation: "get", Pattern: "a", Kind: "changed", Count: 2},
		}},
		{"nothing since", minute(6), map[string]int64{}, []store.PatternStat{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pairs, stats, err := s.PatternStats(ctx, "x", tt.since)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantPairs, pairs); diff != "" {
				t.Errorf("pairs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantStats, stats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
	if _, _, err := s.PatternStats(ctx, "nope", time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PatternStats(unknown) = %v, want ErrNotFound", err)
	}
}

func TestAACountsApart(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{SegmentCap: 1})
	ctx := t.Context()
	aaOnly := func(seg string, min int, pairs, divergent int64) store.Count {
		c := count("x", "get", seg, min, 0, 0)
		c.AAPairs, c.AADivergent = pairs, divergent
		return c
	}
	// A batch of only A/A pairs still creates the experiment and its rows.
	apply(t, s, &store.Batch{Counts: []store.Count{aaOnly("a", 0, 10, 1)}})
	exps, err := s.Experiments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(exps) != 1 || exps[0].Name != "x" || exps[0].Pairs != 0 || exps[0].Divergent != 0 {
		t.Fatalf("Experiments after A/A only = %+v, want x with 0 pairs", exps)
	}
	// Summed like the other counters, folded and re-aggregated alike.
	mixed := count("x", "get", "a", 0, 100, 4)
	mixed.AAPairs, mixed.AADivergent = 20, 2
	apply(t, s, &store.Batch{Counts: []store.Count{
		mixed, aaOnly("b", 0, 7, 1), aaOnly("c", 0, 3, 0), count("x", "get", "c", 1, 5, 5),
	}})

	type aa struct{ Pairs, Divergent, AAPairs, AADivergent int64 }
	got := map[string]aa{}
	for _, r := range segments(t, s, "x", store.SegmentQuery{}) {
		got[r.Segment] = aa{r.Pairs, r.Divergent, r.AAPairs, r.AADivergent}
	}
	want := map[string]aa{"a": {100, 4, 30, 3}, store.OtherSegment: {5, 5, 10, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("segments (-want +got):\n%s", diff)
	}
	exps, err = s.Experiments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if exps[0].Pairs != 105 || exps[0].Divergent != 9 {
		t.Errorf("experiment totals %d/%d, want 105/9 (A/A excluded)", exps[0].Pairs, exps[0].Divergent)
	}
	// A window holding only A/A pairs lists the segment with Pairs 0.
	rows := segments(t, s, "x", store.SegmentQuery{Until: minute(1), Operation: "get"})
	if len(rows) != 2 || rows[1].Segment != store.OtherSegment || rows[1].Pairs != 0 || rows[1].AAPairs != 10 {
		t.Errorf("segments of minute 0 = %+v", rows)
	}
}

func TestSampleWithoutVerdictRoundTrip(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	apply(t, s, &store.Batch{Samples: []store.Sample{sample("x", "get", "a", t0)}})
	got, err := s.Samples(t.Context(), "x", store.SampleQuery{})
	if err != nil || len(got) != 1 {
		t.Fatalf("Samples = %v, %v", got, err)
	}
	if g := got[0]; g.Verdict != "" || g.Signature != "" || g.RulesVersion != 0 || g.Diffs != nil {
		t.Errorf("sample without verdict = %q %q %d %s; want zero values and nil Diffs", g.Verdict, g.Signature, g.RulesVersion, g.Diffs)
	}
}
