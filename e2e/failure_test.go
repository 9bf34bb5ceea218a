package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/publish"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binary builds a command of this module once per test run.
func binary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "parity-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "../cmd/verifier", "../cmd/collector", "../cmd/parityctl").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// process is a verifier running as its own OS process.
type process struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	http string
	done chan struct{}
}

func startVerifier(t *testing.T, natsURL, databaseURL string) *process {
	t.Helper()
	p := &process{out: &bytes.Buffer{}, http: fmt.Sprintf("127.0.0.1:%d", freePort(t)), done: make(chan struct{})}
	p.cmd = exec.Command(binary(t, "verifier"))
	p.cmd.Env = append(os.Environ(),
		"NATS_URL="+natsURL, "DATABASE_URL="+databaseURL, "PARITY_HTTP_ADDR="+p.http,
		"PARITY_FLUSH_INTERVAL=100ms", "PARITY_ACK_WAIT=2s", "PARITY_LOG_LEVEL=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
		if t.Failed() {
			t.Logf("verifier %d output:\n%s", p.cmd.Process.Pid, p.out.String())
		}
	})
	testutil.Eventually(t, 30*time.Second, func() string {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err != nil {
			return "verifier not serving: " + err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("verifier not ready: %d", resp.StatusCode)
		}
		return ""
	})
	return p
}

func (p *process) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no flush, no ack, no goodbye
		t.Fatal(err)
	}
	<-p.done
}

func (p *process) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestCountsExactThroughFailures publishes known pairs while, in turn, a
// verifier process is killed with SIGKILL, the NATS server restarts, and
// PostgreSQL becomes unreachable; the final counts per segment must equal the
// truth exactly.
func TestCountsExactThroughFailures(t *testing.T) {
	const experiment = "e2e-failures"
	natsDir, natsPort := t.TempDir(), freePort(t)
	ns := testutil.RunJetStreamAt(t, natsDir, natsPort)
	natsURL := ns.ClientURL()

	proxy := testutil.StartProxy(t, "127.0.0.1:5432")
	direct := testutil.FreshDatabase(t)
	u, _ := url.Parse(direct)
	u.Host = proxy.Addr()
	viaProxy := u.String()

	a := startVerifier(t, natsURL, viaProxy)
	b := startVerifier(t, natsURL, viaProxy)

	st, err := store.Open(context.Background(), direct, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pubConn := testutil.Connect(t, ns, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	// The hook batches pairs (wire version 2) by default, so a message's
	// pairs share one stream sequence; an old hook sending one pair per
	// message (version 1) publishes alongside it.
	pub, err := publish.New(pubConn, publish.Options{QueueSize: 50_000})
	if err != nil {
		t.Fatal(err)
	}
	oldHook, err := publish.New(pubConn, publish.Options{QueueSize: 50_000, BatchPairs: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]counts{}
	next := 0
	publishN := func(n int) {
		now := time.Now().UTC()
		for range n {
			p, divergent := makePair(experiment, next, now)
			next++
			key := "country=" + p.User.Attrs["country"] + ",plan=" + p.User.Attrs["plan"]
			c := want[key]
			c.pairs++
			if divergent {
				c.divergent++
			}
			want[key] = c
			hook := pub
			if next%5 == 0 {
				hook = oldHook
			}
			if !hook.Publish(p) {
				t.Fatal("hook dropped a pair")
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, hook := range []*publish.Publisher{pub, oldHook} {
			if err := hook.Flush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			if s := hook.Stats(); s.Failed != 0 || s.Dropped != 0 {
				t.Fatalf("publisher %+v: pairs were lost before reaching the stream", s)
			}
		}
	}
	stored := func() int64 {
		rows, err := st.Segments(context.Background(), experiment, store.SegmentQuery{})
		if err != nil {
			return 0
		}
		var n int64
		for _, r := range rows {
			n += r.Pairs
		}
		return n
	}
	atLeast := func(n int64) func() string {
		return func() string {
			if got := stored(); got < n {
				return fmt.Sprintf("%d pairs stored, waiting for %d", got, n)
			}
			return ""
		}
	}

	// 1. SIGKILL a verifier while pairs are flowing; start a replacement.
	publishN(8000)
	testutil.Eventually(t, 30*time.Second, atLeast(1000))
	a.kill9(t)
	c := startVerifier(t, natsURL, viaProxy)

	// 2. Restart the NATS server under the verifiers.
	publishN(8000)
	testutil.Eventually(t, 30*time.Second, atLeast(10000))
	ns.Shutdown()
	ns.WaitForShutdown()
	ns = testutil.RunJetStreamAt(t, natsDir, natsPort)
	js, _ := jetstream.New(testutil.Connect(t, ns))
	testutil.Eventually(t, 30*time.Second, func() string {
		if _, err := js.Stream(context.Background(), natsnames.PairStream); err != nil {
			return "stream not back: " + err.Error()
		}
		if !pubConn.IsConnected() {
			return "publisher not reconnected"
		}
		return ""
	})
	publishN(8000)

	// 3. Cut PostgreSQL off from the verifiers while pairs keep arriving.
	testutil.Eventually(t, 30*time.Second, atLeast(18000))
	errorsBefore := b.metric(t, "parity_verifier_flush_errors_total") + "/" + c.metric(t, "parity_verifier_flush_errors_total")
	proxy.Cut()
	publishN(4000)
	testutil.Eventually(t, 30*time.Second, func() string {
		now := b.metric(t, "parity_verifier_flush_errors_total") + "/" + c.metric(t, "parity_verifier_flush_errors_total")
		if now == errorsBefore {
			return "no verifier has noticed the outage yet"
		}
		return ""
	})
	proxy.Restore()

	// Every pair counted exactly once, per segment.
	testutil.Eventually(t, 60*time.Second, func() string {
		rows, err := st.Segments(context.Background(), experiment, store.SegmentQuery{})
		if err != nil {
			return err.Error()
		}
		got := map[string]counts{}
		for _, r := range rows {
			got[r.Segment] = counts{r.Pairs, r.Divergent}
		}
		return sameCounts(got, want)
	})
	// And it stays exact once nothing is left unacknowledged.
	testutil.Eventually(t, 30*time.Second, func() string { return settled(js, func() string { return "" }) })
	if got := stored(); got != 28000 {
		t.Fatalf("%d pairs stored after everything was acknowledged, want 28000", got)
	}
	t.Logf("duplicates caught: b=%s c=%s", b.metric(t, "parity_verifier_duplicates_total"), c.metric(t, "parity_verifier_duplicates_total"))
}
