package store_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

// rollupChecks are statements that count the rows of each rollup that
// differ from the sum of the finer rows it covers (missing or extra rows
// included): each must return 0.
var rollupChecks = map[string]string{
	"count_hours": `
WITH m AS (SELECT experiment, operation, segment, date_trunc('hour', minute, 'UTC') AS t, sum(pairs) AS p, sum(divergent) AS d,
	sum(control_errors) AS ce, sum(aa_pairs) AS aa, max(last_seen) AS ls FROM pair_counts GROUP BY 1, 2, 3, 4)
SELECT count(*) FROM m FULL JOIN count_hours h ON (h.experiment, h.operation, h.segment, h.hour) = (m.experiment, m.operation, m.segment, m.t)
WHERE h.pairs IS DISTINCT FROM m.p OR h.divergent IS DISTINCT FROM m.d OR h.control_errors IS DISTINCT FROM m.ce
	OR h.aa_pairs IS DISTINCT FROM m.aa OR h.last_seen IS DISTINCT FROM m.ls`,
	"count_days": `
WITH m AS (SELECT experiment, operation, segment, date_trunc('day', minute, 'UTC') AS t, sum(pairs) AS p, sum(divergent) AS d,
	sum(control_errors) AS ce, sum(aa_pairs) AS aa, max(last_seen) AS ls FROM pair_counts GROUP BY 1, 2, 3, 4)
SELECT count(*) FROM m FULL JOIN count_days h ON (h.experiment, h.operation, h.segment, h.day) = (m.experiment, m.operation, m.segment, m.t)
WHERE h.pairs IS DISTINCT FROM m.p OR h.divergent IS DISTINCT FROM m.d OR h.control_errors IS DISTINCT FROM m.ce
	OR h.aa_pairs IS DISTINCT FROM m.aa OR h.last_seen IS DISTINCT FROM m.ls`,
	"experiment_hours": `
WITH m AS (SELECT experiment, date_trunc('hour', minute, 'UTC') AS t, sum(pairs) AS p, sum(divergent) AS d FROM pair_counts GROUP BY 1, 2)
SELECT count(*) FROM m FULL JOIN experiment_hours h ON (h.experiment, h.hour) = (m.experiment, m.t)
WHERE h.pairs IS DISTINCT FROM m.p OR h.divergent IS DISTINCT FROM m.d`,
	"variant_hours": `
WITH m AS (SELECT experiment, operation, variant, reason, date_trunc('hour', minute, 'UTC') AS t, sum(pairs) AS p, sum(divergent) AS d
	FROM variant_counts GROUP BY 1, 2, 3, 4, 5)
SELECT count(*) FROM m FULL JOIN variant_hours h ON (h.experiment, h.operation, h.variant, h.reason, h.hour) = (m.experiment, m.operation, m.variant, m.reason, m.t)
WHERE h.pairs IS DISTINCT FROM m.p OR h.divergent IS DISTINCT FROM m.d`,
	"variant_days": `
WITH m AS (SELECT experiment, operation, variant, reason, date_trunc('day', minute, 'UTC') AS t, sum(pairs) AS p, sum(divergent) AS d
	FROM variant_counts GROUP BY 1, 2, 3, 4, 5)
SELECT count(*) FROM m FULL JOIN variant_days h ON (h.experiment, h.operation, h.variant, h.reason, h.day) = (m.experiment, m.operation, m.variant, m.reason, m.t)
WHERE h.pairs IS DISTINCT FROM m.p OR h.divergent IS DISTINCT FROM m.d`,
	"signature_hours": `
WITH m AS (SELECT experiment, operation, segment, signature, date_trunc('hour', minute, 'UTC') AS t, sum(count) AS c,
	min(first_seen) AS f, max(last_seen) AS l FROM signature_counts GROUP BY 1, 2, 3, 4, 5)
SELECT count(*) FROM m FULL JOIN signature_hours h
	ON (h.experiment, h.operation, h.segment, h.signature, h.hour) = (m.experiment, m.operation, m.segment, m.signature, m.t)
WHERE h.count IS DISTINCT FROM m.c OR h.first_seen IS DISTINCT FROM m.f OR h.last_seen IS DISTINCT FROM m.l`,
	"signature_days": `
WITH m AS (SELECT experiment, operation, segment, signature, date_trunc('day', minute, 'UTC') AS t, sum(count) AS c,
	min(first_seen) AS f, max(last_seen) AS l FROM signature_counts GROUP BY 1, 2, 3, 4, 5)
SELECT count(*) FROM m FULL JOIN signature_days h
	ON (h.experiment, h.operation, h.segment, h.signature, h.day) = (m.experiment, m.operation, m.segment, m.signature, m.t)
WHERE h.count IS DISTINCT FROM m.c OR h.first_seen IS DISTINCT FROM m.f OR h.last_seen IS DISTINCT FROM m.l`,
}

