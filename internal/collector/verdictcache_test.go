package collector

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

// countingReader counts the reads of counts a gate verdict costs.
type countingReader struct {
	*store.Store
	segments atomic.Int64
}

func (r *countingReader) Segments(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.SegmentCount, error) {
	r.segments.Add(1)
	return r.Store.Segments(ctx, experiment, q)
}

// TestVerdictCacheNeverStale: a verdict asked for again with nothing
// changed is served from the cache (no read of counts), and new counts or a
// new gate spec are judged afresh, never answered with the cached verdict.
func TestVerdictCacheNeverStale(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	db := &countingReader{Store: st}
	h, err := newEcho(&handlers{db: db, log: slog.New(slog.DiscardHandler), auth: newAuthn(authConfig{Anonymous: true})})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	add := func(pairs, divergent int64) {
		t.Helper()
		b := &store.Batch{Counts: []store.Count{{Experiment: "x", Operation: "get", Segment: "a", Attrs: map[string]string{"s": "a"},
			Minute: now, Counters: report.Counters{Pairs: pairs, Divergent: divergent}, LastStage: "shadow", LastSeen: now}}}
		if err := st.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	since := url.QueryEscape(now.Add(-10 * time.Minute).Format(time.RFC3339))
	gate := func() (report.Verdict, int64) {
		t.Helper()
		before := db.segments.Load()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/experiments/x/gate?since="+since, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("gate: %d %s", rec.Code, rec.Body.String())
		}
		var v GateView
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		return v.Verdict, db.segments.Load() - before
	}
	spec := func(doc string) {
		t.Helper()
		if _, err := st.SaveGateSpec(ctx, "x", []byte(doc), "test"); err != nil {
			t.Fatal(err)
		}
	}
	spec(`{"max_rate": 0.5, "min_pairs": 0, "per_segment": true}`)
	add(100, 0)
	if v, reads := gate(); v != report.Pass || reads == 0 {
		t.Fatalf("first look: %s after %d reads; want pass, read from the counts", v, reads)
	}
	if v, reads := gate(); v != report.Pass || reads != 0 {
		t.Fatalf("second look, nothing changed: %s after %d reads; want pass from the cache", v, reads)
	}
	add(0, 0) // even a batch that adds nothing moves the version
	if v, reads := gate(); v != report.Pass || reads == 0 {
		t.Fatalf("after a write: %s after %d reads; want judged afresh", v, reads)
	}
	add(400, 400) // now four pairs in five diverge
	if v, reads := gate(); v != report.Fail || reads == 0 {
		t.Fatalf("after divergent pairs: %s after %d reads; want fail, judged afresh", v, reads)
	}
	spec(`{"max_rate": 0.97, "min_pairs": 0, "per_segment": true}`)
	if v, reads := gate(); v != report.Pass || reads == 0 {
		t.Fatalf("after the spec changed: %s after %d reads; want pass, judged afresh", v, reads)
	}
	if v, reads := gate(); v != report.Pass || reads != 0 {
		t.Fatalf("again: %s after %d reads; want pass from the cache", v, reads)
	}
}
