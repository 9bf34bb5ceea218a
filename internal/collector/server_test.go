package collector

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

// seeded returns a handler over a fresh database holding one experiment with
// two segments and one divergence sample.
func seeded(t *testing.T) http.Handler {
	t.Helper()
	e, err := newEcho(&handlers{db: seedStore(t), log: slog.New(slog.DiscardHandler), auth: newAuthn(authConfig{Anonymous: true})})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// seedStore returns a fresh database holding one experiment with two
// segments and one divergence sample.
func seedStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	minute := time.Now().UTC().Truncate(time.Minute)
	err = st.Apply(ctx, &store.Batch{
		Stream: "test@1", Seqs: []uint64{1, 2},
		Counts: []store.Count{
			{Experiment: "orders", Operation: "GetOrder", Segment: "country=IN", Attrs: map[string]string{"country": "IN"}, Minute: minute,
				Counters: report.Counters{Pairs: 200, Divergent: 20, CandidateErrors: 3}, LastStage: "shadow", LastSeen: minute},
			{Experiment: "orders", Operation: "ListOrders", Segment: "country=US", Attrs: map[string]string{"country": "US"}, Minute: minute,
				Counters: report.Counters{Pairs: 100}, LastStage: "shadow", LastSeen: minute},
		},
		Samples: []store.Sample{{PairID: "p1", Experiment: "orders", Operation: "GetOrder", Segment: "country=IN", Kind: "read",
			Stage: "shadow", UserKey: "u1", Time: minute, Control: json.RawMessage(`{"value":{"price":250}}`),
			Candidate: json.RawMessage(`{"value":{"price":249}}`), Paths: []string{"price"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestAPI(t *testing.T) {
	h := seeded(t)
	tests := []struct {
		name   string
		target string
		code   int
		want   []string // substrings of the body
	}{
		{"experiments", "/api/v1/experiments", 200, []string{`"name":"orders"`, `"pairs":300`, `"divergent":20`, `"stage":"shadow"`}},
		{"segments", "/api/v1/experiments/orders/segments", 200, []string{`"segment":"country=IN"`, `"pairs":200`, `"divergent":20`, `"rate":0.1`, `"candidate_errors":3`}},
		{"segments of one operation", "/api/v1/experiments/orders/segments?operation=ListOrders&window=1h", 200, []string{`"segment":"country=US"`, `"pairs":100`}},
		{"segments outside the window", "/api/v1/experiments/orders/segments?window=all", 200, []string{`"pairs":300`}},
		{"samples", "/api/v1/experiments/orders/samples?segment=country%3DIN", 200, []string{`"paths":["price"]`, `"price":249`}},
		{"bad window", "/api/v1/experiments/orders/segments?window=forever", 400, []string{"parameter window"}},
		{"window too short", "/api/v1/experiments/orders/segments?window=1s", 400, []string{"parameter window", "between 1m and 90d"}},
		{"bad operation", "/api/v1/experiments/orders/segments?operation=a.b", 400, []string{"parameter operation"}},
		{"bad limit", "/api/v1/experiments/orders/samples?limit=0", 400, []string{"parameter limit"}},
		{"bad experiment name", "/api/v1/experiments/a%20b/segments", 400, []string{"parameter name"}},
		{"unknown experiment", "/api/v1/experiments/nope/segments", 404, []string{"experiment nope not found"}},
		{"unknown experiment samples", "/api/v1/experiments/nope/samples", 404, []string{"not found"}},
		{"bad sample id", "/api/v1/samples/x", 400, []string{"parameter id"}},
		{"unknown sample", "/api/v1/samples/999999", 404, []string{"sample 999999 not found"}},
		{"dead letters", "/api/v1/dead-letters", 200, []string{`"total":0`}},
		{"bad dead letter limit", "/api/v1/dead-letters?limit=5000", 400, []string{"parameter limit"}},
		{"overview page", "/", 200, []string{`href="/experiments/orders"`, "6.67%"}},
		{"experiment page", "/experiments/orders", 200, []string{`data-segment="country=IN"`, `data-col="pairs">200<`, "ListOrders"}},
		{"experiment page bad window", "/experiments/orders?window=x", 400, []string{"parameter window"}},
		{"experiment page filtered", "/experiments/orders?window=all&attr=&attr=country:US&sort=rate&dir=desc", 200, []string{`data-segment="country=US"`, `data-marginal="country=US"`}},
		{"experiment page bad attr", "/experiments/orders?attr=country", 400, []string{"parameter attr"}},
		{"experiment page bad sort", "/experiments/orders?sort=color", 400, []string{"parameter sort"}},
		{"gate", "/api/v1/experiments/orders/gate?max_rate=50%25&min_pairs=0", 200, []string{`"verdict":"pass"`, `"segments":[`}},
		{"gate spec default", "/api/v1/experiments/orders/gate/spec", 200, []string{`"max_rate":0.001`}},
		{"unknown experiment page", "/experiments/nope", 404, []string{"not found"}},
		{"health", "/healthz", 200, []string{"ok"}},
		{"ready", "/readyz", 200, []string{"ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, h, tt.target)
			if code != tt.code {
				t.Fatalf("GET %s: %d, want %d; body %s", tt.target, code, tt.code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: body lacks %q:\n%s", tt.target, w, body)
				}
			}
		})
	}
}

func TestSamplePage(t *testing.T) {
	h := seeded(t)
	_, body := get(t, h, "/api/v1/experiments/orders/samples")
	var r struct {
		Samples []struct{ ID int64 } `json:"samples"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Samples) != 1 {
		t.Fatalf("samples: %v %s", err, body)
	}
	code, page := get(t, h, "/samples/"+itoa(r.Samples[0].ID))
	if code != 200 {
		t.Fatalf("sample page: %d", code)
	}
	for _, w := range []string{"<mark><code>price</code></mark>", "249", "250", "country=IN"} {
		if !strings.Contains(page, w) {
			t.Errorf("sample page lacks %q", w)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := seeded(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("no content security policy")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestExperimentPageFilterExcludes(t *testing.T) {
	h := seeded(t)
	code, body := get(t, h, "/experiments/orders?attr=country:US")
	if code != 200 || !strings.Contains(body, `data-segment="country=US"`) {
		t.Fatalf("filtered page: %d, lacks the US row", code)
	}
	if strings.Contains(body, `tr data-segment="country=IN"`) {
		t.Errorf("filter country:US still shows the IN row")
	}
}
