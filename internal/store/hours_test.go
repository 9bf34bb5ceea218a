package store_test

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

// hour returns the start of the i-th hour from t0.
func hour(i int) time.Time { return t0.Add(time.Duration(i) * time.Hour) }

// randomHistogram observes n latencies, log-uniform between 50µs and 3s, with
// a few outside the buckets' range.
func randomHistogram(rng *rand.Rand, n int) report.Histogram {
	var h report.Histogram
	for range n {
		d := time.Duration(math.Exp(math.Log(50e3) + rng.Float64()*(math.Log(3e9)-math.Log(50e3))))
		switch rng.IntN(50) {
		case 0:
			d = 300 * time.Nanosecond
		case 1:
			d = 5 * time.Minute
		}
		h.Observe(d)
	}
	return h
}

// padded is enc with zeros at either end, which DecodeHistogram accepts.
func padded(enc []int64, before, after int) []int64 {
	if len(enc) == 0 || int(enc[0]) < before || int(enc[0])+len(enc)-1+after > report.HistogramBuckets {
		return enc
	}
	out := []int64{enc[0] - int64(before)}
	out = append(out, make([]int64, before)...)
	out = append(out, enc[1:]...)
	return append(out, make([]int64, after)...)
}

func latencies(t *testing.T, s *store.Store, exp string, q store.SegmentQuery) map[string][2][]int64 {
	t.Helper()
	rows, err := s.Latencies(t.Context(), exp, q)
	if err != nil {
		t.Fatalf("Latencies(%q, %+v): %v", exp, q, err)
	}
	if rows == nil {
		t.Error("Latencies: nil slice; want an empty one for JSON []")
	}
	if !slices.IsSortedFunc(rows, func(a, b store.LatencyRow) int { return strings.Compare(a.Segment, b.Segment) }) {
		t.Errorf("Latencies not sorted by segment: %v", rows)
	}
	m := map[string][2][]int64{}
	for _, r := range rows {
		if _, dup := m[r.Segment]; dup {
			t.Errorf("segment %q listed twice", r.Segment)
		}
		m[r.Segment] = [2][]int64{r.Control, r.Candidate}
	}
	return m
}

// encodings turns merged histograms into what Latencies returns.
func encodings(hs map[string]*[2]report.Histogram) map[string][2][]int64 {
	m := map[string][2][]int64{}
	for seg, h := range hs {
		m[seg] = [2][]int64{h[0].Encode(), h[1].Encode()}
	}
	return m
}

// equateEmpty treats nil and empty encodings alike: both mean no observations.
var equateEmpty = cmp.Comparer(func(a, b []int64) bool { return slices.Equal(a, b) })

