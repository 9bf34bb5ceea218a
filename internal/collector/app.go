package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/auth"
	"github.com/parityhq/parity/internal/cli"
	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/demo"
	"github.com/parityhq/parity/internal/natsembed"
	"github.com/parityhq/parity/internal/secret"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/sweep"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/publish"
)

// DefaultDatabaseURL is the PostgreSQL used when none is given: the local
// server, database "parity" (created if missing).
const DefaultDatabaseURL = cli.DefaultDatabaseURL

// Defaults of [Options], for the command's flags to show.
const (
	DefaultAddr                = "127.0.0.1:8080"
	DefaultEmbeddedNATSAddr    = "127.0.0.1:4223"
	DefaultDataDir             = "parity-data"
	DefaultSampleRetention     = 7 * 24 * time.Hour
	DefaultDeadLetterRetention = 30 * 24 * time.Hour
	// DefaultMinuteRetention is how long the collector keeps per-minute
	// counts ([store.Options.MinuteRetention]); older windows are answered
	// from the hourly rollup.
	DefaultMinuteRetention = 72 * time.Hour
)

// Options configure the collector. The zero value runs the whole system in one
// process; every default is documented on its field.
type Options struct {
	// Addr is the HTTP listen address. Defaults to "127.0.0.1:8080".
	Addr string
	// DatabaseURL is the PostgreSQL connection URL. Defaults to
	// DefaultDatabaseURL.
	DatabaseURL string
	// NATSURL is the NATS server to use. Empty starts an embedded NATS server
	// with JetStream instead.
	NATSURL string
	// NATSOptions are extra client options (credentials, TLS) for NATSURL.
	NATSOptions []nats.Option
	// EmbeddedNATSAddr is where the embedded server listens, so that
	// applications and verifiers in other processes can reach it. Defaults to
	// "127.0.0.1:4223"; port -1 picks a free port.
	EmbeddedNATSAddr string
	// DataDir holds the embedded server's JetStream data. Defaults to
	// "parity-data".
	DataDir string
	// Workers is the number of in-process verifier workers, each on its own
	// connection. 0 means the default: 2 with the embedded server, none with
	// NATSURL (run cmd/verifier instead). -1 means none.
	Workers int
	// IngestTokens, OperatorTokens and ViewerTokens are static bearer tokens
	// with the ingest, operator and viewer roles (see package auth), at least
	// 16 characters each, beside the tokens kept in the database
	// (`parityctl token create`). Only their SHA-256 hashes are kept in
	// memory; none may appear in two lists.
	IngestTokens   []string
	OperatorTokens []string
	ViewerTokens   []string
	// AnonymousViewers says whether requests without credentials may read
	// the dashboard and the API (never change anything): "true", "false", or
	// "auto" (the default, also ""), which means true when Addr is a loopback
	// address (127.0.0.0/8, ::1, localhost) and no ViewerTokens are given,
	// and false otherwise.
	AnonymousViewers string
	// SessionSecret signs dashboard session cookies; at least 32 bytes.
	// Collectors behind one address share it. Empty: a random secret made at
	// start, so sessions end when the collector restarts.
	SessionSecret string
	// SessionTTL is how long a dashboard session lasts. Defaults to 12h; at
	// most 7 days.
	SessionTTL time.Duration
	// Auth configures the database token checks (how long a valid answer is
	// cached: the revocation bound, 5s by default).
	Auth auth.Options
	// Verifier configures the in-process workers and the stream.
	Verifier verifier.Options
	// Store configures the PostgreSQL store. Its MinuteRetention defaults to
	// [DefaultMinuteRetention] here (negative keeps minutes forever).
	Store store.Options
	// SampleRetention is how long divergence samples are kept. Defaults to
	// 7 days; negative keeps them forever.
	SampleRetention time.Duration
	// DeadLetterRetention is how long dead letters are kept. Defaults to 30
	// days; negative keeps them forever.
	DeadLetterRetention time.Duration
	// RolloutInterval is how often the rollout controller evaluates every
	// active rollout's gate. Defaults to controller.DefaultInterval.
	RolloutInterval time.Duration
	// ReconcileSources are the databases reconciliation sweeps may read,
	// by name (docs/reconcile.md); none: sweeps can be recorded but none
	// runs.
	ReconcileSources map[string]string
	// RolloutSettle is how long after a change of a rollout its gate's
	// window starts, so that pairs from before the change are not judged as
	// the new step's. Defaults to controller.DefaultSettle.
	RolloutSettle time.Duration
	// DemoRate, when positive, publishes that many synthetic pairs per second
	// through the Go hook (see package demo).
	DemoRate int
	// DemoFresh drops the database before starting, so a demo starts from
	// nothing. It needs DemoRate and a database whose name ends in "_demo"
	// (see [store.DropDatabase]).
	DemoFresh bool
	// HTTP configures HSTS and OFREP's rate limit and CORS.
	HTTP HTTPOptions
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.DatabaseURL == "" {
		o.DatabaseURL = DefaultDatabaseURL
	}
	if o.EmbeddedNATSAddr == "" {
		o.EmbeddedNATSAddr = DefaultEmbeddedNATSAddr
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.Workers == 0 {
		o.Workers = 2
		if o.NATSURL != "" {
			o.Workers = -1
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SampleRetention == 0 {
		o.SampleRetention = DefaultSampleRetention
	}
	if o.DeadLetterRetention == 0 {
		o.DeadLetterRetention = DefaultDeadLetterRetention
	}
	if o.Store.MinuteRetention == 0 {
		o.Store.MinuteRetention = DefaultMinuteRetention
	}
	switch {
	case o.Workers < -1:
		return fmt.Errorf("collector: invalid option Workers: %d (use -1 for none)", o.Workers)
	case o.DemoRate < 0:
		return fmt.Errorf("collector: invalid option DemoRate: must not be negative, got %d", o.DemoRate)
	case o.DemoFresh && o.DemoRate == 0:
		return fmt.Errorf("collector: invalid option DemoFresh: only with demo traffic (DemoRate)")
	}
	seen := map[string]string{}
	for _, f := range []struct {
		field, flag string
		ts          []string
	}{
		{"IngestTokens", "--ingest-token, PARITY_INGEST_TOKENS", o.IngestTokens},
		{"OperatorTokens", "--operator-token, PARITY_OPERATOR_TOKENS", o.OperatorTokens},
		{"ViewerTokens", "--viewer-token, PARITY_VIEWER_TOKENS", o.ViewerTokens},
	} {
		for i, t := range f.ts {
			if err := secret.Check(t, secret.Token); err != nil {
				return fmt.Errorf("collector: invalid option %s[%d] (%s): %w", f.field, i, f.flag, err)
			}
			if other, dup := seen[t]; dup && other != f.field {
				return fmt.Errorf("collector: invalid option %s[%d]: the same token is also in %s", f.field, i, other)
			}
			seen[t] = f.field
		}
	}
	switch o.AnonymousViewers {
	case "":
		o.AnonymousViewers = AnonymousViewersAuto
	case AnonymousViewersAuto, "true", "false":
	default:
		return fmt.Errorf("collector: invalid option AnonymousViewers: %q (want auto, true or false)", o.AnonymousViewers)
	}
	if o.SessionSecret != "" {
		if err := secret.Check(o.SessionSecret, secret.SigningKey); err != nil {
			return fmt.Errorf("collector: invalid option SessionSecret (--session-secret, PARITY_SESSION_SECRET): %w", err)
		}
	}
	if err := secret.CheckURL(o.DatabaseURL); err != nil {
		return fmt.Errorf("collector: invalid option DatabaseURL (--database-url, DATABASE_URL): %w", err)
	}
	if err := o.HTTP.setDefaults(); err != nil {
		return err
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.SessionTTL < time.Minute || o.SessionTTL > 7*24*time.Hour {
		return fmt.Errorf("collector: invalid option SessionTTL: %v (want 1m to 168h)", o.SessionTTL)
	}
	if err := o.Auth.Validate(); err != nil {
		return fmt.Errorf("collector: invalid option Auth: %w", err)
	}
	return nil
}

// MaxHeaderBytes bounds a request's headers: 64 KiB, far more than any
// browser or client sends. Larger ones are answered 431.
const MaxHeaderBytes = 64 << 10

// AnonymousViewersAuto is the default of [Options.AnonymousViewers].
const AnonymousViewersAuto = "auto"

// anonymousViewers resolves AnonymousViewers, and says why.
func (o *Options) anonymousViewers() (bool, string) {
	switch o.AnonymousViewers {
	case "true":
		return true, "set explicitly"
	case "false":
		return false, "set explicitly"
	}
	switch {
	case !isLoopback(o.Addr):
		return false, "auto: " + o.Addr + " is reachable from other hosts"
	case len(o.ViewerTokens) > 0:
		return false, "auto: viewer tokens are configured"
	}
	return true, "auto: loopback address and no viewer tokens"
}

// App is a running collector.
type App struct {
	opts Options
	log  *slog.Logger

	ns      *server.Server // nil with an external NATS
	natsURL string
	conns   []*nats.Conn
	st      *store.Store
	http    *http.Server
	ln      net.Listener
	pub     *publish.Publisher // demo traffic; nil without
	workers []*verifier.Worker

	cancel context.CancelFunc // stops workers and demo
	wg     sync.WaitGroup
	errc   chan error
	once   sync.Once
}

// Start starts the collector and returns once it serves HTTP. Stop it with
// [App.Shutdown].
func Start(ctx context.Context, opts Options) (_ *App, err error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	a := &App{opts: opts, log: opts.Logger, errc: make(chan error, 16)}
	defer func() {
		if err != nil {
			_ = a.Shutdown(context.Background()) // release what was started
		}
	}()
	if opts.DemoFresh {
		if err := store.DropDatabase(ctx, opts.DatabaseURL); err != nil {
			return nil, err
		}
	}
	if a.st, err = store.Open(ctx, opts.DatabaseURL, opts.Store); err != nil {
		return nil, err
	}
	if err := a.startNATS(); err != nil {
		return nil, err
	}
	nc, err := a.connect("parity-collector")
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("collector: jetstream: %w", err)
	}
	if _, err := verifier.EnsureStream(ctx, js, opts.Verifier.Stream); err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	for i := range max(opts.Workers, 0) {
		if err := a.startWorker(runCtx, i); err != nil {
			return nil, err
		}
	}
	if opts.DemoRate > 0 {
		if err := a.startDemo(runCtx); err != nil {
			return nil, err
		}
	}
	a.wg.Go(func() { a.retain(runCtx) })

	tokens, err := auth.Open(ctx, a.st.Pool(), opts.Auth)
	if err != nil {
		return nil, err
	}
	anon, why := opts.anonymousViewers()
	hk := newHooks()
	if _, err := hk.subscribe(nc); err != nil {
		return nil, fmt.Errorf("collector: subscribe to hook reports: %w", err)
	}
	stream, durable := consumerNames(opts.Verifier)
	window, err := opts.Verifier.TimeWindow()
	if err != nil {
		return nil, err
	}
	s := &handlers{
		hooks: hk, js: js, stream: stream, durable: durable,
		db: a.st, log: a.log, ingest: &ingester{js: js, window: window},
		auth: newAuthn(authConfig{
			Static: map[auth.Role][]string{
				auth.RoleIngest: opts.IngestTokens, auth.RoleOperator: opts.OperatorTokens, auth.RoleViewer: opts.ViewerTokens,
			},
			DB: tokens, Anonymous: anon, SessionSecret: []byte(opts.SessionSecret), SessionTTL: opts.SessionTTL, Log: a.log,
		}),
		notify:     func(experiment string) error { return nc.Publish(natsnames.RulesChangedSubject, []byte(experiment)) },
		http:       opts.HTTP,
		ofrepLimit: newOFREPLimiter(opts.HTTP.OFREPRate, opts.HTTP.OFREPBurst, nil),
	}
	kv, err := controller.EnsureBucket(ctx, js, opts.Verifier.Stream.Replicas)
	if err != nil {
		return nil, err
	}
	s.flags = newFlagTable()
	s.ctl = controller.New(a.st, s.flags, controller.Options{KV: kv, Interval: opts.RolloutInterval, Settle: opts.RolloutSettle, Logger: a.log})
	s.sweeps, s.sweepSources = a.st, opts.ReconcileSources
	if len(opts.ReconcileSources) > 0 {
		runner := sweep.New(a.st, sweep.Options{Sources: opts.ReconcileSources, Log: a.log, Rules: a.rulesOf})
		a.wg.Go(func() { runner.Run(runCtx) })
	}
	a.logAccess(anon, why, tokens.Options().CacheTTL)
	e, err := newEcho(s)
	if err != nil {
		return nil, err
	}
	a.wg.Go(func() { s.ctl.Run(runCtx) })
	e.GET("/metrics", metricsHandler(a.registry(js, s.ingest)))
	if a.ln, err = net.Listen("tcp", opts.Addr); err != nil {
		return nil, fmt.Errorf("collector: listen on %s: %w", opts.Addr, err)
	}
	// Every input bounded: headers in size and time, a whole request in
	// time (bodies are bounded in size per route), idle connections too.
	a.http = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: MaxHeaderBytes}
	a.wg.Go(func() {
		if err := a.http.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.errc <- fmt.Errorf("collector: http: %w", err)
		}
	})
	a.log.Info("collector: serving", "dashboard", a.URL(), "nats", a.natsURL, "workers", max(opts.Workers, 0), "demo_rate", opts.DemoRate)
	return a, nil
}

// logAccess says at start who may do what.
func (a *App) logAccess(anon bool, why string, revocation time.Duration) {
	secret := "configured"
	if a.opts.SessionSecret == "" {
		secret = "generated at start: sessions end when this collector restarts"
	}
	a.log.Info("collector: access control", "anonymous_viewers", anon, "why", why,
		"viewer_flag_tokens", len(a.opts.ViewerTokens), "operator_flag_tokens", len(a.opts.OperatorTokens),
		"ingest_flag_tokens", len(a.opts.IngestTokens), "session_secret", secret, "revocation_within", max(revocation, 0))
	if anon && !isLoopback(a.opts.Addr) {
		a.log.Warn("collector: anyone who can reach " + a.opts.Addr + " may read the dashboard and the API without a token")
	}
}

func (a *App) startNATS() error {
	if a.opts.NATSURL != "" {
		a.natsURL = a.opts.NATSURL
		return nil
	}
	ns, err := natsembed.Start(a.opts.EmbeddedNATSAddr, a.opts.DataDir)
	if err != nil {
		return fmt.Errorf("collector: embedded NATS: %w", err)
	}
	a.ns = ns
	a.natsURL = ns.ClientURL()
	return nil
}

func (a *App) connect(name string) (*nats.Conn, error) {
	opts := append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1)}, a.opts.NATSOptions...)
	nc, err := nats.Connect(a.natsURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("collector: connect to NATS at %s: %w", a.natsURL, err)
	}
	a.conns = append(a.conns, nc)
	return nc, nil
}

