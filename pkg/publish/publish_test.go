package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/publish"
)

const streamName = "PARITY_PAIRS"

// setup starts JetStream, connects, and creates the pairs stream the
// verifier would create.
func setup(t testing.TB) (*server.Server, *nats.Conn, jetstream.Stream) {
	t.Helper()
	ns := testutil.RunJetStream(t)
	nc := testutil.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       streamName,
		Subjects:   []string{envelope.SubjectPrefix + ".>"},
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ns, nc, st
}

// newPublisher returns a publisher that is closed when the test ends.
func newPublisher(t testing.TB, nc *nats.Conn, opts publish.Options) *publish.Publisher {
	t.Helper()
	p, err := publish.New(nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// validPair returns a valid pair with no ID and no time, as a hook builds it.
func validPair(i int) *envelope.Pair {
	return &envelope.Pair{
		Experiment: "checkout",
		Operation:  "get_user",
		Kind:       envelope.KindRead,
		Stage:      envelope.StageShadow,
		User:       envelope.User{Key: fmt.Sprintf("user-%d", i), Attrs: map[string]string{"country": "IN"}},
		Control:    envelope.Observation{Value: json.RawMessage(`{"name":"Ada"}`), DurationNS: 1200},
		Candidate:  envelope.Observation{Value: json.RawMessage(`{"name":"Ada"}`), DurationNS: 900},
	}
}

func flush(t testing.TB, p *publish.Publisher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func checkStats(t testing.TB, p *publish.Publisher, want publish.Stats) {
	t.Helper()
	if got := p.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}

// streamPairs decodes every message of the stream and returns how many
// times each pair id is stored. It checks that each message's Nats-Msg-Id
// is the message's own id and that every pair in it is valid.
func streamPairs(t testing.TB, st jetstream.Stream) map[string]int {
	t.Helper()
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		m, err := envelope.DecodeMessage(msg.Data)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if h := msg.Header.Get(jetstream.MsgIDHeader); h != m.ID {
			t.Fatalf("message %d: %s %q, want the envelope's id %q", seq, jetstream.MsgIDHeader, h, m.ID)
		}
		for i, it := range m.Items {
			if it.Err != nil {
				t.Fatalf("message %d pair %d: %v", seq, i, it.Err)
			}
			if it.Pair.Subject() != msg.Subject {
				t.Fatalf("message %d pair %d: subject %s, published on %s", seq, i, it.Pair.Subject(), msg.Subject)
			}
			ids[it.Pair.ID]++
		}
	}
	return ids
}

// total sums the counts of ids.
func total(ids map[string]int) (n uint64) {
	for _, c := range ids {
		n += uint64(c)
	}
	return n
}

func streamMsgs(t testing.TB, st jetstream.Stream) uint64 {
	t.Helper()
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// errorLog collects what OnError receives.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// stallOnError returns an OnError that blocks the publisher's goroutine on
// its first call until release is closed, and a channel closed once it is
// blocked. Publishing an invalid pair then stalls the goroutine.
func stallOnError() (onError func(error), stalled <-chan struct{}, release chan struct{}) {
	s := make(chan struct{})
	release = make(chan struct{})
	var once sync.Once
	return func(error) {
		once.Do(func() {
			close(s)
			<-release
		})
	}, s, release
}

// stall makes p's goroutine block in OnError (see stallOnError).
func stall(t testing.TB, p *publish.Publisher, stalled <-chan struct{}) {
	t.Helper()
	bad := validPair(0)
	bad.Kind = "bogus"
	if !p.Publish(bad) {
		t.Fatal("Publish of the stalling pair returned false")
	}
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("publisher goroutine did not reach OnError")
	}
}

func TestNewOptions(t *testing.T) {
	_, nc, _ := setup(t)
	tests := []struct {
		name    string
		opts    publish.Options
		wantErr string // "" means New succeeds
	}{
		{"zero value", publish.Options{}, ""},
		{"all set", publish.Options{QueueSize: 1, MaxPending: 1, AckTimeout: time.Millisecond, OnError: func(error) {}}, ""},
		{"negative QueueSize", publish.Options{QueueSize: -1}, "publish: invalid option: QueueSize: must be >= 0"},
		{"negative MaxPending", publish.Options{MaxPending: -1}, "publish: invalid option: MaxPending: must be >= 0"},
		{"negative AckTimeout", publish.Options{AckTimeout: -time.Second}, "publish: invalid option: AckTimeout: must be >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := publish.New(nc, tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if err := p.Close(context.Background()); err != nil {
					t.Fatalf("Close: %v", err)
				}
				return
			}
			if !errors.Is(err, publish.ErrInvalidOption) || err.Error() != tt.wantErr {
				t.Fatalf("New error = %v, want %q wrapping ErrInvalidOption", err, tt.wantErr)
			}
		})
	}
	if _, err := publish.New(nil, publish.Options{}); !errors.Is(err, publish.ErrInvalidOption) {
		t.Fatalf("New(nil) error = %v, want ErrInvalidOption", err)
	}
}

