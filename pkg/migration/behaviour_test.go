package migration_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/migration"
)

func oldRec(_ context.Context, id int) (rec, error) { return rec{Path: "old", ID: id}, nil }
func newRec(_ context.Context, id int) (rec, error) { return rec{Path: "new", ID: id}, nil }

func readConfig(flags migration.FlagEvaluator, pub migration.Publisher) migration.Config[int, rec] {
	return migration.Config[int, rec]{
		Experiment: "orders", Operation: "get", Flags: flags, FlagKey: flagKey, Publisher: pub,
		Old: oldRec, New: newRec,
	}
}

func mustReader[Req, Res any](t testing.TB, cfg migration.Config[Req, Res], opts ...migration.Option) *migration.Reader[Req, Res] {
	t.Helper()
	r, err := migration.NewReader(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustWriter[Req, Res any](t testing.TB, cfg migration.Config[Req, Res], opts ...migration.Option) *migration.Writer[Req, Res] {
	t.Helper()
	w, err := migration.NewWriter(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestConstructorValidation(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	valid := readConfig(flags, pub)
	for _, tc := range []struct {
		name   string
		mutate func(*migration.Config[int, rec])
		opts   []migration.Option
		want   string
	}{
		{name: "nil Old", mutate: func(c *migration.Config[int, rec]) { c.Old = nil }, want: "migration: invalid option: Config.Old is nil"},
		{name: "nil New", mutate: func(c *migration.Config[int, rec]) { c.New = nil }, want: "migration: invalid option: Config.New is nil"},
		{name: "nil Flags", mutate: func(c *migration.Config[int, rec]) { c.Flags = nil }, want: "migration: invalid option: Config.Flags is nil"},
		{name: "empty FlagKey", mutate: func(c *migration.Config[int, rec]) { c.FlagKey = "" }, want: "migration: invalid option: Config.FlagKey is empty"},
		{name: "nil Publisher", mutate: func(c *migration.Config[int, rec]) { c.Publisher = nil }, want: "migration: invalid option: Config.Publisher is nil"},
		{name: "empty Experiment", mutate: func(c *migration.Config[int, rec]) { c.Experiment = "" }, want: "migration: invalid option: Config.Experiment: must be 1 to 64 characters"},
		{name: "dotted Operation", mutate: func(c *migration.Config[int, rec]) { c.Operation = "get.order" }, want: "migration: invalid option: Config.Operation: must be 1 to 64 characters"},
		{name: "long Experiment", mutate: func(c *migration.Config[int, rec]) { c.Experiment = strings.Repeat("e", 65) }, want: "Config.Experiment"},
		{name: "zero Timeout", opts: []migration.Option{migration.Timeout(0)}, want: "migration: invalid option: Timeout: must be positive, got 0s"},
		{name: "negative Sampling", opts: []migration.Option{migration.Sampling(-1)}, want: "migration: invalid option: Sampling: must be >= 0, got -1"},
		{name: "unknown DefaultStage", opts: []migration.Option{migration.DefaultStage("later")}, want: `migration: invalid option: DefaultStage: unknown stage "later"`},
		{name: "zero MaxInFlight", opts: []migration.Option{migration.MaxInFlight(0)}, want: "migration: invalid option: MaxInFlight: must be positive, got 0"},
		{name: "nil Option", opts: []migration.Option{nil}, want: "migration: invalid option: nil Option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			_, rerr := migration.NewReader(cfg, tc.opts...)
			_, werr := migration.NewWriter(cfg, tc.opts...)
			for _, err := range []error{rerr, werr} {
				if !errors.Is(err, migration.ErrInvalidOption) {
					t.Fatalf("err = %v, want one wrapping ErrInvalidOption", err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %q, want it to contain %q", err, tc.want)
				}
			}
		})
	}
	if _, err := migration.NewReader(valid, migration.Timeout(time.Millisecond), migration.Sampling(0),
		migration.DefaultStage(envelope.StageLive), migration.MaxInFlight(1), migration.CancelWithCaller(), migration.SnapshotResult()); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

// A flag that cannot be evaluated, or that says something that is not a
// stage, gives the default stage; the failure is counted and the pair says
// how the stage was chosen.
func TestFlagFallback(t *testing.T) {
	flags := newFlags(t)
	for _, tc := range []struct {
		name        string
		flagKey     string
		stage       envelope.Stage // what the flag is asked for
		opts        []migration.Option
		wantCalls   string
		wantFlag    *envelope.Flag // nil: nothing published
		wantStage   envelope.Stage
		flagErrors  uint64
		explanation string
	}{
		{name: "missing flag gives off", flagKey: "no-such-flag", stage: envelope.StageLive, wantCalls: "old", flagErrors: 1,
			explanation: "FLAG_NOT_FOUND: the default stage, off, serves from old and compares nothing"},
		{name: "missing flag gives the configured default", flagKey: "no-such-flag", stage: envelope.StageLive,
			opts: []migration.Option{migration.DefaultStage(envelope.StageShadow)}, wantCalls: "new,old", flagErrors: 1,
			wantStage: envelope.StageShadow, wantFlag: &envelope.Flag{Key: "no-such-flag", Reason: "ERROR"}},
		{name: "wrong flag type", flagKey: "bool-flag", stage: envelope.StageLive,
			opts: []migration.Option{migration.DefaultStage(envelope.StageShadow)}, wantCalls: "new,old", flagErrors: 1,
			wantStage: envelope.StageShadow, wantFlag: &envelope.Flag{Key: "bool-flag", Variant: "on", Reason: "ERROR"}},
		{name: "unknown stage string gives off", flagKey: flagKey, stage: "banana", wantCalls: "old", flagErrors: 1},
		{name: "unknown stage string gives the configured default", flagKey: flagKey, stage: "Shadow",
			opts: []migration.Option{migration.DefaultStage(envelope.StageLive)}, wantCalls: "new,old", flagErrors: 1,
			wantStage: envelope.StageLive, wantFlag: &envelope.Flag{Key: flagKey, Variant: "Shadow", Reason: "ERROR"},
			explanation: "stages are case-sensitive; the variant is kept so the misconfiguration can be found"},
		{name: "a valid stage is not an error", flagKey: flagKey, stage: envelope.StageShadow, wantCalls: "new,old",
			wantStage: envelope.StageShadow, wantFlag: &envelope.Flag{Key: flagKey, Variant: "shadow", Reason: "TARGETING_MATCH"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := newRecorder()
			var calls sync.Map
			cfg := readConfig(flags, pub)
			cfg.FlagKey = tc.flagKey
			cfg.Old = func(ctx context.Context, id int) (rec, error) { calls.Store("old", true); return oldRec(ctx, id) }
			cfg.New = func(ctx context.Context, id int) (rec, error) { calls.Store("new", true); return newRec(ctx, id) }
			r := mustReader(t, cfg, tc.opts...)
			got, err := r.Read(t.Context(), ecFor("u1", tc.stage, nil), 7)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
			var ran []string
			for _, name := range []string{"new", "old"} {
				if _, ok := calls.Load(name); ok {
					ran = append(ran, name)
				}
			}
			if strings.Join(ran, ",") != tc.wantCalls {
				t.Errorf("paths run: %v, want %s (%s)", ran, tc.wantCalls, tc.explanation)
			}
			wantRes := rec{Path: "old", ID: 7}
			if tc.wantStage == envelope.StageLive {
				wantRes.Path = "new"
			}
			if got != wantRes {
				t.Errorf("Read = %+v, want %+v", got, wantRes)
			}
			if s := r.Stats(); s.FlagErrors != tc.flagErrors {
				t.Errorf("FlagErrors = %d, want %d", s.FlagErrors, tc.flagErrors)
			}
			pairs := pub.all(t)
			if tc.wantFlag == nil {
				if len(pairs) != 0 {
					t.Errorf("published %d pairs, want none", len(pairs))
				}
				return
			}
			if len(pairs) != 1 {
				t.Fatalf("published %d pairs, want 1", len(pairs))
			}
			if pairs[0].Stage != tc.wantStage {
				t.Errorf("pair stage = %s, want %s", pairs[0].Stage, tc.wantStage)
			}
			if diff := cmp.Diff(tc.wantFlag, pairs[0].Flag); diff != "" {
				t.Errorf("pair flag (-want +got):\n%s", diff)
			}
		})
	}
}

// sampledRef is the documented sampling rule, written independently of the
// package: FNV-1a 64, then fmix64, mod n.
func sampledRef(key string, n uint64) bool {
	h := uint64(14695981039346656037)
	for _, b := range []byte(key) {
		h = (h ^ uint64(b)) * 1099511628211
	}
	h = (h ^ h>>33) * 0xff51afd7ed558ccd
	h = (h ^ h>>33) * 0xc4ceb9fe1a85ec53
	return (h^h>>33)%n == 0
}

func TestSamplingPerUser(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	var newCalls sync.Map // user -> *atomic.Int32
	count := func(ctx context.Context, key string) {
		v, _ := newCalls.LoadOrStore(key, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
	}
	cfg := readConfig(flags, pub)
	type userKey struct{}
	cfg.New = func(ctx context.Context, id int) (rec, error) {
		count(ctx, ctx.Value(userKey{}).(string))
		return newRec(ctx, id)
	}
	const n, users, callsEach = 3, 90, 3
	r := mustReader(t, cfg, migration.Sampling(n))
	wcfg := cfg
	wcfg.Operation = "put"
	var writesNew atomic.Int32
	wcfg.New = func(ctx context.Context, id int) (rec, error) { writesNew.Add(1); return newRec(ctx, id) }
	w := mustWriter(t, wcfg, migration.Sampling(n))

	inSample := 0
	for u := range users {
		key := fmt.Sprintf("user-%d", u)
		if sampledRef(key, n) {
			inSample++
		}
		ctx := context.WithValue(t.Context(), userKey{}, key)
		for range callsEach {
			if _, err := r.Read(ctx, ecFor(key, envelope.StageShadow, nil), u); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(ctx, ecFor(key, envelope.StageDualWrite, nil), u); err != nil {
				t.Fatal(err)
			}
		}
	}
	if inSample == 0 || inSample == users {
		t.Fatalf("%d of %d users in the sample: the test proves nothing", inSample, users)
	}
	for _, m := range []waiter{r, w} {
		if err := m.Wait(waitCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	perUser := map[string]map[envelope.Kind]int{}
	for _, p := range pub.all(t) {
		if perUser[p.User.Key] == nil {
			perUser[p.User.Key] = map[envelope.Kind]int{}
		}
		perUser[p.User.Key][p.Kind]++
	}
	for u := range users {
		key := fmt.Sprintf("user-%d", u)
		want := 0
		if sampledRef(key, n) {
			want = callsEach
		}
		if got := perUser[key][envelope.KindRead]; got != want {
			t.Errorf("%s: %d read pairs, want %d", key, got, want)
		}
		if got := perUser[key][envelope.KindWrite]; got != want {
			t.Errorf("%s: %d write pairs, want %d", key, got, want)
		}
		// A read left out of the sample does not run the new path.
		got := 0
		if v, ok := newCalls.Load(key); ok {
			got = int(v.(*atomic.Int32).Load())
		}
		if got != want {
			t.Errorf("%s: new read path ran %d times, want %d", key, got, want)
		}
	}
	// A write left out of the sample still writes both paths.
	if got := writesNew.Load(); got != users*callsEach {
		t.Errorf("new write path ran %d times, want %d", got, users*callsEach)
	}
	for _, s := range []migration.Stats{r.Stats(), w.Stats()} {
		want := migration.Stats{Experiment: "orders", Operation: s.Operation, Kind: s.Kind,
			Calls: users * callsEach, Offered: users * callsEach,
			Published: uint64(inSample * callsEach), SampledOut: uint64((users - inSample) * callsEach)}
		if diff := cmp.Diff(want, s); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
	}
}

func TestSamplingOverride(t *testing.T) {
	flags := newFlags(t)
	var in, out string
	for i := 0; in == "" || out == ""; i++ {
		key := fmt.Sprintf("user-%d", i)
		if sampledRef(key, 5) {
			in = key
		} else {
			out = key
		}
	}
	for _, tc := range []struct {
		name     string
		key      string
		ctx      func(context.Context) context.Context
		opts     []migration.Option
		wantPair bool
	}{
		{"sampled-out user forced in", out, func(c context.Context) context.Context { return migration.WithSampling(c, 1) }, []migration.Option{migration.Sampling(5)}, true},
		{"sampled-in user forced out", in, func(c context.Context) context.Context { return migration.WithSampling(c, 0) }, []migration.Option{migration.Sampling(5)}, false},
		{"negative override means none", in, func(c context.Context) context.Context { return migration.WithSampling(c, -3) }, nil, false},
		{"override ratio applies", in, func(c context.Context) context.Context { return migration.WithSampling(c, 5) }, []migration.Option{migration.Sampling(0)}, true},
		{"Sampling(0) publishes nothing", in, func(c context.Context) context.Context { return c }, []migration.Option{migration.Sampling(0)}, false},
		{"no targeting key, every call", "", func(c context.Context) context.Context { return c }, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := newRecorder()
			r := mustReader(t, readConfig(flags, pub), tc.opts...)
			if _, err := r.Read(tc.ctx(t.Context()), ecFor(tc.key, envelope.StageShadow, nil), 1); err != nil {
				t.Fatal(err)
			}
			if err := r.Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
			if got := len(pub.all(t)) == 1; got != tc.wantPair {
				t.Errorf("published = %v, want %v", got, tc.wantPair)
			}
		})
	}
}

// parityGoroutines counts the goroutines with a frame in package migration
// (not its tests): Parity's own, plus any caller inside Read or Write and any
// abandoned user function still running on Parity's goroutine. Other tests'
// goroutines winding down do not disturb it, unlike runtime.NumGoroutine.
func parityGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var stacks []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/parityhq/parity/pkg/migration.") {
			n++
			stacks = append(stacks, g)
		}
	}
	return n, strings.Join(stacks, "\n\n")
}

// countGoroutines waits until parityGoroutines is want.
func countGoroutines(t *testing.T, want int, why string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() string {
		if n, stacks := parityGoroutines(); n != want {
			return fmt.Sprintf("%d goroutines in package migration, want %d (%s):\n%s", n, want, why, stacks)
		}
		return ""
	})
}

// A new path that ignores its context and blocks: the caller is not
// delayed, the pair is published with candidate status "timeout" at the
// deadline, and the only goroutine left is the one stuck in the user's
// function, which ends when that function returns.
func TestTimeoutAbandonsBlockedCandidate(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	const timeout = 100 * time.Millisecond
	release := make(chan struct{})
	entered := make(chan struct{})
	cfg := readConfig(flags, pub)
	cfg.New = func(context.Context, int) (rec, error) {
		close(entered)
		<-release // ignores ctx
		return rec{Path: "new"}, nil
	}
	r := mustReader(t, cfg, migration.Timeout(timeout))
	ec := ecFor("u1", envelope.StageShadow, nil)
	countGoroutines(t, 0, "none before the call")
	got, err := r.Read(t.Context(), ec, 1)
	if err != nil || got != (rec{Path: "old", ID: 1}) {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	<-entered
	p := pub.next(t, 5*time.Second)
	if p.Candidate.Status != envelope.StatusTimeout || p.Candidate.Error != "migration: no answer within 100ms; abandoned" {
		t.Errorf("candidate = %+v, want status timeout", p.Candidate)
	}
	if p.Control.Status != envelope.StatusOK {
		t.Errorf("control = %+v, want ok", p.Control)
	}
	if d := p.Candidate.Duration(); d < timeout {
		t.Errorf("candidate duration %v, want at least the timeout", d)
	}
	countGoroutines(t, 1, "only Parity's goroutine running the abandoned user function is left")
	if err := r.Wait(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Timeouts != 1 || s.InFlight != 1 || s.Published != 1 {
		t.Errorf("stats = %+v, want 1 timeout, 1 in flight, 1 published", s)
	}
	close(release)
	countGoroutines(t, 0, "the user function returned")
	if s := r.Stats(); s.InFlight != 0 || s.Published != 1 || s.Timeouts != 1 {
		t.Errorf("stats = %+v, want 0 in flight and still 1 published", s)
	}
	if n := len(pub.all(t)); n != 1 {
		t.Errorf("%d pairs published, want 1: a late answer must not publish again", n)
	}
}

// The caller never waits for the candidate: its function is released only
// after Read returned, with a deadline far away, so a Read that waited for
// the candidate would never return. Nothing here is timed.
func TestCallerDoesNotWaitForCandidate(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	release := make(chan struct{})
	cfg := readConfig(flags, pub)
	cfg.New = func(context.Context, int) (rec, error) {
		<-release
		return rec{Path: "new", ID: 1}, nil
	}
	r := mustReader(t, cfg, migration.Timeout(time.Hour))
	returned := make(chan error, 1)
	go func() {
		got, err := r.Read(t.Context(), ecFor("u1", envelope.StageShadow, nil), 1)
		if err == nil && got != (rec{Path: "old", ID: 1}) {
			err = fmt.Errorf("Read = %+v", got)
		}
		returned <- err
	}()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-t.Context().Done():
		t.Fatal("Read is waiting for the blocked candidate")
	}
	if n := len(pub.all(t)); n != 0 {
		t.Fatalf("%d pairs published before the candidate answered, want 0", n)
	}
	close(release)
	p := pub.next(t, 5*time.Second)
	if p.Candidate.Status != envelope.StatusOK || p.Control.Status != envelope.StatusOK {
		t.Errorf("pair after the candidate answered: control %+v, candidate %+v; want both ok", p.Control, p.Candidate)
	}
	if err := r.Wait(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// When the authoritative read outlasts the other side's timeout, Parity's
// goroutine stops waiting at the deadline and the pair is completed from a
// goroutine the caller starts when its side is in.
func TestSlowAuthoritativeRead(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	const timeout = 50 * time.Millisecond
	release := make(chan struct{})
	newDone := make(chan struct{})
	cfg := readConfig(flags, pub)
	cfg.Old = func(ctx context.Context, id int) (rec, error) {
		if id == 1 {
			<-release
		}
		return oldRec(ctx, id)
	}
	cfg.New = func(ctx context.Context, id int) (rec, error) {
		defer close(newDone)
		return newRec(ctx, id)
	}
	r := mustReader(t, cfg, migration.Timeout(timeout))
	countGoroutines(t, 0, "none before the call")
	result := make(chan rec)
	go func() {
		got, _ := r.Read(t.Context(), ecFor("u1", envelope.StageShadow, nil), 1)
		result <- got
	}()
	<-newDone
	countGoroutines(t, 1, "only the caller, blocked in the old path; Parity's goroutine gave up at the deadline")
	if n := len(pub.all(t)); n != 0 {
		t.Fatalf("%d pairs published before the authoritative side was in", n)
	}
	close(release)
	if got := <-result; got != (rec{Path: "old", ID: 1}) {
		t.Errorf("Read = %+v", got)
	}
	p := pub.next(t, 5*time.Second)
	if p.Control.Status != envelope.StatusOK || p.Candidate.Status != envelope.StatusOK {
		t.Errorf("pair = %+v %+v, want both ok", p.Control, p.Candidate)
	}
	if p.Control.Duration() < timeout {
		t.Errorf("control duration %v, want at least %v", p.Control.Duration(), timeout)
	}
	countGoroutines(t, 0, "all done")
}

func TestCandidateHonouringContextTimesOut(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	cfg := readConfig(flags, pub)
	cfg.New = func(ctx context.Context, _ int) (rec, error) {
		<-ctx.Done()
		return rec{}, fmt.Errorf("query: %w", ctx.Err())
	}
	r := mustReader(t, cfg, migration.Timeout(20*time.Millisecond))
	if _, err := r.Read(t.Context(), ecFor("u1", envelope.StageShadow, nil), 1); err != nil {
		t.Fatal(err)
	}
	p := pub.next(t, 5*time.Second)
	// Parity's deadline and the function's return race; either way it is a
	// timeout, not an error.
	if p.Candidate.Status != envelope.StatusTimeout || p.Candidate.Error != "migration: no answer within 20ms; abandoned" &&
		p.Candidate.Error != "migration: no answer within the timeout: query: context deadline exceeded" {
		t.Errorf("candidate = %+v, want status timeout", p.Candidate)
	}
	if s := r.Stats(); s.Timeouts != 1 {
		t.Errorf("Timeouts = %d, want 1", s.Timeouts)
	}
}

// By default the caller's cancellation (an HTTP server cancels the request
// context as soon as the handler returns) does not reach the other side;
// with CancelWithCaller it does.
func TestCallerCancellation(t *testing.T) {
	flags := newFlags(t)
	for _, tc := range []struct {
		name       string
		opts       []migration.Option
		wantStatus envelope.Status
	}{
		{"detached by default", nil, envelope.StatusOK},
		{"CancelWithCaller", []migration.Option{migration.CancelWithCaller()}, envelope.StatusError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := newRecorder()
			proceed := make(chan struct{})
			cfg := readConfig(flags, pub)
			cfg.New = func(ctx context.Context, id int) (rec, error) {
				select {
				case <-ctx.Done():
					return rec{}, ctx.Err()
				case <-proceed:
					return newRec(ctx, id)
				}
			}
			r := mustReader(t, cfg, append(tc.opts, migration.Timeout(time.Minute))...)
			ctx, cancel := context.WithCancel(t.Context())
			if _, err := r.Read(ctx, ecFor("u1", envelope.StageShadow, nil), 1); err != nil {
				t.Fatal(err)
			}
			cancel()
			if tc.wantStatus == envelope.StatusOK {
				close(proceed)
			}
			p := pub.next(t, 5*time.Second)
			if p.Candidate.Status != tc.wantStatus {
				t.Errorf("candidate = %+v, want status %s", p.Candidate, tc.wantStatus)
			}
			if tc.wantStatus == envelope.StatusError && p.Candidate.Error != "context canceled" &&
				p.Candidate.Error != "migration: abandoned: the caller's context was cancelled" {
				t.Errorf("candidate error = %q", p.Candidate.Error)
			}
		})
	}
}

func TestMaxInFlight(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	release := make(chan struct{})
	var newCalls atomic.Int32
	cfg := readConfig(flags, pub)
	cfg.New = func(ctx context.Context, id int) (rec, error) {
		newCalls.Add(1)
		<-release
		return newRec(ctx, id)
	}
	r := mustReader(t, cfg, migration.MaxInFlight(1), migration.Timeout(10*time.Millisecond))
	ec := ecFor("u1", envelope.StageShadow, nil)
	for i := range 3 {
		if got, err := r.Read(t.Context(), ec, i); err != nil || got.Path != "old" {
			t.Fatalf("Read = %+v, %v", got, err)
		}
	}
	pub.next(t, 5*time.Second) // the first, timed out
	if err := r.Wait(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	s := r.Stats()
	if newCalls.Load() != 1 || s.InFlight != 1 || s.Dropped != 2 || s.Published != 1 {
		t.Errorf("new ran %d times, stats %+v; want 1 run, 1 in flight, 2 dropped, 1 published", newCalls.Load(), s)
	}
	close(release)
	testutil.Eventually(t, 5*time.Second, func() string {
		if n := r.Stats().InFlight; n != 0 {
			return fmt.Sprintf("%d in flight", n)
		}
		return ""
	})
}

func TestCandidateGoexit(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	cfg := readConfig(flags, pub)
	cfg.New = func(context.Context, int) (rec, error) { runtime.Goexit(); return rec{}, nil }
	r := mustReader(t, cfg)
	if got, err := r.Read(t.Context(), ecFor("u1", envelope.StageShadow, nil), 1); err != nil || got.Path != "old" {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	p := pub.next(t, 5*time.Second)
	if p.Candidate.Status != envelope.StatusPanic || p.Candidate.Error != "migration: the function called runtime.Goexit" {
		t.Errorf("candidate = %+v", p.Candidate)
	}
}

func TestWriteTimeout(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	cfg := readConfig(flags, pub)
	cfg.New = func(ctx context.Context, _ int) (rec, error) {
		<-ctx.Done()
		return rec{}, ctx.Err()
	}
	w := mustWriter(t, cfg, migration.Timeout(20*time.Millisecond))
	got, err := w.Write(t.Context(), ecFor("u1", envelope.StageDualWrite, nil), 4)
	if err != nil || got != (rec{Path: "old", ID: 4}) {
		t.Fatalf("Write = %+v, %v", got, err)
	}
	p := pub.next(t, 5*time.Second)
	if p.Candidate.Status != envelope.StatusTimeout || p.Control.Status != envelope.StatusOK {
		t.Errorf("pair = %+v / %+v", p.Control, p.Candidate)
	}
	if s := w.Stats(); s.Timeouts != 1 {
		t.Errorf("Timeouts = %d", s.Timeouts)
	}
}

// unencodable holds a channel, which encoding/json refuses.
type unencodable struct {
	Name string
	C    chan int
}

// A result that cannot be encoded is published as an error of its side; the
// caller still gets it untouched.
func TestMarshalFailure(t *testing.T) {
	flags := newFlags(t)
	ch := make(chan int)
	for _, kind := range []envelope.Kind{envelope.KindRead, envelope.KindWrite} {
		t.Run(string(kind), func(t *testing.T) {
			pub := newRecorder()
			cfg := migration.Config[int, any]{
				Experiment: "orders", Operation: "get", Flags: flags, FlagKey: flagKey, Publisher: pub,
				Old:     func(context.Context, int) (any, error) { return unencodable{Name: "old", C: ch}, nil },
				New:     func(context.Context, int) (any, error) { return map[string]int{"id": 1}, nil },
				Compare: func(a, b any) bool { return true },
			}
			ec := ecFor("u1", envelope.StageShadow, nil)
			var got any
			var err error
			var m waiter
			if kind == envelope.KindRead {
				r := mustReader(t, cfg)
				m = r
				got, err = r.Read(t.Context(), ec, 1)
			} else {
				w := mustWriter(t, cfg)
				m = w
				got, err = w.Write(t.Context(), ec, 1)
			}
			if err != nil || got.(unencodable).C != ch {
				t.Fatalf("got %+v, %v; want the old value untouched", got, err)
			}
			p := pub.next(t, 5*time.Second)
			want := envelope.Observation{Status: envelope.StatusError,
				Error: "migration: cannot encode the result as JSON: json: unsupported type: chan int"}
			if diff := cmp.Diff(want, p.Control, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "DurationNS" }, cmp.Ignore())); diff != "" {
				t.Errorf("control (-want +got):\n%s", diff)
			}
			if p.Candidate.Status != envelope.StatusOK || string(p.Candidate.Value) != `{"id":1}` {
				t.Errorf("candidate = %+v", p.Candidate)
			}
			if p.ClientVerdict != "" {
				t.Errorf("verdict %q for a side that could not be encoded", p.ClientVerdict)
			}
			if err := m.Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
			if s := m.Stats(); s.MarshalErrors != 1 || s.Published != 1 {
				t.Errorf("stats = %+v, want 1 marshal error, 1 published", s)
			}
		})
	}
}

type withUnexported struct {
	ID     int
	secret string
}

func TestCompare(t *testing.T) {
	flags := newFlags(t)
	for _, tc := range []struct {
		name        string
		compare     func(a, b rec) bool
		wantVerdict string
		wantPanics  uint64
	}{
		{"CmpEqual mismatch", migration.CmpEqual[rec](), "mismatch", 0},
		{"CmpEqual with options", migration.CmpEqual[rec](cmp.Comparer(func(a, b rec) bool { return a.ID == b.ID })), "match", 0},
		{"panicking compare", func(a, b rec) bool { panic("compare bug") }, "", 1},
		{"no compare", nil, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := newRecorder()
			cfg := readConfig(flags, pub)
			cfg.Compare = tc.compare
			r := mustReader(t, cfg)
			if _, err := r.Read(t.Context(), ecFor("u1", envelope.StageShadow, nil), 1); err != nil {
				t.Fatal(err)
			}
			p := pub.next(t, 5*time.Second)
			if p.ClientVerdict != tc.wantVerdict {
				t.Errorf("verdict = %q, want %q", p.ClientVerdict, tc.wantVerdict)
			}
			if err := r.Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
			if s := r.Stats(); s.Panics != tc.wantPanics {
				t.Errorf("Panics = %d, want %d", s.Panics, tc.wantPanics)
			}
		})
	}
	t.Run("cmp panics on unexported fields", func(t *testing.T) {
		pub := newRecorder()
		r := mustReader(t, migration.Config[int, withUnexported]{
			Experiment: "orders", Operation: "get", Flags: flags, FlagKey: flagKey, Publisher: pub,
			Old:     func(context.Context, int) (withUnexported, error) { return withUnexported{ID: 1, secret: "a"}, nil },
			New:     func(context.Context, int) (withUnexported, error) { return withUnexported{ID: 1, secret: "b"}, nil },
			Compare: migration.CmpEqual[withUnexported](),
		})
		if _, err := r.Read(t.Context(), ecFor("u1", envelope.StageShadow, nil), 1); err != nil {
			t.Fatal(err)
		}
		if p := pub.next(t, 5*time.Second); p.ClientVerdict != "" {
			t.Errorf("verdict = %q, want none", p.ClientVerdict)
		}
		if err := r.Wait(waitCtx(t)); err != nil {
			t.Fatal(err)
		}
		if s := r.Stats(); s.Panics != 1 {
			t.Errorf("Panics = %d, want 1", s.Panics)
		}
	})
}

// With SnapshotResult the caller may modify the result as soon as Read
// returns (the race detector checks that Parity no longer reads it).
func TestSnapshotResult(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	var compared atomic.Value
	r := mustReader(t, migration.Config[int, map[string]int]{
		Experiment: "orders", Operation: "get", Flags: flags, FlagKey: flagKey, Publisher: pub,
		Old: func(context.Context, int) (map[string]int, error) { return map[string]int{"qty": 1}, nil },
		New: func(context.Context, int) (map[string]int, error) { return map[string]int{"qty": 1}, nil },
		Compare: func(a, b map[string]int) bool {
			compared.Store(fmt.Sprint(a, b))
			return a["qty"] == b["qty"]
		},
	}, migration.SnapshotResult())
	for _, stage := range []envelope.Stage{envelope.StageShadow, envelope.StageLive} {
		got, err := r.Read(t.Context(), ecFor("u1", stage, nil), 1)
		if err != nil {
			t.Fatal(err)
		}
		got["qty"] = 99 // the caller owns its result
		p := pub.next(t, 5*time.Second)
		if string(p.Control.Value) != `{"qty":1}` || string(p.Candidate.Value) != `{"qty":1}` || p.ClientVerdict != "match" {
			t.Errorf("%s: pair %s / %s verdict %q, want the values as returned", stage, p.Control.Value, p.Candidate.Value, p.ClientVerdict)
		}
	}
	if err := r.Wait(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := compared.Load(); got != "map[qty:1] map[qty:1]" {
		t.Errorf("Compare saw %v", got)
	}
}

// The publisher refusing or panicking never reaches the caller; the pair is
// counted as dropped.
func TestPublisherFailures(t *testing.T) {
	flags := newFlags(t)
	for _, tc := range []struct {
		name string
		pub  migration.Publisher
	}{
		{"refuses", &recorder{refuse: true}},
		{"panics", panicPublisher{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustReader(t, readConfig(flags, tc.pub))
			w := mustWriter(t, readConfig(flags, tc.pub))
			ec := ecFor("u1", envelope.StageLive, nil)
			if got, err := r.Read(t.Context(), ec, 1); err != nil || got.Path != "new" {
				t.Fatalf("Read = %+v, %v", got, err)
			}
			if got, err := w.Write(t.Context(), ec, 1); err != nil || got.Path != "new" {
				t.Fatalf("Write = %+v, %v", got, err)
			}
			for _, m := range []waiter{r, w} {
				if err := m.Wait(waitCtx(t)); err != nil {
					t.Fatal(err)
				}
				if s := m.Stats(); s.Dropped != 1 || s.Published != 0 {
					t.Errorf("%s stats = %+v, want 1 dropped", s.Kind, s)
				}
			}
		})
	}
}

type panicPublisher struct{}

func (panicPublisher) Publish(*envelope.Pair) bool { panic("publisher bug") }

// Segment attributes and the user come from the evaluation context, merged
// with OpenFeature's transaction context.
func TestUserFromContexts(t *testing.T) {
	flags := newFlags(t)
	pub := newRecorder()
	r := mustReader(t, readConfig(flags, pub))
	ctx := openfeature.WithTransactionContext(t.Context(), openfeature.NewEvaluationContext("456",
		map[string]any{stageAttr: "shadow", "country": "US", "plan": "free"}))
	ec := openfeature.NewTargetlessEvaluationContext(map[string]any{"plan": "pro", "beta": true, "cart": []int{1}, "bad name": "x"})
	if _, err := r.Read(ctx, ec, 1); err != nil {
		t.Fatal(err)
	}
	p := pub.next(t, 5*time.Second)
	want := envelope.User{Key: "456", Attrs: map[string]string{stageAttr: "shadow", "country": "US", "plan": "pro", "beta": "true"}}
	if diff := cmp.Diff(want, p.User); diff != "" {
		t.Errorf("user (-want +got):\n%s", diff)
	}
}

type panickyFlags struct{}

func (panickyFlags) StringValueDetails(context.Context, string, string, openfeature.EvaluationContext, ...openfeature.Option) (openfeature.StringEvaluationDetails, error) {
	panic("provider bug")
}

// A flag evaluator that panics is a flag error, not the application's
// problem.
func TestPanickingFlagEvaluator(t *testing.T) {
	r := mustReader(t, readConfig(panickyFlags{}, newRecorder()))
	got, err := r.Read(t.Context(), openfeature.EvaluationContext{}, 3)
	if err != nil || got != (rec{Path: "old", ID: 3}) {
		t.Errorf("Read = %+v, %v", got, err)
	}
	if s := r.Stats(); s.FlagErrors != 1 {
		t.Errorf("FlagErrors = %d, want 1", s.FlagErrors)
	}
}

// Errors joined with a deadline still count as a timeout.
func TestJoinedDeadlineIsTimeout(t *testing.T) {
	pub := newRecorder()
	cfg := readConfig(staticStage("shadow"), pub)
	cfg.New = func(ctx context.Context, _ int) (rec, error) {
		<-ctx.Done()
		return rec{}, errors.Join(errors.New("retry 3"), ctx.Err())
	}
	r := mustReader(t, cfg, migration.Timeout(10*time.Millisecond))
	if _, err := r.Read(t.Context(), openfeature.EvaluationContext{}, 1); err != nil {
		t.Fatal(err)
	}
	if p := pub.next(t, 5*time.Second); p.Candidate.Status != envelope.StatusTimeout {
		t.Errorf("candidate = %+v, want timeout", p.Candidate)
	}
}
