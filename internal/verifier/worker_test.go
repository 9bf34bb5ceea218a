package verifier

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/report"
	"github.com/parityhq/parity/pkg/segment"
)

func TestSegment(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]string
		keys  []string
		want  string
	}{
		{"two attributes in configured order", map[string]string{"plan": "pro", "country": "IN", "user": "42"}, []string{"country", "plan"}, "country=IN,plan=pro"},
		{"missing attribute", map[string]string{"country": "IN"}, []string{"country", "plan"}, "country=IN,plan=(none)"},
		{"separators in values are replaced", map[string]string{"country": "a,b=c"}, []string{"country"}, "country=a_b_c"},
		{"no segment attributes", map[string]string{"country": "IN"}, nil, "all"},
		{"long keys are cut and made unique", map[string]string{"a": strings.Repeat("x", 128), "b": strings.Repeat("y", 128), "c": strings.Repeat("z", 128), "d": "1"},
			[]string{"a", "b", "c", "d"}, "a=" + strings.Repeat("x", 128) + ",b=" + strings.Repeat("y", 128) + ",c=" + strings.Repeat("z", 128) + ",d=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := segment.Key(tt.attrs, tt.keys); got != tt.want {
				t.Errorf("Segment = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOptionsRejected(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"flush interval too long", Options{FlushInterval: 2 * time.Second}, "FlushInterval"},
		{"batch above ack pending", Options{MaxBatch: 100, MaxAckPending: 50}, "MaxAckPending"},
		{"ack wait too short", Options{AckWait: time.Millisecond}, "AckWait"},
		{"bad attribute", Options{SegmentAttrs: []string{"a,b"}}, "attrs[0]"},
		{"cap too large", Options{SegmentCap: segment.MaxCap + 1}, "cap"},
		{"replicas", Options{Stream: StreamOptions{Replicas: 2}}, "Replicas"},
		{"negative clock skew", Options{MaxClockSkew: -time.Second}, "MaxClockSkew"},
		{"negative pair age", Options{MaxPairAge: -time.Second}, "MaxPairAge"},
		{"pull smaller than two messages", Options{PullBytes: 1 << 20}, "PullBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.setDefaults()
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("setDefaults() = %v, want an ErrInvalidOption naming %s", err, tt.want)
			}
		})
	}
}

// faultyStore wraps the real store to inject failures around Apply.
type faultyStore struct {
	*store.Store
	mu    sync.Mutex
	apply func(ctx context.Context, b *store.Batch) error // nil: pass through
}

func (f *faultyStore) Apply(ctx context.Context, b *store.Batch) error {
	f.mu.Lock()
	apply := f.apply
	f.mu.Unlock()
	if apply != nil {
		return apply(ctx, b)
	}
	return f.Store.Apply(ctx, b)
}

func (f *faultyStore) set(apply func(ctx context.Context, b *store.Batch) error) {
	f.mu.Lock()
	f.apply = apply
	f.mu.Unlock()
}

