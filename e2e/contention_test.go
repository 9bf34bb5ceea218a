package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/publish"
)

// contentionMaxBatch is the verifiers' --max-batch in
// BenchmarkVerifierContention: a flush every 10 messages (640 pairs), so a
// run commits hundreds of flushes and the apply lock, not the differ, is
// what the verifiers meet.
const contentionMaxBatch = 10

// BenchmarkVerifierContention runs 1, 2, 4 and 8 verifier processes
// (cmd/verifier, one worker each) sharing the durable consumer of one
// JetStream stream, so contention on the store's serialisation points
// (docs/scaling.md: the stream's apply lock, then the experiment's row) shows
// before a user meets it. The differ is CPU-light: b.N messages of 64 pairs
// each (the hook's default batch) are published through the Go hook before
// the verifiers start, every pair with identical tiny values in one
// experiment and operation over 50 segments, and each verifier flushes every
// 10 messages (--max-batch 10).
//
// Figures, each sub-benchmark in its own fresh database and NATS server:
//
//   - flushes/s: flushes committed per second, from the database: the
//     applied_batches rows (one per committed Apply) between the 10th and
//     90th percentile of their applied_at, so process start-up and the last
//     partial flushes do not count.
//   - pairs/s: the same window's pairs (flushes/s × pairs per flush).
//   - apply-ms: the verifiers' mean time per committed flush, from their
//     /metrics (parity_verifier_flush_seconds_total ÷ flushes_total), over
//     the whole run.
//   - lockwait-ms: the mean time a flush waited on a heavyweight lock,
//     sampled from PostgreSQL: every 5 ms, how many of the database's
//     sessions are waiting with wait_event_type 'Lock'; the count integrated
//     over the window and divided by its flushes. advisory-ms is the part
//     waiting on the stream's advisory apply lock (wait_event 'advisory'),
//     the rest is row and transaction locks (the experiment's row). It is a
//     sample, not a trace: a wait shorter than 5 ms is seen in proportion to
//     its length, so the mean is unbiased.
//
// On a machine with fewer cores than verifiers the apply time also holds
// waits for a CPU; lockwait-ms does not (a session waiting for a CPU is not
// waiting for a lock). Flushes per second that stay flat while lockwait-ms
// grows as processes are added are one stream's ceiling.
//
//	go test -run '^$' -bench VerifierContention -benchtime 4000x ./e2e/
func BenchmarkVerifierContention(b *testing.B) {
	bins := buildSoak(b, "verifier")
	for _, procs := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) { benchContention(b, bins["verifier"], procs) })
	}
}

