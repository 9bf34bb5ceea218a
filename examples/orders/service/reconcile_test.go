package service

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/reconcile/pgsource"
)

// TestSweepFindsColdBackfillBugs: a reconciliation sweep of every order,
// running while the service dual-writes status changes to cold orders
// through migration.Writer, reports exactly the seeded backfill bugs: the
// two the traffic reads (orders 4 and 5) and the two in rows it never
// reads; the writes in flight are not reported.
func TestSweepFindsColdBackfillBugs(t *testing.T) {
	needPostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	ns := testutil.RunJetStream(t)
	opts := DefaultOptions()
	opts.AdminURL = testutil.PostgresURL()
	opts.OldURL = testutil.FreshDatabase(t)
	opts.NewURL = testutil.FreshDatabase(t)
	opts.NATSURL = ns.ClientURL()
	app, err := Setup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() {
		srv.Close()
		app.Close()
	})

	// A writer: users in the dualwrite stage change the status of cold
	// orders (other than the bugs) for as long as the sweep runs.
	var writes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		statuses := []string{"paid", "shipped", "cancelled", "pending"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := ColdFirst + (i*53)%(ColdLast-ColdFirst+1)
			if id == ColdRounded || id == ColdMissing {
				continue
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/orders/%d/status", srv.URL, id),
				strings.NewReader(`{"status":"`+statuses[i%4]+`"}`))
			req.Header.Set("X-User-ID", "999") // everyone: dualwrite
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("write to order %d: %s", id, resp.Status)
				return
			}
			writes.Add(1)
		}
	})

	old, err := pgsource.Open(ctx, pgsource.Config{Side: "old", URL: opts.OldURL, Table: "orders", Key: "id"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	nw, err := pgsource.Open(ctx, pgsource.Config{Side: "new", URL: opts.NewURL, Table: "orders_v", Key: "id"})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	rules, err := diff.Compile(diff.Rules{Operations: map[string]diff.OperationRules{"reconcile:orders": {Ignore: []string{"updated_at"}}}})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for writes to be under way, then sweep slowly enough that they
	// overlap: 2,000 rows at 2,000 rows/s in chunks of 100.
	testutil.Eventually(t, 10*time.Second, func() string {
		if writes.Load() < 20 {
			return "the writer has not started"
		}
		return ""
	})
	before := writes.Load()
	res, err := reconcile.Run(ctx, old, nw, reconcile.Options{Differ: rules, Segments: []string{"status"}, ChunkRows: 100,
		RateLimit: 2000, RecheckDelay: 300 * time.Millisecond, MaxSamples: 100})
	during := writes.Load() - before
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if during < 20 {
		t.Fatalf("only %d writes during the sweep; the test did not test live writes", during)
	}
	got := map[string]string{}
	for _, s := range res.Samples {
		got[s.Key] = s.Kind
	}
	want := map[string]string{"4": reconcile.KindDivergent, "5": reconcile.KindMissingInNew,
		strconv.Itoa(ColdRounded): reconcile.KindDivergent, strconv.Itoa(ColdMissing): reconcile.KindMissingInNew}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reported %v, want exactly the seeded bugs %v", got, want)
	}
	if res.Counts.Compared != 8+ColdLast-ColdFirst+1 || res.Counts.Differences() != 4 {
		t.Errorf("counts %+v", res.Counts)
	}
	// The traffic reads orders 1 to 5 only: two of the bugs are in rows
	// nobody reads.
	for _, k := range []int{ColdRounded, ColdMissing} {
		if k <= 5 {
			t.Errorf("order %d is read by the traffic", k)
		}
	}
	t.Logf("%d writes during the sweep; %+v", during, res.Counts)
}
