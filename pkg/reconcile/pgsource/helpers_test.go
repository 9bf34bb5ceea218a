package pgsource_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parityhq/parity/internal/testutil"
)

// newDB creates a fresh database, runs setup in it, and returns its URL and
// a pool, both gone when the test ends.
func newDB(t testing.TB, setup ...string) (string, *pgxpool.Pool) {
	t.Helper()
	u := testutil.CreatedDatabase(t, setup...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
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
