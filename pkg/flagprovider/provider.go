package flagprovider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/pkg/rollout"
)

// Name is the provider name in [openfeature.Metadata] and in every event.
const Name = "parity"

// Defaults.
const (
	// DefaultInitTimeout is [Options.InitTimeout] when it is zero.
	DefaultInitTimeout = 5 * time.Second
	// EventBufferSize is the capacity of the channel [Provider.EventChannel]
	// returns. When it is full the oldest event is dropped.
	EventBufferSize = 64
)

// staleAfterInit is how long after an Init that serves the cache file the
// provider emits PROVIDER_STALE.
const staleAfterInit = 100 * time.Millisecond

// Errors. Use errors.Is.
var (
	// ErrInvalidOption is wrapped by every error [New] returns.
	ErrInvalidOption = errors.New("flagprovider: invalid option")
	// ErrNotSynced is wrapped by the error Init returns when the bucket's
	// current values did not arrive within [Options.InitTimeout] and there
	// was no cache to serve instead; the cause is wrapped too.
	ErrNotSynced = errors.New("flagprovider: rollout documents not received")
)

// Options configure a [Provider]. The zero value is valid.
type Options struct {
	// Bucket is the JetStream key-value bucket to watch. Defaults to
	// [rollout.KVBucket] ("PARITY_ROLLOUTS"). The provider never creates it.
	Bucket string
	// InitTimeout is how long Init waits for the bucket's current values.
	// Defaults to [DefaultInitTimeout] (5s); must not be negative.
	InitTimeout time.Duration
	// CacheFile, when set, is a file the provider writes the last documents
	// to after every change (atomically: a temporary file in the same
	// directory, then a rename; mode 0600, because plans name targeting
	// keys), and reads at Init when NATS cannot deliver the current values
	// in time, so a restarted application with NATS down serves the last
	// state it had, marked stale. Empty disables the cache.
	CacheFile string
	// Logger receives warnings about ignored documents, deletions,
	// staleness and cache problems. It never receives targeting keys or
	// attribute values. Defaults to slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Bucket == "" {
		o.Bucket = rollout.KVBucket
	}
	if !validBucket(o.Bucket) {
		return o, fmt.Errorf("%w: Bucket: %q is not a bucket name (A-Z a-z 0-9 _ -)", ErrInvalidOption, o.Bucket)
	}
	switch {
	case o.InitTimeout < 0:
		return o, fmt.Errorf("%w: InitTimeout: must be >= 0", ErrInvalidOption)
	case o.InitTimeout == 0:
		o.InitTimeout = DefaultInitTimeout
	}
	if o.CacheFile != "" {
		if b := filepath.Base(o.CacheFile); b == "." || b == string(filepath.Separator) || o.CacheFile[len(o.CacheFile)-1] == filepath.Separator {
			return o, fmt.Errorf("%w: CacheFile: %q names no file", ErrInvalidOption, o.CacheFile)
		}
		o.CacheFile = filepath.Clean(o.CacheFile)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// validBucket is jetstream's rule for bucket names.
func validBucket(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Provider is an OpenFeature provider serving Parity rollout flags from a
// JetStream key-value bucket. Create it with [New]; it implements
// [openfeature.FeatureProvider], [openfeature.StateHandler],
// [openfeature.ContextAwareStateHandler] and [openfeature.EventHandler].
type Provider struct {
	nc   *nats.Conn
	opts Options
	log  *slog.Logger

	// flags is the immutable map evaluations read; writers replace it
	// under mu.
	flags   atomic.Pointer[flagSet]
	stale   atomic.Bool
	events  chan openfeature.Event
	dropped atomic.Uint64
	// gen counts applied changes, for the cache writer.
	gen atomic.Uint64
	// cacheGen is the gen last written to the cache file (under mu).
	cacheGen uint64

	mu sync.Mutex // guards the fields below and every send on events
	// initialized is true from Init's return to Shutdown: events are only
	// emitted then (before, Init's result tells the SDK).
	initialized bool
	// synced: the current watch has delivered the current values.
	synced bool
	// cause is why the provider is not in sync, for Init's error and logs.
	cause error
	run   *runState
}

type runState struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the watcher goroutine returns
	wg     sync.WaitGroup
	// firstSync is closed the first time this run is in sync.
	firstSync chan struct{}
	firstDone bool
}

// flagSet maps flag keys to what the provider serves for them.
type flagSet map[string]*flagEntry

type flagEntry struct {
	doc rollout.Document
	// deleted: the KV entry was deleted or purged after doc was applied.
	deleted bool
	// hasRules: some step has attribute rules, so evaluations need the
	// context's attributes.
	hasRules bool
	// Metadata values, boxed once rather than at every evaluation.
	revision, step, status, experiment any
}

var (
	_ openfeature.FeatureProvider          = (*Provider)(nil)
	_ openfeature.StateHandler             = (*Provider)(nil)
	_ openfeature.ContextAwareStateHandler = (*Provider)(nil)
	_ openfeature.EventHandler             = (*Provider)(nil)
)

// New returns a provider reading the bucket through nc, which stays the
// application's: the provider installs no handler on it, only a status
// listener (removed by Shutdown), and never closes it. New validates opts
// and does no I/O; [Provider.Init] starts the watch.
func New(nc *nats.Conn, opts Options) (*Provider, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", ErrInvalidOption)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Provider{
		nc:     nc,
		opts:   opts,
		log:    opts.Logger,
		events: make(chan openfeature.Event, EventBufferSize),
	}
	p.flags.Store(&flagSet{})
	p.stale.Store(true)
	p.cause = errors.New("not started")
	return p, nil
}

