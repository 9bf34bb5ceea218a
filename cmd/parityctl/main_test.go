package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parityhq/parity/internal/auth"
	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
)

// parityctl runs the command in-process and returns its exit code and output.
func parityctl(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestTokenRoundTrip: create, list and revoke against a fresh database; the
// created token is what the collector's check accepts, until it is revoked.
func TestTokenRoundTrip(t *testing.T) {
	db := testutil.FreshDatabase(t) // created by the first command
	code, out, errOut := parityctl("token", "create", "--database-url", db, "--name", "ci-gate", "--role", "viewer")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if !auth.WellFormed(tok) || strings.Count(out, "\n") != 1 {
		t.Fatalf("create printed %q, want the token alone on one line", out)
	}
	if !strings.Contains(errOut, "shown only this once") || strings.Contains(errOut, tok) {
		t.Errorf("create's note %q: want a warning, and no token", errOut)
	}
	if code, _, errOut := parityctl("token", "create", "--database-url", db, "--name", "ops", "--role", "operator"); code != 0 {
		t.Fatalf("create operator: %s", errOut)
	}

	// The collector's view of the same table.
	ctx := context.Background()
	st, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	check, err := auth.Open(ctx, st.Pool(), auth.Options{CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := check.Check(ctx, tok); err != nil || p.Name != "ci-gate" || p.Role != auth.RoleViewer {
		t.Fatalf("the created token: %+v, %v", p, err)
	}

	code, out, _ = parityctl("token", "list", "--database-url", db)
	if code != 0 || !strings.Contains(out, "ci-gate") || !strings.Contains(out, "viewer") || !strings.Contains(out, "operator") || strings.Contains(out, tok[4:]) {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}

	if code, _, errOut := parityctl("token", "create", "--database-url", db, "--name", "ci-gate", "--role", "operator"); code != 1 || !strings.Contains(errOut, "already has that name") {
		t.Errorf("create a second ci-gate: exit %d %q, want 1 naming the conflict", code, errOut)
	}
	if code, _, errOut := parityctl("token", "revoke", "--database-url", db, "--name", "ci-gate"); code != 0 {
		t.Fatalf("revoke: exit %d: %s", code, errOut)
	}
	if _, err := check.Check(ctx, tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("the revoked token: %v, want ErrInvalidToken", err)
	}
	if code, _, errOut := parityctl("token", "revoke", "--database-url", db, "--name", "ci-gate"); code != 1 || !strings.Contains(errOut, "no active token") {
		t.Errorf("revoke again: exit %d %q, want 1", code, errOut)
	}
	_, out, _ = parityctl("token", "list", "--database-url", db)
	if strings.Contains(out, "ci-gate") || !strings.Contains(out, "ops") {
		t.Errorf("list without --all shows revoked tokens:\n%s", out)
	}
	_, out, _ = parityctl("token", "list", "--database-url", db, "--all")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "ci-gate") || strings.HasSuffix(lines[1], "-") {
		t.Errorf("list --all: want ci-gate with its revocation time:\n%s", out)
	}
}

func TestTokenUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"token"}, "usage"},
		{[]string{"token", "rotate"}, "unknown token command"},
		{[]string{"token", "create", "--name", "x"}, "--name and --role are required"},
		{[]string{"token", "create", "--name", "x", "--role", "admin"}, "invalid role"},
		{[]string{"token", "create", "--name", "a b", "--role", "viewer"}, "--name"},
		{[]string{"token", "revoke"}, "--name is required"},
	} {
		code, _, errOut := parityctl(tt.args...)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("parityctl %s: exit %d %q, want a failure mentioning %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
	}
}

// TestGateSendsToken: gate sends --token as a bearer token, and works as
// before without one.
func TestGateSendsToken(t *testing.T) {
	t.Setenv("PARITY_TOKEN", "") // whatever the environment running the tests holds
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"experiment": "orders", "verdict": "pass", "reason": "ok"}`))
	}))
	t.Cleanup(srv.Close)
	if code, out, errOut := parityctl("gate", "--url", srv.URL, "--experiment", "orders", "--token", "pty_secret"); code != exitPass {
		t.Fatalf("gate: exit %d %s %s", code, out, errOut)
	}
	if code, _, _ := parityctl("gate", "--url", srv.URL, "--experiment", "orders"); code != exitPass {
		t.Fatalf("gate without a token: exit %d", code)
	}
	if len(got) != 2 || got[0] != "Bearer pty_secret" || got[1] != "" {
		t.Errorf("Authorization headers %q, want the bearer token once and then none", got)
	}
}

// TestRolloutCommands drives a rollout through a real collector: a plan from
// a file, a refused move with its reason (exit 1), a resume, the status, and
// bad invocations (exit 3).
func TestRolloutCommands(t *testing.T) {
	const op = "parityctl-operator-token-0123456789"
	app, err := collector.Start(context.Background(), collector.Options{
		Addr: "127.0.0.1:0", DatabaseURL: testutil.FreshDatabase(t), NATSURL: testutil.RunJetStream(t).ClientURL(),
		Workers: -1, OperatorTokens: []string{op}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"flag": "orders-migration", "plan": {"steps": [
		{"name": "dual-write", "stage": "dualwrite", "audience": {"percent": 100}, "gate": "none"},
		{"name": "testers", "stage": "live", "audience": {"users": ["123"]}}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--url", app.URL(), "--token", op, "--experiment", "orders"}
	cmd := func(action string, more ...string) (int, string, string) {
		return parityctl(append(append([]string{"rollout", action}, common...), more...)...)
	}
	if code, out, errOut := cmd("plan", "--file", plan, "--reason", "first plan"); code != 0 || !strings.Contains(out, "step 0 of 2, paused") {
		t.Fatalf("plan: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := cmd("promote", "--reason", "hurry", "--step", "2"); code != exitRolloutRefused || !strings.Contains(out, "dual-writing") {
		t.Errorf("promote over dualwrite: exit %d, %q; want 1 and the reason", code, out)
	}
	if code, out, errOut := cmd("promote", "--reason", "start dual writes"); code != 0 || !strings.Contains(out, "step 1 of 2") {
		t.Errorf("promote: exit %d, %q %q", code, out, errOut)
	}
	code, out, _ := cmd("status")
	if code != 0 || !strings.Contains(out, "> 0 dualwrite") || !strings.Contains(out, "promote (manual) by operator-token[0], step 0 → 1: start dual writes") {
		t.Errorf("status: exit %d:\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"pause"}, // no reason
		{"pause", "--reason", "x", "--step", "1"}, // --step on pause
		{"jump", "--reason", "x"},                 // unknown command
	} {
		if code, _, errOut := cmd(bad[0], bad[1:]...); code != exitRolloutError || errOut == "" {
			t.Errorf("rollout %v: exit %d, %q; want 3 with a message", bad, code, errOut)
		}
	}
	if code, _, errOut := parityctl("rollout", "status", "--url", app.URL(), "--experiment", "orders", "--token", "wrong-token-0123456789"); code != exitRolloutError || !strings.Contains(errOut, "401") {
		t.Errorf("a wrong token: exit %d, %q", code, errOut)
	}
}
