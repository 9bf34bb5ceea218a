package verifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parityhq/parity/internal/secret"
	"github.com/parityhq/parity/internal/store"
)

// RunOptions configure [Run]: a verifier process.
type RunOptions struct {
	DatabaseURL string
	NATSURL     string
	NATSOptions []nats.Option
	// Workers is the number of workers in this process, each on its own
	// connection. Defaults to DefaultWorkers.
	Workers int
	Store   store.Options
	Worker  Options
	// HTTPAddr serves /metrics, /healthz and /readyz. Defaults to
	// DefaultHTTPAddr; "-" serves nothing.
	HTTPAddr string
}

// Defaults of [RunOptions].
const (
	DefaultWorkers  = 1
	DefaultHTTPAddr = "127.0.0.1:9090"
)

// Run opens the store, connects to NATS and runs the workers until ctx ends,
// then lets each flush what it received.
func Run(ctx context.Context, o RunOptions) error {
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = DefaultHTTPAddr
	}
	if err := secret.CheckURL(o.DatabaseURL); err != nil {
		return fmt.Errorf("verifier: invalid option DatabaseURL (--database-url, DATABASE_URL): %w", err)
	}
	st, err := store.Open(ctx, o.DatabaseURL, o.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	var workers []*Worker
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for i := range o.Workers {
		opts := append([]nats.Option{nats.Name(fmt.Sprintf("parity-verifier-%d", i)), nats.MaxReconnects(-1)}, o.NATSOptions...)
		nc, err := nats.Connect(o.NATSURL, opts...)
		if err != nil {
			return fmt.Errorf("verifier: connect to NATS at %s: %w", o.NATSURL, err)
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("verifier: jetstream: %w", err)
		}
		w, err := New(js, st, o.Worker)
		if err != nil {
			return err
		}
		workers = append(workers, w)
	}
	if o.HTTPAddr != "-" {
		js, _ := jetstream.New(conns[0])
		srv, err := serveHTTP(o.HTTPAddr, NewMetrics(js, o.Worker, func() []*Worker { return workers }), FoldMetrics(st.Folded), func(ctx context.Context) error {
			if err := st.Ping(ctx); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			for _, nc := range conns {
				if !nc.IsConnected() {
					return fmt.Errorf("nats: %s", nc.Status())
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	errc := make(chan error, len(workers))
	for _, w := range workers {
		go func() { errc <- w.Run(ctx) }()
	}
	var errs []error
	for range workers {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// maxHeaderBytes bounds a request's headers (Go's default reads 1 MB).
const maxHeaderBytes = 16 << 10

// serveHTTP serves /metrics, /healthz (the process runs) and /readyz (ready
// reports nil) on addr.
func serveHTTP(addr string, m *Metrics, more []prometheus.Collector, ready func(context.Context) error) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m)
	reg.MustRegister(more...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("verifier: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes, Addr: ln.Addr().String()}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
