package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

// openStore opens a store on a fresh database, closed when the test ends
// (before the database is dropped).
func openStore(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := store.Open(ctx, testutil.FreshDatabase(t), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// latestSchema is the number of the newest file in migrations/, read from
// the directory so a new migration needs no edit here.
var latestSchema = func() int32 {
	files, err := os.ReadDir("migrations")
	if err != nil {
		panic(err)
	}
	var n int32
	for _, f := range files {
		var v int32
		if _, err := fmt.Sscanf(f.Name(), "%03d_", &v); err == nil && v > n {
			n = v
		}
	}
	return n
}()

func schemaVersion(t *testing.T, s *store.Store) int32 {
	t.Helper()
	var v int32
	if err := s.Pool().QueryRow(t.Context(), `SELECT version FROM parity_schema_version`).Scan(&v); err != nil {
		t.Fatalf("schema version: %v", err)
	}
	return v
}

func TestOpenCreatesDatabaseAndIsIdempotent(t *testing.T) {
	t.Parallel()
	url := testutil.FreshDatabase(t)
	for i := range 2 {
		s, err := store.Open(t.Context(), url, store.Options{})
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping #%d: %v", i+1, err)
		}
		if v := schemaVersion(t, s); v != latestSchema {
			t.Errorf("Open #%d: schema version %d, want %d", i+1, v, latestSchema)
		}
		if got, want := s.Options(), store.DefaultOptions(); got != want {
			t.Errorf("Open #%d: options %+v, want the defaults %+v", i+1, got, want)
		}
		s.Close()
	}
}

func TestOpenConcurrentlyOnFreshDatabase(t *testing.T) {
	t.Parallel()
	url := testutil.FreshDatabase(t)
	const n = 4
	stores := make([]*store.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = store.Open(t.Context(), url, store.Options{}) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open #%d: %v", i+1, errs[i])
			continue
		}
		if v := schemaVersion(t, stores[i]); v != latestSchema {
			t.Errorf("Open #%d: schema version %d, want %d", i+1, v, latestSchema)
		}
		stores[i].Close()
	}
}

func TestOpenUnreachableServer(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pw"
	tests := []struct {
		name string
		url  string
		want []string
	}{
		{
			name: "url",
			url:  "postgres://parity:" + password + "@127.0.0.1:1/parity?sslmode=disable",
			want: []string{
				"store: cannot reach PostgreSQL at 127.0.0.1:1: ",
				`start one (e.g. "pg_ctlcluster 15 main start", or "docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16") or set DATABASE_URL`,
			},
		},
		{
			name: "keyword/value",
			url:  "host=127.0.0.1 port=1 user=parity password=" + password + " dbname=parity sslmode=disable",
			want: []string{"store: cannot reach PostgreSQL at 127.0.0.1:1: ", "or set DATABASE_URL"},
		},
		{
			name: "unparsable url",
			url:  "postgres://parity:" + password + "@127.0.0.1:notaport/parity",
			want: []string{"store: parse database URL: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			s, err := store.Open(ctx, tt.url, store.Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, password) {
				t.Errorf("error contains the password: %q", msg)
			}
		})
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts  store.Options
		field string
	}{
		{store.Options{SegmentCap: -1}, "SegmentCap"},
		{store.Options{SamplesPerKey: -1}, "SamplesPerKey"},
		{store.Options{MaxConns: -1}, "MaxConns"},
	}
	for _, tt := range tests {
		// The options are checked before any connection is attempted.
		_, err := store.Open(t.Context(), "postgres://127.0.0.1:1/x", tt.opts)
		if !errors.Is(err, store.ErrInvalidOption) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("Open(%+v) = %v, want ErrInvalidOption naming %s", tt.opts, err, tt.field)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://u:s3cret@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u@h/db?password=s3cret", "postgres://u@h/db?password=xxxxx"},
		{"host=h user=u password=s3cret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"postgres://u:p%40ss@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://u:s3cret@h/db?application_name=a@b", "postgres://u:xxxxx@h/db?application_name=a@b"},
		{"postgres://u:s3cret@h:notaport/db", "postgres://u:xxxxx@h:notaport/db"},
	}
	for _, tt := range tests {
		if got := store.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDropDatabase: only a *_demo database is dropped; a dropped one is
// created again, empty, by Open.
func TestDropDatabase(t *testing.T) {
	ctx := t.Context()
	if err := store.DropDatabase(ctx, "postgres://postgres@127.0.0.1:1/parity?sslmode=disable"); err == nil || !strings.Contains(err.Error(), "_demo") {
		t.Fatalf("dropping parity: %v, want a refusal naming *_demo", err)
	}
	url := strings.Replace(testutil.FreshDatabase(t), "?", "_demo?", 1)
	t.Cleanup(func() { _ = store.DropDatabase(context.Background(), url) })
	s, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, &store.Batch{Counts: []store.Count{{Experiment: "x", Operation: "op", Segment: "s", Minute: time.Now().Truncate(time.Minute),
		Counters: report.Counters{Pairs: 1}}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := store.DropDatabase(ctx, url); err != nil {
		t.Fatalf("drop: %v", err)
	}
	s, err = store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if exps, err := s.Experiments(ctx); err != nil || len(exps) != 0 {
		t.Errorf("after the drop: %v %v, want an empty database", exps, err)
	}
}
