package service

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/migration"
	"github.com/parityhq/parity/pkg/migration/parityprom"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/publish"
)

// The names the service uses in its pairs, its flag and its stream.
const (
	Experiment  = "orders-pg"          // the experiment of every pair
	OpGetOrder  = "get-order"          // the read: GET /orders/{id}
	OpSetStatus = "set-status"         // the write: PUT /orders/{id}/status
	FlagKey     = "orders-migration"   // the string flag holding the stage
	StreamName  = natsnames.PairStream // the stream created with CreateStream
)

// Options configures the service. The zero value is valid: Addr, AdminURL,
// OldURL, NewURL and NATSURL, when empty, and the stages of Rollout, when
// zero, take their value from [DefaultOptions]; what the zero value of every
// other field means is documented on it. Note that DefaultOptions, the
// command's defaults, sets CreateStream and SeedBugs, which the zero value
// does not.
type Options struct {
	// Addr is the HTTP listen address of the command; Setup does not listen.
	Addr string
	// AdminURL is a database to run CREATE DATABASE from.
	AdminURL string
	// OldURL and NewURL are the old and the new database, created if
	// missing, and their schemas created and seeded if empty.
	OldURL string
	NewURL string
	// Reset drops and re-seeds both tables.
	Reset bool
	// NATSURL is the NATS server the pairs go to; "embedded" starts a
	// JetStream server in-process. Ignored when NATSConn is set.
	NATSURL string
	// NATSConn, if set, is used instead of dialling NATSURL. [App.Close]
	// leaves it open.
	NATSConn *nats.Conn
	// CreateStream creates the PARITY_PAIRS stream if it is missing (normally
	// the verifier's job). False leaves it alone.
	CreateStream bool

	// Rollout says which stage each audience gets from the in-memory flag
	// provider; a zero stage takes [DefaultRollout]'s. Ignored when Provider
	// is set.
	Rollout Rollout
	// Provider, if set, serves the orders-migration flag instead of the
	// in-memory provider built from Rollout. Setup waits for its
	// initialisation; [App.Close] shuts it down.
	Provider openfeature.FeatureProvider
	// Hooks are added to the OpenFeature client the migration helpers
	// evaluate the flag with, e.g. an After hook recording each user's stage.
	Hooks []openfeature.Hook

	// SeedBugs seeds the new database with the two backfill bugs: order 4's
	// total rounded to 1000 cents instead of 1001, and order 5 missing.
	// False seeds both databases identically. Seeding leaves rows that
	// already exist as they are, so switching an existing database needs
	// Reset.
	SeedBugs bool
	// BugCountry, if not empty, breaks the new read path for users whose
	// evaluation context has this country: their totals come back 100 times
	// too big. Change it at run time with [App.SetBugCountry].
	BugCountry string
	// CompareTimeout, if set, is how long a compared read or write waits
	// for its other side ([migration.Timeout]); by default 500ms for reads
	// and 2s for writes. The tests set it long: on a busy machine a read
	// of the new database can outlast 500ms, and the pair then diverges
	// as a timeout, not for the bug they look for.
	CompareTimeout time.Duration
}

// DefaultOptions returns the command's defaults: the two databases
// parity_orders_old and parity_orders_new on the local server, the
// collector's embedded NATS server, the stream created, the default rollout
// and the backfill bugs seeded.
func DefaultOptions() Options {
	admin := os.Getenv("DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	return Options{
		Addr:         "127.0.0.1:8081", // the collector's dashboard has 8080
		AdminURL:     admin,
		OldURL:       "postgres://postgres@127.0.0.1:5432/parity_orders_old?sslmode=disable",
		NewURL:       "postgres://postgres@127.0.0.1:5432/parity_orders_new?sslmode=disable",
		NATSURL:      "nats://127.0.0.1:4223", // the collector's embedded NATS server
		CreateStream: true,
		Rollout:      DefaultRollout(),
		SeedBugs:     true,
	}
}

