package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
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
	"github.com/parityhq/parity/pkg/publish"
)

// Options configures the service.
type Options struct {
	Addr         string
	AdminURL     string // a database to run CREATE DATABASE from
	OldURL       string
	NewURL       string
	Reset        bool
	NATSURL      string // "embedded" starts a server in-process
	CreateStream bool
	Rollout      Rollout
}

func defaultOptions() Options {
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
		Rollout:      defaultRollout(),
	}
}

const (
	experiment = "orders-pg"
	flagKey    = "orders-migration"
	streamName = "PARITY_PAIRS"
)

// App is the wired service.
type App struct {
	Handler http.Handler
	NATSURL string
	Close   func()

	getOrder  *migration.Reader[int64, Order]
	setStatus *migration.Writer[StatusChange, migration.WriteResult]
	pub       *publish.Publisher
}

func setup(ctx context.Context, opts Options) (_ *App, err error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
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
	closers = append(closers, oldPool.Close)
	newPool, err := pgxpool.New(ctx, opts.NewURL)
	if err != nil {
		return nil, fmt.Errorf("new database: %w", err)
	}
	closers = append(closers, newPool.Close)
	if err := migrateOld(ctx, oldPool, opts.Reset); err != nil {
		return nil, err
	}
	if err := migrateNew(ctx, newPool, opts.Reset); err != nil {
		return nil, err
	}
	oldDB, newDB := &oldStore{oldPool}, &newStore{newPool}

	// NATS and the publisher.
	natsURL := opts.NATSURL
	if natsURL == "embedded" {
		ns, stopNATS, err := embeddedNATS()
		if err != nil {
			return nil, err
		}
		closers = append(closers, stopNATS)
		natsURL = ns.ClientURL()
	}
	nc, err := nats.Connect(natsURL, nats.Name("parity-example-orders"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", natsURL, err)
	}
	closers = append(closers, nc.Close)
	if opts.CreateStream {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, err
		}
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: streamName, Subjects: []string{envelope.SubjectPrefix + ".>"}, MaxBytes: 256 << 20,
		}); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", streamName, err)
		}
	}
	pub, err := publish.New(nc, publish.Options{OnError: func(err error) { slog.Warn("parity publish", "err", err) }})
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pub.Close(ctx)
	})

	// The rollout flag. An application would usually call
	// openfeature.SetProviderAndWait and use openfeature.NewDefaultClient;
	// an isolated API keeps this service runnable twice in one test process.
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(ctx, rolloutProvider(opts.Rollout)); err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = api.Shutdown(context.Background()) })
	flags := api.NewClient()

	// The migrations: one Reader and one Writer.
	getOrder, err := migration.NewReader(migration.Config[int64, Order]{
		Experiment: experiment, Operation: "get-order",
		Flags: flags, FlagKey: flagKey, Publisher: pub,
		Old: oldDB.Order, New: newDB.Order,
		Compare: func(a, b Order) bool { return a == b },
	}, migration.Timeout(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	setStatus, err := migration.NewWriter(migration.Config[StatusChange, migration.WriteResult]{
		Experiment: experiment, Operation: "set-status",
		Flags: flags, FlagKey: flagKey, Publisher: pub,
		Old: oldDB.SetStatus, New: newDB.SetStatus,
		Compare: func(a, b migration.WriteResult) bool { return a == b },
	}, migration.Timeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() {
		// Let the last pairs reach the publisher before it closes.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = getOrder.Wait(ctx)
		_ = setStatus.Wait(ctx)
	})

	reg := prometheus.NewRegistry()
	collector, err := parityprom.New(getOrder, setStatus)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(collector)

	app := &App{NATSURL: natsURL, Close: closeAll, getOrder: getOrder, setStatus: setStatus, pub: pub}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", app.handleGetOrder)
	mux.HandleFunc("PUT /orders/{id}/status", app.handleSetStatus)
	mux.HandleFunc("GET /debug/parity", app.handleStats)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	app.Handler = mux
	return app, nil
}

// evalContext is who the request is for: the user id is the targeting key,
// country and plan are segment attributes. A real service would take them
// from its session, not from headers.
func evalContext(r *http.Request) openfeature.EvaluationContext {
	attrs := map[string]any{}
	if c := r.Header.Get("X-Country"); c != "" {
		attrs["country"] = c
	}
	if p := r.Header.Get("X-Plan"); p != "" {
		attrs["plan"] = p
	}
	return openfeature.NewEvaluationContext(r.Header.Get("X-User-ID"), attrs)
}

func (a *App) handleGetOrder(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "bad order id")
		return
	}
	order, err := a.getOrder.Read(r.Context(), evalContext(r), id)
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
	res, err := a.setStatus.Write(r.Context(), evalContext(r), StatusChange{OrderID: id, Status: body.Status})
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
