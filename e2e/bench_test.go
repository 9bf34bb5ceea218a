package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/publish"
)

// benchPair returns a pair whose encoded envelope is about size bytes, in
// one of four segments.
func benchPair(i, size int, now time.Time) *envelope.Pair { return benchPairIn(i, size, 4, now) }

// benchPairIn returns a pair in one of segments segments.
func benchPairIn(i, size, segments int, now time.Time) *envelope.Pair {
	pad := max(size/2-120, 0)
	v := json.RawMessage(fmt.Sprintf(`{"id":%d,"status":"paid","note":%q}`, i, strings.Repeat("x", pad)))
	return &envelope.Pair{
		Version: envelope.Version, ID: fmt.Sprintf("b-%d-%d", now.UnixNano(), i), Experiment: "bench", Operation: "GetOrder",
		Kind: envelope.KindRead, Time: now, Stage: envelope.StageShadow,
		User:    envelope.User{Key: "u", Attrs: map[string]string{"country": fmt.Sprintf("C%03d", i%segments), "plan": "pro"}},
		Control: envelope.Observation{Value: v, DurationNS: 1000}, Candidate: envelope.Observation{Value: v, DurationNS: 1000},
	}
}

// BenchmarkB1 measures end-to-end pairs/s (hook → JetStream → verify →
// PostgreSQL → ack) against raw JetStream async publish plus acked consume of
// the same payload, one message per pair, on the same embedded server, in
// the same run. Both figures are steady state: pairs/s and the process's CPU
// time per pair (hook, NATS server and consumer together; PostgreSQL's own
// CPU is not included) between 10% and 90% of the pairs done, so start-up
// and the last partial flush do not count. Run it with a fixed count of at
// least 100,000: go test -bench 'B1$' -benchtime 100000x ./e2e/
func BenchmarkB1(b *testing.B) {
	for _, size := range []int{1536, 8192} {
		name := fmt.Sprintf("%.1fKB", float64(size)/1024)
		b.Run(name+"/reference", func(b *testing.B) { benchRawJetStream(b, size) })
		b.Run(name+"/parity", func(b *testing.B) { benchParity(b, size, 4, 1) })
	}
	// Two workers on their own connections, as two verifier processes are.
	b.Run("1.5KB-2workers/reference", func(b *testing.B) { benchRawJetStream(b, 1536) })
	b.Run("1.5KB-2workers/parity", func(b *testing.B) { benchParity(b, 1536, 4, 2) })
}

// BenchmarkB7 measures end-to-end pairs/s with all traffic in one segment
// against the same traffic spread over 100 segments: a hot segment must not
// slow the pipeline. Run it with a fixed count of at least 100,000, like B1:
// pairs are counted when a flush commits, and 20,000 batched pairs make
// four to eight flushes, so the steady window of 10% to 90% spanned one to
// five commits, sometimes a few milliseconds apart (0.8× to 11× in runs in
// which nothing stalled).
func BenchmarkB7(b *testing.B) {
	b.Run("reference", func(b *testing.B) { benchParity(b, 1536, 100, 1) })
	b.Run("parity", func(b *testing.B) { benchParity(b, 1536, 1, 1) })
}

func benchRawJetStream(b *testing.B, size int) {
	ns := testutil.RunJetStream(b)
	nc := testutil.Connect(b, ns)
	cnc := testutil.Connect(b, ns)
	ctx := context.Background()
	js, _ := jetstream.New(nc)
	cjs, _ := jetstream.New(cnc)
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "REF", Subjects: []string{"ref.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		b.Fatal(err)
	}
	cons, err := cjs.CreateOrUpdateConsumer(ctx, "REF", jetstream.ConsumerConfig{Durable: "ref", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 20000})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	payloads := make([][]byte, b.N)
	for i := range payloads {
		payloads[i], _ = envelope.Marshal(benchPair(i, size, now))
	}
	var acked atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	meter := startSteady(uint64(b.N), acked.Load)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		acked.Add(1)
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	for i := range b.N {
		m := nats.NewMsg("ref.bench")
		m.Data = payloads[i]
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprint(i))
		for {
			_, err := js.PublishMsgAsync(m)
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				<-js.PublishAsyncComplete() // the window is full: wait for acks, as a real publisher would
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			break
		}
	}
	meter.report(b)
}

// steady measures a run's steady state: it polls progress every millisecond
// and keeps the wall and CPU time at which 10% and 90% of n were done.
type steady struct {
	n         uint64
	done      chan struct{}
	wall      [2]time.Time
	cpu       [2]time.Duration
	completed [2]uint64
}

func startSteady(n uint64, progress func() uint64) *steady {
	s := &steady{n: n, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		marks := [2]uint64{n / 10, n * 9 / 10}
		next := 0
		for {
			got := progress()
			for next < 2 && got >= marks[next] {
				s.wall[next], s.cpu[next], s.completed[next] = time.Now(), processCPU(), got
				next++
			}
			if got >= n {
				return
			}
			time.Sleep(time.Millisecond) // polling a counter; the figures come from the marks
		}
	}()
	return s
}

