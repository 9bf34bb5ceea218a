package pgsource_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/reconcile/pgsource"
)

// TestChecksumSees checks the row hash against the differences the
// row-by-row comparison reports: each case creates a table on each side,
// sums both sides' rows, and states whether the sums must be equal. A
// difference the differ reports must never give equal sums; values the
// differ finds equal should (else every chunk is compared row by row).
func TestChecksumSees(t *testing.T) {
	oldURL, oldDB := newDB(t)
	newURL, newDB := newDB(t)
	for i, c := range []struct {
		name             string
		oldCols, newCols string // column definitions after the key
		oldRows, newRows string // VALUES lists
		equal            bool
		explanation      string
	}{
		{"same rows", "a int, b text, c numeric, d float8, e timestamptz, f uuid, g bool, h date",
			"a int, b text, c numeric, d float8, e timestamptz, f uuid, g bool, h date",
			"(1, 5, 'x', 1.5, 2.5, '2026-01-01', '00000000-0000-4000-8000-000000000001', true, '2026-01-01')",
			"(1, 5, 'x', 1.5, 2.5, '2026-01-01', '00000000-0000-4000-8000-000000000001', true, '2026-01-01')", true, ""},
		{"integer changed", "a int8", "a int8", "(1, 5)", "(1, 6)", false, ""},
		{"key changed", "a int8", "a int8", "(1, 5)", "(2, 5)", false, ""},
		{"text changed", "a text", "a text", "(1, 'x')", "(1, 'y')", false, ""},
		{"numeric changed", "a numeric", "a numeric", "(1, 1.5)", "(1, 1.51)", false, ""},
		{"numeric scale", "a numeric", "a numeric", "(1, 1.50)", "(1, 1.5)", true, "the differ compares numbers as decimals"},
		{"float changed", "a float8", "a float8", "(1, 0.1)", "(1, 0.30000000000000004)", false, ""},
		{"uuid changed", "a uuid", "a uuid", "(1, '00000000-0000-4000-8000-000000000001')", "(1, '00000000-0000-4000-8000-000000000002')", false, ""},
		{"bool changed", "a bool", "a bool", "(1, true)", "(1, false)", false, "hashed as a record"},
		{"date changed", "a date", "a date", "(1, '2026-01-01')", "(1, '2026-01-02')", false, "hashed as a record"},
		{"timestamptz a microsecond", "a timestamptz", "a timestamptz", "(1, '2026-01-01 00:00:00.000001+00')", "(1, '2026-01-01 00:00:00.000002+00')", false, "seconds since 2000 as float8"},
		{"timestamptz far a microsecond", "a timestamptz", "a timestamptz", "(1, '2999-01-01 00:00:00.000001+00')", "(1, '2999-01-01 00:00:00.000002+00')", false, "outside the float8 range: timestamp_hash_extended"},
		{"timestamptz infinity", "a timestamptz", "a timestamptz", "(1, 'infinity')", "(1, '-infinity')", false, ""},
		{"int8 folded halves", "a int8", "a int8", "(1, -1)", "(1, 4294967295)", false,
			"hashint8extended hashes the low half XORed with the high: a signed -1 made an unsigned 32-bit one"},
		{"int8 folded halves positive", "a int8", "a int8", "(1, 0)", "(1, 4294967297)", false, ""},
		{"key folded halves", "a text", "a text", "(-1, 'x')", "(4294967295, 'x')", false, ""},
		{"negative integer widths", "a int2, b int4", "a int8, b int8", "(1, -5, -7)", "(1, -5, -7)", true, "the high half of a narrow negative is -1, as the int8's"},
		{"timestamp changed", "a timestamp", "a timestamp", "(1, '2026-01-01 00:00:00.000001')", "(1, '2026-01-01 00:00:00.000002')", false, ""},
		{"timestamp folded halves", "a timestamp", "a timestamp", "(1, '2000-01-01 01:11:34.967295')", "(1, '2000-01-01 02:23:09.93459')", false,
			"4294967295 and 8589934590 µs since 2000 fold alike in timestamp_hash_extended"},
		{"timestamp far folded halves", "a timestamp", "a timestamp", "(1, '2000-01-01 01:11:34.967295'::timestamp + interval '200 years')", "(1, '2000-01-01 02:23:09.93459'::timestamp + interval '200 years')", false, ""},
		{"NULL against timestamp epoch", "a timestamp", "a timestamp", "(1, NULL)", "(1, '2000-01-01')", false, ""},
		{"time folded halves", "a time", "a time", "(1, '01:11:34.967295')", "(1, '02:23:09.93459')", false,
			"time_hash_extended folds the microseconds as hashint8extended does: hashed as text"},
		{"money cents", "a money", "a money", "(1, -0.01)", "(1, 42949672.95)", false, "no hash function: as text"},
		{"timetz folded halves", "a timetz", "a timetz", "(1, '01:11:34.967295+00')", "(1, '02:23:09.93459+00')", false, ""},
		{"time same", "a time, b interval", "a time, b interval", "(1, '01:11:34.967295', '1 day 2 hours')", "(1, '01:11:34.967295', '1 day 2 hours')", true, ""},
		{"NULL against empty", "a text", "a text", "(1, NULL)", "(1, '')", false, "NULL is hashed as '' with a marked seed"},
		{"NULL against zero", "a int8", "a int8", "(1, NULL)", "(1, 0)", false, ""},
		{"NULL against epoch", "a timestamptz", "a timestamptz", "(1, NULL)", "(1, '2000-01-01 00:00:00+00')", false, ""},
		{"NULL moved", "a text, b text", "a text, b text", "(1, NULL, '')", "(1, '', NULL)", false, ""},
		{"columns swapped", "a text, b text", "a text, b text", "(1, 'x', 'y')", "(1, 'y', 'x')", false, ""},
		{"integers swapped", "a int8, b int8", "a int8, b int8", "(1, 1, 2)", "(1, 2, 1)", false, ""},
		{"values swapped between rows", "a text", "a text", "(1, 'x'), (2, 'y')", "(1, 'y'), (2, 'x')", false,
			"version 1 summed 31·hash(key) + hash(a), linear: it could not see this"},
		{"rows repeated", "a text", "a text", "(1, 'x'), (2, 'x'), (3, 'y')", "(1, 'x'), (2, 'y'), (3, 'y')", false, ""},
		{"minus zero", "a float8", "a float8", "(1, 0)", "(1, '-0')", true, "the differ finds 0 and -0 equal"},
		{"NaN", "a float8", "a float8", "(1, 'NaN')", "(1, 'NaN')", true, ""},
		{"NaN against infinity", "a float8", "a float8", "(1, 'NaN')", "(1, 'Infinity')", false, ""},
		{"integer widths", "a int4", "a int8", "(1, 5)", "(1, 5)", true, "integers of every width hash alike"},
		{"text and varchar", "a text", "a varchar(10)", "(1, 'x')", "(1, 'x')", true, ""},
		{"numeric against float8", "a numeric(12,2)", "a float8", "(1, 1.50)", "(1, 1.5)", true, "both as decimal text"},
		{"numeric against float8 changed", "a numeric(12,2)", "a float8", "(1, 1.50)", "(1, 1.5000000000000002)", false, ""},
		{"integer against numeric", "a int8", "a numeric", "(1, 5)", "(1, 5.0)", true, "both as decimal text"},
		{"integer against numeric changed", "a int8", "a numeric", "(1, 5)", "(1, 5.1)", false, ""},
		{"float4 against float8", "a float4", "a float8", "(1, 0.1)", "(1, 0.1::float4::float8)", false,
			"float4 0.1 renders as 0.1, the float8 it widens to as 0.10000000149011612"},
		{"NOT NULL against nullable", "a text NOT NULL, b int8 NOT NULL, c timestamptz NOT NULL", "a text, b int8, c timestamptz",
			"(1, 'x', 5, '2026-01-01')", "(1, 'x', 5, '2026-01-01')", true, "a declared NOT NULL column hashes without the NULL mark, alike"},
	} {
		t.Run(c.name, func(t *testing.T) {
			table := fmt.Sprintf("c%d", i)
			exec(t, oldDB, fmt.Sprintf("CREATE TABLE %s (id int8 PRIMARY KEY, %s)", table, c.oldCols), fmt.Sprintf("INSERT INTO %s VALUES %s", table, c.oldRows))
			exec(t, newDB, fmt.Sprintf("CREATE TABLE %s (id int8 PRIMARY KEY, %s)", table, c.newCols), fmt.Sprintf("INSERT INTO %s VALUES %s", table, c.newRows))
			oldSum, newSum := sums(t, oldURL, newURL, table, nil)
			if (oldSum == newSum) != c.equal {
				t.Errorf("sums %s and %s: equal %v, want %v (%s)", oldSum, newSum, oldSum == newSum, c.equal, c.explanation)
			}
		})
	}
}

