package collector

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/auth"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
)

// TestStartWithTokens: a collector started with anonymous viewers off reads
// tokens created in its database (as parityctl does), logs its access mode,
// and lets an ingest token ingest and nothing else.
func TestStartWithTokens(t *testing.T) {
	ns := testutil.RunJetStream(t)
	logs := &syncBuffer{}
	app, err := Start(context.Background(), Options{
		Addr: "127.0.0.1:0", DatabaseURL: testutil.FreshDatabase(t), NATSURL: ns.ClientURL(), Workers: -1,
		AnonymousViewers: "false", OperatorTokens: []string{flagOperator},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	if !strings.Contains(logs.String(), "anonymous_viewers=false") {
		t.Errorf("the start log does not say anonymous viewers are off:\n%s", logs)
	}

	tokens, err := auth.Open(context.Background(), app.Store().Pool(), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ingest, err := tokens.Create(context.Background(), "shop", auth.RoleIngest)
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := tokens.Create(context.Background(), "dash", auth.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}

	pair, err := envelope.Marshal(&envelope.Pair{
		ID: "p-auth-1", Experiment: "auth", Operation: "Get", Kind: envelope.KindRead, Stage: envelope.StageShadow,
		Time: time.Now().UTC(), User: envelope.User{Key: "u1"},
		Control:   envelope.Observation{Value: json.RawMessage(`1`)},
		Candidate: envelope.Observation{Value: json.RawMessage(`1`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		who, token, method, path, body string
		want                           int
	}{
		{"nobody", "", "GET", "/api/v1/experiments", "", http.StatusUnauthorized},
		{"nobody", "", "GET", "/healthz", "", http.StatusOK},
		{"nobody", "", "GET", "/metrics", "", http.StatusOK},
		{"viewer", viewer, "GET", "/api/v1/experiments", "", http.StatusOK},
		{"viewer", viewer, "POST", "/api/v1/pairs", string(pair), http.StatusForbidden},
		{"ingest", ingest, "GET", "/api/v1/experiments", "", http.StatusForbidden},
		{"ingest", ingest, "POST", "/api/v1/pairs", string(pair), http.StatusOK},
		{"flag operator", flagOperator, "POST", "/api/v1/pairs", string(pair), http.StatusForbidden},
		{"flag operator", flagOperator, "PUT", "/api/v1/experiments/auth/gate/spec", `{"max_rate": 0.01, "min_pairs": 1, "window": "1h"}`, http.StatusOK},
	} {
		if resp, body := call(t, nil, tt.method, app.URL()+tt.path, tt.token, tt.body); resp.StatusCode != tt.want {
			t.Errorf("%s %s as %s: %d, want %d; %s", tt.method, tt.path, tt.who, resp.StatusCode, tt.want, body)
		}
	}
}