// withDefaults fills the empty fields and checks the rollout's stages.
func (o Options) withDefaults() (Options, error) {
	d := DefaultOptions()
	for _, f := range []struct {
		dst *string
		def string
	}{
		{&o.Addr, d.Addr}, {&o.AdminURL, d.AdminURL}, {&o.OldURL, d.OldURL}, {&o.NewURL, d.NewURL}, {&o.NATSURL, d.NATSURL},
	} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
	for _, s := range []struct {
		name string
		dst  *envelope.Stage
		def  envelope.Stage
	}{
		{"TestingGroup", &o.Rollout.TestingGroup, d.Rollout.TestingGroup},
		{"Segments", &o.Rollout.Segments, d.Rollout.Segments},
		{"Everyone", &o.Rollout.Everyone, d.Rollout.Everyone},
	} {
		if *s.dst == "" {
			*s.dst = s.def
		}
		if !s.dst.Valid() {
			return o, fmt.Errorf("orders: Options.Rollout.%s: unknown stage %q", s.name, *s.dst)
		}
	}
	for i, h := range o.Hooks {
		if h == nil {
			return o, fmt.Errorf("orders: Options.Hooks[%d] is nil", i)
		}
	}
	return o, nil
}

// App is the wired service. Close it when done.
type App struct {
	// Handler serves GET /orders/{id}, PUT /orders/{id}/status,
	// GET /debug/parity and GET /metrics. Each request's user is the
	// X-User-ID header, its country X-Country and its plan X-Plan.
	Handler http.Handler
	// NATSURL is the NATS server the pairs go to.
	NATSURL string

	closeOnce sync.Once
	closers   []func()

	newDB      *newStore
	bugCountry atomic.Pointer[string]
	getOrder   *migration.Reader[int64, Order]
	setStatus  *migration.Writer[StatusChange, migration.WriteResult]
	pub        *publish.Publisher
}