func TestPublishDelivers(t *testing.T) {
	_, nc, st := setup(t)
	p := newPublisher(t, nc, publish.Options{})

	withID := validPair(1)
	withID.ID = "pair-1"
	withID.Time = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	other := validPair(2)
	other.Experiment, other.Operation, other.Kind = "billing", "charge", envelope.KindWrite
	other.Flag = &envelope.Flag{Key: "billing-db", Variant: "new"}
	before := time.Now().UTC()
	if !p.Publish(withID) || !p.Publish(other) {
		t.Fatal("Publish returned false")
	}
	flush(t, p)
	checkStats(t, p, publish.Stats{Offered: 2, Enqueued: 2, Published: 2})

	tests := []struct {
		seq     uint64
		subject string
		check   func(*envelope.Pair) string
	}{
		{1, "parity.pairs.checkout.get_user", func(got *envelope.Pair) string {
			if got.ID != "pair-1" || !got.Time.Equal(withID.Time) {
				return fmt.Sprintf("ID, Time = %q, %v; want the caller's pair-1, %v", got.ID, got.Time, withID.Time)
			}
			return ""
		}},
		{2, "parity.pairs.billing.charge", func(got *envelope.Pair) string {
			if len(got.ID) != 32 || got.Time.Before(before) || got.Flag == nil || got.Flag.Variant != "new" {
				return fmt.Sprintf("got ID %q, time %v, flag %+v; want a generated ID, a time after %v, the flag", got.ID, got.Time, got.Flag, before)
			}
			return ""
		}},
	}
	for _, tt := range tests {
		msg, err := st.GetMsg(context.Background(), tt.seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", tt.seq, err)
		}
		if msg.Subject != tt.subject {
			t.Errorf("message %d subject = %q, want %q", tt.seq, msg.Subject, tt.subject)
		}
		got, err := envelope.Decode(msg.Data)
		if err != nil {
			t.Fatalf("message %d: Decode: %v", tt.seq, err)
		}
		if id := msg.Header.Get(jetstream.MsgIDHeader); id != got.ID {
			t.Errorf("message %d %s header = %q, want the pair ID %q", tt.seq, jetstream.MsgIDHeader, id, got.ID)
		}
		if got.Version != envelope.Version {
			t.Errorf("message %d version = %d, want %d", tt.seq, got.Version, envelope.Version)
		}
		if msg := tt.check(got); msg != "" {
			t.Errorf("message %d: %s", tt.seq, msg)
		}
	}
}

// A pair published twice is stored once and counted as published twice,
// whether the pairs travel alone (the hook recognises the repeated id, as
// JetStream would by its Nats-Msg-Id) or in batches (whose Nats-Msg-Id is
// the batch's, so only the hook can).
func TestDuplicatesStoredOnceCountedTwice(t *testing.T) {
	for _, batch := range []int{1, 64} {
		t.Run(fmt.Sprintf("batches of %d", batch), func(t *testing.T) {
			_, nc, st := setup(t)
			p := newPublisher(t, nc, publish.Options{BatchPairs: batch})
			for i := range 3 {
				pair := validPair(i)
				if i != 1 {
					pair.ID = "same-id"
				}
				if !p.Publish(pair) {
					t.Fatal("Publish returned false")
				}
				flush(t, p) // the repeat comes in a later message
			}
			checkStats(t, p, publish.Stats{Offered: 3, Enqueued: 3, Published: 3, Duplicates: 1})
			if ids := streamPairs(t, st); total(ids) != 2 || ids["same-id"] != 1 {
				t.Fatalf("stream holds %v, want same-id once and the other pair", ids)
			}
		})
	}
}