// TestRollupsSumTheMinutes applies random counts, variant counts and
// signature counts over three days and checks that every hourly and daily
// rollup Apply keeps equals the sum of the minutes it covers, and that a
// window's answer is the same whichever rollup answers it: Series summed
// over buckets of a minute, an hour and a day (read from the minutes, the
// hours and the days) equals the in-memory sums for windows with ragged
// ends, whole hours and whole days.
func TestRollupsSumTheMinutes(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(17, 18))
	const minutes = 3 * 24 * 60 // t0 is 10:00: the minutes cross two midnights
	ops, segs := []string{"get", "put"}, []string{"a", "b", "c"}
	sums := map[unitMinute][2]int64{}
	for range 12 {
		b := &store.Batch{}
		for range 60 {
			u := unitMinute{ops[rng.IntN(2)], segs[rng.IntN(3)], rng.IntN(minutes)}
			pairs := 1 + rng.Int64N(50)
			div := rng.Int64N(pairs + 1)
			c := count("x", u.op, u.seg, u.min, pairs, div)
			c.ControlErrors, c.AAPairs = rng.Int64N(3), rng.Int64N(3)
			b.Counts = append(b.Counts, c)
			s := sums[u]
			sums[u] = [2]int64{s[0] + pairs, s[1] + div}
			b.Variants = append(b.Variants, store.VariantCount{Experiment: "x", Operation: u.op, Variant: "v" + u.seg, Reason: "SPLIT",
				Minute: minute(u.min), Pairs: pairs, Divergent: div})
			if div > 0 {
				at := minute(u.min).Add(time.Duration(rng.IntN(60)) * time.Second)
				b.Signatures = append(b.Signatures, store.SignatureCount{Experiment: "x", Operation: u.op, Segment: u.seg,
					Minute: minute(u.min), Signature: fmt.Sprintf("sig-%d", rng.IntN(3)), Count: div, FirstSeen: at, LastSeen: at,
					Patterns: []byte(`[]`)})
			}
		}
		apply(t, s, b)
	}
	// Before the compactor ran, the reads use the hours and minutes; after,
	// the days and the variant and signature hours too: the same answers.
	check(t, s, sums, minutes, rng)
	days := int(time.Now().UTC().Truncate(24*time.Hour).Sub(t0.Truncate(24*time.Hour)) / (24 * time.Hour))
	if n, err := s.Compact(ctx, time.Now()); err != nil || n != days {
		t.Fatalf("Compact = %d, %v; want the %d days from the first count's to today's", n, err, days)
	}
	if n, err := s.Compact(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("second Compact = %d, %v; want nothing left to write", n, err)
	}
	for table, q := range rollupChecks {
		var n int
		if err := s.Pool().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if n != 0 {
			t.Errorf("%s: %d rows differ from the sum of their minutes", table, n)
		}
	}

	check(t, s, sums, minutes, rng)
	// A late pair, for a day already compacted, is added to its day by Apply.
	late := count("x", "get", "a", 30, 1000, 7)
	apply(t, s, &store.Batch{Counts: []store.Count{late}, Variants: []store.VariantCount{{Experiment: "x", Operation: "get",
		Variant: "va", Reason: "SPLIT", Minute: minute(30), Pairs: 1000, Divergent: 7}},
		Signatures: []store.SignatureCount{{Experiment: "x", Operation: "get", Segment: "a", Minute: minute(30), Signature: "sig-0",
			Count: 7, FirstSeen: minute(30), LastSeen: minute(30), Patterns: []byte(`[]`)}}})
	u := unitMinute{"get", "a", 30}
	sums[u] = [2]int64{sums[u][0] + 1000, sums[u][1] + 7}
	for table, q := range rollupChecks {
		var n int
		if err := s.Pool().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if n != 0 {
			t.Errorf("after a late pair, %s: %d rows differ from the sum of their minutes", table, n)
		}
	}
	check(t, s, sums, minutes, rng)
}

// unitMinute is a minute of one (operation, segment).
type unitMinute struct {
	op, seg string
	min     int
}

