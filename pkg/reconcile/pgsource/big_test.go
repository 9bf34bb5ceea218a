package pgsource_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/reconcile/pgsource"
)

// The tables get their primary key after they are filled (faster); see
// keyed.
const oldItems = `CREATE UNLOGGED TABLE items (
	id bigint NOT NULL,
	customer_id bigint NOT NULL,
	country text NOT NULL,
	amount numeric(12,2) NOT NULL,
	note text,
	updated_at timestamptz NOT NULL)`

// newItems differs in representation only: amounts are float8, so 1.50 is
// 1.5 there.
const newItems = `CREATE UNLOGGED TABLE items (
	id bigint NOT NULL,
	customer_id bigint NOT NULL,
	country text NOT NULL,
	amount float8 NOT NULL,
	note text,
	updated_at timestamptz NOT NULL)`

// keyed adds the primary key and the planner's statistics.
const keyed = "ALTER TABLE items ADD PRIMARY KEY (id); ANALYZE items"

// fill inserts n rows with keys 3, 6, 9, … (gaps), amounts like 1.50.
func fill(n int) string {
	return `INSERT INTO items SELECT g*3, g % 1000, (ARRAY['IN','US','DE','FR'])[g % 4 + 1], (g % 5000) / 100.0 + 0.50,
		CASE WHEN g % 7 = 0 THEN NULL ELSE 'note ' || g END, timestamptz '2026-01-01' + g * interval '1 second'
		FROM generate_series(1, ` + strconv.Itoa(n) + `) g`
}

// spread returns count keys of existing rows (multiples of 3) spread over
// n rows, offset so that the sets of different edits do not meet.
func spread(n, count, offset int) []int {
	var ks []int
	for i := range count {
		ks = append(ks, (i*(n/count)+offset)*3)
	}
	return ks
}

func list(ks []int) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = strconv.Itoa(k)
	}
	return strings.Join(s, ",")
}

// TestMillionRows reconciles a million rows, generated in SQL in two
// databases, with differences injected over many chunks, and checks that
// exactly the injected differences are reported: changed fields, missing
// rows, extra rows; a change in an ignored column and numeric 1.50 against
// float8 1.5 are not differences. The sweep is stopped after a few chunks
// and resumed from its checkpoint, and every row is counted once.
func TestMillionRows(t *testing.T) {
	ctx := context.Background()
	const n = 1_000_000
	changed := spread(n, 30, 17)
	tiny := spread(n, 5, 4242) // a change in the 15th significant digit
	missing := spread(n, 20, 101)
	ignoredOnly := spread(n, 40, 555)
	var extra []int
	for _, k := range spread(n, 15, 909) {
		extra = append(extra, k+1) // between two existing keys
	}
	extra = append(extra, 3*n+3, 3*n+300) // past the old side's last key
	oldURL, _ := newDB(t, oldItems, fill(n), keyed)
	newURL, _ := newDB(t, newItems, fill(n), keyed,
		"UPDATE items SET customer_id = customer_id + 1 WHERE id IN ("+list(changed)+")",
		"UPDATE items SET amount = amount + 0.0000000001 WHERE id IN ("+list(tiny)+")",
		"DELETE FROM items WHERE id IN ("+list(missing)+")",
		"UPDATE items SET updated_at = updated_at + interval '1 hour' WHERE id IN ("+list(ignoredOnly)+")",
		"INSERT INTO items SELECT k, 1, 'IN', 1.5, 'extra', now() FROM unnest(ARRAY["+list(extra)+"]::bigint[]) k")
	old, err := pgsource.Open(ctx, pgsource.Config{Side: "old", URL: oldURL, Table: "items", Key: "id"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	nw, err := pgsource.Open(ctx, pgsource.Config{Side: "new", URL: newURL, Table: "public.items", Key: "id"})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	d, err := diff.Compile(diff.Rules{Default: diff.OperationRules{Ignore: []string{"updated_at"}}})
	if err != nil {
		t.Fatal(err)
	}

	got := map[string]string{} // key -> kind
	var total reconcile.Counts
	segs := map[string]int64{}
	var through *string
	chunks, stopped := 0, false
	errStop := errors.New("stop")
	opts := reconcile.Options{Differ: d, Segments: []string{"country"}, RecheckDelay: -1, SamplesPerChunk: 1000,
		OnChunk: func(_ context.Context, c *reconcile.Chunk) error {
			if chunks == 12 && !stopped {
				stopped = true
				return errStop // a crash before this chunk was committed
			}
			for _, s := range c.Samples {
				if _, dup := got[s.Key]; dup {
					t.Errorf("key %s reported twice", s.Key)
				}
				got[s.Key] = s.Kind
			}
			for k, s := range c.Segments {
				segs[k] += s.Counts.Compared
			}
			total.Add(c.Counts())
			through = c.Through
			chunks++
			return nil
		}}
	res, err := reconcile.Run(ctx, old, nw, opts)
	if !errors.Is(err, errStop) {
		t.Fatalf("first run: %v, want the injected stop", err)
	}
	if res.Complete || through == nil {
		t.Fatalf("first run complete=%v through=%v", res.Complete, through)
	}
	opts.After = through
	res2, err := reconcile.Run(ctx, old, nw, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Complete || !res2.Checksum {
		t.Fatalf("second run complete=%v checksum=%v (%v)", res2.Complete, res2.Checksum, res2.ChecksumColumns)
	}

	want := map[string]string{}
	for _, k := range append(slices.Clone(changed), tiny...) {
		want[strconv.Itoa(k)] = reconcile.KindDivergent
	}
	for _, k := range missing {
		want[strconv.Itoa(k)] = reconcile.KindMissingInNew
	}
	for _, k := range extra {
		want[strconv.Itoa(k)] = reconcile.KindExtraInNew
	}
	for k, kind := range want {
		if got[k] != kind {
			t.Errorf("key %s: reported %q, want %q", k, got[k], kind)
		}
	}
	for k, kind := range got {
		if want[k] == "" {
			t.Errorf("key %s reported %q, but it was not changed", k, kind)
		}
	}
	wantCounts := reconcile.Counts{
		Compared: n + int64(len(extra)), Divergent: int64(len(changed) + len(tiny)),
		MissingInNew: int64(len(missing)), ExtraInNew: int64(len(extra)),
	}
	wantCounts.Matched = wantCounts.Compared - wantCounts.Divergent - wantCounts.MissingInNew - wantCounts.ExtraInNew
	if total != wantCounts {
		t.Errorf("counts %+v\nwant   %+v", total, wantCounts)
	}
	if segs["country=IN"] < n/4 || len(segs) != 4 {
		t.Errorf("segments %v", segs)
	}
	// The checksums did the work: only ranges with a difference were read.
	if res2.FetchedRows > 200*reconcile.DefaultLeafRows*2 {
		t.Errorf("fetched %d rows to compare row by row; the checksums should have settled most chunks", res2.FetchedRows)
	}
	t.Logf("counts %+v; chunks %d+%d, fetched %d rows; segments %v", total, res.Chunks, res2.Chunks, res.FetchedRows+res2.FetchedRows, slices.Sorted(maps.Keys(segs)))
}