func (a *App) startWorker(ctx context.Context, i int) error {
	nc, err := a.connect(fmt.Sprintf("parity-verifier-%d", i))
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("collector: jetstream: %w", err)
	}
	vo := a.opts.Verifier
	if vo.Logger == nil {
		vo.Logger = a.log
	}
	w, err := verifier.New(js, a.st, vo)
	if err != nil {
		return err
	}
	a.workers = append(a.workers, w)
	a.wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			a.errc <- err
		}
	})
	return nil
}

func (a *App) startDemo(ctx context.Context) error {
	nc, err := a.connect("parity-demo")
	if err != nil {
		return err
	}
	if a.pub, err = publish.New(nc, publish.Options{}); err != nil {
		return err
	}
	if err := a.demoGate(ctx); err != nil {
		return err
	}
	a.log.Info("collector: demo traffic", "experiment", demo.Experiment, "pairs_per_second", a.opts.DemoRate,
		"expected", fmt.Sprintf("segment %s diverges in exactly %d of every 100 pairs at items[1].price; all others agree", demo.DivergentSegment, demo.DivergentPerHundred))
	a.wg.Go(func() {
		if err := demo.Run(ctx, a.pub, a.opts.DemoRate); err != nil {
			a.errc <- err
		}
	})
	return nil
}

