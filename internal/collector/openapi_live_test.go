package collector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

// TestOpenAPIMatchesResponses calls every documented GET route (and the
// gate's webhooks) on a real collector holding one experiment with counts,
// samples, signatures, a dead letter, rules, redaction, a gate spec and a
// rollout, and validates each real answer against docs/openapi.yaml: the
// status must be documented, and the body must match its schema.
func TestOpenAPIMatchesResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	ctx := context.Background()
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	operator := hex.EncodeToString(raw[:])
	app, err := Start(ctx, Options{
		Addr:             "127.0.0.1:0",
		DatabaseURL:      testutil.FreshDatabase(t),
		EmbeddedNATSAddr: "127.0.0.1:-1",
		DataDir:          t.TempDir(),
		Workers:          1,
		OperatorTokens:   []string{operator},
		Logger:           slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = app.Shutdown(sctx)
	})
	minute := time.Now().UTC().Truncate(time.Minute)
	err = app.Store().Apply(ctx, &store.Batch{
		Stream: "openapi@1", Seqs: []uint64{1, 2, 3},
		Counts: []store.Count{
			{Experiment: "orders", Operation: "GetOrder", Segment: "country=IN", Attrs: map[string]string{"country": "IN"}, Minute: minute,
				Counters: report.Counters{Pairs: 2000, Divergent: 40, CandidateErrors: 3, AAPairs: 100, AADivergent: 1}, LastStage: "shadow", LastSeen: minute},
			{Experiment: "orders", Operation: "ListOrders", Segment: "country=US", Attrs: map[string]string{"country": "US"}, Minute: minute,
				Counters: report.Counters{Pairs: 1000}, LastStage: "shadow", LastSeen: minute},
		},
		Samples: []store.Sample{{PairID: "p1", Experiment: "orders", Operation: "GetOrder", Segment: "country=IN", Kind: "read",
			Stage: "shadow", UserKey: "u1", Time: minute, Control: json.RawMessage(`{"value":{"price":250}}`),
			Candidate: json.RawMessage(`{"value":{"price":249}}`), Paths: []string{"price"}, Verdict: "mismatch", Signature: "sig1"}},
		Signatures: []store.SignatureCount{{Experiment: "orders", Operation: "GetOrder", Segment: "country=IN", Minute: minute,
			Signature: "sig1", Patterns: json.RawMessage(`[{"pattern": "price", "kind": "changed"}]`), Count: 40, FirstSeen: minute, LastSeen: minute}},
		DeadLetters: []store.DeadLetter{{Source: "verifier", Subject: "parity.pairs.orders.GetOrder", Reason: "envelope: bad version", Data: []byte("{"), At: minute}},
	})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, tok, body string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, app.URL()+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, put := range []struct{ path, body string }{
		{"/api/v1/experiments/orders/rules", `{"rules": {"default": {"ignore": ["updated_at"]}}, "reason": "clock noise"}`},
		{"/api/v1/experiments/orders/redaction", `{"rules": [{"path": "user.email", "mode": "mask"}]}`},
		{"/api/v1/experiments/orders/gate/spec", `{"max_rate": 0.05, "min_pairs": 100, "window": "1h", "per_segment": true}`},
		{"/api/v1/experiments/orders/segment-config", `{"attrs": ["country"], "cap": 100, "reason": "one attribute"}`},
		{"/api/v1/experiments/orders/rollout", `{"flag": "orders", "reason": "test", "plan": {"steps": [
			{"name": "dual-write", "stage": "dualwrite", "audience": {"percent": 100}, "hold": "1h"},
			{"name": "live", "stage": "live", "audience": {"rules": [{"attribute": "country", "in": ["IN"]}]}}]}}`},
	} {
		if resp, b := call(http.MethodPut, put.path, operator, put.body); resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", put.path, resp.StatusCode, b)
		} else if errs := doc.checkAnswer(http.MethodPut, docPath(put.path), resp, b); len(errs) > 0 {
			t.Errorf("PUT %s: %s", put.path, strings.Join(errs, "\n\t"))
		}
	}
	if resp, b := call(http.MethodPost, "/api/v1/experiments/orders/rollout/promote", operator, `{"reason": "start"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("promote: %d %s", resp.StatusCode, b)
	}
	var samples struct {
		Samples []struct {
			ID int64 `json:"id"`
		} `json:"samples"`
	}
	_, b := call(http.MethodGet, "/api/v1/experiments/orders/samples", "", "")
	if err := json.Unmarshal(b, &samples); err != nil || len(samples.Samples) == 0 {
		t.Fatalf("samples: %s %v", b, err)
	}
	id := fmt.Sprint(samples.Samples[0].ID)
	since := url.QueryEscape(minute.Add(-time.Hour).Format(time.RFC3339))

	targets := []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/api/v1/openapi.json", "", 200},
		{"GET", "/api/v1/experiments", "", 200},
		{"GET", "/api/v1/experiments/orders/segments", "", 200},
		{"GET", "/api/v1/experiments/orders/segments?window=all&operation=GetOrder", "", 200},
		{"GET", "/api/v1/experiments/nope/segments", "", 404},
		{"GET", "/api/v1/experiments/orders/segments?window=forever", "", 400},
		{"GET", "/api/v1/experiments/orders/samples?limit=5", "", 200},
		{"GET", "/api/v1/samples/" + id, "", 200},
		{"GET", "/api/v1/samples/999999", "", 404},
		{"GET", "/api/v1/samples/" + id + "/diff", "", 200},
		{"GET", "/api/v1/dead-letters", "", 200},
		{"GET", "/api/v1/experiments/orders/signatures", "", 200},
		{"GET", "/api/v1/experiments/orders/noise?window=all", "", 200},
		{"GET", "/api/v1/experiments/orders/rules", "", 200},
		{"GET", "/api/v1/experiments/orders/rules/history", "", 200},
		{"GET", "/api/v1/experiments/orders/gate", "", 200},
		{"GET", "/api/v1/experiments/orders/gate?analysis=ci-42", "", 200},
		{"GET", "/api/v1/experiments/orders/gate?since=" + since, "", 200},
		{"GET", "/api/v1/experiments/other/gate", "", 200},
		{"GET", "/api/v1/experiments/orders/gate?max_rate=2", "", 400},
		{"GET", "/api/v1/experiments/orders/gate/spec", "", 200},
		{"GET", "/api/v1/experiments/orders/redaction", "", 200},
		{"GET", "/api/v1/pipeline", "", 200},
		{"GET", "/api/v1/rollouts", "", 200},
		{"GET", "/api/v1/experiments/orders/rollout", "", 200},
		{"GET", "/api/v1/experiments/nope/rollout", "", 404},
		{"GET", "/api/v1/experiments/orders/rollout/events", "", 200},
		{"GET", "/api/v1/experiments/orders/sweeps", "", 200},
		{"GET", "/api/v1/experiments/orders/segment-config", "", 200},
		{"GET", "/api/v1/experiments/orders/segment-config/history", "", 200},
		{"GET", "/api/v1/sweeps/999999", "", 404},
		{"POST", "/api/v1/experiments/orders/gate/confirm?since=" + since, `{"name": "orders", "namespace": "shop", "phase": "Progressing", "checksum": "abc"}`, 200},
		{"POST", "/api/v1/experiments/orders/gate/rollback?since=" + since, `{"name": "orders", "namespace": "shop", "phase": "Progressing", "checksum": "abc"}`, 412},
		{"POST", "/api/v1/experiments/orders/gate/confirm", `{"name": "orders", "namespace": "shop", "phase": "Progressing", "checksum": "abc"}`, 412},
	}
	called := map[string]bool{}
	for _, tt := range targets {
		resp, b := call(tt.method, tt.path, "", tt.body)
		if resp.StatusCode != tt.code {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, resp.StatusCode, b, tt.code)
			continue
		}
		p := docPath(tt.path)
		called[tt.method+" "+p] = true
		if errs := doc.checkAnswer(tt.method, p, resp, b); len(errs) > 0 {
			t.Errorf("%s %s (%d) does not match docs/openapi.yaml:\n\t%s", tt.method, tt.path, resp.StatusCode, strings.Join(errs, "\n\t"))
		}
	}
	for p, ops := range doc.Paths {
		if _, ok := ops["get"]; ok && !called["GET "+p] {
			t.Errorf("GET %s is documented but this test does not call it", p)
		}
	}
}

// docPath maps a concrete request path to its documented path.
func docPath(p string) string {
	p, _, _ = strings.Cut(p, "?")
	parts := strings.Split(p, "/")
	for i, s := range parts {
		switch {
		case i == 4 && parts[3] == "experiments":
			parts[i] = "{name}"
		case i == 4 && (parts[3] == "samples" || parts[3] == "sweeps"):
			parts[i] = "{id}"
		case i == 6 && parts[3] == "experiments" && parts[5] == "rollout" && s != "events":
			parts[i] = "{action}"
		}
	}
	return strings.Join(parts, "/")
}
