package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
// the same payload, on the same embedded server, in the same run. Run it
// with a fixed count: go test -bench B1 -benchtime 20000x ./e2e/
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
// slow the pipeline. Run it with a fixed count, like B1.
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
	var acked atomic.Int64
	done := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if acked.Add(1) == int64(b.N) {
			close(done)
		}
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
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
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
	start := time.Now()
	for _, w := range ws {
		go func() { errc <- w.Run(wctx) }()
	}
	for _, p := range pairs {
		if !pub.Publish(p) {
			b.Fatal("dropped")
		}
	}
	for judged() < uint64(b.N) {
		time.Sleep(time.Millisecond) // polling the counter; the figure is throughput, not this loop
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
	b.StopTimer()
	stop()
	for range ws {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	_ = pub.Close(ctx)
}
