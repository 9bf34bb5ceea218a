// Package collectortest runs a real collector for tests outside the
// collector package — the rollout-tool integration modules under
// e2e/promotion — over an embedded JetStream server and a fresh PostgreSQL
// database, requiring tokens as a deployed collector does. It sends pairs
// through the real publisher and waits until they are counted. Every
// resource it starts is released when the test ends.
package collectortest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/publish"
)

// Live is a collector started for a test.
type Live struct {
	App *collector.App
	nc  *nats.Conn
	// Viewer, Operator and Ingest are its static tokens; without one
	// nothing can be read.
	Viewer, Operator, Ingest string
}

// Token returns a fresh random token.
func Token(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pty_" + hex.EncodeToString(b)
}

// Start runs a collector until the test ends.
func Start(t testing.TB) *Live {
	t.Helper()
	ns := testutil.RunJetStream(t)
	l := &Live{Viewer: Token(t), Operator: Token(t), Ingest: Token(t)}
	app, err := collector.Start(context.Background(), collector.Options{
		Addr:           "127.0.0.1:0",
		DatabaseURL:    testutil.FreshDatabase(t),
		NATSURL:        ns.ClientURL(),
		Workers:        1,
		IngestTokens:   []string{l.Ingest},
		ViewerTokens:   []string{l.Viewer},
		OperatorTokens: []string{l.Operator},
		Verifier:       verifier.Options{FlushInterval: 50 * time.Millisecond},
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("collectortest: start collector: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("collectortest: shutdown: %v", err)
		}
	})
	l.App = app
	l.nc = testutil.Connect(t, ns)
	return l
}

// URL is the collector's base URL.
func (l *Live) URL() string { return l.App.URL() }

// Call sends one request with a bearer token (none when tok is empty) and
// returns the status and body.
func (l *Live) Call(t testing.TB, method, path, tok, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, l.App.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// SetGate stores an experiment's gate spec with the operator token.
func (l *Live) SetGate(t testing.TB, experiment, spec string) {
	t.Helper()
	if code, b := l.Call(t, http.MethodPut, "/api/v1/experiments/"+experiment+"/gate/spec", l.Operator, spec); code != http.StatusOK {
		t.Fatalf("collectortest: PUT gate spec: %d %s", code, b)
	}
}

// Send publishes pairs first … first+n-1 of experiment (operation GetOrder,
// segment country=IN,plan=pro), every divergeEvery-th one divergent (none
// when 0), and waits until the collector has counted want pairs of the
// experiment in all.
func (l *Live) Send(t testing.TB, experiment string, first, n, divergeEvery int, want int64) {
	t.Helper()
	pub, err := publish.New(l.nc, publish.Options{QueueSize: 8192})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := first; i < first+n; i++ {
		control := fmt.Sprintf(`{"id":%d,"total":250}`, i)
		candidate := control
		if divergeEvery > 0 && i%divergeEvery == 0 {
			candidate = fmt.Sprintf(`{"id":%d,"total":249}`, i)
		}
		pub.Publish(&envelope.Pair{
			ID: fmt.Sprintf("%s-%d", experiment, i), Experiment: experiment, Operation: "GetOrder",
			Kind: envelope.KindRead, Time: now, Stage: envelope.StageShadow,
			User:      envelope.User{Key: fmt.Sprintf("user-%d", i), Attrs: map[string]string{"country": "IN", "plan": "pro"}},
			Control:   envelope.Observation{Value: json.RawMessage(control), DurationNS: 1000},
			Candidate: envelope.Observation{Value: json.RawMessage(candidate), DurationNS: 900},
		})
	}
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		code, b := l.Call(t, http.MethodGet, "/api/v1/experiments/"+experiment+"/segments?window=all", l.Viewer, "")
		var v struct {
			Total struct {
				Pairs int64 `json:"pairs"`
			} `json:"total"`
		}
		_ = json.Unmarshal(b, &v)
		if v.Total.Pairs != want {
			return fmt.Sprintf("%d: %d of %d pairs counted", code, v.Total.Pairs, want)
		}
		return ""
	})
}

// Verdict reads the verdict out of a gate answer.
func Verdict(t testing.TB, body []byte) string {
	t.Helper()
	var v struct {
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(body), &v); err != nil {
		t.Fatalf("collectortest: gate answer %s: %v", body, err)
	}
	return v.Verdict
}