func TestLatenciesMergeAcrossBatchesExactly(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	ops, segs := []string{"get", "put"}, []string{"a", "b", "c"}
	type key struct {
		op, seg string
		hour    int
	}
	want := map[key]*[2]report.Histogram{}
	for range 15 {
		b := &store.Batch{}
		for range 12 { // keys repeat within a batch and across batches
			k := key{ops[rng.IntN(2)], segs[rng.IntN(3)], rng.IntN(4)}
			ctl, cand := randomHistogram(rng, rng.IntN(40)), randomHistogram(rng, rng.IntN(40))
			l := store.Latency{Experiment: "x", Operation: k.op, Segment: k.seg,
				Hour:    hour(k.hour).Add(time.Duration(rng.IntN(3600)) * time.Second), // truncated by Apply
				Control: ctl.Encode(), Candidate: padded(cand.Encode(), rng.IntN(3), rng.IntN(3))}
			b.Latencies = append(b.Latencies, l)
			if want[k] == nil {
				want[k] = &[2]report.Histogram{}
			}
			want[k][0].Merge(ctl)
			want[k][1].Merge(cand)
		}
		apply(t, s, b)
	}

	// Every stored row is the merge of its inputs.
	rows, err := s.Pool().Query(t.Context(), `SELECT operation, segment, hour, control, candidate FROM latency_hours WHERE experiment = 'x'`)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	var op, seg string
	var at time.Time
	var ctl, cand []int64
	_, err = pgx.ForEachRow(rows, []any{&op, &seg, &at, &ctl, &cand}, func() error {
		stored++
		w := want[key{op, seg, int(at.Sub(t0) / time.Hour)}]
		if w == nil {
			t.Errorf("unexpected row %s/%s/%v", op, seg, at)
			return nil
		}
		if !slices.Equal(ctl, w[0].Encode()) || !slices.Equal(cand, w[1].Encode()) {
			t.Errorf("%s/%s/%v: stored %v / %v, want %v / %v", op, seg, at, ctl, cand, w[0].Encode(), w[1].Encode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored != len(want) {
		t.Errorf("%d rows stored, want %d", stored, len(want))
	}

	tests := []struct {
		name string
		q    store.SegmentQuery
		keep func(key) bool
	}{
		{"everything", store.SegmentQuery{}, func(key) bool { return true }},
		{"operation", store.SegmentQuery{Operation: "put"}, func(k key) bool { return k.op == "put" }},
		{"window of whole hours", store.SegmentQuery{Since: hour(1), Until: hour(3)}, func(k key) bool { return k.hour == 1 || k.hour == 2 }},
		{"hours overlapping the window", store.SegmentQuery{Since: hour(1).Add(30 * time.Minute), Until: hour(2).Add(time.Minute)},
			func(k key) bool { return k.hour == 1 || k.hour == 2 }},
		{"until is exclusive", store.SegmentQuery{Until: hour(1)}, func(k key) bool { return k.hour == 0 }},
		{"window and operation", store.SegmentQuery{Since: hour(2), Operation: "get"}, func(k key) bool { return k.hour >= 2 && k.op == "get" }},
		{"empty window", store.SegmentQuery{Since: hour(9)}, func(key) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			merged := map[string]*[2]report.Histogram{}
			for k, h := range want {
				if !tt.keep(k) {
					continue
				}
				if merged[k.seg] == nil {
					merged[k.seg] = &[2]report.Histogram{}
				}
				merged[k.seg][0].Merge(h[0])
				merged[k.seg][1].Merge(h[1])
			}
			if diff := cmp.Diff(encodings(merged), latencies(t, s, "x", tt.q), equateEmpty); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLatenciesFoldIntoOther(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{SegmentCap: 2})
	rng := rand.New(rand.NewPCG(5, 6))
	h := func() report.Histogram { return randomHistogram(rng, 30) }
	lat := func(seg string, ctl, cand report.Histogram) store.Latency {
		return store.Latency{Experiment: "x", Operation: "get", Segment: seg, Hour: hour(0), Control: ctl.Encode(), Candidate: cand.Encode()}
	}
	a, b, c, d, other := h(), h(), h(), h(), h()
	// a and b fill the cap through their counts; c, d and a literal "other"
	// land on one key of one upsert, merged.
	apply(t, s, &store.Batch{
		Counts:    []store.Count{count("x", "get", "a", 0, 1, 0), count("x", "get", "b", 0, 1, 0)},
		Latencies: []store.Latency{lat("c", c, c), lat("a", a, b), lat(store.OtherSegment, other, report.Histogram{}), lat("d", d, a)},
	})
	var wantOther [2]report.Histogram
	for _, x := range [][2]report.Histogram{{c, c}, {other, report.Histogram{}}, {d, a}} {
		wantOther[0].Merge(x[0])
		wantOther[1].Merge(x[1])
	}
	want := map[string][2][]int64{
		"a":                {a.Encode(), b.Encode()},
		store.OtherSegment: {wantOther[0].Encode(), wantOther[1].Encode()},
	}
	if diff := cmp.Diff(want, latencies(t, s, "x", store.SegmentQuery{}), equateEmpty); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Latencies alone admit a segment while there is room, and their row
	// is not a count: Segments does not list it.
	apply(t, s, &store.Batch{Latencies: []store.Latency{lat("e", a, a)}})
	if got := pairsBySegment(segments(t, s, "x", store.SegmentQuery{})); len(got) != 2 || got["a"] != [2]int64{1, 0} {
		t.Errorf("segments = %v, want a and b only", got)
	}
	s2 := openStore(t, store.Options{SegmentCap: 5})
	apply(t, s2, &store.Batch{Latencies: []store.Latency{lat("e", a, b)}})
	if got := latencies(t, s2, "x", store.SegmentQuery{}); len(got) != 1 || !slices.Equal(got["e"][1], b.Encode()) {
		t.Errorf("latencies = %v, want e alone", got)
	}
	if got := segments(t, s2, "x", store.SegmentQuery{}); len(got) != 0 {
		t.Errorf("segments = %+v, want none: no counts", got)
	}
	exps, err := s2.Experiments(t.Context())
	if err != nil || len(exps) != 1 || exps[0].Name != "x" || exps[0].Pairs != 0 || !exps[0].FirstSeen.Equal(hour(0)) {
		t.Errorf("Experiments = %+v, %v; want x with no pairs, first seen at the hour", exps, err)
	}
}

func TestApplyRefusesInvalidHistogram(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	for _, bad := range [][]int64{{-1, 3}, {218, 1}, {3, 1, -2}, {200, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}} {
		err := s.Apply(t.Context(), &store.Batch{
			Counts:    []store.Count{count("x", "get", "a", 0, 1, 0)},
			Latencies: []store.Latency{{Experiment: "x", Operation: "get", Segment: "a", Hour: hour(0), Candidate: bad}},
		})
		if !errors.Is(err, report.ErrInvalidHistogram) || !strings.Contains(err.Error(), "candidate") {
			t.Errorf("Apply with candidate %v = %v, want ErrInvalidHistogram naming the side", bad, err)
		}
	}
	if exps, err := s.Experiments(t.Context()); err != nil || len(exps) != 0 {
		t.Errorf("Experiments = %+v, %v; want nothing written", exps, err)
	}
	// Both sides empty: nothing to write, not an error.
	apply(t, s, &store.Batch{Latencies: []store.Latency{{Experiment: "x", Operation: "get", Segment: "a", Hour: hour(0), Control: []int64{4}}}})
	if exps, err := s.Experiments(t.Context()); err != nil || len(exps) != 0 {
		t.Errorf("Experiments = %+v, %v; want nothing written", exps, err)
	}
}

// minuteCount is one count as the tests below apply it, at a minute offset
// from t0.
type minuteCount struct {
	op, seg          string
	min              int
	pairs, divergent int64
}

// applyRandomCounts applies n random counts over the first hours of t0,
// in several batches, and returns them.
func applyRandomCounts(t *testing.T, s *store.Store, rng *rand.Rand, exp string, n, hours int) []minuteCount {
	t.Helper()
	ops, segs := []string{"get", "put"}, []string{"a", "b", "c", "d"}
	var all []minuteCount
	for len(all) < n {
		b := &store.Batch{}
		for range 40 {
			mc := minuteCount{ops[rng.IntN(2)], segs[rng.IntN(4)], rng.IntN(hours * 60), 1 + rng.Int64N(100), 0}
			mc.divergent = rng.Int64N(mc.pairs + 1)
			c := count(exp, mc.op, mc.seg, mc.min, mc.pairs, mc.divergent)
			c.ControlErrors, c.AAPairs = rng.Int64N(3), rng.Int64N(3)
			b.Counts = append(b.Counts, c)
			all = append(all, mc)
		}
		apply(t, s, b)
	}
	return all
}

// randomWindow is a window over the first hours of t0 with ragged ends,
// sometimes unbounded on either side.
func randomWindow(rng *rand.Rand, hours int) (since, until time.Time) {
	at := func() time.Time {
		return t0.Add(time.Duration(rng.IntN(hours*60+30)-15)*time.Minute + time.Duration(rng.IntN(3))*20*time.Second)
	}
	if rng.IntN(5) > 0 {
		since = at()
	}
	if rng.IntN(5) > 0 {
		until = at()
	}
	if rng.IntN(4) == 0 && !since.IsZero() { // sometimes on the hour
		since = since.Truncate(time.Hour)
	}
	return since, until
}

func inWindow(m time.Time, since, until time.Time) bool {
	return (since.IsZero() || !m.Before(since)) && (until.IsZero() || m.Before(until))
}

// TestSegmentsMatchMinutesOverAnyWindow checks the hourly rollup against the
// minutes it sums: whatever the window, Segments returns exactly the sums of
// the counts applied for the minutes in it.
func TestSegmentsMatchMinutesOverAnyWindow(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	rng := rand.New(rand.NewPCG(7, 8))
	const hours = 5
	all := applyRandomCounts(t, s, rng, "x", 600, hours)
	for i := range 150 {
		since, until := randomWindow(rng, hours)
		op := []string{"", "get"}[rng.IntN(2)]
		want := map[string][2]int64{}
		last := map[string]time.Time{}
		for _, c := range all {
			if inWindow(minute(c.min), since, until) && (op == "" || c.op == op) {
				w := want[c.seg]
				want[c.seg] = [2]int64{w[0] + c.pairs, w[1] + c.divergent}
				if ls := minute(c.min).Add(30 * time.Second); ls.After(last[c.seg]) {
					last[c.seg] = ls
				}
			}
		}
		q := store.SegmentQuery{Since: since, Until: until, Operation: op}
		rows := segments(t, s, "x", q)
		if diff := cmp.Diff(want, pairsBySegment(rows)); diff != "" {
			t.Fatalf("window %d %+v (-want +got):\n%s", i, q, diff)
		}
		for _, r := range rows {
			if !r.LastSeen.Equal(last[r.Segment]) {
				t.Fatalf("window %d %+v: %s last seen %v, want %v", i, q, r.Segment, r.LastSeen, last[r.Segment])
			}
		}
	}
}

func TestSeriesBucketsSumToTotals(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	rng := rand.New(rand.NewPCG(9, 10))
	const hours = 7
	all := applyRandomCounts(t, s, rng, "x", 400, hours)
	steps := []time.Duration{time.Minute, 5 * time.Minute, 7 * time.Minute, time.Hour, 2 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	for i := range 60 {
		since, until := randomWindow(rng, hours)
		step := steps[i%len(steps)]
		op := []string{"", "put"}[rng.IntN(2)]
		type key struct {
			seg string
			at  int64
		}
		want := map[key][2]int64{}
		for _, c := range all {
			if m := minute(c.min); inWindow(m, since, until) && (op == "" || c.op == op) {
				k := key{c.seg, m.Truncate(step).Unix()}
				w := want[k]
				want[k] = [2]int64{w[0] + c.pairs, w[1] + c.divergent}
			}
		}
		q := store.SegmentQuery{Since: since, Until: until, Operation: op}
		pts, err := s.Series(t.Context(), "x", q, step)
		if err != nil {
			t.Fatalf("Series(%+v, %v): %v", q, step, err)
		}
		got := map[key][2]int64{}
		totals := map[string][2]int64{}
		for j, p := range pts {
			if !p.At.Equal(p.At.Truncate(step)) || p.At.Location() != time.UTC {
				t.Errorf("step %v: point at %v, not a UTC multiple of the step", step, p.At)
			}
			if j > 0 && (pts[j-1].Segment > p.Segment || pts[j-1].Segment == p.Segment && !pts[j-1].At.Before(p.At)) {
				t.Errorf("step %v: points out of order at %d: %+v then %+v", step, j, pts[j-1], p)
			}
			got[key{p.Segment, p.At.Unix()}] = [2]int64{p.Pairs, p.Divergent}
			tot := totals[p.Segment]
			totals[p.Segment] = [2]int64{tot[0] + p.Pairs, tot[1] + p.Divergent}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("window %d %+v step %v (-want +got):\n%s", i, q, step, diff)
		}
		if diff := cmp.Diff(pairsBySegment(segments(t, s, "x", q)), totals); diff != "" {
			t.Fatalf("window %d %+v step %v: points do not sum to Segments (-segments +points):\n%s", i, q, step, diff)
		}
	}
	for _, bad := range []time.Duration{0, -time.Minute, 30 * time.Second, 90 * time.Second} {
		if _, err := s.Series(t.Context(), "x", store.SegmentQuery{}, bad); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("Series with step %v = %v, want ErrInvalidQuery", bad, err)
		}
		if _, err := s.Overview(t.Context(), time.Time{}, bad); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("Overview with step %v = %v, want ErrInvalidQuery", bad, err)
		}
	}
}

func TestOverviewTotalsPerExperiment(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	rng := rand.New(rand.NewPCG(11, 12))
	const hours = 6
	all := map[string][]minuteCount{
		"x": applyRandomCounts(t, s, rng, "x", 200, hours),
		"y": applyRandomCounts(t, s, rng, "y", 200, hours),
	}
	// z's only pairs are long before the window.
	apply(t, s, &store.Batch{Counts: []store.Count{count("z", "get", "a", -600, 5, 1)}})
	for _, tt := range []struct {
		since time.Time
		step  time.Duration
	}{
		{t0.Add(90*time.Minute + 20*time.Second), time.Hour},
		{t0.Add(17 * time.Minute), 10 * time.Minute},
		{t0, 3 * time.Hour},
	} {
		got, err := s.Overview(t.Context(), tt.since, tt.step)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]store.SeriesPoint{}
		for exp, counts := range all {
			sums := map[int64][2]int64{}
			for _, c := range counts {
				if m := minute(c.min); !m.Before(tt.since) {
					at := m.Truncate(tt.step).Unix()
					w := sums[at]
					sums[at] = [2]int64{w[0] + c.pairs, w[1] + c.divergent}
				}
			}
			for at, w := range sums {
				want[exp] = append(want[exp], store.SeriesPoint{At: time.Unix(at, 0).UTC(), Pairs: w[0], Divergent: w[1]})
			}
			slices.SortFunc(want[exp], func(a, b store.SeriesPoint) int { return a.At.Compare(b.At) })
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Overview(%v, %v) (-want +got):\n%s", tt.since, tt.step, diff)
		}
	}
	got, err := s.Overview(t.Context(), time.Time{}, 24*time.Hour)
	if err != nil || len(got) != 3 || len(got["z"]) != 1 || got["z"][0].Pairs != 5 {
		t.Errorf("Overview of all time = %+v, %v; want z too", got, err)
	}
}

func TestVariantsSumOverWindow(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	rng := rand.New(rand.NewPCG(13, 14))
	ops, variants, reasons := []string{"get", "put"}, []string{"", "off", "on"}, []string{"DEFAULT", "SPLIT", "TARGETING_MATCH"}
	var all []store.VariantCount
	for range 10 {
		b := &store.Batch{}
		for range 30 { // keys repeat within a batch and across batches
			v := store.VariantCount{Experiment: "x", Operation: ops[rng.IntN(2)], Variant: variants[rng.IntN(3)],
				Reason: reasons[rng.IntN(3)], Minute: minute(rng.IntN(120)).Add(time.Duration(rng.IntN(60)) * time.Second),
				Pairs: 1 + rng.Int64N(50)}
			v.Divergent = rng.Int64N(v.Pairs + 1)
			b.Variants = append(b.Variants, v)
			all = append(all, v)
		}
		apply(t, s, b)
	}
	for i := range 40 {
		since, until := randomWindow(rng, 2)
		op := []string{"", "get"}[rng.IntN(2)]
		type key struct{ variant, reason string }
		sums := map[key][2]int64{}
		for _, v := range all {
			if inWindow(v.Minute.Truncate(time.Minute), since, until) && (op == "" || v.Operation == op) {
				k := key{v.Variant, v.Reason}
				w := sums[k]
				sums[k] = [2]int64{w[0] + v.Pairs, w[1] + v.Divergent}
			}
		}
		want := []store.VariantCount{}
		for k, w := range sums {
			want = append(want, store.VariantCount{Experiment: "x", Operation: op, Variant: k.variant, Reason: k.reason, Pairs: w[0], Divergent: w[1]})
		}
		slices.SortFunc(want, func(a, b store.VariantCount) int {
			if c := strings.Compare(a.Variant, b.Variant); c != 0 {
				return c
			}
			return strings.Compare(a.Reason, b.Reason)
		})
		q := store.SegmentQuery{Since: since, Until: until, Operation: op}
		got, err := s.Variants(t.Context(), "x", q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("window %d %+v (-want +got):\n%s", i, q, diff)
		}
	}
	// Variants alone register the experiment.
	apply(t, s, &store.Batch{Variants: []store.VariantCount{{Experiment: "v", Operation: "get", Minute: t0, Pairs: 2}}})
	if got, err := s.Variants(t.Context(), "v", store.SegmentQuery{}); err != nil || len(got) != 1 || got[0].Pairs != 2 {
		t.Errorf("Variants(v) = %+v, %v", got, err)
	}
}

func TestGateSpecSaveOverwriteGet(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	if _, err := s.GateSpec(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GateSpec before any save = %v, want ErrNotFound", err)
	}
	before := time.Now().Add(-time.Minute)
	first, err := s.SaveGateSpec(ctx, "x", []byte(`{"MaxRate": 0.01, "PerSegment": true}`), "ana")
	if err != nil {
		t.Fatal(err)
	}
	if first.Experiment != "x" || first.Author != "ana" || first.UpdatedAt.Before(before) || first.UpdatedAt.Location() != time.UTC {
		t.Errorf("saved %+v", first)
	}
	var spec report.GateSpec
	if err := json.Unmarshal(first.Spec, &spec); err != nil || spec.MaxRate != 0.01 || !spec.PerSegment {
		t.Errorf("saved spec %s decodes to %+v, %v", first.Spec, spec, err)
	}
	got, err := s.GateSpec(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("GateSpec after save (-saved +got):\n%s", diff)
	}

	second, err := s.SaveGateSpec(ctx, "x", []byte(`{"MaxRate": 0.02}`), "bo")
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.GateSpec(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(second, got); diff != "" || got.Author != "bo" || string(got.Spec) != `{"MaxRate": 0.02}` || got.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("GateSpec after overwrite = %+v (%s), want the second save", got, diff)
	}
	if _, err := s.GateSpec(ctx, "y"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GateSpec of another experiment = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{``, `[]`, `0.01`, `{"MaxRate":`, `null`} {
		if _, err := s.SaveGateSpec(ctx, "x", []byte(bad), "eve"); err == nil || !strings.Contains(err.Error(), "gate spec must be a JSON object") {
			t.Errorf("SaveGateSpec(%q) = %v, want a refusal", bad, err)
		}
	}
	if got, err := s.GateSpec(ctx, "x"); err != nil || got.Author != "bo" {
		t.Errorf("GateSpec after refused saves = %+v, %v; want the second save", got, err)
	}
}

func TestNewReadsOfUnknownAreNotFound(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	apply(t, s, &store.Batch{Samples: []store.Sample{sample("known", "get", "a", t0)}})
	_, errLatencies := s.Latencies(ctx, "nope", store.SegmentQuery{})
	_, errSeries := s.Series(ctx, "nope", store.SegmentQuery{}, time.Hour)
	_, errVariants := s.Variants(ctx, "nope", store.SegmentQuery{})
	for name, err := range map[string]error{"Latencies": errLatencies, "Series": errSeries, "Variants": errVariants} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of unknown = %v, want ErrNotFound", name, err)
		}
	}
	// A known experiment with nothing to show is not an error.
	if got, err := s.Latencies(ctx, "known", store.SegmentQuery{}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Latencies(known) = %#v, %v", got, err)
	}
	if got, err := s.Series(ctx, "known", store.SegmentQuery{}, time.Minute); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Series(known) = %#v, %v", got, err)
	}
	if got, err := s.Variants(ctx, "known", store.SegmentQuery{}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Variants(known) = %#v, %v", got, err)
	}
	if got, err := s.Overview(ctx, t0, time.Hour); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Overview = %#v, %v", got, err)
	}
}

// randomEncoding returns a histogram encoding as Apply accepts it: nil,
// empty, a lone first bucket, all zeros, zeros at either end, near either end
// of the bucket range, short or spanning every bucket, small or huge counts.
func randomEncoding(rng *rand.Rand) []int64 {
	switch rng.IntN(12) {
	case 0:
		return nil
	case 1:
		return []int64{}
	case 2:
		return []int64{rng.Int64N(report.HistogramBuckets)}
	}
	first := rng.IntN(report.HistogramBuckets)
	switch rng.IntN(6) {
	case 0:
		first = 0
	case 1:
		first = report.HistogramBuckets - 1 - rng.IntN(3)
	}
	room := report.HistogramBuckets - first
	n := 1 + rng.IntN(min(room, 40))
	if rng.IntN(10) == 0 {
		n = room
	}
	enc := []int64{int64(first)}
	zeros := rng.IntN(4) == 0
	for range n {
		var c int64
		switch {
		case zeros:
		case rng.IntN(3) == 0:
		case rng.IntN(20) == 0:
			c = 1 + rng.Int64N(1<<50)
		default:
			c = 1 + rng.Int64N(1000)
		}
		enc = append(enc, c)
	}
	return enc
}

// TestParityHistAddIsMerge checks the SQL function against report: for any
// two encodings, parity_hist_add is Decode, Merge, Encode.
func TestParityHistAddIsMerge(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	rng := rand.New(rand.NewPCG(15, 16))
	type tc struct{ a, b []int64 }
	cases := []tc{
		{nil, nil}, {[]int64{}, nil}, {[]int64{5}, []int64{7}}, {[]int64{0, 0, 0}, []int64{217, 0}},
		{[]int64{0, 1}, []int64{217, 1}},                    // disjoint, the whole range apart
		{[]int64{3, 1, 2}, []int64{5, 4}},                   // touching
		{[]int64{3, 1, 2}, []int64{10, 4}},                  // disjoint, zeros between
		{[]int64{10, 4}, []int64{3, 1, 2}},                  // the other way round
		{[]int64{3, 0, 5, 0}, []int64{4, 0, 0, 7, 0, 0}},    // zeros at the ends
		{[]int64{2, 1, 1, 1, 1, 1}, []int64{3, 2, 2}},       // nested
		{[]int64{1, 0, 1}, nil}, {nil, []int64{1, 0, 1, 0}}, // one side only, untrimmed
	}
	for range 3000 {
		a, b := randomEncoding(rng), randomEncoding(rng)
		switch {
		case len(a) < 2 || len(b) < 2:
		case rng.IntN(4) == 0: // disjoint
			b[0] = min(a[0]+int64(len(a))+rng.Int64N(5), report.HistogramBuckets-int64(len(b)-1))
		case rng.IntN(3) == 0 && len(b) <= len(a): // b within a, as a flush within its hour
			b[0] = a[0] + rng.Int64N(int64(len(a)-len(b))+1)
		}
		cases = append(cases, tc{a, b})
	}
	batch := &pgx.Batch{}
	for i, c := range cases {
		x, err := report.DecodeHistogram(c.a)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		y, err := report.DecodeHistogram(c.b)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		x.Merge(y)
		want := x.Encode()
		batch.Queue(`SELECT parity_hist_add($1, $2), parity_hist_add($1, $2) IS NULL`, c.a, c.b).QueryRow(func(row pgx.Row) error {
			var got []int64
			var isNull bool
			if err := row.Scan(&got, &isNull); err != nil {
				return err
			}
			if isNull || !slices.Equal(got, want) {
				t.Errorf("parity_hist_add(%v, %v) = %v (NULL: %v), want %v", c.a, c.b, got, isNull, want)
			}
			return nil
		})
	}
	if err := s.Pool().SendBatch(t.Context(), batch).Close(); err != nil {
		t.Fatal(err)
	}
	// A range past report's buckets is refused, not allocated.
	for _, c := range []tc{{[]int64{217, 1, 1}, nil}, {[]int64{0, 1}, []int64{1 << 40, 1}}} {
		var got []int64
		err := s.Pool().QueryRow(t.Context(), `SELECT parity_hist_add($1, $2)`, c.a, c.b).Scan(&got)
		if err == nil || !strings.Contains(err.Error(), "outside [0, 218)") {
			t.Errorf("parity_hist_add(%v, %v) = %v, %v; want an error", c.a, c.b, got, err)
		}
	}
	if report.HistogramBuckets != 218 {
		t.Errorf("report.HistogramBuckets is %d: migrations/003's parity_hist_add assumes 218", report.HistogramBuckets)
	}
}

// TestMinutesSumToSegments: the change detector's minute series holds every
// minute of the window once, per segment and in order, and sums to Segments.
func TestMinutesSumToSegments(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	rng := rand.New(rand.NewPCG(13, 14))
	const hours = 3
	all := applyRandomCounts(t, s, rng, "x", 300, hours)
	for i := range 30 {
		since, until := randomWindow(rng, hours)
		op := []string{"", "get"}[rng.IntN(2)]
		type key struct {
			seg string
			at  int64
		}
		want := map[key][2]int64{}
		for _, c := range all {
			if m := minute(c.min); inWindow(m, since, until) && (op == "" || c.op == op) {
				k := key{c.seg, m.Unix()}
				w := want[k]
				want[k] = [2]int64{w[0] + c.pairs, w[1] + c.divergent}
			}
		}
		q := store.SegmentQuery{Since: since, Until: until, Operation: op}
		ms, err := s.Minutes(t.Context(), "x", q)
		if err != nil {
			t.Fatalf("Minutes(%+v): %v", q, err)
		}
		got := map[key][2]int64{}
		totals := map[string][2]int64{}
		for j, m := range ms {
			if j > 0 && (ms[j-1].Segment > m.Segment || ms[j-1].Segment == m.Segment && !ms[j-1].Minute.Before(m.Minute)) {
				t.Fatalf("minutes out of order at %d: %+v then %+v", j, ms[j-1], m)
			}
			got[key{m.Segment, m.Minute.Unix()}] = [2]int64{m.Pairs, m.Divergent}
			tot := totals[m.Segment]
			totals[m.Segment] = [2]int64{tot[0] + m.Pairs, tot[1] + m.Divergent}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("window %d %+v (-want +got):\n%s", i, q, diff)
		}
		if diff := cmp.Diff(pairsBySegment(segments(t, s, "x", q)), totals); diff != "" {
			t.Fatalf("window %d %+v: minutes do not sum to Segments (-segments +minutes):\n%s", i, q, diff)
		}
	}
	if _, err := s.Minutes(t.Context(), "nope", store.SegmentQuery{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Minutes of an unknown experiment = %v, want ErrNotFound", err)
	}
}
