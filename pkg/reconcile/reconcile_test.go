package reconcile_test

import (
	"context"
	"strings"
	"testing"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/reconcile"
)

// TestNoServerDeps: applications implement Source for their own stores and
// import this package; it must not pull in a database driver.
func TestNoServerDeps(t *testing.T) {
	testutil.NoServerDeps(t, "github.com/parityhq/parity/pkg/reconcile", "github.com/parityhq/parity/pkg/diff")
}

// TestInvalidRow: a value the differ cannot parse is counted as invalid with
// its reason, and the sweep goes on.
func TestInvalidRow(t *testing.T) {
	old := &mapSource{side: "old", rows: map[string]string{"a": `{"id":"a"}`, "b": `{"id":"b"}`, "c": `{"id":"c"}`}}
	new := &mapSource{side: "new", rows: map[string]string{"a": `{"id":"a"}`, "b": `{"id":"b",`, "c": `{"id":"c"}`}}
	res, err := reconcile.Run(context.Background(), old, new, reconcile.Options{RecheckDelay: -1, ChunkRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts != (reconcile.Counts{Compared: 3, Matched: 2, Invalid: 1}) || !res.Complete || res.Chunks != 4 { // three full chunks and the open end after the last key
		t.Fatalf("counts %+v complete %v chunks %d", res.Counts, res.Complete, res.Chunks)
	}
	if s := res.Samples[0]; s.Kind != reconcile.KindInvalid || !strings.Contains(s.Reason, "candidate value is not valid JSON") {
		t.Errorf("sample %+v", s)
	}
}

// flipSource returns a different value for one key on its first read only,
// like a row whose dual write was in flight.
type flipSource struct {
	mapSource
	reads int
}

func (f *flipSource) Rows(ctx context.Context, req reconcile.Request) ([]reconcile.Row, error) {
	rows, err := f.mapSource.Rows(ctx, req)
	f.reads++
	if f.reads == 1 {
		for i := range rows {
			if rows[i].Key == "b" {
				rows[i].Doc = []byte(`{"id":"b","stale":true}`)
			}
		}
	}
	return rows, err
}

// TestSecondLook: a row that differs only at first sight is matched.
func TestSecondLook(t *testing.T) {
	docs := map[string]string{"a": `{"id":"a"}`, "b": `{"id":"b"}`}
	old := &mapSource{side: "old", rows: docs}
	new := &flipSource{mapSource: mapSource{side: "new", rows: docs}}
	res, err := reconcile.Run(context.Background(), old, new, reconcile.Options{RecheckDelay: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts != (reconcile.Counts{Compared: 2, Matched: 2}) || new.reads != 2 {
		t.Fatalf("counts %+v after %d reads", res.Counts, new.reads)
	}
}

func TestBadOptions(t *testing.T) {
	old := &mapSource{side: "old"}
	for _, o := range []reconcile.Options{{ChunkRows: -1}, {Split: 1}, {RateLimit: -2}} {
		if _, err := reconcile.Run(context.Background(), old, old, o); err == nil || !strings.Contains(err.Error(), "invalid option") {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
