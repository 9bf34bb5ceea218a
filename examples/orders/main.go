// Command orders is an example service migrating its orders from one
// PostgreSQL database (the old schema) to another (the new schema) with
// Parity's migration helpers. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
)

func main() {
	opts := defaultOptions()
	flag.StringVar(&opts.Addr, "addr", opts.Addr, "HTTP listen address")
	flag.StringVar(&opts.AdminURL, "admin-url", opts.AdminURL, "PostgreSQL URL of a database to create the others from ($DATABASE_URL)")
	flag.StringVar(&opts.OldURL, "old-url", opts.OldURL, "PostgreSQL URL of the old database (created if missing)")
	flag.StringVar(&opts.NewURL, "new-url", opts.NewURL, "PostgreSQL URL of the new database (created if missing)")
	flag.BoolVar(&opts.Reset, "reset", false, "drop and re-seed both schemas")
	flag.StringVar(&opts.NATSURL, "nats-url", opts.NATSURL, `NATS server URL, or "embedded" to run one in-process`)
	flag.BoolVar(&opts.CreateStream, "create-stream", opts.CreateStream, "create the PARITY_PAIRS stream if missing (normally the verifier's job)")
	rate := flag.Int("traffic", 0, "send this many requests per second to the service, as users of every segment would (0: none)")
	stage := func(dst *envelope.Stage) func(string) error {
		return func(s string) error {
			if !envelope.Stage(s).Valid() {
				return fmt.Errorf("unknown stage %q", s)
			}
			*dst = envelope.Stage(s)
			return nil
		}
	}
	flag.Func("testing-group-stage", "stage for the testing group, users 123 and 456 (default live)", stage(&opts.Rollout.TestingGroup))
	flag.Func("segment-stage", "stage for users in IN or US, or on the pro plan (default shadow)", stage(&opts.Rollout.Segments))
	flag.Func("default-stage", "stage for everyone else (default dualwrite)", stage(&opts.Rollout.Everyone))
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, *rate); err != nil {
		slog.Error("orders", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts Options, rate int) error {
	app, err := setup(ctx, opts)
	if err != nil {
		return err
	}
	defer app.Close()
	srv := &http.Server{Addr: opts.Addr, Handler: app.Handler, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("orders: listening", "addr", "http://"+opts.Addr, "nats", app.NATSURL)
	if rate > 0 {
		go traffic(ctx, "http://"+opts.Addr, rate)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
