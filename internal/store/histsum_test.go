package store

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

// anyEncoding returns an encoding that may be valid or not: out-of-range
// first buckets, too many counts, negative counts.
func anyEncoding(rng *rand.Rand) []int64 {
	if rng.IntN(8) == 0 {
		return nil
	}
	first := int64(rng.IntN(report.HistogramBuckets+4)) - 2
	enc := []int64{first}
	for range rng.IntN(30) {
		enc = append(enc, rng.Int64N(1000)-int64(rng.IntN(40)/39)) // now and then -1
	}
	if rng.IntN(10) == 0 {
		enc = append(enc, make([]int64, report.HistogramBuckets)...)
	}
	return enc
}

// TestHistogramSumIsMerge checks histogramSum against report: it accepts
// exactly the encodings DecodeHistogram accepts, and sums them as Merge does,
// from []int64 and from PostgreSQL's binary format alike.
func TestHistogramSumIsMerge(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(21, 22))
	s, err := Open(t.Context(), testutil.FreshDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for trial := range 200 {
		var want report.Histogram
		var fromEnc, fromBinary histogramSum
		batch := &pgx.Batch{}
		for range 1 + rng.IntN(6) {
			enc := anyEncoding(rng)
			h, decErr := report.DecodeHistogram(enc)
			if decErr == nil {
				want.Merge(h)
			}
			if err := fromEnc.addEncoding(enc); (err == nil) != (decErr == nil) || (err != nil && !errors.Is(err, report.ErrInvalidHistogram)) {
				t.Fatalf("addEncoding(%v) = %v; DecodeHistogram: %v", enc, err, decErr)
			}
			batch.Queue(`SELECT $1::int8[]`, enc).QueryRow(func(row pgx.Row) error {
				var raw pgtype.UndecodedBytes
				if err := row.Scan(&raw); err != nil {
					return err
				}
				if err := fromBinary.addBinary(raw); (err == nil) != (decErr == nil) {
					t.Errorf("addBinary(%v) = %v; DecodeHistogram: %v", enc, err, decErr)
				}
				return nil
			})
		}
		if err := s.pool.SendBatch(t.Context(), batch).Close(); err != nil {
			t.Fatal(err)
		}
		w := want.Encode()
		if got := fromEnc.encode(); !slices.Equal(got, w) {
			t.Fatalf("trial %d: addEncoding sum %v, Merge %v", trial, got, w)
		}
		if got := fromBinary.encode(); !slices.Equal(got, w) {
			t.Fatalf("trial %d: addBinary sum %v, Merge %v", trial, got, w)
		}
	}
	var h histogramSum
	for _, raw := range [][]byte{{}, {0, 0, 0, 1}, {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23}, {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 20}} {
		if err := h.addBinary(raw); !errors.Is(err, report.ErrInvalidHistogram) {
			t.Errorf("addBinary(%v) = %v, want ErrInvalidHistogram", raw, err)
		}
	}
}

// TestLatenciesOverSimpleProtocol reads latencies through a connection that
// receives arrays as text, not in the binary format Latencies prefers.
func TestLatenciesOverSimpleProtocol(t *testing.T) {
	t.Parallel()
	url := testutil.FreshDatabase(t)
	s := openAt(t, url)
	defer s.Close()
	rng := rand.New(rand.NewPCG(23, 24))
	var want [2]report.Histogram
	var b Batch
	for i := range 5 {
		var ctl, cand report.Histogram
		for range 50 {
			ctl.Observe(time.Duration(rng.Int64N(int64(time.Second))))
			cand.Observe(time.Duration(rng.Int64N(int64(10 * time.Millisecond))))
		}
		want[0].Merge(ctl)
		want[1].Merge(cand)
		b.Latencies = append(b.Latencies, Latency{Experiment: "x", Operation: "get", Segment: "a",
			Hour: time.Date(2026, 11, 21, i, 0, 0, 0, time.UTC), Control: ctl.Encode(), Candidate: cand.Encode()})
	}
	if err := s.Apply(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	simple := openAt(t, url+map[bool]string{true: "&", false: "?"}[slices.Contains([]byte(url), '?')]+"default_query_exec_mode=simple_protocol")
	defer simple.Close()
	for name, st := range map[string]*Store{"binary": s, "simple protocol": simple} {
		rows, err := st.Latencies(t.Context(), "x", SegmentQuery{})
		if err != nil || len(rows) != 1 || !slices.Equal(rows[0].Control, want[0].Encode()) || !slices.Equal(rows[0].Candidate, want[1].Encode()) {
			t.Errorf("%s: Latencies = %+v, %v; want %v / %v", name, rows, err, want[0].Encode(), want[1].Encode())
		}
	}
}
