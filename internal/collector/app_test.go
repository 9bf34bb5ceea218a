package collector

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/auth"
)

// TestStartWithoutPostgreSQL: with no database reachable, Start fails with a
// message that says how to get one, and leaks nothing (no embedded server
// left holding its port).
func TestStartWithoutPostgreSQL(t *testing.T) {
	opts := Options{
		Addr:             "127.0.0.1:0",
		DatabaseURL:      "postgres://parity:s3cret-password@127.0.0.1:1/parity?sslmode=disable",
		EmbeddedNATSAddr: "127.0.0.1:-1",
		DataDir:          t.TempDir(),
		Logger:           slog.New(slog.DiscardHandler),
	}
	for range 2 { // twice: the first attempt must have released everything
		_, err := Start(context.Background(), opts)
		if err == nil {
			t.Fatal("Start succeeded without a database")
		}
		msg := err.Error()
		for _, want := range []string{"PostgreSQL", "DATABASE_URL"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not mention %s", msg, want)
			}
		}
		if strings.Contains(msg, "s3cret-password") {
			t.Errorf("error %q reveals the password", msg)
		}
	}
}

func TestOptionsRejected(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{Workers: -2}, "Workers"},
		{Options{DemoRate: -1}, "DemoRate"},
		{Options{IngestTokens: []string{"short"}}, "IngestTokens[0]"},
		{Options{ViewerTokens: []string{"long-enough-token-1", "short"}}, "ViewerTokens[1]"},
		{Options{OperatorTokens: []string{"the-same-token-twice"}, ViewerTokens: []string{"the-same-token-twice"}}, "also in OperatorTokens"},
		{Options{AnonymousViewers: "yes"}, "AnonymousViewers"},
		{Options{SessionSecret: "too short"}, "SessionSecret"},
		// The placeholders the deployment files used to ship, and weak
		// values: refused, naming the setting and how to make a good one.
		{Options{SessionSecret: "CHANGE-ME-session-secret-of-at-least-32-bytes"}, "SessionSecret (--session-secret, PARITY_SESSION_SECRET): secret: weak secret: it is a placeholder"},
		{Options{SessionSecret: strings.Repeat("s", 40)}, "openssl rand -hex 32"},
		{Options{IngestTokens: []string{"CHANGE-ME-ingest-token-placeholder"}}, "IngestTokens[0] (--ingest-token, PARITY_INGEST_TOKENS): secret: weak secret: it is a placeholder"},
		{Options{ViewerTokens: []string{"CHANGE-ME-viewer-token-placeholder"}}, "ViewerTokens[0] (--viewer-token, PARITY_VIEWER_TOKENS)"},
		{Options{OperatorTokens: []string{"0123456789abcdefghij"}}, "OperatorTokens[0] (--operator-token, PARITY_OPERATOR_TOKENS): secret: weak secret: it is mostly a run of consecutive"},
		{Options{OperatorTokens: []string{"aaaaaaaaaaaaaaaaaaaa"}}, "parityctl token create"},
		{Options{DatabaseURL: "postgres://parity:CHANGE-ME-postgres-password@postgres:5432/parity"}, "DatabaseURL (--database-url, DATABASE_URL): secret: weak secret: the password is a placeholder"},
		{Options{SessionTTL: time.Second}, "SessionTTL"},
		{Options{Auth: auth.Options{CacheTTL: time.Hour}}, "CacheTTL"},
	}
	for _, tt := range tests {
		_, err := Start(context.Background(), tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Start(%+v) = %v, want an error naming %s", tt.opts, err, tt.want)
		}
		if err != nil && (tt.opts.SessionSecret != "" && strings.Contains(err.Error(), tt.opts.SessionSecret) || strings.Contains(err.Error(), "CHANGE-ME")) {
			t.Errorf("Start(%+v) = %v: the error quotes the secret", tt.opts, err)
		}
	}
}
