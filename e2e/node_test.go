package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/rollout"
)

// nodeClientDir is the Node.js client's package.
const nodeClientDir = "../clients/node"

var nodeBuild struct {
	once sync.Once
	err  error
	out  []byte
}

// buildNodeClient compiles the Node.js client (installing its locked
// dependencies first when they are missing). Node.js and npm are required:
// without them the test fails rather than skips.
func buildNodeClient(t *testing.T) {
	t.Helper()
	nodeBuild.once.Do(func() {
		run := func(args ...string) error {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir = nodeClientDir
			out, err := cmd.CombinedOutput()
			nodeBuild.out = append(nodeBuild.out, out...)
			return err
		}
		if _, err := os.Stat(filepath.Join(nodeClientDir, "node_modules")); err != nil {
			if nodeBuild.err = run("npm", "ci", "--no-audit", "--no-fund"); nodeBuild.err != nil {
				return
			}
		}
		nodeBuild.err = run("npm", "run", "build")
	})
	if nodeBuild.err != nil {
		t.Fatalf("build the Node.js client (needs node and npm on PATH): %v\n%s", nodeBuild.err, nodeBuild.out)
	}
}

// nodeSegments mirrors clients/node/e2e/publish-pairs.ts: segment i%4, and
// pair k of a segment diverges when k%every == 0.
var nodeSegments = []segment{{"IN", "pro", 10}, {"US", "free", 0}, {"DE", "pro", 100}, {"BR", "free", 4}}

// nodeWant is what publish-pairs.ts publishes in n calls, per segment.
func nodeWant(n int) map[string]counts {
	want := map[string]counts{}
	for i := range n {
		s := nodeSegments[i%len(nodeSegments)]
		k := i / len(nodeSegments)
		key := "country=" + s.country + ",plan=" + s.plan
		c := want[key]
		c.pairs++
		if s.every > 0 && k%s.every == 0 {
			c.divergent++
		}
		want[key] = c
	}
	return want
}

// TestNodeClientCountedExactly runs the Node.js client against the real
// system: it reads and writes through Reader and Writer (stage from the
// OpenFeature SDK: live in IN, shadow elsewhere), publishes the pairs to
// JetStream in version-2 batches (the default) or one pair per message
// (batchPairs 1, for verifiers older than batches), and the verifiers and
// the collector must count exactly the pairs and divergences of every
// segment. Edge cases (unicode, truncation, quotes in errors, skipped,
// timeout, panic, unencodable results) must all be envelopes the Go
// verifier accepts.
func TestNodeClientCountedExactly(t *testing.T) {
	buildNodeClient(t)
	t.Run("batches", func(t *testing.T) { testNodeClientCounted(t, 2000, "") })
	t.Run("single pairs", func(t *testing.T) { testNodeClientCounted(t, 400, "1") })
}