func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	_, nc, st := setup(t)
	onError, stalled, release := stallOnError()
	p := newPublisher(t, nc, publish.Options{QueueSize: 4, OnError: onError})
	stall(t, p, stalled) // the goroutine holds the invalid pair; the queue is empty

	// The goroutine is stalled, so a Publish that waited for room would
	// never return: returning at all shows it does not wait.
	var accepted, refused int
	for i := range 100 {
		if p.Publish(validPair(i)) {
			accepted++
		} else {
			refused++
		}
	}
	if accepted != 4 || refused != 96 {
		t.Fatalf("accepted %d, refused %d; want 4, 96", accepted, refused)
	}
	checkStats(t, p, publish.Stats{Offered: 101, Enqueued: 5, Dropped: 96, Failed: 1, Pending: 4})

	close(release)
	flush(t, p)
	checkStats(t, p, publish.Stats{Offered: 101, Enqueued: 5, Dropped: 96, Published: 4, Failed: 1})
	if n := total(streamPairs(t, st)); n != 4 {
		t.Fatalf("stream holds %d pairs, want 4", n)
	}
}

func TestPublishAllocatesNothing(t *testing.T) {
	_, nc, _ := setup(t)
	onError, stalled, release := stallOnError()
	p := newPublisher(t, nc, publish.Options{QueueSize: 1000, OnError: onError})
	stall(t, p, stalled) // the goroutine allocates nothing while it is stalled
	defer close(release)

	pair := validPair(1)
	pair.ID, pair.Time, pair.Version = "prebuilt", time.Now().UTC(), envelope.Version
	if n := testing.AllocsPerRun(100, func() { p.Publish(pair) }); n != 0 {
		t.Errorf("Publish (enqueue) allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { p.Publish(nil) }); n != 0 {
		t.Errorf("Publish (drop) allocates %v times, want 0", n)
	}
}

// A table of invalid pairs: each is counted as Failed, and OnError names
// the field but never echoes a value.
func TestInvalidPairCountedAsFailed(t *testing.T) {
	const secret = "s3cret-value"
	tests := []struct {
		name      string
		mutate    func(*envelope.Pair)
		wantField string
	}{
		{"bad kind", func(p *envelope.Pair) { p.Kind = secret }, "kind"},
		{"bad stage", func(p *envelope.Pair) { p.Stage = secret }, "stage"},
		{"bad experiment", func(p *envelope.Pair) { p.Experiment = "a." + secret }, "experiment"},
		{"bad control status", func(p *envelope.Pair) { p.Control.Status = secret }, "control.status"},
		{"bad candidate value", func(p *envelope.Pair) { p.Candidate.Value = json.RawMessage(`{"` + secret) }, "candidate.value"},
		{"bad attribute name", func(p *envelope.Pair) { p.User.Attrs = map[string]string{secret + " x": "v"} }, "user.attrs"},
		{"unknown version", func(p *envelope.Pair) { p.Version = 7 }, "version"},
	}
	_, nc, st := setup(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log errorLog
			p := newPublisher(t, nc, publish.Options{OnError: log.add})
			pair := validPair(1)
			tt.mutate(pair)
			if !p.Publish(pair) {
				t.Fatal("Publish returned false")
			}
			flush(t, p)
			checkStats(t, p, publish.Stats{Offered: 1, Enqueued: 1, Failed: 1})
			errs := log.all()
			if len(errs) != 1 {
				t.Fatalf("OnError got %d errors (%v), want 1", len(errs), errs)
			}
			err := errs[0]
			var fe *envelope.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField || !errors.Is(err, envelope.ErrInvalid) {
				t.Errorf("error %v: want a *envelope.FieldError for %q wrapping envelope.ErrInvalid", err, tt.wantField)
			}
			if want := "publish: invalid pair: field " + tt.wantField; err.Error() != want {
				t.Errorf("error text = %q, want %q", err.Error(), want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error text %q contains a pair value", err.Error())
			}
		})
	}
	if n := streamMsgs(t, st); n != 0 {
		t.Fatalf("stream holds %d messages, want 0", n)
	}
}

