// Command orders is an example service migrating its orders from one
// PostgreSQL database (the old schema) to another (the new schema) with
// Parity's migration helpers. The service itself is package
// [github.com/parityhq/parity/examples/orders/service]; this command parses
// its flags and serves it. See README.md.
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

	"github.com/parityhq/parity/examples/orders/service"
	"github.com/parityhq/parity/pkg/envelope"
)

func main() {
	opts, rate, err := parseFlags(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		os.Exit(2) // the flag package has printed the error and the usage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, rate); err != nil {
		slog.Error("orders", "err", err)
		os.Exit(1)
	}
}

// parseFlags turns the command line into the service's options and the
// traffic rate.
func parseFlags(args []string) (opts service.Options, rate int, err error) {
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	opts = service.DefaultOptions()
	fs.StringVar(&opts.Addr, "addr", opts.Addr, "HTTP listen address")
	fs.StringVar(&opts.AdminURL, "admin-url", opts.AdminURL, "PostgreSQL URL of a database to create the others from ($DATABASE_URL)")
	fs.StringVar(&opts.OldURL, "old-url", opts.OldURL, "PostgreSQL URL of the old database (created if missing)")
	fs.StringVar(&opts.NewURL, "new-url", opts.NewURL, "PostgreSQL URL of the new database (created if missing)")
	fs.BoolVar(&opts.Reset, "reset", false, "drop and re-seed both schemas")
	fs.StringVar(&opts.NATSURL, "nats-url", opts.NATSURL, `NATS server URL, or "embedded" to run one in-process`)
	fs.BoolVar(&opts.CreateStream, "create-stream", opts.CreateStream, "create the PARITY_PAIRS stream if missing (normally the verifier's job)")
	fs.BoolVar(&opts.SeedBugs, "seed-bugs", opts.SeedBugs, "seed the new database with two backfill bugs: order 4 rounded differently, order 5 missing (existing rows are kept: use --reset to switch)")
	fs.StringVar(&opts.BugCountry, "bug-country", "", "break the new read path for users in this country: their totals come back 100 times too big")
	fs.IntVar(&rate, "traffic", 0, "send this many requests per second to the service, as users of every segment would (0: none)")
	stage := func(dst *envelope.Stage) func(string) error {
		return func(s string) error {
			if !envelope.Stage(s).Valid() {
				return fmt.Errorf("unknown stage %q", s)
			}
			*dst = envelope.Stage(s)
			return nil
		}
	}
	fs.Func("testing-group-stage", "stage for the testing group, users 123 and 456 (default live)", stage(&opts.Rollout.TestingGroup))
	fs.Func("segment-stage", "stage for users in IN or US, or on the pro plan (default shadow)", stage(&opts.Rollout.Segments))
	fs.Func("default-stage", "stage for everyone else (default dualwrite)", stage(&opts.Rollout.Everyone))
	err = fs.Parse(args)
	return opts, rate, err
}

func run(ctx context.Context, opts service.Options, rate int) error {
	app, err := service.Setup(ctx, opts)
	if err != nil {
		return err
	}
	defer app.Close()
	srv := &http.Server{Addr: opts.Addr, Handler: app.Handler, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("orders: listening", "addr", "http://"+opts.Addr, "nats", app.NATSURL)
	if rate > 0 {
		tctx, stopTraffic := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			service.Traffic(tctx, "http://"+opts.Addr, service.TrafficOptions{Rate: rate})
		}()
		defer func() { stopTraffic(); <-done }() // before app.Close
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
