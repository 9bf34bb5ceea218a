package pgsource_test

import (
	"context"
	"testing"

	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/reconcile/pgsource"
)

// TestRowsRenderLikeRowToJSON: Rows reads most columns as text and makes
// their JSON itself; every row's document must be what row_to_json renders
// in the same session, byte for byte, for every kind of column and value:
// NULLs, NaN and infinities, escapes and control characters in strings and
// in column names, and the types rendered by to_json (times, arrays,
// composites, domains, json, enums, padded char), in a table and in a view.
func TestRowsRenderLikeRowToJSON(t *testing.T) {
	ctx := context.Background()
	u, pool := newDB(t,
		`CREATE TYPE mood AS ENUM ('ok', 'sad')`,
		`CREATE TYPE pt AS (x int, y text)`,
		`CREATE DOMAIN posnum AS numeric CHECK (VALUE > 0)`,
		`CREATE TABLE r (
			id int8 PRIMARY KEY, s2 int2, s4 int4, f4 float4, f8 float8, n numeric, n2 numeric(12,2), b bool,
			tx text, vc varchar(20), "we""ird\ col" text, ch char(5), ts timestamp, tz timestamptz, d date,
			arr int[], tarr text[], j json, jb jsonb, m mood, c pt, dom posnum, u uuid, by bytea, iv interval)`,
		`INSERT INTO r VALUES
			(1, 1, -2, 1.5, 0.1, 1.50, 2.00, true, 'plain', 'v', 'x', 'ab', '2026-01-01 10:00:00.5', '2026-01-01 10:00:00+02', '2026-01-01',
				'{1,2,NULL}', '{"a b","c\"d"}', '{"k": [1, 2]}', '{"k": [1, 2]}', 'ok', ROW(1, 'q"'), 3.25, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff', '1 day 2 hours'),
			(2, NULL, NULL, 'NaN', 'Infinity', 'NaN', NULL, false, E'quote" back\\ nl\n tab\t bell\x07 del\x7f é 😀', NULL, NULL, NULL, NULL, NULL, NULL,
				NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			(3, 32767, 2147483647, '-Infinity', -1e300, -0.000001, -0.01, NULL, '', '', E'\x01\x1f', '', 'infinity', '-infinity', 'infinity',
				'{}', '{}', 'null', '"s"', 'sad', ROW(NULL, NULL), 1e-20, NULL, '\x', '-1 mon'),
			(4, 0, 0, 3.4028235e38, 1.7976931348623157e308, 1e30, 0, true, 'x', 'y', 'z', 'abcde', '2026-06-30 23:59:59.999999', '2026-06-30 23:59:59.999999+00', '0001-01-01 BC',
				'{{1,2},{3,4}}', '{NULL}', '[]', '{}', 'ok', ROW(-1, ''), 12345678901234567890.123, NULL, NULL, '0')`,
		`CREATE VIEW rv AS SELECT id, n * 2 AS n2x, tx || '!' AS tx, tz, c FROM r`,
	)
	for _, table := range []string{"r", "rv"} {
		src, err := pgsource.Open(ctx, pgsource.Config{Side: "old", URL: u, Table: table, Key: "id"})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		got, err := src.Rows(ctx, reconcile.Request{Segments: []string{"tx"}})
		if err != nil {
			t.Fatal(err)
		}
		// The source's session renders in UTC with shortest exact floats;
		// row_to_json must run under the same settings.
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SET timezone = 'UTC'; SET extra_float_digits = 1"); err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, "SELECT id::text, row_to_json(t)::text FROM "+table+" t ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var want [][2]string
		for rows.Next() {
			var k, doc string
			if err := rows.Scan(&k, &doc); err != nil {
				t.Fatal(err)
			}
			want = append(want, [2]string{k, doc})
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		conn.Release()
		if len(got) != len(want) || len(want) != 4 {
			t.Fatalf("%s: %d rows, want %d (4)", table, len(got), len(want))
		}
		for i := range want {
			if got[i].Key != want[i][0] || string(got[i].Doc) != want[i][1] {
				t.Errorf("%s: row %d:\n got %s %s\nwant %s %s", table, i, got[i].Key, got[i].Doc, want[i][0], want[i][1])
			}
		}
	}
}