type rig struct {
	ns    *server.Server
	st    *store.Store
	js    jetstream.JetStream // for publishing
	total int
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ns := testutil.RunJetStream(t)
	st, err := store.Open(context.Background(), testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	js, _ := jetstream.New(testutil.Connect(t, ns))
	if _, err := EnsureStream(context.Background(), js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return &rig{ns: ns, st: st, js: js}
}

// pair returns the k-th pair of the rig: every third one divergent.
func rigPair(k int, now time.Time) *envelope.Pair {
	cand := `{"v":1}`
	if k%3 == 0 {
		cand = `{"v":2}`
	}
	return &envelope.Pair{Version: 1, ID: fmt.Sprintf("p-%d", k), Experiment: "exp", Operation: "Op", Kind: envelope.KindRead,
		Time: now, Stage: envelope.StageShadow, User: envelope.User{Key: "u", Attrs: map[string]string{"country": "IN"}},
		Control: envelope.Observation{Value: []byte(`{"v":1}`)}, Candidate: envelope.Observation{Value: []byte(cand)}}
}

// publishBatches publishes n valid pairs (every third one divergent) in
// batch envelopes of size pairs, as the hook does.
func (r *rig) publishBatches(t *testing.T, n, size int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	bw := envelope.NewBatchWriter(size, envelope.MaxSize)
	send := func() {
		data, id := bw.Finish()
		if _, err := r.js.Publish(ctx, envelope.Subject("exp", "Op"), data, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
		bw.Reset(nil)
	}
	for i := range n {
		if err := bw.Add(rigPair(r.total+i, now)); errors.Is(err, envelope.ErrBatchFull) {
			send()
			if err := bw.Add(rigPair(r.total+i, now)); err != nil {
				t.Fatal(err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if bw.Len() > 0 {
		send()
	}
	r.total += n
}

// publish publishes n valid pairs, every third one divergent, each as its
// own version-1 message.
func (r *rig) publish(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range n {
		p := rigPair(r.total+i, now)
		b, err := envelope.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.js.Publish(ctx, p.Subject(), b, jetstream.WithMsgID(p.ID)); err != nil {
			t.Fatal(err)
		}
	}
	r.total += n
}

func (r *rig) worker(t *testing.T, st Store, opts Options) (*Worker, context.CancelFunc, chan error) {
	t.Helper()
	js, _ := jetstream.New(testutil.Connect(t, r.ns))
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 50 * time.Millisecond
	}
	if opts.AckWait == 0 {
		opts.AckWait = time.Second
	}
	w, err := New(js, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, cancel, done
}

// exact waits until the stored totals equal what was published: every third
// pair divergent, none counted twice.
func (r *rig) exact(t *testing.T) {
	t.Helper()
	wantDiv := int64((r.total + 2) / 3)
	testutil.Eventually(t, 20*time.Second, func() string {
		rows, err := r.st.Segments(context.Background(), "exp", store.SegmentQuery{})
		if err != nil {
			return err.Error()
		}
		var pairs, div int64
		for _, s := range rows {
			pairs += s.Pairs
			div += s.Divergent
		}
		if pairs != int64(r.total) || div != wantDiv {
			return fmt.Sprintf("stored %d pairs, %d divergent; want %d, %d", pairs, div, r.total, wantDiv)
		}
		return ""
	})
}

// settled waits until the workers' consumer has delivered every message
// published and every one is acknowledged. A worker acknowledges a batch
// after it has added it to its statistics, so they are final then.
func (r *rig) settled(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	name := DefaultStreamOptions().Name
	testutil.Eventually(t, 20*time.Second, func() string {
		str, err := r.js.Stream(ctx, name)
		if err != nil {
			return err.Error()
		}
		c, err := r.js.Consumer(ctx, name, DefaultOptions().Durable)
		if err != nil {
			return err.Error()
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return err.Error()
		}
		last := str.CachedInfo().State.LastSeq
		if ci.Delivered.Stream < last || ci.NumPending != 0 || ci.NumAckPending != 0 {
			return fmt.Sprintf("consumer delivered up to %d of %d, %d pending, %d awaiting an ack", ci.Delivered.Stream, last, ci.NumPending, ci.NumAckPending)
		}
		return ""
	})
}

// TestCommitThenCrash: a worker commits a batch and dies before acking. The
// server redelivers the messages to the next worker, which finds them in the
// applied sequences and does not count them again.
func TestCommitThenCrash(t *testing.T) {
	r := newRig(t)
	committed := make(chan struct{})
	var once sync.Once
	crashing := &faultyStore{Store: r.st}
	crashing.set(func(ctx context.Context, b *store.Batch) error {
		if err := r.st.Apply(ctx, b); err != nil {
			return err
		}
		once.Do(func() { close(committed) })
		return errors.New("crash after commit") // never success: the worker never acks
	})
	r.publish(t, 300)
	_, cancel, done := r.worker(t, crashing, Options{})
	<-committed
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the crashing worker reported success")
	}
	done <- nil // for the cleanup

	w2, _, _ := r.worker(t, r.st, Options{})
	r.exact(t)
	testutil.Eventually(t, 20*time.Second, func() string {
		if w2.Stats().Duplicates == 0 {
			return "the second worker saw no redelivered duplicates"
		}
		return ""
	})
	r.exact(t)
}

// TestBatchCommitThenCrash: as TestCommitThenCrash, with batch envelopes
// whose pairs share one stream sequence: a redelivered batch is counted
// whole or not at all, never in part, and never twice.
func TestBatchCommitThenCrash(t *testing.T) {
	r := newRig(t)
	committed := make(chan struct{})
	var once sync.Once
	crashing := &faultyStore{Store: r.st}
	crashing.set(func(ctx context.Context, b *store.Batch) error {
		if err := r.st.Apply(ctx, b); err != nil {
			return err
		}
		once.Do(func() { close(committed) })
		return errors.New("crash after commit")
	})
	r.publishBatches(t, 3000, 64)
	// Small worker batches, so the crash lands after some messages are
	// committed and before others.
	_, cancel, done := r.worker(t, crashing, Options{MaxBatch: 5})
	<-committed
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the crashing worker reported success")
	}
	done <- nil

	w2, _, _ := r.worker(t, r.st, Options{})
	r.exact(t)
	testutil.Eventually(t, 20*time.Second, func() string {
		if w2.Stats().Duplicates == 0 {
			return "the second worker saw no redelivered duplicates"
		}
		return ""
	})
	r.publishBatches(t, 500, 16) // and the stream goes on
	r.exact(t)
}

// TestBatchesAndSinglesTogether: old hooks (one pair per message) and new
// ones (batches) on one stream, two workers: every pair counted once.
func TestBatchesAndSinglesTogether(t *testing.T) {
	r := newRig(t)
	// A long AckWait, as in TestTwoWorkersShareTheConsumer: nothing crashes,
	// so nothing should be redelivered and judged by both workers.
	w1, _, _ := r.worker(t, r.st, Options{AckWait: 30 * time.Second})
	w2, _, _ := r.worker(t, r.st, Options{AckWait: 30 * time.Second})
	r.publish(t, 300)
	r.publishBatches(t, 2000, 50)
	r.publish(t, 200)
	r.exact(t)
	if got := w1.Stats().Judged + w2.Stats().Judged; got != 2500 {
		t.Errorf("workers judged %d, want 2500", got)
	}
}

// TestBadPairInBatch: a bad pair inside a batch is dead-lettered alone with
// its reason, the other pairs are counted, and the message is acknowledged
// (not redelivered, so nothing is counted twice); a pair repeated within a
// batch counts once. Messages whose Nats-Msg-Id is missing or is not their
// envelope's id are refused whole.
func TestBadPairInBatch(t *testing.T) {
	r := newRig(t)
	w, _, _ := r.worker(t, r.st, Options{})
	ctx := context.Background()
	now := time.Now().UTC()
	good := func(k int) string {
		b, err := envelope.Marshal(rigPair(k, now))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	badKind := strings.Replace(good(2), `"kind":"read"`, `"kind":"delete"`, 1)
	otherSubject := strings.Replace(good(3), `"operation":"Op"`, `"operation":"Other"`, 1)
	batch := `{"version":2,"id":"batch-1","pairs":[` + strings.Join([]string{good(0), badKind, good(1), otherSubject, good(1), good(4)}, ",") + `]}`
	if _, err := r.js.Publish(ctx, envelope.Subject("exp", "Op"), []byte(batch), jetstream.WithMsgID("batch-1")); err != nil {
		t.Fatal(err)
	}
	r.total = 3 // pairs 0, 1 and 4 are counted; 0 is divergent
	single := []byte(good(9))
	if _, err := r.js.Publish(ctx, envelope.Subject("exp", "Op"), single); err != nil { // no Nats-Msg-Id
		t.Fatal(err)
	}
	if _, err := r.js.Publish(ctx, envelope.Subject("exp", "Op"), []byte(good(10)), jetstream.WithMsgID("p-9")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() string {
		dl, err := r.st.DeadLetters(ctx, 10)
		if err != nil {
			return err.Error()
		}
		if len(dl) != 4 {
			return fmt.Sprintf("%d dead letters, want 4", len(dl))
		}
		return ""
	})
	rows, err := r.st.Segments(ctx, "exp", store.SegmentQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var pairs, div int64
	for _, s := range rows {
		pairs, div = pairs+s.Pairs, div+s.Divergent
	}
	if pairs != 3 || div != 1 {
		t.Errorf("stored %d pairs, %d divergent; want 3, 1", pairs, div)
	}
	dl, _ := r.st.DeadLetters(ctx, 10)
	wants := []string{
		`pair 2 of 6 in batch batch-1: envelope: field kind: must be "read" or "write", got "delete"`,
		`pair 4 of 6 in batch batch-1: envelope for parity.pairs.exp.Other published on subject parity.pairs.exp.Op`,
		`no Nats-Msg-Id header: publish the envelope with its id "p-9"`,
		`Nats-Msg-Id header "p-9" is not the envelope's id "p-10"`,
	}
	for _, want := range wants {
		found := false
		for _, d := range dl {
			if strings.Contains(d.Reason, want) {
				found = true
				if strings.HasPrefix(want, "pair ") && (len(d.Data) == 0 || d.Data[0] != '{' || strings.Contains(string(d.Data), "batch-1")) {
					t.Errorf("dead letter %q keeps %q, want the pair's own envelope", d.Reason, d.Data)
				}
			}
		}
		if !found {
			t.Errorf("no dead letter with reason %q among %+v", want, dl)
		}
	}
	if s := w.Stats(); s.Duplicates != 1 || s.DeadLettered != 4 {
		t.Errorf("Stats() = %+v, want 1 duplicate (pair 1 repeated in the batch) and 4 dead letters", s)
	}
	r.exact(t)
}

// TestLostCommitReply: the commit succeeds but its reply is lost; the retry
// of the same batch must not count it twice.
func TestLostCommitReply(t *testing.T) {
	r := newRig(t)
	var lost atomic.Bool
	fs := &faultyStore{Store: r.st}
	fs.set(func(ctx context.Context, b *store.Batch) error {
		err := r.st.Apply(ctx, b)
		if err == nil && lost.CompareAndSwap(false, true) {
			return errors.New("connection reset after commit")
		}
		return err
	})
	r.publish(t, 200)
	w, _, _ := r.worker(t, fs, Options{})
	r.exact(t)
	// The counts are visible once the first attempt commits, a moment
	// before the worker hears of the lost reply.
	testutil.Eventually(t, 10*time.Second, func() string {
		if w.Stats().FlushErrors == 0 {
			return "the lost reply was not retried"
		}
		if w.Stats().Judged != 200 {
			return fmt.Sprintf("worker judged %d pairs, want 200: the committed attempt is its own", w.Stats().Judged)
		}
		return ""
	})
	r.exact(t)
}

// TestCountedByAnotherWorkerFirst: every message of a worker's batch was
// already counted by another worker (which got them redelivered while this
// one was slow) by the time it commits. The store writes nothing, and the
// worker must not report those pairs as judged by it: its Judged is what it
// wrote, so the workers' Judged add up to the pairs stored. (Before, the
// store answered such a batch with nil, as for a retry after a lost reply,
// and two workers sharing a consumer under load reported 2,034 pairs judged
// of 2,000 stored.)
func TestCountedByAnotherWorkerFirst(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const n = 10
	r.publish(t, n)
	str, err := r.js.Stream(ctx, DefaultStreamOptions().Name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// "Another worker" committed these messages: their sequences are
	// recorded (its counts are left out, so any count stored is this
	// worker's).
	var seqs []uint64
	for q := info.State.FirstSeq; q <= info.State.LastSeq; q++ {
		seqs = append(seqs, q)
	}
	if len(seqs) != n {
		t.Fatalf("stream holds sequences %v, want %d", seqs, n)
	}
	epoch := fmt.Sprintf("%s@%d", info.Config.Name, info.Created.UnixNano())
	if err := r.st.Apply(ctx, &store.Batch{Stream: epoch, Seqs: seqs}); err != nil {
		t.Fatal(err)
	}

	w, _, _ := r.worker(t, r.st, Options{})
	r.settled(t)
	if st := w.Stats(); st.Judged != 0 || st.Divergent != 0 || st.Duplicates != n || st.Flushes != 0 {
		t.Errorf("worker stats %+v: want nothing judged and %d duplicates, as nothing of its batch was written", st, n)
	}
	rows, err := r.st.Segments(ctx, "exp", store.SegmentQuery{})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	for _, s := range rows {
		if s.Pairs != 0 {
			t.Errorf("segment %s holds %d pairs, want none: another worker counted them", s.Segment, s.Pairs)
		}
	}
}

// TestStoreOutage: while the store fails the worker acks nothing, keeps its
// messages, and counts everything exactly once it is back.
func TestStoreOutage(t *testing.T) {
	r := newRig(t)
	fs := &faultyStore{Store: r.st}
	var attempts atomic.Int64
	fs.set(func(ctx context.Context, b *store.Batch) error {
		attempts.Add(1)
		return errors.New("dial tcp 127.0.0.1:5432: connection refused")
	})
	w, _, _ := r.worker(t, fs, Options{})
	r.publish(t, 150)
	testutil.Eventually(t, 10*time.Second, func() string {
		if attempts.Load() < 3 {
			return fmt.Sprintf("%d attempts so far", attempts.Load())
		}
		return ""
	})
	if w.Stats().Flushes != 0 {
		t.Fatal("a flush committed while the store was down")
	}
	fs.set(nil)
	r.publish(t, 150)
	r.exact(t)
}

// TestTwoWorkersShareTheConsumer: two workers on separate connections split
// the work and count every pair once.
func TestTwoWorkersShareTheConsumer(t *testing.T) {
	r := newRig(t)
	// Nothing crashes here, so no message should be redelivered: a long
	// AckWait keeps a slow machine from redelivering one to the other worker
	// while its first holder commits it, which both would then report as
	// judged (the store still counts it once).
	w1, _, _ := r.worker(t, r.st, Options{AckWait: 30 * time.Second})
	w2, _, _ := r.worker(t, r.st, Options{AckWait: 30 * time.Second})
	r.publish(t, 2000)
	r.exact(t)
	// The counts are visible a moment before the committing worker adds
	// them to its statistics; once every message is acknowledged, the
	// statistics are final.
	r.settled(t)
	if w1.Stats().Judged+w2.Stats().Judged != 2000 {
		t.Errorf("workers judged %d + %d, want 2000 in all", w1.Stats().Judged, w2.Stats().Judged)
	}
}

// TestPullsBoundedInBytes: a worker never asks the server for more than
// PullBytes at once, however many messages that is. A message can be a
// batch of 256 KiB; a pull counted in messages asked for hundreds of
// megabytes, the server closed the connection as a slow consumer once its
// max_pending was exceeded, and the messages in flight waited AckWait to be
// redelivered. The server here allows 4 MiB pending, the backlog is 12 MiB
// of batches, and the worker pulls at most 2 MiB.
func TestPullsBoundedInBytes(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true, MaxPending: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	st, err := store.Open(context.Background(), testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	nc := testutil.Connect(t, ns)
	js, _ := jetstream.New(nc)
	if _, err := EnsureStream(context.Background(), js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	r := &rig{ns: ns, st: st, js: js}

	// Every pull request the worker sends, as the server receives it.
	var mu sync.Mutex
	var pulls []struct {
		Batch    int `json:"batch"`
		MaxBytes int `json:"max_bytes"`
	}
	sub, err := nc.Subscribe(fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", DefaultStreamOptions().Name, DefaultOptions().Durable),
		func(m *nats.Msg) {
			var req struct {
				Batch    int `json:"batch"`
				MaxBytes int `json:"max_bytes"`
			}
			if err := json.Unmarshal(m.Data, &req); err != nil {
				t.Errorf("pull request %q: %v", m.Data, err)
				return
			}
			mu.Lock()
			pulls = append(pulls, req)
			mu.Unlock()
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the subscription is in place before the worker pulls
		t.Fatal(err)
	}

	// 48 batches of about 256 KiB: 32 pairs of 8 KiB each.
	ctx := context.Background()
	now := time.Now().UTC()
	pad := strings.Repeat("x", 4000)
	bw := envelope.NewBatchWriter(32, envelope.MaxSize)
	for range 48 {
		bw.Reset(nil)
		for range 32 {
			p := rigPair(r.total, now) // every third one divergent, as r.exact expects
			p.Control.Value = fmt.Appendf(nil, `{"v":1,"pad":%q}`, pad)
			p.Candidate.Value = fmt.Appendf(nil, `{"v":%d,"pad":%q}`, 1+btoi(r.total%3 == 0), pad)
			if err := bw.Add(p); err != nil {
				t.Fatal(err)
			}
			r.total++
		}
		data, id := bw.Finish()
		if _, err := js.Publish(ctx, envelope.Subject("exp", "Op"), data, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}

	const pullBytes = 2 << 20
	r.worker(t, st, Options{PullBytes: pullBytes})
	r.exact(t)
	if n := ns.NumSlowConsumers(); n != 0 {
		t.Errorf("the server closed %d connections as slow consumers", n)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pulls) == 0 {
		t.Fatal("saw no pull request")
	}
	for _, p := range pulls {
		if p.MaxBytes <= 0 || p.MaxBytes > pullBytes {
			t.Errorf("a pull request for %d messages asked for %d bytes, want 1 to %d", p.Batch, p.MaxBytes, pullBytes)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestLatenciesWrittenEveryInterval: latency histograms are written less
// often than counts, but every observation arrives, once.
func TestLatenciesWrittenEveryInterval(t *testing.T) {
	r := newRig(t)
	r.worker(t, r.st, Options{LatencyInterval: 300 * time.Millisecond})
	r.publish(t, 500)
	r.exact(t)
	testutil.Eventually(t, 10*time.Second, func() string {
		rows, err := r.st.Latencies(context.Background(), "exp", store.SegmentQuery{})
		if err != nil {
			return err.Error()
		}
		var n int64
		for _, row := range rows {
			h, err := report.DecodeHistogram(row.Control)
			if err != nil {
				return err.Error()
			}
			n += h.Count()
		}
		if n != 500 {
			return fmt.Sprintf("%d control latencies stored, want 500", n)
		}
		return ""
	})
}

func TestSegmentKeyBounded(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "e", "f"}
	attrs := map[string]string{}
	for _, k := range keys {
		attrs[k] = strings.Repeat(k, 128)
	}
	one, _ := segment.Key(attrs, keys)
	attrs["f"] = strings.Repeat("g", 128)
	two, _ := segment.Key(attrs, keys)
	if len(one) > segment.MaxKeyBytes || len(two) > segment.MaxKeyBytes || one == two || !strings.HasPrefix(one, "a=aaa") {
		t.Errorf("long segment keys %q (%d) and %q (%d): want at most %d bytes, distinct, readable start",
			one, len(one), two, len(two), segment.MaxKeyBytes)
	}
}

func TestTimeWindowCheck(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tw := TimeWindow{Ahead: 5 * time.Minute, Behind: 25 * time.Hour}
	tests := []struct {
		name string
		t    time.Time
		want string // "" accepted, else a phrase of the reason
	}{
		{"now", now, ""},
		{"a little ahead (clock skew)", now.Add(4 * time.Minute), ""},
		{"a day behind (waited in the stream)", now.Add(-24 * time.Hour), ""},
		{"an hour ahead", now.Add(time.Hour), "2026-12-04T13:00:00Z is more than 5m0s ahead of the verifier's clock (--max-clock-skew)"},
		{"year 9999", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), "9999-12-31T00:00:00Z is more than 5m0s ahead"},
		{"two days behind", now.Add(-48 * time.Hour), "2026-12-02T12:00:00Z is more than 25h0m0s before the verifier's clock (--max-pair-age)"},
		{"year 2", time.Date(2, 1, 1, 0, 0, 0, 0, time.UTC), "0002-01-01T00:00:00Z is more than 25h0m0s before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tw.Check(tt.t, now)
			var fe *envelope.FieldError
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check = %v, want accepted", err)
			case tt.want != "" && (!errors.As(err, &fe) || fe.Field != "time" || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check = %v, want a time error containing %q", err, tt.want)
			}
		})
	}
}

// TestPairsOutsideTheTimeWindow: pairs dated far ahead or behind the clock
// are dead-lettered with the bound they broke (one dated 9999 must not pin
// the experiment's last-seen time in the future); the window is an option.
func TestPairsOutsideTheTimeWindow(t *testing.T) {
	r := newRig(t)
	_, _, _ = r.worker(t, r.st, Options{MaxClockSkew: 2 * time.Hour, MaxPairAge: 48 * time.Hour})
	ctx := context.Background()
	now := time.Now().UTC()
	for i, at := range []time.Time{
		time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), // dead letter
		now.Add(-72 * time.Hour),                      // dead letter
		now.Add(time.Hour),                            // within the configured 2h skew
		now.Add(-47 * time.Hour),                      // within the configured 48h
	} {
		p := rigPair(100+i, at)
		b, err := envelope.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.js.Publish(ctx, p.Subject(), b, jetstream.WithMsgID(p.ID)); err != nil {
			t.Fatal(err)
		}
	}
	r.total = 2
	testutil.Eventually(t, 20*time.Second, func() string {
		dl, err := r.st.DeadLetters(ctx, 10)
		if err != nil {
			return err.Error()
		}
		if len(dl) != 2 {
			return fmt.Sprintf("%d dead letters, want 2", len(dl))
		}
		return ""
	})
	dl, _ := r.st.DeadLetters(ctx, 10)
	reasons := dl[0].Reason + "\n" + dl[1].Reason
	for _, want := range []string{"field time: 9999-12-31T00:00:00Z is more than 2h0m0s ahead", "is more than 48h0m0s before"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("dead letter reasons %q lack %q", reasons, want)
		}
	}
	testutil.Eventually(t, 20*time.Second, func() string {
		rows, err := r.st.Segments(ctx, "exp", store.SegmentQuery{})
		if err != nil {
			return err.Error()
		}
		var n int64
		for _, s := range rows {
			n += s.Pairs
		}
		if n != 2 {
			return fmt.Sprintf("%d pairs counted, want the 2 inside the window", n)
		}
		return ""
	})
	exps, err := r.st.Experiments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exps {
		if e.LastSeen.After(now.Add(2 * time.Hour)) {
			t.Errorf("experiment %s last seen %v, in the future", e.Name, e.LastSeen)
		}
	}
}

// TestVerdictsCounted publishes one pair per verdict, each under its own
// operation, through a real worker and store, and checks the counters each
// verdict adds: the table in docs/api.md ("What counts as divergent"). A pair
// counts against the candidate only for what the candidate did; a failure of
// the control alone is a control error, not divergence.
func TestVerdictsCounted(t *testing.T) {
	r := newRig(t)
	ok := func(v string) envelope.Observation { return envelope.Observation{Value: []byte(v)} }
	obs := func(status envelope.Status, err string) envelope.Observation {
		return envelope.Observation{Status: status, Error: err}
	}
	tests := []struct {
		op                 string // also names the verdict
		kind               envelope.Kind
		control, candidate envelope.Observation
		want               report.Counters
	}{
		{op: "match", control: ok(`1`), candidate: ok(`1`), want: report.Counters{Pairs: 1}},
		{op: "mismatch", control: ok(`1`), candidate: ok(`2`), want: report.Counters{Pairs: 1, Divergent: 1}},
		{op: "candidate_error", control: ok(`1`), candidate: obs(envelope.StatusError, "boom"),
			want: report.Counters{Pairs: 1, Divergent: 1, CandidateErrors: 1}},
		{op: "candidate_timeout", control: ok(`1`), candidate: obs(envelope.StatusTimeout, ""),
			want: report.Counters{Pairs: 1, Divergent: 1, CandidateErrors: 1, Timeouts: 1}},
		{op: "control_error", control: obs(envelope.StatusError, "old store down"), candidate: ok(`1`),
			want: report.Counters{Pairs: 1, ControlErrors: 1}},
		{op: "both_error_same", control: obs(envelope.StatusError, "not found"), candidate: obs(envelope.StatusError, "not found"),
			want: report.Counters{Pairs: 1, ControlErrors: 1, CandidateErrors: 1}},
		{op: "both_error_diff", control: obs(envelope.StatusError, "not found"), candidate: obs(envelope.StatusTimeout, ""),
			want: report.Counters{Pairs: 1, Divergent: 1, ControlErrors: 1, CandidateErrors: 1, Timeouts: 1}},
		{op: "write_skipped", kind: envelope.KindWrite, control: obs(envelope.StatusError, "rejected"), candidate: obs(envelope.StatusSkipped, ""),
			want: report.Counters{Pairs: 1, ControlErrors: 1, Skipped: 1}},
		// Deeper than the differ reads (diff.DefaultMaxDepth): it cannot be judged.
		{op: "invalid_json", control: ok(`1`), candidate: ok(strings.Repeat("[", 1001) + strings.Repeat("]", 1001)),
			want: report.Counters{Pairs: 1, Divergent: 1}},
	}
	ctx := context.Background()
	now := time.Now().UTC()
	for i, tt := range tests {
		p := &envelope.Pair{Version: 1, ID: fmt.Sprintf("v-%d", i), Experiment: "exp", Operation: tt.op, Kind: cmp.Or(tt.kind, envelope.KindRead),
			Time: now, Stage: envelope.StageShadow, User: envelope.User{Key: "u"}, Control: tt.control, Candidate: tt.candidate}
		b, err := envelope.Marshal(p)
		if err != nil {
			t.Fatalf("%s: %v", tt.op, err)
		}
		if _, err := r.js.Publish(ctx, p.Subject(), b, jetstream.WithMsgID(p.ID)); err != nil {
			t.Fatal(err)
		}
	}
	r.worker(t, r.st, Options{})
	for _, tt := range tests {
		testutil.Eventually(t, 20*time.Second, func() string {
			rows, err := r.st.Segments(ctx, "exp", store.SegmentQuery{Operation: tt.op})
			if err != nil {
				return err.Error()
			}
			if len(rows) != 1 {
				return fmt.Sprintf("%s: %d segments", tt.op, len(rows))
			}
			if got := rows[0].Counters; got != tt.want {
				return fmt.Sprintf("%s: counted %+v, want %+v", tt.op, got, tt.want)
			}
			if tt.want.Divergent == 0 {
				return ""
			}
			// A divergent pair is kept as a sample with its verdict: the
			// case is the verdict it names.
			samples, err := r.st.Samples(ctx, "exp", store.SampleQuery{Operation: tt.op})
			if err != nil {
				return err.Error()
			}
			if len(samples) != 1 || string(samples[0].Verdict) != tt.op {
				return fmt.Sprintf("%s: samples %+v", tt.op, samples)
			}
			return ""
		})
	}
}