func TestNilPair(t *testing.T) {
	_, nc, _ := setup(t)
	p := newPublisher(t, nc, publish.Options{})
	if p.Publish(nil) {
		t.Fatal("Publish(nil) = true, want false")
	}
	flush(t, p)
	checkStats(t, p, publish.Stats{Offered: 1, Dropped: 1})
}

func TestClose(t *testing.T) {
	_, nc, st := setup(t)
	p, err := publish.New(nc, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		p.Publish(validPair(i))
	}
	ctx := context.Background()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close flushed: everything enqueued before it is acknowledged.
	checkStats(t, p, publish.Stats{Offered: 10, Enqueued: 10, Published: 10})
	if n := total(streamPairs(t, st)); n != 10 {
		t.Fatalf("stream holds %d pairs, want 10", n)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if p.Publish(validPair(11)) {
		t.Fatal("Publish after Close = true, want false")
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush after Close: %v", err)
	}
	checkStats(t, p, publish.Stats{Offered: 11, Enqueued: 10, Dropped: 1, Published: 10})
}

func TestNoGoroutineLeak(t *testing.T) {
	_, nc, _ := setup(t)
	subs := nc.NumSubscriptions()
	before := runtime.NumGoroutine()

	p, err := publish.New(nc, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		p.Publish(validPair(i))
	}
	flush(t, p)
	if leaked() == "" {
		t.Fatal("no publisher goroutine found before Close; the leak check would see nothing")
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := nc.NumSubscriptions(); n != subs {
		t.Errorf("connection has %d subscriptions after Close, want %d", n, subs)
	}
	testutil.Eventually(t, 5*time.Second, func() string {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Sprintf("%d goroutines, %d before New; leaked:\n%s", n, before, leaked())
		}
		return ""
	})
	if s := leaked(); s != "" {
		t.Fatalf("goroutines left after Close:\n%s", s)
	}
}

// leaked returns the stacks of goroutines that belong to a publisher.
func leaked() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "parity/pkg/publish.") && !strings.Contains(g, "publish_test.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func TestServerDown(t *testing.T) {
	ns, nc, _ := setup(t)
	var log errorLog
	p := newPublisher(t, nc, publish.Options{AckTimeout: 2 * time.Second, OnError: log.add})

	ns.Shutdown()
	testutil.Eventually(t, 10*time.Second, func() string {
		if !nc.IsReconnecting() {
			return "connection status " + nc.Status().String() + ", want RECONNECTING"
		}
		return ""
	})
	// Publish only enqueues (TestQueueFullDropsWithoutBlocking shows it
	// never waits), so the pairs are accepted with the server down.
	const n = 50
	for i := range n {
		if !p.Publish(validPair(i)) {
			t.Fatalf("Publish %d returned false", i)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with the server down = %v, want context.DeadlineExceeded", err)
	}

	flush(t, p) // returns once every ack has timed out
	checkStats(t, p, publish.Stats{Offered: n, Enqueued: n, Failed: n})
	// OnError runs after the failure is counted, so it may lag Flush.
	testutil.Eventually(t, 5*time.Second, func() string {
		if len(log.all()) == 0 {
			return "OnError was not called"
		}
		return ""
	})
	for _, err := range log.all() {
		if !errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
			t.Errorf("OnError got %v, want jetstream.ErrAsyncPublishTimeout", err)
		}
	}
}

