package pgsource_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/reconcile/pgsource"
)

// TestBadInput: every shape that cannot be compared fails before any row is
// read, with an error naming the side and the column.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	oldURL, _ := newDB(t,
		"CREATE TABLE t (id bigint PRIMARY KEY, a int, b text)",
		"CREATE TABLE nokey (id bigint NOT NULL, a int, b text)",
		"CREATE TABLE nullable (id bigint UNIQUE, a int, b text)",
		"CREATE TABLE tkey (id text PRIMARY KEY, a int, b text)",
		"CREATE TABLE dup (id bigint, a int, b text)",
		"INSERT INTO dup VALUES (1, 1, 'x'), (1, 2, 'y')",
		"CREATE VIEW vdup AS SELECT id, a, b FROM dup",
		"CREATE VIEW vnull AS SELECT NULL::bigint AS id, 1 AS a, 'x'::text AS b",
		"INSERT INTO t VALUES (1, 1, 'x')",
	)
	newURL, _ := newDB(t,
		"CREATE TABLE t (id bigint PRIMARY KEY, a int, b text)",
		"CREATE TABLE renamed (id bigint PRIMARY KEY, a int, c text)",
		"CREATE VIEW v AS SELECT id, a, c AS b FROM renamed",
		"CREATE VIEW vbad AS SELECT id, a FROM renamed",
		"CREATE TABLE extra (id bigint PRIMARY KEY, a int, b text, z int)",
	)
	pu, err := url.Parse(oldURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, pu.Host)
	proxy.Cut()
	pu.Host = proxy.Addr()
	unreachable := pu.String()

	open := func(side, u, table, key string) (*pgsource.Source, error) {
		s, err := pgsource.Open(ctx, pgsource.Config{Side: side, URL: u, Table: table, Key: key})
		if err == nil {
			t.Cleanup(s.Close)
		}
		return s, err
	}
	for _, c := range []struct {
		name             string
		oldTable, oldKey string
		newTable, newKey string
		oldURL           string
		want             []string
	}{
		{"table missing", "nope", "id", "t", "id", "", []string{"old side", "nope", "does not exist"}},
		{"key missing", "t", "nope", "t", "id", "", []string{"old side", `key column "nope" does not exist`}},
		{"key not unique", "nokey", "id", "t", "id", "", []string{"old side", `key column "id" is not unique`}},
		{"key nullable", "nullable", "id", "t", "id", "", []string{"old side", `key column "id" is nullable`}},
		{"view key repeated", "vdup", "id", "t", "id", "", []string{"old side", `key column "id" is not unique`}},
		{"view key null", "vnull", "id", "t", "id", "", []string{"old side", `key column "id" is NULL`}},
		{"key types differ", "tkey", "id", "t", "id", "", []string{`key column "id" is text`, "old side", "integer", "new side"}},
		{"view columns differ", "t", "id", "vbad", "id", "", []string{"new side (vbad)", `column "b" is missing`}},
		{"extra column", "t", "id", "extra", "id", "", []string{"new side (extra)", `column "z" is not on the old side`}},
		{"unreachable", "t", "id", "t", "id", unreachable, []string{"old side", "cannot reach the database"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := oldURL
			if c.oldURL != "" {
				u = c.oldURL
			}
			old, err := open("old", u, c.oldTable, c.oldKey)
			if err == nil {
				var nw *pgsource.Source
				nw, err = open("new", newURL, c.newTable, c.newKey)
				if err == nil {
					var rows int
					_, err = reconcile.Run(ctx, old, nw, reconcile.Options{OnChunk: func(context.Context, *reconcile.Chunk) error { rows++; return nil }})
					if rows != 0 {
						t.Errorf("%d chunks compared before the error", rows)
					}
					if err != nil && !errors.Is(err, reconcile.ErrSchema) {
						t.Errorf("error %v does not wrap ErrSchema", err)
					}
				}
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}

	// A view maps renamed columns: t against v agrees.
	old, err := open("old", oldURL, "t", "id")
	if err != nil {
		t.Fatal(err)
	}
	nw, err := open("new", newURL, "v", "id")
	if err != nil {
		t.Fatal(err)
	}
	res, err := reconcile.Run(ctx, old, nw, reconcile.Options{RecheckDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.MissingInNew != 1 || res.Counts.Compared != 1 {
		t.Errorf("t against the empty view: %+v", res.Counts)
	}
}