func benchContention(b *testing.B, bin string, procs int) {
	if b.N < 10*contentionMaxBatch {
		// Go's first run with b.N = 1 (before the -benchtime count), or a
		// run too short for ten flushes: no steady window to measure.
		return
	}
	ctx := context.Background()
	ns := testutil.RunJetStream(b)
	dbURL := testutil.FreshDatabase(b)
	js, _ := jetstream.New(testutil.Connect(b, ns))
	stream, err := verifier.EnsureStream(ctx, js, verifier.StreamOptions{})
	if err != nil {
		b.Fatal(err)
	}
	// The backlog: b.N full batches of identical values.
	pairs := b.N * publish.DefaultBatchPairs
	pub, err := publish.New(testutil.Connect(b, ns), publish.Options{QueueSize: pairs + 1, ReportInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	v := json.RawMessage(`{"id":1,"status":"paid"}`)
	for i := range pairs {
		ok := pub.Publish(&envelope.Pair{
			Version: envelope.Version, ID: fmt.Sprintf("c-%d-%d", now.UnixNano(), i), Experiment: "contention", Operation: "GetOrder",
			Kind: envelope.KindRead, Time: now, Stage: envelope.StageShadow,
			User:    envelope.User{Key: "u", Attrs: map[string]string{"country": fmt.Sprintf("C%02d", i%50)}},
			Control: envelope.Observation{Value: v, DurationNS: 1000}, Candidate: envelope.Observation{Value: v, DurationNS: 1000},
		})
		if !ok {
			b.Fatal("publish: dropped")
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := pub.Close(cctx); err != nil {
		b.Fatal(err)
	}
	if st := pub.Stats(); st.Published != uint64(pairs) {
		b.Fatalf("published %d of %d pairs (%+v)", st.Published, pairs, st)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	msgs := info.State.Msgs

	st, err := store.Open(ctx, dbURL, store.Options{}) // creates and migrates the database
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(ctx)
	sampler := startLockSampler(b, dbURL)

	b.ResetTimer()
	vs := make([]*verifierProc, procs)
	for i := range vs {
		vs[i] = startVerifierProc(b, bin, ns.ClientURL(), dbURL)
	}
	testutil.Eventually(b, 10*time.Minute, func() string {
		var n int64
		if err := db.QueryRow(ctx, `SELECT coalesce(sum(pairs), 0) FROM experiments`).Scan(&n); err != nil {
			return err.Error()
		}
		if n != int64(pairs) {
			return fmt.Sprintf("%d of %d pairs counted", n, pairs)
		}
		return ""
	})
	b.StopTimer()
	samples := sampler.stop()

	// The steady window, from the committed flushes themselves.
	rows, err := db.Query(ctx, `SELECT applied_at FROM applied_batches ORDER BY applied_at`)
	if err != nil {
		b.Fatal(err)
	}
	at, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		b.Fatal(err)
	}
	if len(at) < 10 {
		b.Fatalf("%d flushes committed of %d messages: too few for a steady window", len(at), msgs)
	}
	lo, hi := len(at)/10, len(at)*9/10
	from, to := at[lo], at[hi]
	flushes := float64(hi - lo)
	secs := to.Sub(from).Seconds()
	var advisory, other float64 // session-seconds spent waiting, in the window
	for i := 1; i < len(samples); i++ {
		s := samples[i]
		if s.at.Before(from) || s.at.After(to) {
			continue
		}
		dt := s.at.Sub(samples[i-1].at).Seconds()
		advisory += float64(s.advisory) * dt
		other += float64(s.other) * dt
	}
	var flushSec, flushN float64
	for _, v := range vs {
		flushSec += v.metric(b, "parity_verifier_flush_seconds_total")
		flushN += v.metric(b, "parity_verifier_flushes_total")
	}
	b.ReportMetric(flushes/secs, "flushes/s")
	b.ReportMetric(flushes/secs*float64(pairs)/float64(len(at)), "pairs/s")
	b.ReportMetric(flushSec/flushN*1e3, "apply-ms")
	b.ReportMetric((advisory+other)/flushes*1e3, "lockwait-ms")
	b.ReportMetric(advisory/flushes*1e3, "advisory-ms")
	b.ReportMetric(float64(pairs)/float64(msgs), "pairs/msg")
}

// verifierProc is a verifier running as its own OS process.
type verifierProc struct {
	*benchProc
	http string
}

func startVerifierProc(b *testing.B, bin, natsURL, dbURL string) *verifierProc {
	b.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePortTB(b))
	cmd := exec.Command(bin, "--nats-url", natsURL, "--database-url", dbURL, "--http-addr", addr,
		"--workers", "1", "--max-batch", strconv.Itoa(contentionMaxBatch), "--flush-interval", "100ms", "--log-level", "warn")
	return &verifierProc{benchProc: startBenchProc(b, cmd, "verifier"), http: addr}
}

// benchProc is a process a benchmark runs: its output is kept, and it is
// stopped with SIGTERM (SIGKILL after 30s) when the benchmark ends, its
// output logged if the benchmark failed. done is closed when it exits.
type benchProc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

func startBenchProc(b *testing.B, cmd *exec.Cmd, name string) *benchProc {
	b.Helper()
	p := &benchProc{cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if b.Failed() {
			b.Logf("%s %d output:\n%s", name, cmd.Process.Pid, p.out.String())
		}
	})
	return p
}

// metric reads one unlabelled figure from the verifier's /metrics.
func (p *verifierProc) metric(b *testing.B, name string) float64 {
	b.Helper()
	return scrapeMetric(b, p.http, name)
}

// scrapeMetric reads one unlabelled figure from the /metrics of the
// process serving HTTP at addr.
func scrapeMetric(b *testing.B, addr, name string) float64 {
	b.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("%s at %s: %v", name, addr, err)
			}
			return f
		}
	}
	b.Fatalf("%s/metrics has no %s", addr, name)
	return 0
}

// lockSample is how many of the database's sessions waited on a lock at
// one moment: on an advisory lock, and on any other heavyweight lock.
type lockSample struct {
	at              time.Time
	advisory, other int
}

type lockSampler struct {
	quit    chan struct{}
	done    chan struct{}
	samples []lockSample
}

// startLockSampler samples pg_stat_activity of dbURL's database every 5 ms
// on its own connection until stop.
func startLockSampler(b *testing.B, dbURL string) *lockSampler {
	b.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	s := &lockSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer conn.Close(context.Background())
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
			var ls lockSample
			err := conn.QueryRow(context.Background(), `
SELECT clock_timestamp(),
       count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'),
       count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event <> 'advisory')
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&ls.at, &ls.advisory, &ls.other)
			if err != nil {
				return
			}
			s.samples = append(s.samples, ls)
		}
	}()
	return s
}

// stop ends the sampling and returns the samples in time order.
func (s *lockSampler) stop() []lockSample {
	close(s.quit)
	<-s.done
	sort.Slice(s.samples, func(i, j int) bool { return s.samples[i].at.Before(s.samples[j].at) })
	return s.samples
}
