// Command verifier consumes pairs from NATS JetStream, judges them and writes
// per-segment counts to PostgreSQL. Run as many as the traffic needs: they
// share one durable consumer.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/parityhq/parity/internal/cli"
	"github.com/parityhq/parity/internal/verifier"
)

func main() {
	opts, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := verifier.Run(ctx, opts); err != nil {
		opts.Worker.Logger.Error("verifier stopped", "err", err)
		os.Exit(1)
	}
}

// flags declares the verifier's flags; the deployments test reads it.
func flags() (*cli.FlagSet, *verifier.RunOptions, func() error) {
	fs := cli.New("verifier")
	o := &verifier.RunOptions{}
	fs.StringVar(&o.DatabaseURL, "database-url", cli.DefaultDatabaseURL, "PostgreSQL URL; the database is created if missing")
	fs.StringVar(&o.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	nats := cli.NATSFlags(fs)
	fs.IntVar(&o.Workers, "workers", verifier.DefaultWorkers, "workers in this process, each on its own NATS connection")
	fs.StringVar(&o.HTTPAddr, "http-addr", verifier.DefaultHTTPAddr, "serves /metrics, /healthz and /readyz (\"-\": none)")
	vf := cli.VerifierFlags(fs, &o.Worker)
	cli.StoreFlags(fs, &o.Store)
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	for name, env := range map[string]string{
		"database-url": "DATABASE_URL", "nats-url": "NATS_URL", "workers": "PARITY_WORKERS", "http-addr": "PARITY_HTTP_ADDR",
		"log-level": "PARITY_LOG_LEVEL",
	} {
		fs.Env(name, env)
	}
	finish := func() error {
		var err error
		if o.Worker.Logger, err = cli.Logger(*level); err != nil {
			return fmt.Errorf("verifier: --log-level: %w", err)
		}
		if o.Workers < 1 {
			return fmt.Errorf("verifier: --workers: must be at least 1, got %d", o.Workers)
		}
		if o.NATSOptions, err = nats(); err != nil {
			return fmt.Errorf("verifier: %w", err)
		}
		return vf()
	}
	return fs, o, finish
}

func parse(args []string) (verifier.RunOptions, error) {
	fs, o, finish := flags()
	if err := fs.Parse(args); err != nil {
		return verifier.RunOptions{}, err
	}
	return *o, finish()
}