// Metadata returns the provider's name, "parity".
func (p *Provider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: Name} }

// Hooks returns no hooks.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// EventChannel returns the channel the provider emits events on (see the
// package documentation). The OpenFeature SDK reads it; read it yourself
// only when using the provider without the SDK.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.events }

// Stale reports whether the provider is not in sync with the bucket: before
// the first watch has delivered the current values, while NATS is
// disconnected or the bucket missing, when serving the cache file, and after
// Shutdown.
func (p *Provider) Stale() bool { return p.stale.Load() }

// DroppedEvents returns how many events were dropped because the event
// channel was full.
func (p *Provider) DroppedEvents() uint64 { return p.dropped.Load() }

// Document returns a copy of the document the provider serves for flag.
func (p *Provider) Document(flag string) (rollout.Document, bool) {
	e := (*p.flags.Load())[flag]
	if e == nil {
		return rollout.Document{}, false
	}
	return cloneDocument(e.doc), true
}

// Flags returns the keys of the flags the provider serves, sorted.
func (p *Provider) Flags() []string {
	return slices.Sorted(maps.Keys(*p.flags.Load()))
}

// StringEvaluation returns the stage the flag's rollout gives the user
// identified by the context's targeting key; see the package documentation.
func (p *Provider) StringEvaluation(_ context.Context, flag string, defaultValue string, fc openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	e := (*p.flags.Load())[flag]
	if e == nil {
		return openfeature.StringResolutionDetail{Value: defaultValue, ProviderResolutionDetail: notFound(flag)}
	}
	key, _ := fc[openfeature.TargetingKey].(string)
	var attrs map[string]string
	if e.hasRules && len(fc) > 0 {
		attrs = rollout.StringAttrs(fc)
		delete(attrs, openfeature.TargetingKey)
	}
	d := rollout.Decide(e.doc.Plan, e.doc.State, key, attrs)
	return openfeature.StringResolutionDetail{
		Value: string(d.Stage),
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			Reason:  openfeature.Reason(d.Reason),
			Variant: string(d.Stage),
			FlagMetadata: openfeature.FlagMetadata{
				"revision":     e.revision,
				"step":         e.step,
				"matched_step": int64(d.Step),
				"stale":        e.deleted || p.stale.Load(),
				"deleted":      e.deleted,
				"status":       e.status,
				"experiment":   e.experiment,
				"detail":       d.String(),
			},
		},
	}
}

// BooleanEvaluation returns the default value: Parity flags are strings
// (TYPE_MISMATCH), unknown flags are FLAG_NOT_FOUND.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	return openfeature.BoolResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.notString(flag, "boolean")}
}

// FloatEvaluation returns the default value: Parity flags are strings
// (TYPE_MISMATCH), unknown flags are FLAG_NOT_FOUND.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, defaultValue float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return openfeature.FloatResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.notString(flag, "float")}
}

// IntEvaluation returns the default value: Parity flags are strings
// (TYPE_MISMATCH), unknown flags are FLAG_NOT_FOUND.
func (p *Provider) IntEvaluation(_ context.Context, flag string, defaultValue int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return openfeature.IntResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.notString(flag, "integer")}
}

// ObjectEvaluation returns the default value: Parity flags are strings
// (TYPE_MISMATCH), unknown flags are FLAG_NOT_FOUND.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, defaultValue any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return openfeature.InterfaceResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.notString(flag, "object")}
}

func (p *Provider) notString(flag, typ string) openfeature.ProviderResolutionDetail {
	if (*p.flags.Load())[flag] == nil {
		return notFound(flag)
	}
	return openfeature.ProviderResolutionDetail{
		ResolutionError: openfeature.NewTypeMismatchResolutionError("flag " + flag + " is a Parity rollout flag: a string (a migration stage), not " + typ),
		Reason:          openfeature.ErrorReason,
	}
}

func notFound(flag string) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{
		ResolutionError: openfeature.NewFlagNotFoundResolutionError("no rollout document for flag " + flag),
		Reason:          openfeature.ErrorReason,
	}
}

// Init is InitWithContext without a context.
func (p *Provider) Init(ec openfeature.EvaluationContext) error {
	return p.InitWithContext(context.Background(), ec)
}