// Setup creates and seeds the databases as needed, connects to NATS and
// wires the migration helpers and the HTTP handler. ctx bounds the setup
// only. On error everything started is stopped.
func Setup(ctx context.Context, opts Options) (_ *App, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	app := &App{}
	app.SetBugCountry(opts.BugCountry)
	defer func() {
		if err != nil {
			app.Close()
		}
	}()

	// The two databases, created and seeded if needed.
	for _, u := range []string{opts.OldURL, opts.NewURL} {
		if err := createDatabase(ctx, opts.AdminURL, u); err != nil {
			return nil, err
		}
	}
	oldPool, err := pgxpool.New(ctx, opts.OldURL)
	if err != nil {
		return nil, fmt.Errorf("old database: %w", err)
	}
	app.closers = append(app.closers, oldPool.Close)
	newPool, err := pgxpool.New(ctx, opts.NewURL)
	if err != nil {
		return nil, fmt.Errorf("new database: %w", err)
	}
	app.closers = append(app.closers, newPool.Close)
	if err := migrateOld(ctx, oldPool, opts.Reset); err != nil {
		return nil, err
	}
	if err := migrateNew(ctx, newPool, opts.Reset, opts.SeedBugs); err != nil {
		return nil, err
	}
	oldDB := &oldStore{oldPool}
	app.newDB = &newStore{newPool}

	// NATS and the publisher.
	nc := opts.NATSConn
	if nc == nil {
		natsURL := opts.NATSURL
		if natsURL == "embedded" {
			ns, stopNATS, err := embeddedNATS()
			if err != nil {
				return nil, err
			}
			app.closers = append(app.closers, stopNATS)
			natsURL = ns.ClientURL()
		}
		nc, err = nats.Connect(natsURL, nats.Name("parity-example-orders"), nats.MaxReconnects(-1))
		if err != nil {
			return nil, fmt.Errorf("nats %s: %w", natsURL, err)
		}
		app.closers = append(app.closers, nc.Close)
	}
	app.NATSURL = nc.ConnectedUrlRedacted()
	if opts.CreateStream {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, err
		}
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: StreamName, Subjects: []string{natsnames.PairSubjects}, MaxBytes: 256 << 20,
		}); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
		}
	}
	pub, err := publish.New(nc, publish.Options{OnError: func(err error) { slog.Warn("parity publish", "err", err) }})
	if err != nil {
		return nil, err
	}
	app.pub = pub
	app.closers = append(app.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pub.Close(ctx)
	})

	// The rollout flag. An application would usually call
	// openfeature.SetProviderAndWait and use openfeature.NewDefaultClient;
	// an isolated API keeps this service runnable twice in one test process.
	provider := opts.Provider
	if provider == nil {
		provider = rolloutProvider(opts.Rollout)
	}
	api := isolated.NewAPI()
	app.closers = append(app.closers, func() { _ = api.Shutdown(context.Background()) })
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		return nil, fmt.Errorf("orders: flag provider: %w", err)
	}
	flags := api.NewClient()
	flags.AddHooks(opts.Hooks...)

	// The migrations: one Reader and one Writer.
	app.getOrder, err = migration.NewReader(migration.Config[int64, Order]{
		Experiment: Experiment, Operation: OpGetOrder,
		Flags: flags, FlagKey: FlagKey, Publisher: pub,
		Old: oldDB.Order, New: app.newOrder,
		Compare: func(a, b Order) bool { return a == b },
	}, migration.Timeout(cmp.Or(opts.CompareTimeout, 500*time.Millisecond)))
	if err != nil {
		return nil, err
	}
	app.setStatus, err = migration.NewWriter(migration.Config[StatusChange, migration.WriteResult]{
		Experiment: Experiment, Operation: OpSetStatus,
		Flags: flags, FlagKey: FlagKey, Publisher: pub,
		Old: oldDB.SetStatus, New: app.newDB.SetStatus,
		Compare: func(a, b migration.WriteResult) bool { return a == b },
	}, migration.Timeout(cmp.Or(opts.CompareTimeout, 2*time.Second)))
	if err != nil {
		return nil, err
	}
	app.closers = append(app.closers, func() {
		// Let the last pairs reach the publisher before it closes.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = app.getOrder.Wait(ctx)
		_ = app.setStatus.Wait(ctx)
	})

	reg := prometheus.NewRegistry()
	collector, err := parityprom.New(app.getOrder, app.setStatus)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(collector)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", app.handleGetOrder)
	mux.HandleFunc("PUT /orders/{id}/status", app.handleSetStatus)
	mux.HandleFunc("GET /debug/parity", app.handleStats)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	app.Handler = mux
	return app, nil
}

// Close lets the last pairs reach the publisher, flushes it (for up to 5s),
// shuts the flag provider down and closes what Setup opened: the database
// pools, the NATS connection it dialled and the embedded NATS server. It
// does not close [Options.NATSConn]. Close may be called more than once.
func (a *App) Close() {
	a.closeOnce.Do(func() {
		for i := len(a.closers) - 1; i >= 0; i-- {
			a.closers[i]()
		}
	})
}

// Flush waits until the pair of every call that has returned so far has
// been handed to the publisher and the publisher has had each acknowledged
// (or failed), or ctx ends.
func (a *App) Flush(ctx context.Context) error {
	if err := a.getOrder.Wait(ctx); err != nil {
		return err
	}
	if err := a.setStatus.Wait(ctx); err != nil {
		return err
	}
	return a.pub.Flush(ctx)
}

// SetBugCountry switches the new read path's bug to users in country, or off
// with "". It is safe for concurrent use and applies to reads that start
// after it returns.
func (a *App) SetBugCountry(country string) {
	a.bugCountry.Store(&country)
}

type evalContextKey struct{}