func TestCloseDeadlineAbandonsPending(t *testing.T) {
	ns, nc, _ := setup(t)
	var log errorLog
	// With MaxPending 2, two pairs await acks that never come, the
	// goroutine waits for a slot with a third, and the rest stay queued.
	p, err := publish.New(nc, publish.Options{MaxPending: 2, AckTimeout: time.Minute, OnError: log.add})
	if err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	testutil.Eventually(t, 10*time.Second, func() string {
		if !nc.IsReconnecting() {
			return "connection status " + nc.Status().String() + ", want RECONNECTING"
		}
		return ""
	})
	const n = 20
	for i := range n {
		p.Publish(validPair(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want context.DeadlineExceeded", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checkStats(t, p, publish.Stats{Offered: n, Enqueued: n, Failed: n})
	errs := log.all()
	if len(errs) != 1 || !errors.Is(errs[0], publish.ErrClosed) {
		t.Fatalf("OnError got %v, want one error wrapping ErrClosed", errs)
	}
}

// Publish racing with Close: every call is still accounted for, and nothing
// is left pending once Close and the publishers have returned. A Close whose
// context has already ended abandons what is queued, so pairs also race with
// the goroutine's last pass over the queue.
func TestCloseWhilePublishing(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		wantErr error
	}{
		{"flushing", context.Background(), nil},
		{"abandoning", cancelled, context.Canceled},
	}
	_, nc, _ := setup(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := publish.New(nc, publish.Options{QueueSize: 256})
			if err != nil {
				t.Fatal(err)
			}
			const workers, perWorker = 4, 3000
			var wg sync.WaitGroup
			started := make(chan struct{}, workers)
			for w := range workers {
				wg.Go(func() {
					started <- struct{}{}
					for i := range perWorker {
						pair := validPair(i)
						pair.ID = fmt.Sprintf("%s-w%d-%d", tt.name, w, i)
						p.Publish(pair)
					}
				})
			}
			for range workers {
				<-started
			}
			if err := p.Close(tt.ctx); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Close = %v, want %v", err, tt.wantErr)
			}
			if err := p.Close(context.Background()); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			wg.Wait()
			s := p.Stats()
			if s.Offered != workers*perWorker || s.Pending != 0 || s.Enqueued != s.Published+s.Failed {
				t.Fatalf("Stats() = %+v after Close; want Offered %d, Pending 0", s, workers*perWorker)
			}
			t.Logf("%+v", s)
		})
	}
}

func TestMaxPendingWaitsForAcks(t *testing.T) {
	_, nc, st := setup(t)
	p := newPublisher(t, nc, publish.Options{MaxPending: 1})
	const n = 50
	for i := range n {
		if !p.Publish(validPair(i)) {
			t.Fatalf("Publish %d returned false", i)
		}
	}
	flush(t, p)
	checkStats(t, p, publish.Stats{Offered: n, Enqueued: n, Published: n})
	// MaxPending 1 allows only batches of one: each pair its own message.
	if got := streamMsgs(t, st); got != n {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
}

// A stream that refuses messages: the refusals are counted as failures and
// reported with JetStream's error.
func TestStreamRefuses(t *testing.T) {
	ns := testutil.RunJetStream(t)
	nc := testutil.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
		Name:     streamName,
		Subjects: []string{envelope.SubjectPrefix + ".>"},
		MaxMsgs:  2,
		Discard:  jetstream.DiscardNew,
	}); err != nil {
		t.Fatal(err)
	}
	var log errorLog
	p := newPublisher(t, nc, publish.Options{OnError: log.add, BatchPairs: 1})
	const n = 5
	for i := range n {
		p.Publish(validPair(i))
	}
	flush(t, p)
	checkStats(t, p, publish.Stats{Offered: n, Enqueued: n, Published: 2, Failed: n - 2})
	testutil.Eventually(t, 5*time.Second, func() string {
		if got := len(log.all()); got != n-2 {
			return fmt.Sprintf("OnError got %d errors, want %d", got, n-2)
		}
		return ""
	})
	for _, err := range log.all() {
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || !strings.HasPrefix(err.Error(), "publish: parity.pairs.checkout.get_user: ") {
			t.Errorf("OnError got %v, want a *jetstream.APIError naming the subject", err)
		}
	}
}

func TestNoStream(t *testing.T) {
	ns := testutil.RunJetStream(t)
	nc := testutil.Connect(t, ns)
	var log errorLog
	// Refusals for want of a stream are retried until AckTimeout (a
	// clustered stream electing a leader refuses the same way).
	p := newPublisher(t, nc, publish.Options{OnError: log.add, AckTimeout: 500 * time.Millisecond, BatchPairs: 1})
	const n = 5
	for i := range n {
		p.Publish(validPair(i))
	}
	flush(t, p)
	checkStats(t, p, publish.Stats{Offered: n, Enqueued: n, Failed: n})
	// OnError runs after the failure is counted, so it may lag Flush.
	testutil.Eventually(t, 5*time.Second, func() string {
		if got := len(log.all()); got != n {
			return fmt.Sprintf("OnError got %d errors, want %d", got, n)
		}
		return ""
	})
	for _, err := range log.all() {
		if !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Errorf("OnError got %v, want jetstream.ErrNoStreamResponse", err)
		}
	}
}