// demoGate stores the demo's gate ([demo.Gate]) unless its experiment has
// one already, so the good segments pass within the first minute.
func (a *App) demoGate(ctx context.Context) error {
	if _, err := a.st.GateSpec(ctx, demo.Experiment); !errors.Is(err, store.ErrNotFound) {
		return err // nil: kept from an earlier run
	}
	g := DefaultGate
	g.MaxRate, g.MinPairs = demo.Gate.MaxRate, demo.Gate.MinPairs
	doc, err := json.Marshal(g)
	if err != nil {
		return err
	}
	if _, err := a.st.SaveGateSpec(ctx, demo.Experiment, doc, "demo"); err != nil {
		return fmt.Errorf("collector: demo gate: %w", err)
	}
	return nil
}

// retain deletes samples, dead letters and per-minute counts past their
// retention, at start
// and every ten minutes, until ctx ends.
func (a *App) retain(ctx context.Context) {
	before := func(keep time.Duration) time.Time {
		if keep < 0 {
			return time.Time{}
		}
		return time.Now().Add(-keep)
	}
	tick := time.NewTicker(10 * time.Minute)
	defer tick.Stop()
	for {
		n, d, err := a.st.Prune(ctx, before(a.opts.SampleRetention), before(a.opts.DeadLetterRetention))
		var m int64
		if err == nil {
			m, err = a.st.PruneMinutes(ctx, time.Now())
		}
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("collector: retention", "err", err)
		case n+d+m > 0:
			a.log.Info("collector: retention", "samples_deleted", n, "dead_letters_deleted", d, "minute_rows_deleted", m)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// URL is the dashboard's address.
func (a *App) URL() string {
	if a.ln == nil {
		return ""
	}
	return "http://" + a.ln.Addr().String()
}

// NATSURL is the NATS server the collector uses (the embedded one's client
// URL when it runs one).
func (a *App) NATSURL() string { return a.natsURL }

// Store is the collector's store.
func (a *App) Store() *store.Store { return a.st }

// Workers returns the in-process verifier workers.
func (a *App) Workers() []*verifier.Worker { return a.workers }

// Err delivers the first error of a background part (HTTP server, worker).
func (a *App) Err() <-chan error { return a.errc }

// Shutdown stops serving HTTP, stops the demo (flushing its hook), lets the
// workers flush what they received, and closes NATS and the store.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	a.once.Do(func() {
		if a.http != nil {
			errs = append(errs, a.http.Shutdown(ctx))
		}
		if a.cancel != nil {
			a.cancel()
		}
		if a.pub != nil {
			errs = append(errs, a.pub.Close(ctx))
		}
		a.wg.Wait()
		for _, nc := range a.conns {
			nc.Close()
		}
		if a.ns != nil {
			a.ns.Shutdown()
			a.ns.WaitForShutdown()
		}
		if a.st != nil {
			a.st.Close()
		}
	})
	return errors.Join(errs...)
}

// Run starts the collector and serves until ctx ends or a part fails.
func Run(ctx context.Context, opts Options) error {
	a, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-a.errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(runErr, a.Shutdown(sctx))
}

// rulesOf compiles an experiment's latest diff rules (exact comparison when
// none were saved), for the sweep runner.
func (a *App) rulesOf(ctx context.Context, experiment string) (*diff.Differ, error) {
	r, err := a.st.Rules(ctx, experiment)
	if errors.Is(err, store.ErrNotFound) {
		return diff.Exact(), nil
	}
	if err != nil {
		return nil, err
	}
	var rules diff.Rules
	if err := json.Unmarshal(r.Rules, &rules); err != nil {
		return nil, fmt.Errorf("collector: rules of %s: %w", experiment, err)
	}
	rules.Version = r.Version
	return diff.Compile(rules)
}