// newOrder is the new read path: the new store, with the deliberate bug
// [App.SetBugCountry] switches on for one country, as a new path that took
// total_cents for dollars would have. Writes never go through it.
func (a *App) newOrder(ctx context.Context, id int64) (Order, error) {
	o, err := a.newDB.Order(ctx, id)
	if err == nil && a.buggy(ctx) {
		o.TotalCents *= 100
	}
	return o, err
}

// buggy reports whether the call's evaluation context (which the handler
// put in ctx) has the bug's country.
func (a *App) buggy(ctx context.Context) bool {
	bug := a.bugCountry.Load()
	if bug == nil || *bug == "" {
		return false
	}
	ec, _ := ctx.Value(evalContextKey{}).(openfeature.EvaluationContext)
	country, _ := ec.Attribute("country").(string)
	return country == *bug
}

// callTimeout bounds a request's migrated call.
const callTimeout = 10 * time.Second

// evalContext is who the request is for: the user id is the targeting key,
// country and plan are segment attributes. A real service would take them
// from its session, not from headers.
//
// The returned context carries it too, for the paths that depend on the
// user, and is not cancelled when the client goes away: that would fail the
// authoritative path alone (the other one runs on after the caller's
// cancellation, see [migration.CancelWithCaller]) and show up as a
// divergence that is not the new path's. Call cancel when done.
func evalContext(r *http.Request) (_ context.Context, ec openfeature.EvaluationContext, cancel context.CancelFunc) {
	attrs := map[string]any{}
	if c := r.Header.Get("X-Country"); c != "" {
		attrs["country"] = c
	}
	if p := r.Header.Get("X-Plan"); p != "" {
		attrs["plan"] = p
	}
	ec = openfeature.NewEvaluationContext(r.Header.Get("X-User-ID"), attrs)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), callTimeout)
	return context.WithValue(ctx, evalContextKey{}, ec), ec, cancel
}

func (a *App) handleGetOrder(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "bad order id")
		return
	}
	ctx, ec, cancel := evalContext(r)
	defer cancel()
	order, err := a.getOrder.Read(ctx, ec, id)
	switch {
	case errors.Is(err, ErrNotFound):
		httpError(w, http.StatusNotFound, err.Error())
	case err != nil:
		slog.Error("get order", "id", id, "err", err)
		httpError(w, http.StatusInternalServerError, "internal error")
	default:
		writeJSON(w, http.StatusOK, order)
	}
}

func (a *App) handleSetStatus(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "bad order id")
		return
	}
	var body struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil || !validStatus(body.Status) {
		httpError(w, http.StatusBadRequest, `body must be {"status": "pending|paid|shipped|cancelled"}`)
		return
	}
	ctx, ec, cancel := evalContext(r)
	defer cancel()
	res, err := a.setStatus.Write(ctx, ec, StatusChange{OrderID: id, Status: body.Status})
	switch {
	case errors.Is(err, migration.ErrWriteFrozen):
		w.Header().Set("Retry-After", "60")
		httpError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		slog.Error("set status", "id", id, "err", err)
		httpError(w, http.StatusInternalServerError, "internal error")
	case res.RowsAffected == 0:
		httpError(w, http.StatusNotFound, fmt.Sprintf("order %d: not found", id))
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func (a *App) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"get_order":  a.getOrder.Stats(),
		"set_status": a.setStatus.Stats(),
		"publisher":  a.pub.Stats(),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// embeddedNATS runs a JetStream server in-process, storing in a temporary
// directory that stop removes.
func embeddedNATS() (ns *server.Server, stop func(), err error) {
	dir, err := os.MkdirTemp("", "parity-orders-nats-")
	if err != nil {
		return nil, nil, err
	}
	ns, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	ns.Start()
	stop = func() {
		ns.Shutdown()
		ns.WaitForShutdown()
		_ = os.RemoveAll(dir)
	}
	if !ns.ReadyForConnections(10 * time.Second) {
		stop()
		return nil, nil, errors.New("embedded nats: not ready within 10s")
	}
	return ns, stop, nil
}