// Concurrent publishers against a small queue: every call is accounted for,
// the invariants hold in every snapshot, and each pair Publish accepted is
// stored exactly once.
func TestInvariantsUnderConcurrency(t *testing.T) {
	_, nc, st := setup(t)
	p := newPublisher(t, nc, publish.Options{QueueSize: 1024, MaxPending: 256})

	const workers, perWorker = 8, 2000
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted uint64
		stop     = make(chan struct{})
		bad      = make(chan string, 1)
	)
	go func() { // check snapshots while publishing
		for {
			select {
			case <-stop:
				close(bad)
				return
			default:
			}
			s := p.Stats()
			if s.Offered != s.Enqueued+s.Dropped || s.Enqueued != s.Published+s.Failed+s.Pending || s.Pending > s.Enqueued {
				bad <- fmt.Sprintf("inconsistent snapshot %+v", s)
				<-stop
				close(bad)
				return
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			var n uint64
			for i := range perWorker {
				pair := validPair(i)
				pair.ID = fmt.Sprintf("w%d-%d", w, i)
				if p.Publish(pair) {
					n++
				}
			}
			mu.Lock()
			accepted += n
			mu.Unlock()
		})
	}
	wg.Wait()
	flush(t, p)
	close(stop)
	if msg, ok := <-bad; ok {
		t.Fatal(msg)
	}

	const offered = workers * perWorker
	checkStats(t, p, publish.Stats{
		Offered: offered, Enqueued: accepted, Dropped: offered - accepted,
		Published: accepted,
	})
	ids := streamPairs(t, st)
	for id, c := range ids {
		if c != 1 {
			t.Fatalf("pair %s stored %d times", id, c)
		}
	}
	if n := total(ids); n != accepted {
		t.Fatalf("stream holds %d pairs, want %d", n, accepted)
	}
	t.Logf("%d of %d pairs accepted", accepted, offered)
}

func TestDiscard(t *testing.T) {
	p := publish.Discard()
	if p.Publish(validPair(1)) || p.Publish(nil) {
		t.Fatal("Discard().Publish returned true")
	}
	ctx := context.Background()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkStats(t, p, publish.Stats{Offered: 2, Dropped: 2})
}

// TestReports: a publisher reports its counters on ReportSubject, with its
// instance name, and once more when it is closed.
func TestReports(t *testing.T) {
	ns := testutil.RunJetStream(t)
	nc := testutil.Connect(t, ns)
	sub, err := nc.SubscribeSync(publish.ReportSubject)
	if err != nil {
		t.Fatal(err)
	}
	p, err := publish.New(testutil.Connect(t, ns), publish.Options{Instance: "orders-api-1", ReportInterval: time.Hour, QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.Publish(nil) // a drop
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no report after Close: %v", err)
	}
	var r publish.Report
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Instance != "orders-api-1" || r.Dropped != 1 || r.Offered != 1 || r.Time.IsZero() {
		t.Errorf("report %+v, want instance orders-api-1 with 1 offered and 1 dropped", r)
	}
}

// TestRetriesUntilStreamAppears: a pair refused because no stream took it
// (as while a clustered stream elects a leader) is sent again, and stored
// once the stream is there.
func TestRetriesUntilStreamAppears(t *testing.T) {
	ns := testutil.RunJetStream(t)
	nc := testutil.Connect(t, ns)
	p := newPublisher(t, nc, publish.Options{AckTimeout: 10 * time.Second})
	inMsgs := func() int64 { v, _ := ns.Varz(nil); return v.InMsgs }
	before := inMsgs()
	p.Publish(validPair(1))
	// The first attempt reaches the server (and is refused: nothing listens)
	// before the stream exists.
	testutil.Eventually(t, 5*time.Second, func() string {
		if inMsgs() == before {
			return "first attempt not at the server yet"
		}
		return ""
	})
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "PARITY_PAIRS", Subjects: []string{"parity.pairs.>"}}); err != nil {
		t.Fatal(err)
	}
	flush(t, p)
	checkStats(t, p, publish.Stats{Offered: 1, Enqueued: 1, Published: 1})
}