func testNodeClientCounted(t *testing.T, n int, batchPairs string) {
	const experiment = "node-e2e"
	app, _ := startSystem(t, "ingest-token-0123456789")

	want := nodeWant(n)

	cmd := exec.Command("node", "dist/e2e/publish-pairs.js")
	cmd.Dir = nodeClientDir
	cmd.Env = append(os.Environ(), "NATS_URL="+app.NATSURL(), "EXPERIMENT="+experiment, "PAIRS="+strconv.Itoa(n))
	if batchPairs != "" {
		cmd.Env = append(cmd.Env, "BATCH_PAIRS="+batchPairs)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node publish-pairs: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	var got struct {
		Want       map[string]struct{ Pairs, Divergent int64 }
		Edges      int
		EdgeReader struct{ Published, Timeouts, Panics, MarshalErrors int }
		Reader     map[string]any
		Writer     map[string]any
		Publisher  struct{ Offered, Enqueued, Dropped, Published, Failed, Pending, Duplicates, Batches int64 }
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		t.Fatalf("node output %q: %v (stderr %s)", stdout.Bytes(), err, stderr.Bytes())
	}
	for k, w := range want {
		if g := got.Want[k]; g.Pairs != w.pairs || g.Divergent != w.divergent {
			t.Fatalf("the Node script expects %+v in %s, Go %+v", g, k, w)
		}
	}
	if e := got.EdgeReader; got.Edges != 6 || e.Published != 5 || e.Timeouts != 1 || e.Panics != 1 || e.MarshalErrors != 1 {
		t.Fatalf("edge cases: %d, edge reader %+v; want 6, and 5 reads published with 1 timeout, 1 panic, 1 result that could not be encoded", got.Edges, e)
	}
	if p := got.Publisher; p.Published != int64(n+got.Edges) || p.Dropped != 0 || p.Failed != 0 || p.Pending != 0 || p.Duplicates != 0 {
		t.Fatalf("Node publisher stats %+v, want %d published and none dropped, failed, pending or duplicate (reader %v, writer %v)", p, n+got.Edges, got.Reader, got.Writer)
	}
	t.Logf("Node publisher: %d pairs in %d messages", got.Publisher.Published, got.Publisher.Batches)
	// Batches (the default) carry many pairs per message; batchPairs 1 one.
	if p := got.Publisher; batchPairs == "1" && p.Batches != p.Published || batchPairs == "" && (p.Batches < 1 || p.Batches*4 > p.Published) {
		t.Fatalf("Node publisher sent %d messages for %d pairs (batchPairs %q)", p.Batches, p.Published, batchPairs)
	}

	testutil.Eventually(t, 60*time.Second, func() string { return sameCounts(apiCounts(t, app, experiment), want) })
	testutil.Eventually(t, 10*time.Second, func() string {
		var judged, dead uint64
		for _, w := range app.Workers() {
			judged += w.Stats().Judged
			dead += w.Stats().DeadLettered
		}
		// The edge cases are judged too: every envelope the Node client
		// wrote is one the Go verifier accepts.
		if judged != uint64(n+got.Edges) || dead != 0 {
			return fmt.Sprintf("workers judged %d pairs and dead-lettered %d, want %d and 0", judged, dead, n+got.Edges)
		}
		return ""
	})
}

// nodeExampleDir is the Node.js orders example.
const nodeExampleDir = "../examples/node-orders"

// TestNodeOrdersExample runs examples/node-orders against the real system
// and two fresh PostgreSQL databases: the stage per user decides which
// database answers, the seeded divergence (order 4's total) shows up in the
// segments that compare, the matching reads and the dual writes do not, and
// a user in the dualwrite stage publishes writes but no reads.
func TestNodeOrdersExample(t *testing.T) {
	buildNodeClient(t)
	if _, err := os.Stat(filepath.Join(nodeExampleDir, "node_modules")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = nodeExampleDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in examples/node-orders: %v\n%s", err, out)
		}
	}
	app, _ := startSystem(t, "ingest-token-0123456789")
	addr := freeAddr(t)

	cmd := exec.Command("node", "server.mjs", "--traffic", "0", "--addr", addr)
	cmd.Dir = nodeExampleDir
	cmd.Env = append(os.Environ(), "NATS_URL="+app.NATSURL(),
		"OLD_DATABASE_URL="+testutil.FreshDatabase(t), "NEW_DATABASE_URL="+testutil.FreshDatabase(t))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var gone atomic.Bool
	go func() {
		err := cmd.Wait()
		gone.Store(true)
		exited <- err
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	testutil.Eventually(t, 60*time.Second, func() string {
		if bytes.Contains(out.Bytes(), []byte("serving on")) {
			return ""
		}
		if gone.Load() {
			t.Fatalf("the example exited:\n%s", out.Bytes())
		}
		return "the example is not serving yet: " + string(out.Bytes())
	})

	call := func(method, path, user, country, plan, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-User-ID", user)
		req.Header.Set("X-Country", country)
		req.Header.Set("X-Plan", plan)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	for _, c := range []struct {
		method, path, user, country, plan, body string
		code                                    int
		cents                                   float64 // 0: not checked
	}{
		{"GET", "/orders/4", "7", "IN", "free", "", 200, 1001}, // shadow: the old database answers
		{"GET", "/orders/1", "7", "IN", "free", "", 200, 1999}, // shadow, both agree
		{"POST", "/orders/6/status", "7", "IN", "free", `{"status":"shipped"}`, 200, 0},
		{"GET", "/orders/4", "123", "US", "pro", "", 200, 1000}, // the testing group is live: the new database answers
		{"GET", "/orders/1", "123", "US", "pro", "", 200, 1999}, // live, both agree
		{"GET", "/orders/1", "11", "DE", "free", "", 200, 1999}, // dualwrite: reads are not compared
		{"POST", "/orders/7/status", "11", "DE", "free", `{"status":"paid"}`, 200, 0},
		{"POST", "/orders/7/status", "11", "DE", "free", `{"status":"lost"}`, 400, 0},
	} {
		code, v := call(c.method, c.path, c.user, c.country, c.plan, c.body)
		if code != c.code {
			t.Fatalf("%s %s as user %s: status %d, want %d (%v)", c.method, c.path, c.user, code, c.code, v)
		}
		if c.cents != 0 && v["total_cents"] != c.cents {
			t.Fatalf("%s %s as user %s: %v, want total_cents %v", c.method, c.path, c.user, v, c.cents)
		}
	}
	// The example flushes its pairs when it is stopped.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("the example exited with %v:\n%s", err, out.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the example did not stop on SIGTERM:\n%s", out.Bytes())
	}

	want := map[string]counts{
		"country=IN,plan=free": {pairs: 3, divergent: 1},
		"country=US,plan=pro":  {pairs: 2, divergent: 1},
		"country=DE,plan=free": {pairs: 1, divergent: 0},
	}
	testutil.Eventually(t, 60*time.Second, func() string { return sameCounts(apiCounts(t, app, "orders-node"), want) })
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// TestNodeClientOverOFREP takes the stage from Parity's own rollout
// controller: the Node client evaluates the flag with OpenFeature's OFREP
// provider against the collector, whose plan puts the testing group (users
// 123 and 456) in live and everyone else in dualwrite. Only the testing
// group's reads are compared, and their pairs are counted.
func TestNodeClientOverOFREP(t *testing.T) {
	const experiment, flag = "node-ofrep", "node-ofrep-stage"
	buildNodeClient(t)
	ns := testutil.RunJetStream(t)
	ingest, operator := "ingest-"+randomHex(32), "operator-"+randomHex(32)
	app, err := collector.Start(context.Background(), collector.Options{
		Addr: "127.0.0.1:0", DatabaseURL: testutil.FreshDatabase(t), NATSURL: ns.ClientURL(), Workers: 2,
		IngestTokens: []string{ingest}, OperatorTokens: []string{operator},
		Verifier: verifier.Options{FlushInterval: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatalf("start collector: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	send := func(method, path string, body any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, app.URL()+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+operator)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			out, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
		}
	}
	send("PUT", "/api/v1/experiments/"+experiment+"/rollout", collector.PlanUpdate{Flag: flag, Reason: "the Node client over OFREP", Plan: rollout.Plan{
		Experiment: experiment, Base: envelope.StageDualWrite,
		Steps: []rollout.Step{{Name: "testing group", Stage: envelope.StageLive, Audience: rollout.Audience{Users: []string{"123", "456"}}}},
	}})
	send("POST", "/api/v1/experiments/"+experiment+"/rollout/promote", collector.RolloutAction{Reason: "testing group first"})

	cmd := exec.Command("node", "dist/e2e/ofrep-pairs.js")
	cmd.Dir = nodeClientDir
	cmd.Env = append(os.Environ(), "PARITY_URL="+app.URL(), "PARITY_TOKEN="+ingest, "NATS_URL="+ns.ClientURL(),
		"EXPERIMENT="+experiment, "FLAG="+flag, "USERS=123,456,7,8,9")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node ofrep-pairs: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	var got struct {
		Stages    map[string]string
		Reader    struct{ Calls, Offered, Published, FlagErrors int }
		Publisher struct{ Published, Dropped, Failed int }
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		t.Fatalf("node output %q: %v (stderr %s)", stdout.Bytes(), err, stderr.Bytes())
	}
	wantStages := map[string]string{"123": "live", "456": "live", "7": "dualwrite", "8": "dualwrite", "9": "dualwrite"}
	for u, s := range wantStages {
		if got.Stages[u] != s {
			t.Fatalf("user %s got stage %q over OFREP, want %q (all: %v)", u, got.Stages[u], s, got.Stages)
		}
	}
	if r := got.Reader; r.Calls != 5 || r.Offered != 2 || r.Published != 2 || r.FlagErrors != 0 {
		t.Fatalf("reader stats %+v, want 5 calls of which the testing group's 2 compared and published, no flag errors", r)
	}
	if p := got.Publisher; p.Published != 2 || p.Dropped != 0 || p.Failed != 0 {
		t.Fatalf("publisher stats %+v, want 2 published", p)
	}
	want := map[string]counts{"country=IN,plan=pro": {pairs: 2}}
	testutil.Eventually(t, 60*time.Second, func() string { return sameCounts(apiCounts(t, app, experiment), want) })
}

// TestNodeBatchesCountedOnceThroughVerifierKill publishes the Node client's
// batches while one of two verifier processes is killed with SIGKILL and a
// replacement started: whatever batches it held unacknowledged are
// redelivered to the others, and every pair is still counted exactly once.
func TestNodeBatchesCountedOnceThroughVerifierKill(t *testing.T) {
	const experiment, n = "node-kill", 8000
	buildNodeClient(t)
	ns := testutil.RunJetStream(t)
	db := testutil.FreshDatabase(t)
	a := startVerifier(t, ns.ClientURL(), db)
	b := startVerifier(t, ns.ClientURL(), db)
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := func() int64 {
		rows, err := st.Segments(context.Background(), experiment, store.SegmentQuery{})
		if err != nil {
			return 0
		}
		var total int64
		for _, r := range rows {
			total += r.Pairs
		}
		return total
	}

	cmd := exec.Command("node", "dist/e2e/publish-pairs.js")
	cmd.Dir = nodeClientDir
	cmd.Env = append(os.Environ(), "NATS_URL="+ns.ClientURL(), "EXPERIMENT="+experiment, "PAIRS="+strconv.Itoa(n), "PACE_MS=40")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		done <- nil
	})

	// Kill a verifier once pairs are being counted; the publisher goes on.
	testutil.Eventually(t, 60*time.Second, func() string {
		if got := stored(); got < 500 {
			return fmt.Sprintf("%d pairs stored, waiting for 500", got)
		}
		return ""
	})
	a.kill9(t)
	c := startVerifier(t, ns.ClientURL(), db)

	err = <-done
	done <- err // for the cleanup
	if err != nil {
		t.Fatalf("node publish-pairs: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	var got struct {
		Publisher struct{ Published, Dropped, Failed, Pending, Batches int64 }
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		t.Fatalf("node output %q: %v (stderr %s)", stdout.Bytes(), err, stderr.Bytes())
	}
	if p := got.Publisher; p.Dropped != 0 || p.Failed != 0 || p.Pending != 0 || p.Batches*4 > p.Published {
		t.Fatalf("Node publisher stats %+v: want no pair lost, in batches", p)
	}

	want := nodeWant(n)
	testutil.Eventually(t, 60*time.Second, func() string {
		rows, err := st.Segments(context.Background(), experiment, store.SegmentQuery{})
		if err != nil {
			return err.Error()
		}
		counted := map[string]counts{}
		for _, r := range rows {
			counted[r.Segment] = counts{r.Pairs, r.Divergent}
		}
		return sameCounts(counted, want)
	})
	js, err := jetstream.New(testutil.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() string { return settled(js, func() string { return "" }) })
	if total := stored(); total != n {
		t.Fatalf("%d pairs stored after everything was acknowledged, want %d", total, n)
	}
	t.Logf("Node publisher: %d pairs in %d messages; duplicates caught: b=%s c=%s", got.Publisher.Published, got.Publisher.Batches,
		b.metric(t, "parity_verifier_duplicates_total"), c.metric(t, "parity_verifier_duplicates_total"))
}
