package migration_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/migration"
	"github.com/parityhq/parity/pkg/publish"
)

const (
	streamName = "PARITY_PAIRS"
	flagKey    = "orders-stage"
	// stageAttr is the evaluation-context attribute the test flag reads the
	// stage from, so that one provider serves every case.
	stageAttr = "want_stage"
)

// newFlags returns an OpenFeature client of an isolated API (never the
// global one) whose in-memory provider serves:
//
//   - flagKey: the value of the stageAttr attribute, verbatim (so a test
//     can ask for any stage, or for a string that is not one), variant =
//     that value, reason TARGETING_MATCH; "off" (STATIC) without it;
//   - "bool-flag": a boolean, so a string evaluation fails (TYPE_MISMATCH).
func newFlags(t testing.TB) *openfeature.Client {
	t.Helper()
	byAttr := func(f memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if v, ok := fc[stageAttr].(string); ok {
			return v, openfeature.ProviderResolutionDetail{Variant: v, Reason: openfeature.TargetingMatchReason}
		}
		return "off", openfeature.ProviderResolutionDetail{Variant: "off", Reason: openfeature.StaticReason}
	}
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		flagKey: {Key: flagKey, State: memprovider.Enabled, DefaultVariant: "off",
			Variants: map[string]any{"off": "off"}, ContextEvaluator: &byAttr},
		"bool-flag": {Key: "bool-flag", State: memprovider.Enabled, DefaultVariant: "on",
			Variants: map[string]any{"on": true}},
	})
	api := isolated.NewAPI()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		t.Fatalf("openfeature: %v", err)
	}
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	return api.NewClient()
}

// ecFor is the evaluation context of a call for user key in stage.
func ecFor(key string, stage envelope.Stage, attrs map[string]any) openfeature.EvaluationContext {
	m := map[string]any{stageAttr: string(stage)}
	for k, v := range attrs {
		m[k] = v
	}
	return openfeature.NewEvaluationContext(key, m)
}

// natsEnv is an embedded JetStream with the PARITY_PAIRS stream and a real
// publisher on it.
type natsEnv struct {
	t      testing.TB
	js     jetstream.JetStream
	stream jetstream.Stream
	pub    *publish.Publisher
}

func newNATSEnv(t testing.TB, opts publish.Options) *natsEnv {
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
		Name: streamName, Subjects: []string{envelope.SubjectPrefix + ".>"}, Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := publish.New(nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pub.Close(ctx); err != nil {
			t.Errorf("publisher close: %v", err)
		}
	})
	return &natsEnv{t: t, js: js, stream: st, pub: pub}
}

// waiter is a Reader or a Writer.
type waiter interface {
	Wait(context.Context) error
	Stats() migration.Stats
}

// settle waits until every pair of m's returned calls has reached the
// publisher and the publisher has had every one acknowledged, so the stream
// holds all of them: no sleeping, no guessing.
func (e *natsEnv) settle(m waiter) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Wait(ctx); err != nil {
		e.t.Fatalf("migration wait: %v (stats %+v)", err, m.Stats())
	}
	if err := e.pub.Flush(ctx); err != nil {
		e.t.Fatalf("publisher flush: %v", err)
	}
}

// pairs returns every pair on the stream for experiment and operation,
// decoded (and so validated) with envelope.Decode.
func (e *natsEnv) pairs(experiment, operation string) []*envelope.Pair {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subject := envelope.Subject(experiment, operation)
	info, err := e.stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		e.t.Fatal(err)
	}
	n := int(info.State.Subjects[subject])
	if n == 0 {
		return nil
	}
	cons, err := e.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*envelope.Pair
	for fetched := 0; fetched < n; { // n messages, each one pair or a batch
		batch, err := cons.Fetch(n-fetched, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			fetched++
			m, err := envelope.DecodeMessage(msg.Data())
			if err != nil {
				e.t.Fatalf("a published message does not decode: %v\n%s", err, msg.Data())
			}
			if msg.Subject() != subject {
				e.t.Errorf("pair on subject %q, want %q", msg.Subject(), subject)
			}
			for _, it := range m.Items {
				if it.Err != nil {
					e.t.Fatalf("a published pair does not decode: %v\n%s", it.Err, it.Raw)
				}
				out = append(out, it.Pair)
			}
		}
		if err := batch.Error(); err != nil {
			e.t.Fatal(err)
		}
		if got == 0 {
			e.t.Fatalf("stream says %d messages on %s, fetched %d", n, subject, fetched)
		}
	}
	return out
}

// recorder is a Publisher that keeps what it is given, after a round trip
// through the wire format, for tests of timing and concurrency where a
// network in the way would only add noise.
type recorder struct {
	mu     sync.Mutex
	pairs  []*envelope.Pair
	errs   []error
	notify chan *envelope.Pair
	refuse bool
}

func newRecorder() *recorder { return &recorder{notify: make(chan *envelope.Pair, 1024)} }

func (r *recorder) Publish(p *envelope.Pair) bool {
	if r.refuse {
		return false
	}
	b, err := envelope.Marshal(p)
	var d *envelope.Pair
	if err == nil {
		d, err = envelope.Decode(b)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
		return false
	}
	r.pairs = append(r.pairs, d)
	select {
	case r.notify <- d:
	default:
	}
	return true
}

func (r *recorder) all(t testing.TB) []*envelope.Pair {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.errs {
		t.Errorf("an invalid pair was published: %v", err)
	}
	return append([]*envelope.Pair(nil), r.pairs...)
}

// next waits for the next pair published.
func (r *recorder) next(t testing.TB, within time.Duration) *envelope.Pair {
	t.Helper()
	select {
	case p := <-r.notify:
		return p
	case <-time.After(within):
		t.Fatalf("no pair published within %v", within)
		return nil
	}
}

// capture calls f and returns its results or the value it panicked with.
func capture[T any](f func() (T, error)) (res T, err error, panicked any) {
	defer func() { panicked = recover() }()
	res, err = f()
	return res, err, nil
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