// TestChecksumNullInNotNull: a NULL in a column the source found NOT NULL
// when it opened (the constraint dropped since) still counts every other
// column.
func TestChecksumNullInNotNull(t *testing.T) {
	oldURL, oldDB := newDB(t, "CREATE TABLE t (id int8 PRIMARY KEY, a text NOT NULL, b text)", "INSERT INTO t VALUES (1, 'x', 'x')")
	newURL, newDB := newDB(t, "CREATE TABLE t (id int8 PRIMARY KEY, a text NOT NULL, b text)", "INSERT INTO t VALUES (1, 'x', 'y')")
	sums(t, oldURL, newURL, "t", func() {
		exec(t, oldDB, "ALTER TABLE t ALTER a DROP NOT NULL", "UPDATE t SET a = NULL")
		exec(t, newDB, "ALTER TABLE t ALTER a DROP NOT NULL", "UPDATE t SET a = NULL")
	})
}

// sums opens both sides of table, runs between (when not nil) and returns
// both sides' checksums of the whole table under the plan Check makes; it
// fails the test when the plan does not use checksums or, after between,
// when the sums are equal (b differs).
func sums(t *testing.T, oldURL, newURL, table string, between func()) (string, string) {
	t.Helper()
	ctx := context.Background()
	old, err := pgsource.Open(ctx, pgsource.Config{Side: "old", URL: oldURL, Table: table, Key: "id", MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	nw, err := pgsource.Open(ctx, pgsource.Config{Side: "new", URL: newURL, Table: table, Key: "id", MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	plan, err := reconcile.Check(ctx, old, nw, reconcile.Options{Differ: diff.Exact()})
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Checksum {
		t.Fatalf("no checksum: %s", plan.ChecksumNote)
	}
	if between != nil {
		between()
	}
	req := reconcile.Request{Columns: plan.ChecksumColumns, AsText: plan.AsText}
	os, err := old.Checksum(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := nw.Checksum(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if os.Rows != ns.Rows {
		t.Fatalf("rows %d and %d", os.Rows, ns.Rows)
	}
	if between != nil && os.Hash == ns.Hash {
		t.Errorf("sums equal (%s) though column b differs", os.Hash)
	}
	return os.Hash, ns.Hash
}
