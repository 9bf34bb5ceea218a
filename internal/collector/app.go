package collector

import (
	"context"
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

	"github.com/parityhq/parity/internal/cli"
	"github.com/parityhq/parity/internal/demo"
	"github.com/parityhq/parity/internal/natsembed"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/publish"
)

// DefaultDatabaseURL is the PostgreSQL used when none is given: the local
// server, database "parity" (created if missing).
const DefaultDatabaseURL = cli.DefaultDatabaseURL

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
	// IngestTokens are the bearer tokens POST /api/v1/pairs accepts. With
	// none, HTTP ingest is refused.
	IngestTokens []string
	// OperatorTokens are the bearer tokens that may change an experiment's
	// diff rules. With none, rules are read-only.
	OperatorTokens []string
	// Verifier configures the in-process workers and the stream.
	Verifier verifier.Options
	// Store configures the PostgreSQL store.
	Store store.Options
	// DemoRate, when positive, publishes that many synthetic pairs per second
	// through the Go hook (see package demo).
	DemoRate int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:8080"
	}
	if o.DatabaseURL == "" {
		o.DatabaseURL = DefaultDatabaseURL
	}
	if o.EmbeddedNATSAddr == "" {
		o.EmbeddedNATSAddr = "127.0.0.1:4223"
	}
	if o.DataDir == "" {
		o.DataDir = "parity-data"
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
	switch {
	case o.Workers < -1:
		return fmt.Errorf("collector: invalid option Workers: %d (use -1 for none)", o.Workers)
	case o.DemoRate < 0:
		return fmt.Errorf("collector: invalid option DemoRate: must not be negative, got %d", o.DemoRate)
	}
	for field, ts := range map[string][]string{"IngestTokens": o.IngestTokens, "OperatorTokens": o.OperatorTokens} {
		for i, t := range ts {
			if len(t) < 16 {
				return fmt.Errorf("collector: invalid option %s[%d]: must be at least 16 characters", field, i)
			}
		}
	}
	return nil
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

	s := &handlers{
		db: a.st, log: a.log, ingest: &ingester{js: js},
		ingestT:  newTokens("ingest", "--ingest-token", opts.IngestTokens),
		operator: newTokens("operator", "--operator-token", opts.OperatorTokens),
		notify:   func(experiment string) error { return nc.Publish(verifier.RulesChangedSubject, []byte(experiment)) },
	}
	e, err := newEcho(s)
	if err != nil {
		return nil, err
	}
	e.GET("/metrics", metricsHandler(a.registry(js, s.ingest)))
	if a.ln, err = net.Listen("tcp", opts.Addr); err != nil {
		return nil, fmt.Errorf("collector: listen on %s: %w", opts.Addr, err)
	}
	a.http = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	a.wg.Go(func() {
		if err := a.http.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.errc <- fmt.Errorf("collector: http: %w", err)
		}
	})
	a.log.Info("collector: serving", "dashboard", a.URL(), "nats", a.natsURL, "workers", max(opts.Workers, 0), "demo_rate", opts.DemoRate)
	return a, nil
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
	a.log.Info("collector: demo traffic", "experiment", demo.Experiment, "pairs_per_second", a.opts.DemoRate,
		"expected", fmt.Sprintf("segment country=IN,plan=pro diverges in %.0f%% of pairs at items[1].price; all others agree", demo.DivergentRate*100))
	a.wg.Go(func() {
		if err := demo.Run(ctx, a.pub, a.opts.DemoRate); err != nil {
			a.errc <- err
		}
	})
	return nil
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