// Pairs of one subject share messages of at most BatchPairs pairs; a full
// batch is sent at once, a partial one waits for Linger or Flush; each
// subject has its own batches.
func TestBatchesPerSubject(t *testing.T) {
	_, nc, st := setup(t)
	p := newPublisher(t, nc, publish.Options{BatchPairs: 64, Linger: time.Hour})
	for i := range 150 {
		if !p.Publish(validPair(i)) {
			t.Fatal("Publish returned false")
		}
	}
	for i := range 10 {
		pair := validPair(i)
		pair.Operation = "other"
		if !p.Publish(pair) {
			t.Fatal("Publish returned false")
		}
	}
	// The two full batches go at once; the partial ones linger (an hour).
	testutil.Eventually(t, 10*time.Second, func() string {
		if s := p.Stats(); s.Published != 128 || s.Pending != 32 {
			return fmt.Sprintf("Stats() = %+v, want 128 published in two full batches, 32 pending", s)
		}
		return ""
	})
	if n := streamMsgs(t, st); n != 2 {
		t.Fatalf("stream holds %d messages before Flush, want the 2 full batches", n)
	}
	flush(t, p)
	checkStats(t, p, publish.Stats{Offered: 160, Enqueued: 160, Published: 160})
	if n := streamMsgs(t, st); n != 4 {
		t.Fatalf("stream holds %d messages, want 4 (64+64+22 and 10)", n)
	}
	ids := streamPairs(t, st)
	if n := total(ids); n != 160 || len(ids) != 160 {
		t.Fatalf("stream holds %d pairs (%d distinct), want 160", n, len(ids))
	}
}

// A partial batch is sent once its first pair has waited Linger, without a
// Flush.
func TestLingerSendsAPartialBatch(t *testing.T) {
	_, nc, st := setup(t)
	p := newPublisher(t, nc, publish.Options{Linger: 20 * time.Millisecond})
	for i := range 3 {
		p.Publish(validPair(i))
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		if s := p.Stats(); s.Published != 3 {
			return fmt.Sprintf("Stats() = %+v, want 3 published", s)
		}
		return ""
	})
	msg, err := st.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := envelope.DecodeMessage(msg.Data)
	if err != nil || m.Version != envelope.BatchVersion || len(m.Items) != 3 {
		t.Fatalf("message 1: version %d, %d pairs, %v; want one batch of 3", m.Version, len(m.Items), err)
	}
}

// No message is larger than BatchBytes, unless it is a single pair.
func TestBatchBytes(t *testing.T) {
	_, nc, st := setup(t)
	const limit = 2000
	p := newPublisher(t, nc, publish.Options{BatchBytes: limit})
	for i := range 100 {
		p.Publish(validPair(i))
	}
	flush(t, p)
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs < 100*300/limit {
		t.Fatalf("%d messages for 100 pairs of about 300 bytes, want batches of at most %d bytes", info.State.Msgs, limit)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.Data) > limit {
			t.Fatalf("message %d has %d bytes, above BatchBytes %d", seq, len(msg.Data), limit)
		}
	}
	if n := total(streamPairs(t, st)); n != 100 {
		t.Fatalf("stream holds %d pairs, want 100", n)
	}
}

// A stream that refuses a batch fails every pair in it, once.
func TestStreamRefusesABatch(t *testing.T) {
	ns := testutil.RunJetStream(t)
	nc := testutil.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
		Name: streamName, Subjects: []string{envelope.SubjectPrefix + ".>"}, MaxMsgs: 1, Discard: jetstream.DiscardNew,
	}); err != nil {
		t.Fatal(err)
	}
	var log errorLog
	p := newPublisher(t, nc, publish.Options{OnError: log.add, BatchPairs: 10, Linger: time.Hour})
	for i := range 30 {
		p.Publish(validPair(i))
	}
	flush(t, p)
	checkStats(t, p, publish.Stats{Offered: 30, Enqueued: 30, Published: 10, Failed: 20})
	testutil.Eventually(t, 5*time.Second, func() string {
		if got := len(log.all()); got != 2 {
			return fmt.Sprintf("OnError got %d errors, want 2 (one per refused batch)", got)
		}
		return ""
	})
}