// InitWithContext starts the watcher, if it is not running, and waits up to
// [Options.InitTimeout] (or until ctx is done) for the bucket's current
// values. It returns nil when they arrived, or when they did not but the
// cache file had documents to serve (the provider is then stale at once and
// emits PROVIDER_STALE 100ms after returning). Otherwise it returns an error
// wrapping [ErrNotSynced] and the cause, and the watcher keeps trying: it
// emits PROVIDER_READY once in sync. The evaluation context is not used.
func (p *Provider) InitWithContext(ctx context.Context, _ openfeature.EvaluationContext) error {
	p.mu.Lock()
	if p.run == nil {
		p.start()
	}
	r := p.run
	p.mu.Unlock()

	timer := time.NewTimer(p.opts.InitTimeout)
	defer timer.Stop()
	var waitErr error
	select {
	case <-r.firstSync:
	case <-timer.C:
		waitErr = fmt.Errorf("no current values within InitTimeout %v", p.opts.InitTimeout)
	case <-ctx.Done():
		waitErr = ctx.Err()
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != r { // Shutdown ran meanwhile
		return fmt.Errorf("%w: provider shut down during Init", ErrNotSynced)
	}
	p.initialized = true
	if p.synced {
		return nil
	}
	cause := waitErr
	if p.cause != nil {
		cause = fmt.Errorf("%w; last problem: %w", waitErr, p.cause)
	}
	if p.opts.CacheFile != "" {
		n, err := p.loadCacheLocked()
		switch {
		case err != nil:
			p.log.Warn("flagprovider: cache file not usable", "file", p.opts.CacheFile, "err", err)
		case n > 0:
			p.log.Warn("flagprovider: serving rollout documents from the cache file, marked stale, until NATS delivers the bucket",
				"file", p.opts.CacheFile, "flags", n, "bucket", p.opts.Bucket, "cause", cause.Error())
			// The SDK records READY when Init returns nil, on another
			// goroutine than the one forwarding the provider's events: an
			// event sent now could be handled first and overwritten. So
			// STALE is sent a little later (Stale and the evaluations'
			// metadata say stale at once).
			r.wg.Go(func() {
				t := time.NewTimer(staleAfterInit)
				defer t.Stop()
				select {
				case <-t.C:
				case <-r.done:
					return
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				if p.run == r && !p.synced {
					p.emitLocked(openfeature.ProviderStale, openfeature.ProviderEventDetails{
						Message: "serving rollout documents from the cache file; NATS has not delivered bucket " + p.opts.Bucket,
					})
				}
			})
			return nil
		}
	}
	return fmt.Errorf("%w from bucket %s: %w", ErrNotSynced, p.opts.Bucket, cause)
}

// Shutdown is ShutdownWithContext without a deadline.
func (p *Provider) Shutdown() { _ = p.ShutdownWithContext(context.Background()) }

// ShutdownWithContext stops the watcher and waits, until ctx is done, for
// every goroutine the provider started to return. The provider keeps its
// documents (served, stale) and can be initialised again.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	p.mu.Lock()
	r := p.run
	p.run = nil
	p.initialized = false
	p.synced = false
	p.stale.Store(true)
	p.cause = errors.New("provider shut down")
	p.mu.Unlock()
	if r == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
		return fmt.Errorf("flagprovider: shutdown: %w", ctx.Err())
	}
	r.wg.Wait()
	return nil
}

// emitLocked sends an event without ever blocking: when the channel is
// full it drops the oldest event. p.mu must be held, so events keep the
// order of the state changes they report.
func (p *Provider) emitLocked(t openfeature.EventType, d openfeature.ProviderEventDetails) {
	ev := openfeature.Event{ProviderName: Name, EventType: t, ProviderEventDetails: d}
	for {
		select {
		case p.events <- ev:
			return
		default:
		}
		select {
		case <-p.events:
			p.dropped.Add(1)
		default:
		}
	}
}

// cloneDocument returns d with its own copies of every slice, so a caller
// cannot modify what evaluations read.
func cloneDocument(d rollout.Document) rollout.Document {
	d.Plan.Steps = slices.Clone(d.Plan.Steps)
	for i := range d.Plan.Steps {
		a := &d.Plan.Steps[i].Audience
		a.Users = slices.Clone(a.Users)
		a.Rules = slices.Clone(a.Rules)
		for j := range a.Rules {
			a.Rules[j].In = slices.Clone(a.Rules[j].In)
		}
	}
	return d
}

func newEntry(d rollout.Document, deleted bool) *flagEntry {
	e := &flagEntry{
		doc: d, deleted: deleted,
		revision: d.Revision, step: int64(d.State.Step), status: d.Status, experiment: d.Plan.Experiment,
	}
	for _, st := range d.Plan.Steps {
		if len(st.Audience.Rules) > 0 {
			e.hasRules = true
		}
	}
	return e
}
