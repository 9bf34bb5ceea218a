package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/testutil"
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

// TestNodeClientCountedExactly runs the Node.js client against the real
// system: it reads and writes through Reader and Writer (stage from the
// OpenFeature SDK: live in IN, shadow elsewhere), publishes the pairs to
// JetStream, and the verifiers and the collector must count exactly the
// pairs and divergences of every segment.
func TestNodeClientCountedExactly(t *testing.T) {
	const n = 2000
	const experiment = "node-e2e"
	buildNodeClient(t)
	app, _ := startSystem(t, "ingest-token-0123456789")

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

	cmd := exec.Command("node", "dist/e2e/publish-pairs.js")
	cmd.Dir = nodeClientDir
	cmd.Env = append(os.Environ(), "NATS_URL="+app.NATSURL(), "EXPERIMENT="+experiment, "PAIRS="+strconv.Itoa(n))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node publish-pairs: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	var got struct {
		Want      map[string]struct{ Pairs, Divergent int64 }
		Reader    map[string]any
		Writer    map[string]any
		Publisher struct{ Offered, Enqueued, Dropped, Published, Failed, Pending int64 }
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		t.Fatalf("node output %q: %v (stderr %s)", stdout.Bytes(), err, stderr.Bytes())
	}
	for k, w := range want {
		if g := got.Want[k]; g.Pairs != w.pairs || g.Divergent != w.divergent {
			t.Fatalf("the Node script expects %+v in %s, Go %+v", g, k, w)
		}
	}
	if p := got.Publisher; p.Published != n || p.Dropped != 0 || p.Failed != 0 || p.Pending != 0 {
		t.Fatalf("Node publisher stats %+v, want %d published and none dropped, failed or pending (reader %v, writer %v)", p, n, got.Reader, got.Writer)
	}

	testutil.Eventually(t, 60*time.Second, func() string { return sameCounts(apiCounts(t, app, experiment), want) })
	testutil.Eventually(t, 10*time.Second, func() string {
		var judged, dead uint64
		for _, w := range app.Workers() {
			judged += w.Stats().Judged
			dead += w.Stats().DeadLettered
		}
		if judged != n || dead != 0 {
			return fmt.Sprintf("workers judged %d pairs and dead-lettered %d, want %d and 0", judged, dead, n)
		}
		return ""
	})
}
