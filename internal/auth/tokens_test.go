package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parityhq/parity/internal/testutil"
)

// freshPool creates a fresh database and returns a pool on it, closed when
// the test ends (before the database is dropped).
func freshPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	dbURL := testutil.FreshDatabase(t)
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, testutil.PostgresURL())
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	_ = admin.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// clock is a settable clock for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func open(t *testing.T, pool *pgxpool.Pool, opts Options) *Tokens {
	t.Helper()
	tk, err := Open(context.Background(), pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	tk := open(t, freshPool(t), Options{})

	tok, err := tk.Create(ctx, "ci-gate", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "pty_") || len(tok) != 47 || !WellFormed(tok) {
		t.Fatalf("token %q: want pty_ and 43 base64url characters", tok)
	}
	p, err := tk.Check(ctx, tok)
	if err != nil || p.Name != "ci-gate" || p.Role != RoleViewer || p.TokenID == 0 {
		t.Fatalf("Check = %+v, %v; want ci-gate as viewer", p, err)
	}
	if q, err := tk.Lookup(ctx, p.TokenID); err != nil || q != p {
		t.Fatalf("Lookup(%d) = %+v, %v; want %+v", p.TokenID, q, err, p)
	}

	if _, err := tk.Create(ctx, "ci-gate", RoleOperator); !errors.Is(err, ErrExists) {
		t.Errorf("second active token with the same name: %v, want ErrExists", err)
	}
	other, err := tk.Create(ctx, "release-owner", RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	if other == tok {
		t.Fatal("two tokens are equal")
	}

	list, err := tk.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "ci-gate" || list[1].Role != RoleOperator || !list[0].Active() {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if list[0].LastUsedAt.IsZero() || !list[1].LastUsedAt.IsZero() {
		t.Errorf("last used: %v and %v, want the checked token's set and the other's not", list[0].LastUsedAt, list[1].LastUsedAt)
	}

	if err := tk.Revoke(ctx, "ci-gate"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Check(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Check after Revoke through the same Tokens: %v, want ErrInvalidToken at once", err)
	}
	if _, err := tk.Lookup(ctx, p.TokenID); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Lookup after Revoke: %v, want ErrInvalidToken", err)
	}
	if err := tk.Revoke(ctx, "ci-gate"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking twice: %v, want ErrNotFound", err)
	}
	// The name is free again; the revoked row stays in the list.
	again, err := tk.Create(ctx, "ci-gate", RoleViewer)
	if err != nil {
		t.Fatalf("reuse a revoked token's name: %v", err)
	}
	if _, err := tk.Check(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("the old token works again after its name was reused: %v", err)
	}
	if p2, err := tk.Check(ctx, again); err != nil || p2.TokenID == p.TokenID {
		t.Errorf("new token: %+v, %v", p2, err)
	}
	list, _ = tk.List(ctx)
	if len(list) != 3 || list[0].Active() || list[0].RevokedAt.IsZero() || !list[1].Active() {
		t.Errorf("List after revoke and reuse = %+v", list)
	}
}

func TestInvalidInput(t *testing.T) {
	ctx := context.Background()
	tk := open(t, freshPool(t), Options{})
	for _, name := range []string{"", "-leading-dash", "has space", "a/b", strings.Repeat("x", 65), "--operator-token[0]"} {
		if _, err := tk.Create(ctx, name, RoleViewer); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q): %v, want ErrInvalidName", name, err)
		}
	}
	for _, role := range []Role{"", "admin", "Viewer"} {
		if _, err := tk.Create(ctx, "x", role); !errors.Is(err, ErrInvalidRole) {
			t.Errorf("Create with role %q: %v, want ErrInvalidRole", role, err)
		}
	}
	if _, err := ParseRole("root"); !errors.Is(err, ErrInvalidRole) {
		t.Errorf("ParseRole(root): %v", err)
	}
	valid, _ := newToken()
	for _, tok := range []string{"", "pty_", "pty_short", "xyz_" + valid[4:], valid[:46] + "!", valid + "x", " " + valid[1:], valid} {
		if _, err := tk.Check(ctx, tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Check(%q): %v, want ErrInvalidToken", tok, err)
		}
	}
	for _, o := range []Options{{CacheTTL: 2 * time.Minute}, {CacheSize: -1}} {
		if _, err := Open(ctx, nil, o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Open(%+v): %v, want ErrInvalidOption", o, err)
		}
	}
}

