package pgsource_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/reconcile/pgsource"
)

// naive compares two tables by reading every row of both and judging each
// key, the obvious way.
func naive(t *testing.T, oldDB, newDB *pgxpool.Pool, table string, d *diff.Differ) map[string]string {
	t.Helper()
	read := func(db *pgxpool.Pool) map[string][]byte {
		rows, err := db.Query(context.Background(), "SELECT k::text, row_to_json(t)::text FROM "+table+" t")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[string][]byte{}
		for rows.Next() {
			var k, doc string
			if err := rows.Scan(&k, &doc); err != nil {
				t.Fatal(err)
			}
			m[k] = []byte(doc)
		}
		return m
	}
	o, n := read(oldDB), read(newDB)
	kinds := map[string]string{}
	for k, od := range o {
		nd, ok := n[k]
		switch {
		case !ok:
			kinds[k] = reconcile.KindMissingInNew
		case d.ValuesFor("reconcile:"+table, od, nd).Verdict != diff.VerdictMatch:
			kinds[k] = reconcile.KindDivergent
		default:
			kinds[k] = "match"
		}
	}
	for k := range n {
		if _, ok := o[k]; !ok {
			kinds[k] = reconcile.KindExtraInNew
		}
	}
	return kinds
}

// TestPropertyAgainstNaive builds random tables with random edits and
// checks that the reconciler, with and without checksums and with random
// chunk sizes, reports exactly what a full naive comparison finds.
func TestPropertyAgainstNaive(t *testing.T) {
	ctx := context.Background()
	oldURL, oldDB := newDB(t)
	newURL, newDB := newDB(t)
	d, err := diff.Compile(diff.Rules{Default: diff.OperationRules{Ignore: []string{"ts"}}})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 15))
	keyTypes := []struct{ typ, gen string }{
		{"bigint", "%d"},
		{"text", "'k%03d'"},
		{"uuid", "'00000000-0000-4000-8000-%012d'"},
	}
	for iter := range 24 {
		kt := keyTypes[iter%len(keyTypes)]
		table := fmt.Sprintf("p%d", iter)
		nRows := rng.IntN(120)
		exec(t, oldDB, fmt.Sprintf("CREATE TABLE %s (k %s PRIMARY KEY, v int, s text, n numeric, ts timestamptz)", table, kt.typ))
		exec(t, newDB, fmt.Sprintf("CREATE TABLE %s (k %s PRIMARY KEY, v int, s text, n float8, ts timestamptz)", table, kt.typ))
		var rows []string
		for i := range nRows {
			key := fmt.Sprintf(kt.gen, i*2)
			rows = append(rows, fmt.Sprintf("(%s, %d, %s, %d.%d0, now())", key, rng.IntN(5), pick(rng, "'a'", "'b'", "NULL"), rng.IntN(9), rng.IntN(9)))
		}
		if len(rows) > 0 {
			ins := fmt.Sprintf("INSERT INTO %s VALUES %s", table, strings.Join(rows, ","))
			exec(t, oldDB, ins)
			exec(t, newDB, ins)
		}
		for range rng.IntN(12) {
			key := fmt.Sprintf(kt.gen, rng.IntN(nRows*2+4))
			switch rng.IntN(5) {
			case 0:
				exec(t, newDB, fmt.Sprintf("UPDATE %s SET v = v + 1 WHERE k = %s", table, key))
			case 1:
				exec(t, newDB, fmt.Sprintf("DELETE FROM %s WHERE k = %s", table, key))
			case 2:
				exec(t, newDB, fmt.Sprintf("INSERT INTO %s VALUES (%s, 1, 'x', 1.5, now()) ON CONFLICT DO NOTHING", table, key))
			case 3:
				exec(t, newDB, fmt.Sprintf("UPDATE %s SET ts = ts + interval '1 day' WHERE k = %s", table, key)) // ignored
			case 4:
				exec(t, newDB, fmt.Sprintf("UPDATE %s SET s = NULL WHERE k = %s", table, key))
			}
		}
		want := naive(t, oldDB, newDB, table, d)
		old, err := pgsource.Open(ctx, pgsource.Config{Side: "old", URL: oldURL, Table: table, Key: "k", MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		nw, err := pgsource.Open(ctx, pgsource.Config{Side: "new", URL: newURL, Table: table, Key: "k", MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		opts := reconcile.Options{Differ: d, ChunkRows: 1 + rng.IntN(40), LeafRows: 1 + rng.IntN(8), Split: 2 + rng.IntN(4),
			NoChecksum: iter%4 == 3, RecheckDelay: -1, SamplesPerChunk: 1000, MaxSamples: 1000}
		res, err := reconcile.Run(ctx, old, nw, opts)
		old.Close()
		nw.Close()
		if err != nil {
			t.Fatalf("iteration %d (%s): %v", iter, kt.typ, err)
		}
		got := map[string]string{}
		for _, s := range res.Samples {
			got[s.Key] = s.Kind
		}
		var wantCounts reconcile.Counts
		for k, kind := range want {
			wantCounts.Compared++
			switch kind {
			case "match":
				wantCounts.Matched++
				continue
			case reconcile.KindDivergent:
				wantCounts.Divergent++
			case reconcile.KindMissingInNew:
				wantCounts.MissingInNew++
			case reconcile.KindExtraInNew:
				wantCounts.ExtraInNew++
			}
			if got[k] != kind {
				t.Errorf("iteration %d (%s, %+v): key %s reported %q, naive says %q", iter, kt.typ, opts, k, got[k], kind)
			}
		}
		if res.Counts != wantCounts || len(got) != int(wantCounts.Differences()) {
			t.Errorf("iteration %d (%s): counts %+v, naive %+v, %d samples", iter, kt.typ, res.Counts, wantCounts, len(got))
		}
		if res.Checksum == opts.NoChecksum {
			t.Errorf("iteration %d: checksum %v with NoChecksum %v (%v)", iter, res.Checksum, opts.NoChecksum, res.ChecksumColumns)
		}
	}
}

func pick(rng *rand.Rand, s ...string) string { return s[rng.IntN(len(s))] }
