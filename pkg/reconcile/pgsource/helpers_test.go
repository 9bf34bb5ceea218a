package pgsource_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parityhq/parity/internal/testutil"
)

// newDB creates a fresh database, runs setup in it, and returns its URL and
// a pool, both gone when the test ends.
func newDB(t testing.TB, setup ...string) (string, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u := testutil.FreshDatabase(t)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, testutil.PostgresURL())
	if err != nil {
		t.Fatalf("connect to postgres: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{strings.TrimPrefix(pu.Path, "/")}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for _, q := range setup {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("setup %q: %v", q, err)
		}
	}
	return u, pool
}

func exec(t testing.TB, pool *pgxpool.Pool, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := pool.Exec(context.Background(), q); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
	}
}
