package flagprovider_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/flagprovider"
	"github.com/parityhq/parity/pkg/rollout"
)

func TestNewValidatesOptions(t *testing.T) {
	nc := &nats.Conn{} // New does no I/O
	tests := []struct {
		name    string
		opts    flagprovider.Options
		wantErr string
	}{
		{"bucket with a dot", flagprovider.Options{Bucket: "a.b"}, `flagprovider: invalid option: Bucket: "a.b" is not a bucket name (A-Z a-z 0-9 _ -)`},
		{"negative timeout", flagprovider.Options{InitTimeout: -time.Second}, "flagprovider: invalid option: InitTimeout: must be >= 0"},
		{"cache file is a directory", flagprovider.Options{CacheFile: "dir/"}, `flagprovider: invalid option: CacheFile: "dir/" names no file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := flagprovider.New(nc, tt.opts)
			if !errors.Is(err, flagprovider.ErrInvalidOption) || err.Error() != tt.wantErr {
				t.Fatalf("New error = %v, want %q wrapping ErrInvalidOption", err, tt.wantErr)
			}
		})
	}
	if _, err := flagprovider.New(nil, flagprovider.Options{}); !errors.Is(err, flagprovider.ErrInvalidOption) {
		t.Fatalf("New(nil) error = %v, want ErrInvalidOption", err)
	}
	p, err := flagprovider.New(nc, flagprovider.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Metadata().Name; got != "parity" {
		t.Errorf("Metadata().Name = %q, want parity", got)
	}
	if !p.Stale() {
		t.Error("Stale() = false before Init, want true")
	}
	if d := eval(p, "orders", "u1", nil); d.ResolutionError.Error() != "FLAG_NOT_FOUND: no rollout document for flag orders" || d.Value != "default" {
		t.Errorf("evaluation before Init = %+v, want the default value with FLAG_NOT_FOUND", d)
	}
}

// Two instances on two connections, and a third after a restart, give 2,000
// users the same stages, and the stages the core gives.
func TestStickyAcrossInstancesAndRestarts(t *testing.T) {
	e := startEnv(t)
	d := doc("orders", 1, livePlan(30))
	e.put(t, d)

	p1 := readyProvider(t, testutil.Connect(t, e.ns), flagprovider.Options{})
	p2 := readyProvider(t, testutil.Connect(t, e.ns), flagprovider.Options{})

	const users = 2000
	first := make([]string, users)
	nLive := 0
	for i := range users {
		key := fmt.Sprintf("user-%d", i)
		a, b := eval(p1, "orders", key, nil), eval(p2, "orders", key, nil)
		if a.Value != b.Value || a.Reason != b.Reason {
			t.Fatalf("%s: instance 1 gives %s (%s), instance 2 gives %s (%s)", key, a.Value, a.Reason, b.Value, b.Reason)
		}
		if want := rollout.Decide(d.Plan, d.State, key, nil).Stage; a.Value != string(want) {
			t.Fatalf("%s: provider gives %s, the core %s", key, a.Value, want)
		}
		first[i] = a.Value
		if a.Value == string(live) {
			nLive++
		}
	}
	if nLive < users*25/100 || nLive > users*35/100 {
		t.Errorf("%d of %d users live at 30%%", nLive, users)
	}

	p1.Shutdown()
	p3 := readyProvider(t, testutil.Connect(t, e.ns), flagprovider.Options{})
	for i := range users {
		key := fmt.Sprintf("user-%d", i)
		if got := eval(p3, "orders", key, nil).Value; got != first[i] {
			t.Fatalf("%s: %s after a restart, %s before", key, got, first[i])
		}
	}
}

// Raising live from 5% to 25% keeps every user who was live, and makes about
// 25% live.
func TestMonotonicPercentages(t *testing.T) {
	e := startEnv(t)
	e.put(t, doc("orders", 1, livePlan(5)))
	p := readyProvider(t, testutil.Connect(t, e.ns), flagprovider.Options{})
	rec := record(t, p)

	const users = 10_000
	wasLive := map[string]bool{}
	for i := range users {
		key := fmt.Sprintf("user-%d", i)
		if eval(p, "orders", key, nil).Value == string(live) {
			wasLive[key] = true
		}
	}
	e.put(t, doc("orders", 2, livePlan(5, 25)))
	rec.waitFor(t, openfeature.ProviderConfigChange, "orders")

	nLive := 0
	for i := range users {
		key := fmt.Sprintf("user-%d", i)
		got := eval(p, "orders", key, nil)
		if got.Value == string(live) {
			nLive++
		} else if wasLive[key] {
			t.Fatalf("%s was live at 5%% and is %s at 25%%", key, got.Value)
		}
	}
	if f := float64(nLive) / users; f < 0.22 || f > 0.28 {
		t.Errorf("%.2f%% live at 25%%, want 25±3%%", 100*f)
	}
	if f := float64(len(wasLive)) / users; f < 0.02 || f > 0.08 {
		t.Errorf("%.2f%% live at 5%%, want 5±3%%", 100*f)
	}
}

// Explicit users take precedence over attribute rules, rules over the
// percentage, the percentage over the base, seen through an OpenFeature
// client.
func TestTargetingPrecedenceThroughSDK(t *testing.T) {
	e := startEnv(t)
	plan := rollout.Plan{
		Experiment: "orders",
		Base:       dualwrite,
		Steps: []rollout.Step{
			0: pct(shadow, 50),
			1: {Stage: live, Audience: rollout.Audience{
				Users: []string{"carol"},
				Rules: []rollout.Rule{{Attribute: "country", In: []string{"NZ"}}, {Attribute: "tier", In: []string{"3"}}},
			}},
			2: {Stage: rampdown, Audience: rollout.Audience{Users: []string{"alice"}}},
			3: pct(complete, 100), // not applied
		},
	}
	d := doc("orders", 7, plan)
	d.State.Step = 3
	e.put(t, d)

	p := newProvider(t, testutil.Connect(t, e.ns), flagprovider.Options{})
	ctx := context.Background()
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(ctx) })
	if err := api.SetProviderAndWait(ctx, p, openfeature.WithDomain("parity-test")); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	client := api.NewClient(openfeature.WithDomain("parity-test"))

	inHalf := keyIn(t, "orders", 0, 5000)
	outHalf := keyIn(t, "orders", 5000, 10000)
	nz := map[string]any{"country": "NZ"}
	tests := []struct {
		name        string
		key         string
		attrs       map[string]any
		want        envelope.Stage
		reason      openfeature.Reason
		detail      string
		explanation string
	}{
		{"user over rule", "alice", nz, rampdown, openfeature.TargetingMatchReason, "TARGETING_MATCH steps[2] user",
			"alice is listed in steps[2] and matches the rule of steps[1]: the latest step wins"},
		{"user over rule in one step", "carol", nz, live, openfeature.TargetingMatchReason, "TARGETING_MATCH steps[1] user",
			"carol is listed and matches the rule of the same step: the reason names the user"},
		{"rule", "bob", nz, live, openfeature.TargetingMatchReason, "TARGETING_MATCH steps[1] rule country", ""},
		{"rule on a number", "dave", map[string]any{"tier": 3}, live, openfeature.TargetingMatchReason, "TARGETING_MATCH steps[1] rule tier",
			"attributes are converted with rollout.StringAttrs, so 3 matches \"3\""},
		{"rule over percent", inHalf, nz, live, openfeature.TargetingMatchReason, "TARGETING_MATCH steps[1] rule country", ""},
		{"percent", inHalf, nil, shadow, openfeature.SplitReason, "SPLIT steps[0] percent", ""},
		{"base", outHalf, map[string]any{"country": "DE"}, dualwrite, openfeature.DefaultReason, "DEFAULT base",
			"no applied step targets the user; steps[3] (complete 100%) is not applied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.StringValueDetails(ctx, "orders", "off", openfeature.NewEvaluationContext(tt.key, tt.attrs))
			if err != nil {
				t.Fatalf("StringValueDetails: %v", err)
			}
			if got.Value != string(tt.want) || got.Variant != string(tt.want) || got.Reason != tt.reason {
				t.Errorf("got %s variant %s (%s), want %s (%s); %s", got.Value, got.Variant, got.Reason, tt.want, tt.reason, tt.explanation)
			}
			md := got.FlagMetadata
			if s, _ := md.GetString("detail"); s != tt.detail {
				t.Errorf("detail %q, want %q", s, tt.detail)
			}
			if r := metaInt(t, md, "revision"); r != 7 {
				t.Errorf("revision %d, want 7", r)
			}
			if s := metaInt(t, md, "step"); s != 3 {
				t.Errorf("step %d, want 3", s)
			}
			if metaBool(t, md, "stale") {
				t.Error("stale = true, want false")
			}
		})
	}

	t.Run("not a string", func(t *testing.T) {
		b, err := client.BooleanValueDetails(ctx, "orders", true, openfeature.NewEvaluationContext("alice", nil))
		if err == nil || b.ErrorCode != openfeature.TypeMismatchCode || !b.Value {
			t.Errorf("boolean evaluation = %+v, %v; want the default with TYPE_MISMATCH", b, err)
		}
		i, err := client.IntValueDetails(ctx, "orders", 4, openfeature.NewEvaluationContext("alice", nil))
		if err == nil || i.ErrorCode != openfeature.TypeMismatchCode || i.Value != 4 {
			t.Errorf("int evaluation = %+v, %v; want the default with TYPE_MISMATCH", i, err)
		}
		f, err := client.FloatValueDetails(ctx, "orders", 0.5, openfeature.NewEvaluationContext("alice", nil))
		if err == nil || f.ErrorCode != openfeature.TypeMismatchCode || f.Value != 0.5 {
			t.Errorf("float evaluation = %+v, %v; want the default with TYPE_MISMATCH", f, err)
		}
		o, err := client.ObjectValueDetails(ctx, "orders", "x", openfeature.NewEvaluationContext("alice", nil))
		if err == nil || o.ErrorCode != openfeature.TypeMismatchCode || o.Value != "x" {
			t.Errorf("object evaluation = %+v, %v; want the default with TYPE_MISMATCH", o, err)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		s, err := client.StringValueDetails(ctx, "payments", "off", openfeature.NewEvaluationContext("alice", nil))
		if err == nil || s.ErrorCode != openfeature.FlagNotFoundCode || s.Value != "off" {
			t.Errorf("string evaluation = %+v, %v; want the default with FLAG_NOT_FOUND", s, err)
		}
		b, err := client.BooleanValueDetails(ctx, "payments", true, openfeature.NewEvaluationContext("alice", nil))
		if err == nil || b.ErrorCode != openfeature.FlagNotFoundCode || !b.Value {
			t.Errorf("boolean evaluation = %+v, %v; want the default with FLAG_NOT_FOUND", b, err)
		}
	})
}

// Updates arrive through the watch with CONFIGURATION_CHANGED events; a
// lower revision, garbage, a document for another key and an invalid plan
// are ignored; a delete or purge keeps the last state, marked stale.
func TestUpdatesThroughTheWatch(t *testing.T) {
	e := startEnv(t)
	e.put(t, doc("orders", 1, livePlan(5)))
	var logs logBuf
	p := readyProvider(t, testutil.Connect(t, e.ns), flagprovider.Options{Logger: logs.logger()})
	rec := record(t, p)
	if p.Stale() {
		t.Fatal("Stale() = true after Init")
	}

	// barrier puts a document for another flag and waits for it: the watch
	// delivers in order, so every earlier entry has been handled.
	barrierRev := int64(0)
	barrier := func() {
		t.Helper()
		barrierRev++
		e.put(t, doc("barrier", barrierRev, livePlan(1)))
		rec.waitFor(t, openfeature.ProviderConfigChange, "barrier")
	}

	e.put(t, doc("orders", 2, livePlan(5, 25)))
	// Changes reach evaluations within about a second.
	waitRevision(t, p, "orders", 2, time.Second)
	rec.waitFor(t, openfeature.ProviderConfigChange, "orders")

	e.put(t, doc("orders", 1, livePlan(100)))
	barrier()
	if r := revision(p, "orders"); r != 2 {
		t.Fatalf("after a lower revision: serving revision %d, want 2", r)
	}
	if !strings.Contains(logs.String(), "older than the one applied") {
		t.Errorf("no warning about the lower revision in the log:\n%s", logs.String())
	}

	e.putRaw(t, "orders", []byte("{not json"))
	other := doc("payments", 9, livePlan(100))
	b, _ := json.Marshal(other)
	e.putRaw(t, "orders", b) // another flag's document under this key
	dup := doc("orders", 10, livePlan(5))
	dup.Plan.Steps = append(dup.Plan.Steps, rollout.Step{Stage: live, Audience: rollout.Audience{Users: []string{"secret-user-1", "secret-user-1"}}})
	dup.State.Step = len(dup.Plan.Steps)
	b, _ = json.Marshal(dup)
	e.putRaw(t, "orders", b) // invalid: a user listed twice
	barrier()
	if r := revision(p, "orders"); r != 2 {
		t.Fatalf("after invalid documents: serving revision %d, want 2", r)
	}
	if got := eval(p, "orders", "secret-user-1", nil); got.Value == "default" {
		t.Fatalf("after invalid documents the flag is gone: %+v", got)
	}
	log := logs.String()
	for _, want := range []string{"invalid JSON", "another flag's key", "users[1]: invalid (value not logged)"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "secret-user-1") {
		t.Errorf("log names a targeting key:\n%s", log)
	}
	if n := len(rec.naming("orders")); n != 1 {
		t.Errorf("%d events name orders, want 1 (the revision 2 update): %s", n, summary(rec.naming("orders")))
	}

	before := eval(p, "orders", "user-1", nil)
	ctx := context.Background()
	for _, del := range []struct {
		name string
		fn   func() error
	}{
		{"delete", func() error { return e.kv.Delete(ctx, "orders") }},
		{"purge", func() error { return e.kv.Purge(ctx, "orders") }},
	} {
		if err := del.fn(); err != nil {
			t.Fatalf("%s: %v", del.name, err)
		}
		barrier()
		got := eval(p, "orders", "user-1", nil)
		if got.Value != before.Value || revision(p, "orders") != 2 {
			t.Fatalf("after %s: %s at revision %d, want %s at 2", del.name, got.Value, revision(p, "orders"), before.Value)
		}
		if !metaBool(t, got.FlagMetadata, "stale") || !metaBool(t, got.FlagMetadata, "deleted") {
			t.Errorf("after %s: metadata %v, want stale and deleted", del.name, got.FlagMetadata)
		}
		if p.Stale() {
			t.Errorf("after %s: the provider is stale; only the flag should be", del.name)
		}
		if got := eval(p, "barrier", "user-1", nil); metaBool(t, got.FlagMetadata, "stale") {
			t.Errorf("after %s: another flag is stale", del.name)
		}
	}
	if !strings.Contains(logs.String(), "deleted from the bucket") {
		t.Errorf("no warning about the deletion:\n%s", logs.String())
	}

	e.put(t, doc("orders", 3, livePlan(5, 25, 50)))
	rec.waitFor(t, openfeature.ProviderConfigChange, "orders")
	got := eval(p, "orders", "user-1", nil)
	if metaBool(t, got.FlagMetadata, "stale") || metaBool(t, got.FlagMetadata, "deleted") || metaInt(t, got.FlagMetadata, "revision") != 3 {
		t.Errorf("after a new revision: metadata %v, want revision 3, not stale", got.FlagMetadata)
	}
}

// A NATS outage makes the provider stale while it keeps serving; when the
// server is back the provider is ready again and updates flow.
func TestStaleWhileNATSIsDown(t *testing.T) {
	dir := t.TempDir()
	ns := testutil.RunJetStreamIn(t, dir)
	tcpPort := ns.Addr().(*net.TCPAddr).Port
	reconnect := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}
	writer := testutil.Connect(t, ns, reconnect...)
	kv := createBucket(t, writer)
	e := &env{ns: ns, nc: writer, kv: kv}
	e.put(t, doc("orders", 1, livePlan(30)))

	var logs logBuf
	p := readyProvider(t, testutil.Connect(t, ns, reconnect...), flagprovider.Options{Logger: logs.logger()})
	rec := record(t, p)
	key := keyIn(t, "orders", 0, 3000) // live at 30%

	ns.Shutdown()
	ns.WaitForShutdown()
	rec.waitFor(t, openfeature.ProviderStale, "")
	if !p.Stale() {
		t.Fatal("Stale() = false after ProviderStale")
	}
	got := eval(p, "orders", key, nil)
	if got.Value != string(live) || !metaBool(t, got.FlagMetadata, "stale") || metaInt(t, got.FlagMetadata, "revision") != 1 {
		t.Fatalf("while NATS is down: %s, metadata %v; want live at revision 1, stale", got.Value, got.FlagMetadata)
	}

	testutil.RunJetStreamAt(t, dir, tcpPort)
	rec.waitFor(t, openfeature.ProviderReady, "")
	if p.Stale() {
		t.Fatal("Stale() = true after ProviderReady")
	}
	if got := eval(p, "orders", key, nil); metaBool(t, got.FlagMetadata, "stale") {
		t.Fatalf("after reconnecting: metadata %v, want not stale", got.FlagMetadata)
	}

	// JetStream may need a moment after the restart: retry the put.
	b, _ := json.Marshal(doc("orders", 2, livePlan(30, 60)))
	testutil.Eventually(t, window, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := kv.Put(ctx, "orders", b); err != nil {
			return "put after restart: " + err.Error()
		}
		return ""
	})
	rec.waitFor(t, openfeature.ProviderConfigChange, "orders")
	if r := revision(p, "orders"); r != 2 {
		t.Fatalf("after the update: revision %d, want 2", r)
	}
}

// A provider with a cache file serves, after a restart with NATS down, the
// last state it had, marked stale; without a cache, Init fails.
func TestCacheFileWhenNATSIsDown(t *testing.T) {
	e := startEnv(t)
	cache := filepath.Join(t.TempDir(), "rollouts.json")
	e.put(t, doc("orders", 1, livePlan(5)))
	p1 := readyProvider(t, testutil.Connect(t, e.ns), flagprovider.Options{CacheFile: cache})
	rec1 := record(t, p1)
	d2 := doc("orders", 2, livePlan(5, 25))
	e.put(t, d2)
	rec1.waitFor(t, openfeature.ProviderConfigChange, "orders")
	testutil.Eventually(t, window, func() string {
		b, err := os.ReadFile(cache)
		if err != nil || !strings.Contains(string(b), `"revision":2`) {
			return fmt.Sprintf("cache file holds no revision 2: %v %.200s", err, b)
		}
		return ""
	})
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode: %v %v, want 0600", fi.Mode(), err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(cache), ".*tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
	url := e.ns.ClientURL()
	e.ns.Shutdown()
	e.ns.WaitForShutdown()

	down := func(t *testing.T) *nats.Conn {
		nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	key := keyIn(t, "orders", 1000, 2000) // live at 25%, not at 5%

	t.Run("with cache", func(t *testing.T) {
		p := newProvider(t, down(t), flagprovider.Options{CacheFile: cache, InitTimeout: 200 * time.Millisecond})
		rec := record(t, p)
		// Init returns after InitTimeout with the cache (a hang would fail
		// the test); how long it takes is not asserted.
		if err := p.Init(openfeature.EvaluationContext{}); err != nil {
			t.Fatalf("Init with a cache: %v", err)
		}
		rec.waitFor(t, openfeature.ProviderStale, "")
		if !p.Stale() {
			t.Error("Stale() = false when serving the cache")
		}
		got := eval(p, "orders", key, nil)
		if got.Value != string(live) || !metaBool(t, got.FlagMetadata, "stale") || metaInt(t, got.FlagMetadata, "revision") != 2 {
			t.Errorf("from the cache: %s, metadata %v; want live at revision 2, stale", got.Value, got.FlagMetadata)
		}
	})
	t.Run("with cache through the SDK", func(t *testing.T) {
		p := newProvider(t, down(t), flagprovider.Options{CacheFile: cache, InitTimeout: 200 * time.Millisecond})
		ctx := context.Background()
		api := isolated.NewAPI()
		t.Cleanup(func() { _ = api.Shutdown(ctx) })
		if err := api.SetProviderAndWait(ctx, p, openfeature.WithDomain("cache")); err != nil {
			t.Fatalf("SetProviderAndWait with a cache: %v", err)
		}
		client := api.NewClient(openfeature.WithDomain("cache"))
		got, err := client.StringValueDetails(ctx, "orders", "off", openfeature.NewEvaluationContext(key, nil))
		if err != nil || got.Value != string(live) || !metaBool(t, got.FlagMetadata, "stale") {
			t.Errorf("from the cache: %+v, %v; want live, stale", got, err)
		}
		// READY when Init returned, then STALE from the provider's event.
		testutil.Eventually(t, window, func() string {
			if s := client.State(); s != openfeature.StaleState {
				return "SDK state " + string(s)
			}
			return ""
		})
	})
	t.Run("without cache", func(t *testing.T) {
		p := newProvider(t, down(t), flagprovider.Options{InitTimeout: 200 * time.Millisecond})
		err := p.Init(openfeature.EvaluationContext{})
		if !errors.Is(err, flagprovider.ErrNotSynced) {
			t.Fatalf("Init without a cache = %v, want ErrNotSynced", err)
		}
		if got := eval(p, "orders", key, nil); got.ResolutionError.Error() == "" || got.Value != "default" {
			t.Errorf("without a cache: %+v, want the default value with FLAG_NOT_FOUND", got)
		}
	})
}

// Before the collector creates the bucket Init fails; once it exists the
// provider becomes ready by itself.
func TestBucketCreatedLater(t *testing.T) {
	ns := testutil.RunJetStream(t)
	p := newProvider(t, testutil.Connect(t, ns), flagprovider.Options{InitTimeout: 200 * time.Millisecond})
	rec := record(t, p)
	err := p.Init(openfeature.EvaluationContext{})
	if !errors.Is(err, flagprovider.ErrNotSynced) || !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("Init before the bucket exists = %v, want ErrNotSynced and ErrBucketNotFound", err)
	}
	if !p.Stale() {
		t.Error("Stale() = false before the bucket exists")
	}
	writer := testutil.Connect(t, ns)
	e := &env{ns: ns, nc: writer, kv: createBucket(t, writer)}
	e.put(t, doc("orders", 1, livePlan(5)))
	rec.waitFor(t, openfeature.ProviderReady, "")
	waitRevision(t, p, "orders", 1, window)
	if p.Stale() {
		t.Error("Stale() = true once the bucket exists")
	}
}

// Shutdown stops every goroutine the provider started, also across
// repeated Init and Shutdown.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	e := startEnv(t)
	nc := testutil.Connect(t, e.ns)
	cache := filepath.Join(t.TempDir(), "cache.json")
	e.put(t, doc("orders", 1, livePlan(5)))
	// The connection's first request starts its response subscription, a
	// goroutine that lives as long as the connection: start it now.
	if _, err := nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()

	p, err := flagprovider.New(nc, flagprovider.Options{CacheFile: cache})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := p.Init(openfeature.EvaluationContext{}); err != nil {
			t.Fatalf("Init %d: %v", i, err)
		}
		e.put(t, doc("orders", int64(i+2), livePlan(5)))
		waitRevision(t, p, "orders", int64(i+2), window)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.ShutdownWithContext(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Shutdown %d: %v", i, err)
		}
		if !p.Stale() {
			t.Errorf("Stale() = false after Shutdown")
		}
	}
	testutil.Eventually(t, window, func() string {
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Sprintf("%d goroutines after Shutdown, %d before Init\n%s", n, before, buf)
		}
		return ""
	})
}

// Document returns a copy: changing it does not change what evaluations see.
func TestDocumentIsACopy(t *testing.T) {
	e := startEnv(t)
	e.put(t, doc("orders", 1, livePlan(100)))
	p := readyProvider(t, testutil.Connect(t, e.ns), flagprovider.Options{})
	d, ok := p.Document("orders")
	if !ok {
		t.Fatal("no document")
	}
	d.Plan.Steps[2].Stage = off
	if got := eval(p, "orders", "u", nil).Value; got != string(live) {
		t.Fatalf("after changing the copy: %s, want live", got)
	}
	if got := p.Flags(); len(got) != 1 || got[0] != "orders" {
		t.Errorf("Flags() = %v", got)
	}
}