// check compares Segments, Series by a minute, an hour and a day, and
// Variants over windows with ragged ends, whole hours and whole days with
// the sums applied.
func check(t *testing.T, s *store.Store, sums map[unitMinute][2]int64, minutes int, rng *rand.Rand) {
	t.Helper()
	ctx := t.Context()
	windows := []store.SegmentQuery{{}, {Since: minute(17)}, {Since: minute(14*60 + 3), Until: minute(2*24*60 + 7*60 + 41)},
		{Since: minute(14 * 60), Until: minute(2*24*60 + 14*60)}, {Until: minute(39*60 + 59)}}
	for range 20 {
		a, b := rng.IntN(minutes+60)-30, rng.IntN(minutes+60)-30
		windows = append(windows, store.SegmentQuery{Since: minute(min(a, b)), Until: minute(max(a, b))})
	}
	for i, q := range windows {
		want := map[string][2]int64{}
		for u, v := range sums {
			if inWindow(minute(u.min), q.Since, q.Until) {
				w := want[u.seg]
				want[u.seg] = [2]int64{w[0] + v[0], w[1] + v[1]}
			}
		}
		if d := cmp.Diff(want, pairsBySegment(segments(t, s, "x", q))); d != "" {
			t.Errorf("window %d %+v: Segments (-want +got):\n%s", i, q, d)
		}
		for _, step := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
			pts, err := s.Series(ctx, "x", q, step)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][2]int64{}
			for _, p := range pts {
				g := got[p.Segment]
				got[p.Segment] = [2]int64{g[0] + p.Pairs, g[1] + p.Divergent}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("window %d %+v: Series by %v (-want +got):\n%s", i, q, step, d)
			}
		}
		// Variant v<seg> counts exactly segment seg's pairs.
		vs, err := s.Variants(ctx, "x", q)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][2]int64{}
		for _, v := range vs {
			got[v.Variant[1:]] = [2]int64{v.Pairs, v.Divergent}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("window %d %+v: Variants (-want +got):\n%s", i, q, d)
		}
	}
}

// TestLatenciesOverDaysExact applies random histograms over three days and
// checks that Latencies, which reads whole days from the daily rollup and
// each ragged end either hour by hour or as its day less the hours outside
// the window, returns exactly the merge of the hours in every window.
func TestLatenciesOverDaysExact(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	rng := rand.New(rand.NewPCG(27, 28))
	const hours = 3 * 24 // t0 is 10:00: the hours cross two midnights
	type key struct {
		seg string
		h   int
	}
	applied := map[key]*[2]report.Histogram{}
	for range 8 {
		b := &store.Batch{}
		for range 30 {
			k := key{[]string{"a", "b", "c"}[rng.IntN(3)], rng.IntN(hours)}
			c, d := randomHistogram(rng, 1+rng.IntN(20)), randomHistogram(rng, rng.IntN(5))
			b.Latencies = append(b.Latencies, store.Latency{Experiment: "x", Operation: []string{"get", "put"}[rng.IntN(2)], Segment: k.seg,
				Hour: hour(k.h), Control: c.Encode(), Candidate: d.Encode()})
			if applied[k] == nil {
				applied[k] = &[2]report.Histogram{}
			}
			applied[k][0].Merge(c)
			applied[k][1].Merge(d)
		}
		apply(t, s, b)
	}
	windows := []store.SegmentQuery{{}, {Since: hour(1)}, {Until: hour(50)}, {Since: hour(3), Until: hour(5)},
		{Since: hour(13), Until: hour(14)}, {Since: hour(14), Until: hour(62)}, {Since: hour(0).Add(-10 * time.Hour)}}
	for range 25 {
		a, b := rng.IntN(hours+4)-2, rng.IntN(hours+4)-2
		windows = append(windows, store.SegmentQuery{Since: hour(min(a, b)).Add(time.Duration(rng.IntN(60)) * time.Minute),
			Until: hour(max(a, b)).Add(time.Duration(rng.IntN(60)) * time.Minute)})
	}
	// Before the compactor wrote the days, from the hours; after, from the
	// days as well: the same histograms.
	for pass := range 2 {
		if pass == 1 {
			if _, err := s.Compact(t.Context(), time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		for i, q := range windows {
			want := map[string]*[2]report.Histogram{}
			for k, h := range applied {
				// An hour counts if any part of it lies in the window.
				if (q.Since.IsZero() || hour(k.h).Add(time.Hour).After(q.Since)) && (q.Until.IsZero() || hour(k.h).Before(q.Until)) {
					if want[k.seg] == nil {
						want[k.seg] = &[2]report.Histogram{}
					}
					want[k.seg][0].Merge(h[0])
					want[k.seg][1].Merge(h[1])
				}
			}
			if d := cmp.Diff(encodings(want), latencies(t, s, "x", q), equateEmpty); d != "" {
				t.Errorf("pass %d, window %d %+v (-want +got):\n%s", pass, i, q, d)
			}
		}
	}
}