// report waits until every pair is done and reports steady pairs/s and CPU
// microseconds per pair.
func (s *steady) report(b *testing.B) {
	<-s.done
	pairs := float64(s.completed[1] - s.completed[0])
	b.ReportMetric(pairs/s.wall[1].Sub(s.wall[0]).Seconds(), "pairs/s")
	b.ReportMetric(float64((s.cpu[1]-s.cpu[0]).Microseconds())/pairs, "cpu-us/pair")
}

// processCPU returns the user and system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchParity(b *testing.B, size, segments, workers int) {
	ns := testutil.RunJetStream(b)
	ctx := context.Background()
	st, err := store.Open(ctx, testutil.FreshDatabase(b), store.Options{SegmentCap: 200})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var ws []*verifier.Worker
	for range workers {
		wjs, _ := jetstream.New(testutil.Connect(b, ns))
		// A 100ms flush interval: a bounded run ends with one partial batch
		// waiting for the interval, which at the default 500ms would dominate
		// a one-second run; in steady state the interval does not limit
		// throughput.
		w, err := verifier.New(wjs, st, verifier.Options{FlushInterval: 100 * time.Millisecond, SegmentCap: 200})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := verifier.EnsureStream(ctx, wjs, verifier.StreamOptions{}); err != nil {
			b.Fatal(err)
		}
		ws = append(ws, w)
	}
	pub, err := publish.New(testutil.Connect(b, ns), publish.Options{QueueSize: b.N + 1})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	pairs := make([]*envelope.Pair, b.N)
	for i := range pairs {
		pairs[i] = benchPairIn(i, size, segments, now)
	}
	wctx, stop := context.WithCancel(ctx)
	errc := make(chan error, workers)
	judged := func() (n uint64) {
		for _, w := range ws {
			n += w.Stats().Judged
		}
		return n
	}
	b.ReportAllocs()
	b.ResetTimer()
	meter := startSteady(uint64(b.N), judged)
	if os.Getenv("PARITY_BENCH_TRACE") != "" && b.N > 1 {
		stop := traceRun(b, ns, pub, ws)
		defer stop()
	}
	for _, w := range ws {
		go func() { errc <- w.Run(wctx) }()
	}
	for _, p := range pairs {
		if !pub.Publish(p) {
			b.Fatal("dropped")
		}
	}
	meter.report(b)
	b.StopTimer()
	stop()
	for range ws {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	_ = pub.Close(ctx)
	if n := ns.NumSlowConsumers(); n > 0 {
		// The server dropped a worker's connection: what was in flight on it
		// waited AckWait to be redelivered, so the figure measures that wait.
		b.Errorf("the NATS server closed %d connections as slow consumers", n)
	}
}

// traceRun prints, every 100ms, the workers' and the publisher's counters, the stream's and the
// consumer's state and the server's slow consumers, to stderr until the
// returned function is called. PARITY_BENCH_TRACE=1 turns it on: it is how a
// stall is told from slow work.
func traceRun(b *testing.B, ns *server.Server, pub *publish.Publisher, ws []*verifier.Worker) (stop func()) {
	ctx := context.Background()
	js, _ := jetstream.New(testutil.Connect(b, ns))
	stream, durable := verifier.DefaultStreamOptions().Name, verifier.DefaultOptions().Durable
	done := make(chan struct{})
	go func() {
		t0 := time.Now()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			var w verifier.Stats
			for _, wk := range ws {
				s := wk.Stats()
				w.Consumed, w.Judged, w.Flushes, w.FlushTime = w.Consumed+s.Consumed, w.Judged+s.Judged, w.Flushes+s.Flushes, w.FlushTime+s.FlushTime
			}
			var state string
			if st, err := js.Stream(ctx, stream); err == nil {
				state = fmt.Sprintf("stream msgs=%d MB=%d", st.CachedInfo().State.Msgs, st.CachedInfo().State.Bytes>>20)
			}
			if c, err := js.Consumer(ctx, stream, durable); err == nil {
				i := c.CachedInfo()
				state += fmt.Sprintf(" | consumer pending=%d ack_pending=%d redelivered=%d waiting=%d", i.NumPending, i.NumAckPending, i.NumRedelivered, i.NumWaiting)
			}
			ps := pub.Stats()
			fmt.Fprintf(os.Stderr, "%s t=%.3fs judged=%d consumed=%d flushes=%d flush_time=%v | hook published=%d failed=%d pending=%d dropped=%d | %s | slow_consumers=%d\n",
				b.Name(), time.Since(t0).Seconds(), w.Judged, w.Consumed, w.Flushes, w.FlushTime.Round(time.Millisecond),
				ps.Published, ps.Failed, ps.Pending, ps.Dropped, state, ns.NumSlowConsumers())
		}
	}()
	return func() { close(done) }
}