func TestRoleAllows(t *testing.T) {
	tests := []struct {
		have, need Role
		want       bool
	}{
		{RoleViewer, RoleViewer, true},
		{RoleOperator, RoleViewer, true},
		{RoleOperator, RoleOperator, true},
		{RoleIngest, RoleIngest, true},
		{RoleViewer, RoleOperator, false},
		{RoleViewer, RoleIngest, false},
		{RoleOperator, RoleIngest, false},
		{RoleIngest, RoleViewer, false},
		{RoleIngest, RoleOperator, false},
		{"", RoleViewer, false},
		{"admin", "admin", false},
	}
	for _, tt := range tests {
		if got := tt.have.Allows(tt.need); got != tt.want {
			t.Errorf("%q.Allows(%q) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
}

// TestRevocationBound: a token revoked by another process (parityctl, a
// second collector) is refused here once CacheTTL has passed — and, as
// documented, may still be accepted until then.
func TestRevocationBound(t *testing.T) {
	ctx := context.Background()
	pool := freshPool(t)
	clk := newClock()
	collector := open(t, pool, Options{CacheTTL: 5 * time.Second, Now: clk.Now})
	cli := open(t, pool, Options{})

	tok, err := cli.Create(ctx, "ingest-a", RoleIngest)
	if err != nil {
		t.Fatal(err)
	}
	p, err := collector.Check(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Revoke(ctx, "ingest-a"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(4 * time.Second)
	if _, err := collector.Check(ctx, tok); err != nil {
		t.Errorf("within the bound the cached answer is used: %v", err)
	}
	if _, err := collector.Lookup(ctx, p.TokenID); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Lookup was never cached, so it sees the revocation: %v", err)
	}
	clk.Advance(time.Second)
	if _, err := collector.Check(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("at CacheTTL after the revocation: %v, want ErrInvalidToken", err)
	}
}

// TestNewTokenWorksAtOnce: invalid answers are not cached.
func TestNewTokenWorksAtOnce(t *testing.T) {
	ctx := context.Background()
	pool := freshPool(t)
	tk := open(t, pool, Options{})
	if _, err := tk.Check(ctx, "pty_"+strings.Repeat("A", 43)); !errors.Is(err, ErrInvalidToken) {
		t.Fatal(err)
	}
	tok, err := open(t, pool, Options{}).Create(ctx, "fresh", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Check(ctx, tok); err != nil {
		t.Errorf("a token created elsewhere: %v, want accepted at once", err)
	}
}

// TestStoredHashed: the database holds the token's SHA-256 hash and nothing
// from which the token can be read.
func TestStoredHashed(t *testing.T) {
	ctx := context.Background()
	pool := freshPool(t)
	tk := open(t, pool, Options{})
	tok, err := tk.Create(ctx, "hashed", RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	var hash []byte
	var row string
	if err := pool.QueryRow(ctx, `SELECT hash, row_to_json(t)::text FROM api_tokens t`).Scan(&hash, &row); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256([]byte(tok)); string(hash) != string(want[:]) {
		t.Errorf("stored hash %x, want SHA-256 of the token %x", hash, want)
	}
	if strings.Contains(row, tok[len(Prefix):]) {
		t.Errorf("the row %s contains the token", row)
	}
}

func TestOpenConcurrently(t *testing.T) {
	ctx := context.Background()
	pool := freshPool(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := Open(ctx, pool, Options{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var v int32
	if err := pool.QueryRow(ctx, `SELECT version FROM `+VersionTable).Scan(&v); err != nil || v != 1 {
		t.Errorf("schema version %d, %v; want 1 in %s", v, err, VersionTable)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer version is refused,
// not migrated down.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	pool := freshPool(t)
	open(t, pool, Options{})
	if _, err := pool.Exec(ctx, `UPDATE `+VersionTable+` SET version = 99`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, pool, Options{}); err == nil || !strings.Contains(err.Error(), "99") {
		t.Errorf("Open over version 99: %v, want an error naming it", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM api_tokens`).Scan(&n); err != nil {
		t.Errorf("api_tokens is gone: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	ctx := context.Background()
	pool := freshPool(t)
	clk := newClock()
	tk := open(t, pool, Options{CacheSize: 2, Now: clk.Now})
	for _, name := range []string{"a", "b", "c", "d"} {
		tok, err := tk.Create(ctx, name, RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Check(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if n := tk.cache.len(); n > 2 {
			t.Fatalf("cache holds %d tokens, want at most 2", n)
		}
	}
}

func TestCacheOff(t *testing.T) {
	ctx := context.Background()
	pool := freshPool(t)
	tk := open(t, pool, Options{CacheTTL: -1})
	tok, err := tk.Create(ctx, "a", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Check(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := open(t, pool, Options{}).Revoke(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Check(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("without a cache a revocation elsewhere is seen at once: %v", err)
	}
}
