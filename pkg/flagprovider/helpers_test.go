package flagprovider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/flagprovider"
	"github.com/parityhq/parity/pkg/rollout"
)

const (
	off       = envelope.StageOff
	dualwrite = envelope.StageDualWrite
	shadow    = envelope.StageShadow
	live      = envelope.StageLive
	rampdown  = envelope.StageRampDown
	complete  = envelope.StageComplete
)

// window is how long a test waits for an asynchronous expectation.
const window = 10 * time.Second

func pct(s envelope.Stage, p float64) rollout.Step {
	return rollout.Step{Stage: s, Audience: rollout.Audience{Percent: p}}
}

// livePlan is everyone dual-writing, everyone shadowing, then the given
// percentages of live, one step each.
func livePlan(percents ...float64) rollout.Plan {
	p := rollout.Plan{Experiment: "orders", Steps: []rollout.Step{pct(dualwrite, 100), pct(shadow, 100)}}
	for _, x := range percents {
		p.Steps = append(p.Steps, pct(live, x))
	}
	return p
}

// doc returns a document with every step of plan applied.
func doc(flag string, rev int64, plan rollout.Plan) rollout.Document {
	return rollout.Document{
		Version: rollout.DocumentVersion, Flag: flag, Plan: plan, State: rollout.State{Step: len(plan.Steps)},
		Status: rollout.StatusActive, Revision: rev, UpdatedAt: time.Unix(1_700_000_000+rev, 0).UTC(),
	}
}

// env is a JetStream server with the rollout bucket and a writer connection.
type env struct {
	ns *server.Server
	nc *nats.Conn
	kv jetstream.KeyValue
}

func startEnv(t *testing.T) *env {
	t.Helper()
	ns := testutil.RunJetStream(t)
	e := &env{ns: ns, nc: testutil.Connect(t, ns)}
	e.kv = createBucket(t, e.nc)
	return e
}

func createBucket(t testing.TB, nc *nats.Conn) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: rollout.KVBucket, History: 5})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return kv
}

func (e *env) put(t testing.TB, d rollout.Document) {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	e.putRaw(t, d.Flag, b)
}

func (e *env) putRaw(t testing.TB, key string, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.kv.Put(ctx, key, b); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// newProvider returns a provider that is shut down when the test ends.
func newProvider(t *testing.T, nc *nats.Conn, opts flagprovider.Options) *flagprovider.Provider {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	p, err := flagprovider.New(nc, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.ShutdownWithContext(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return p
}

// readyProvider is newProvider followed by a successful Init.
func readyProvider(t *testing.T, nc *nats.Conn, opts flagprovider.Options) *flagprovider.Provider {
	t.Helper()
	p := newProvider(t, nc, opts)
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return p
}

func eval(p *flagprovider.Provider, flag, key string, attrs map[string]any) openfeature.StringResolutionDetail {
	fc := openfeature.FlattenedContext{}
	maps.Copy(fc, attrs)
	if key != "" {
		fc[openfeature.TargetingKey] = key
	}
	return p.StringEvaluation(context.Background(), flag, "default", fc)
}

// revision returns the revision the provider serves for flag, or 0.
func revision(p *flagprovider.Provider, flag string) int64 {
	d, ok := p.Document(flag)
	if !ok {
		return 0
	}
	return d.Revision
}

// waitRevision waits until p serves revision rev of flag.
func waitRevision(t *testing.T, p *flagprovider.Provider, flag string, rev int64, within time.Duration) {
	t.Helper()
	testutil.Eventually(t, within, func() string {
		if got := revision(p, flag); got != rev {
			return fmt.Sprintf("%s: revision %d, want %d", flag, got, rev)
		}
		return ""
	})
}

// recorder collects the events a provider emits, when no SDK reads them.
type recorder struct {
	mu     sync.Mutex
	events []openfeature.Event
	next   int
}

func record(t *testing.T, p *flagprovider.Provider) *recorder {
	r := &recorder{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev := <-p.EventChannel():
				r.mu.Lock()
				r.events = append(r.events, ev)
				r.mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return r
}

// waitFor waits for an event of type typ naming flag (any, when empty)
// after the last event waitFor returned.
func (r *recorder) waitFor(t *testing.T, typ openfeature.EventType, flag string) openfeature.Event {
	t.Helper()
	var got openfeature.Event
	testutil.Eventually(t, window, func() string {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i := r.next; i < len(r.events); i++ {
			ev := r.events[i]
			if ev.EventType == typ && (flag == "" || slices.Contains(ev.FlagChanges, flag)) {
				r.next, got = i+1, ev
				return ""
			}
		}
		return fmt.Sprintf("no %s event for %q after event %d; events: %s", typ, flag, r.next, summary(r.events))
	})
	return got
}

// naming returns the events that name flag.
func (r *recorder) naming(flag string) []openfeature.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []openfeature.Event
	for _, ev := range r.events {
		if slices.Contains(ev.FlagChanges, flag) {
			out = append(out, ev)
		}
	}
	return out
}

func summary(evs []openfeature.Event) string {
	var s []string
	for _, ev := range evs {
		s = append(s, fmt.Sprintf("%s%v", ev.EventType, ev.FlagChanges))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// logBuf captures a provider's log.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// keyIn returns a targeting key whose bucket in experiment is in [lo, hi).
func keyIn(t *testing.T, experiment string, lo, hi uint64) string {
	t.Helper()
	for i := range 1_000_000 {
		k := fmt.Sprintf("k%d", i)
		if b := rollout.Bucket(experiment, k); b >= lo && b < hi {
			return k
		}
	}
	t.Fatalf("no key in buckets [%d, %d)", lo, hi)
	return ""
}

func metaBool(t *testing.T, m openfeature.FlagMetadata, key string) bool {
	t.Helper()
	v, err := m.GetBool(key)
	if err != nil {
		t.Fatalf("metadata %s: %v (%v)", key, err, m)
	}
	return v
}

func metaInt(t *testing.T, m openfeature.FlagMetadata, key string) int64 {
	t.Helper()
	v, err := m.GetInt(key)
	if err != nil {
		t.Fatalf("metadata %s: %v (%v)", key, err, m)
	}
	return v
}

// testLogger logs to t.Log, shown with -v or when the test fails.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
