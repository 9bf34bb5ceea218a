package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresURL is the server tests use when PARITY_TEST_DATABASE_URL is
// not set: the local server, trust authentication.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURL returns the URL of the maintenance database tests create their
// databases through.
func PostgresURL() string {
	if u := os.Getenv("PARITY_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// RequirePostgres marks a test that needs the PostgreSQL server: under
// `go test -short` (make test-short) it skips, and only then; otherwise it
// fails at once, naming PARITY_TEST_DATABASE_URL, when the server does not
// answer. FreshDatabase calls it.
func RequirePostgres(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL: runs without -short")
	}
	if err := pingPostgres(); err != nil {
		t.Fatal(err)
	}
}

var (
	pingOnce sync.Once
	pingErr  error
)

// pingPostgres checks once per test binary that the server answers.
func pingPostgres() error {
	pingOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, PostgresURL())
		if err != nil {
			u, perr := url.Parse(PostgresURL())
			where := "(unparseable URL)"
			if perr == nil {
				where = u.Redacted()
			}
			pingErr = fmt.Errorf("testutil: no PostgreSQL at %s: %w; tests read PARITY_TEST_DATABASE_URL "+
				"(default %s); bash .ci/run starts one, and make test-short runs only the tests that need none", where, err, DefaultPostgresURL)
			return
		}
		_ = conn.Close(ctx)
	})
	return pingErr
}

// FreshDatabase returns the URL of a database name that does not exist yet
// (the code under test is expected to create it) and drops it, with every
// connection to it, when the test ends.
func FreshDatabase(t testing.TB) string {
	t.Helper()
	RequirePostgres(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "parity_test_" + hex.EncodeToString(b[:])
	u, err := url.Parse(PostgresURL())
	if err != nil {
		t.Fatalf("testutil: postgres url: %v", err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, PostgresURL())
		if err != nil {
			t.Errorf("testutil: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testutil: drop database %s: %v", name, err)
		}
	})
	return u.String()
}

// CreatedDatabase is [FreshDatabase], created, with the setup statements run
// in it.
func CreatedDatabase(t testing.TB, setup ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u := FreshDatabase(t)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	admin, err := pgx.Connect(ctx, PostgresURL())
	if err != nil {
		t.Fatalf("testutil: create database: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{pu.Path[1:]}.Sanitize()); err != nil {
		t.Fatalf("testutil: create database: %v", err)
	}
	if len(setup) == 0 {
		return u
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	defer conn.Close(ctx)
	for _, q := range setup {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("testutil: setup %q: %v", q, err)
		}
	}
	return u
}
