package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/sweep"
	"github.com/parityhq/parity/internal/testutil"
)

const table = `CREATE TABLE orders (id bigint PRIMARY KEY, country text NOT NULL, total numeric(10,2) NOT NULL)`

func seed(n int) string {
	return fmt.Sprintf(`INSERT INTO orders SELECT g, (ARRAY['IN','US'])[g %% 2 + 1], g * 1.50 FROM generate_series(1, %d) g`, n)
}

// TestMain doubles as the runner process TestKilledRunner kills: with
// PARITY_SWEEP_HELPER set, the test binary runs a sweep runner until it is
// killed.
func TestMain(m *testing.M) {
	if os.Getenv("PARITY_SWEEP_HELPER") == "" {
		os.Exit(m.Run())
	}
	ctx := context.Background()
	st, err := store.Open(ctx, os.Getenv("PARITY_SWEEP_DB"), store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r := sweep.New(st, sweep.Options{Sources: map[string]string{"old": os.Getenv("PARITY_SWEEP_OLD"), "new": os.Getenv("PARITY_SWEEP_NEW")},
		Lease: time.Second, Interval: 50 * time.Millisecond})
	r.Run(ctx) // until SIGKILL
}

// TestKilledRunner: a runner in its own process is killed with SIGKILL in
// the middle of a sweep; another takes the sweep over once the lease
// expires and finishes it, and every row is counted exactly once: the
// sweep's counts and the store's per-segment counts are exactly the rows
// and the injected differences.
func TestKilledRunner(t *testing.T) {
	ctx := context.Background()
	const n = 20000
	oldURL := testutil.CreatedDatabase(t, table, seed(n))
	newURL := testutil.CreatedDatabase(t, table, seed(n),
		"UPDATE orders SET total = total + 1 WHERE id % 997 = 0",                    // 20 divergent
		"DELETE FROM orders WHERE id % 1999 = 0",                                    // 10 missing
		"INSERT INTO orders SELECT g, 'IN', 1 FROM generate_series(20001, 20005) g") // 5 extra
	dbURL := testutil.FreshDatabase(t)
	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spec, _ := json.Marshal(sweep.Spec{Old: sweep.Side{Source: "old", Table: "orders"}, New: sweep.Side{Source: "new", Table: "orders"},
		Key: "id", Segments: []string{"country"}, Rate: 4000, ChunkRows: 500, RecheckDelay: 1})
	sw, err := st.CreateSweep(ctx, store.Sweep{Experiment: "orders-db", Name: "orders", Operation: sweep.Operation("orders"), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PARITY_SWEEP_HELPER=1", "PARITY_SWEEP_DB="+dbURL, "PARITY_SWEEP_OLD="+oldURL, "PARITY_SWEEP_NEW="+newURL)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 60*time.Second, func() string {
		cur, err := st.Sweep(ctx, sw.ID)
		if err != nil {
			return err.Error()
		}
		if cur.Chunks < 8 {
			return fmt.Sprintf("%d chunks committed", cur.Chunks)
		}
		return ""
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	mid, _ := st.Sweep(ctx, sw.ID)
	if mid.Status != store.SweepRunning || mid.Checkpoint == nil {
		t.Fatalf("after the kill: %s at %v", mid.Status, mid.Checkpoint)
	}

	r := sweep.New(st, sweep.Options{Sources: map[string]string{"old": oldURL, "new": newURL}, Lease: time.Second})
	testutil.Eventually(t, 60*time.Second, func() string {
		r.Step(ctx)
		cur, err := st.Sweep(ctx, sw.ID)
		if err != nil {
			return err.Error()
		}
		if cur.Status != store.SweepComplete {
			return "sweep " + cur.Status + " " + cur.Error
		}
		return ""
	})
	done, _ := st.Sweep(ctx, sw.ID)
	var c sweep.Counts
	if err := json.Unmarshal(done.Counts, &c); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d %d %d %d", n+5, 20, 10, 5)
	if got := fmt.Sprintf("%d %d %d %d", c.Compared, c.Divergent, c.MissingInNew, c.ExtraInNew); got != want || c.Matched != n-30 {
		t.Errorf("sweep counts %+v, want compared/divergent/missing/extra %s", c.Counts, want)
	}
	segs, err := st.Segments(ctx, "orders-db", store.SegmentQuery{Operation: "reconcile:orders"})
	if err != nil {
		t.Fatal(err)
	}
	var pairs, divergent int64
	for _, s := range segs {
		pairs += s.Pairs
		divergent += s.Divergent
		if !strings.HasPrefix(s.Segment, "country=") {
			t.Errorf("segment %q", s.Segment)
		}
	}
	if pairs != n+5 || divergent != 35 || len(segs) != 2 {
		t.Errorf("store: %d rows, %d divergent in %d segments; want %d, 35 in 2", pairs, divergent, len(segs), n+5)
	}
	t.Logf("killed at %v after %d chunks; %d chunks in all", *mid.Checkpoint, mid.Chunks, done.Chunks)
}

// TestPauseResumeCancel: a paused sweep stops committing at its next chunk
// and continues from its checkpoint when resumed, counting every row once;
// a cancelled one stops for good.
func TestPauseResumeCancel(t *testing.T) {
	ctx := t.Context()
	const n = 6000
	oldURL := testutil.CreatedDatabase(t, table, seed(n))
	newURL := testutil.CreatedDatabase(t, table, seed(n), "UPDATE orders SET total = 0 WHERE id % 1000 = 0")
	st, err := store.Open(ctx, testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spec, _ := json.Marshal(sweep.Spec{Old: sweep.Side{Source: "old", Table: "orders"}, New: sweep.Side{Source: "new", Table: "orders"},
		Key: "id", Rate: 3000, ChunkRows: 300, RecheckDelay: 1})
	create := func() store.Sweep {
		sw, err := st.CreateSweep(ctx, store.Sweep{Experiment: "x", Name: "orders", Operation: "reconcile:orders", Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		return sw
	}
	sw := create()
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	r := sweep.New(st, sweep.Options{Sources: map[string]string{"old": oldURL, "new": newURL}, Interval: 20 * time.Millisecond})
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	get := func() store.Sweep {
		cur, err := st.Sweep(ctx, sw.ID)
		if err != nil {
			t.Fatal(err)
		}
		return cur
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		if c := get().Chunks; c < 3 {
			return fmt.Sprintf("%d chunks", c)
		}
		return ""
	})
	if _, err := st.SetSweepStatus(ctx, sw.ID, store.SweepPaused, "", store.SweepRunning); err != nil {
		t.Fatal(err)
	}
	paused := get().Chunks
	// The runner notices at its next commit, which it refuses: the sweep's
	// chunks stop growing. Wait for a later, third sweep to complete to know
	// the runner has moved on.
	other := create()
	testutil.Eventually(t, 30*time.Second, func() string {
		cur, _ := st.Sweep(ctx, other.ID)
		if cur.Status != store.SweepComplete {
			return "the other sweep is " + cur.Status
		}
		return ""
	})
	if c := get(); c.Chunks != paused || c.Status != store.SweepPaused {
		t.Fatalf("paused at %d chunks, now %d (%s)", paused, c.Chunks, c.Status)
	}
	if _, err := st.SetSweepStatus(ctx, sw.ID, store.SweepRunning, "", store.SweepPaused); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		if s := get().Status; s != store.SweepComplete {
			return s
		}
		return ""
	})
	var c sweep.Counts
	_ = json.Unmarshal(get().Counts, &c)
	if c.Compared != n || c.Divergent != n/1000 || c.Matched != n-n/1000 {
		t.Errorf("after pause and resume: %+v", c.Counts)
	}
	cancelled := create()
	if _, err := st.SetSweepStatus(ctx, cancelled.ID, store.SweepCancelled, "", store.SweepRunning, store.SweepPaused); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetSweepStatus(ctx, cancelled.ID, store.SweepRunning, "", store.SweepPaused); err == nil {
		t.Error("a cancelled sweep was resumed")
	}
	stop()
	<-done
}
