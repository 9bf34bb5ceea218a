// Command collector serves Parity's dashboard, JSON API and HTTP ingest. With
// no --nats-url it also runs an embedded NATS server and verifier workers, so
// one process is the whole system; --demo adds synthetic traffic.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/parityhq/parity/internal/cli"
	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/demo"
)

func main() {
	opts, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := collector.Run(ctx, opts); err != nil {
		opts.Logger.Error("collector stopped", "err", err)
		os.Exit(1)
	}
}

// flags declares the collector's flags; the deployments test reads it.
func flags() (*cli.FlagSet, *collector.Options, func() error) {
	fs := cli.New("collector")
	o := &collector.Options{}
	fs.StringVar(&o.Addr, "addr", collector.DefaultAddr, "HTTP listen address")
	fs.StringVar(&o.DatabaseURL, "database-url", cli.DefaultDatabaseURL, "PostgreSQL URL; the database is created if missing")
	fs.StringVar(&o.NATSURL, "nats-url", "", "NATS server URL(s), comma-separated; empty runs an embedded NATS server with JetStream")
	nats := cli.NATSFlags(fs)
	fs.StringVar(&o.EmbeddedNATSAddr, "embedded-nats-addr", collector.DefaultEmbeddedNATSAddr, "listen address of the embedded NATS server (port -1: any free port)")
	fs.StringVar(&o.DataDir, "data-dir", collector.DefaultDataDir, "directory for the embedded NATS server's data")
	fs.IntVar(&o.Workers, "workers", 0, "in-process verifier workers (0: 2 with embedded NATS, none with --nats-url; -1: none)")
	tokens := fs.String("ingest-token", "", "comma-separated bearer tokens accepted by POST /api/v1/pairs (each at least 16 characters)")
	opTokens := fs.String("operator-token", "", "comma-separated bearer tokens that may change diff rules and gates, and read (each at least 16 characters)")
	viewTokens := fs.String("viewer-token", "", "comma-separated bearer tokens that may read the dashboard and the API (each at least 16 characters)")
	fs.StringVar(&o.AnonymousViewers, "anonymous-viewers", collector.AnonymousViewersAuto, "let requests without a token read (never change): true, false, or auto (true on a loopback --addr with no --viewer-token)")
	fs.StringVar(&o.SessionSecret, "session-secret", "", "secret (32+ bytes) signing dashboard sessions, shared by collectors behind one address; empty: random at start")
	vf := cli.VerifierFlags(fs, &o.Verifier)
	cli.StoreFlags(fs, &o.Store)
	fs.DurationVar(&o.SampleRetention, "sample-retention", collector.DefaultSampleRetention, "how long divergence samples are kept (negative: forever)")
	fs.DurationVar(&o.Store.MinuteRetention, "minute-retention", collector.DefaultMinuteRetention, "how long per-minute counts are kept; older windows are answered from hourly rollups, with the same totals (negative: forever)")
	fs.DurationVar(&o.DeadLetterRetention, "dead-letter-retention", collector.DefaultDeadLetterRetention, "how long dead letters are kept (negative: forever)")
	fs.DurationVar(&o.RolloutInterval, "rollout-interval", controller.DefaultInterval, "how often the rollout controller evaluates each active rollout's gate")
	fs.DurationVar(&o.RolloutSettle, "rollout-settle", controller.DefaultSettle, "how long after a rollout changes its gate's window starts (pairs from before the change are not judged)")
	sources := fs.String("reconcile-sources", "", "databases reconciliation sweeps may read, as name=URL pairs separated by spaces (prefer the variable: URLs carry passwords)")
	fs.BoolVar(&o.HTTP.TrustForwardedProto, "trust-forwarded-proto", false, "behind a TLS-terminating proxy that sets X-Forwarded-Proto: send Strict-Transport-Security when it says https")
	fs.Float64Var(&o.HTTP.OFREPRate, "ofrep-rate", collector.DefaultOFREPRate, "OFREP evaluations per second per client (token or address) before 429; negative: no limit")
	fs.IntVar(&o.HTTP.OFREPBurst, "ofrep-burst", 0, "OFREP evaluations a client may make at once (0: twice --ofrep-rate)")
	corsOrigins := fs.String("ofrep-cors-origins", "", "comma-separated origins (https://app.example.com, or *) whose browser code may call OFREP; empty: none")
	demoOn := fs.Bool("demo", false, "publish synthetic demo traffic through the Go hook")
	fs.IntVar(&o.DemoRate, "demo-rate", demo.DefaultRate, "demo pairs per second (with --demo)")
	fs.BoolVar(&o.DemoFresh, "demo-fresh", false, "with --demo: drop the database first so the demo starts clean (only a database named *_demo)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	for name, env := range map[string]string{
		"addr": "PARITY_ADDR", "database-url": "DATABASE_URL", "nats-url": "NATS_URL",
		"embedded-nats-addr": "PARITY_EMBEDDED_NATS_ADDR", "data-dir": "PARITY_DATA_DIR", "workers": "PARITY_WORKERS",
		"ingest-token": "PARITY_INGEST_TOKENS", "operator-token": "PARITY_OPERATOR_TOKENS", "viewer-token": "PARITY_VIEWER_TOKENS",
		"anonymous-viewers": "PARITY_ANONYMOUS_VIEWERS", "session-secret": "PARITY_SESSION_SECRET", "sample-retention": "PARITY_SAMPLE_RETENTION", "dead-letter-retention": "PARITY_DEAD_LETTER_RETENTION", "minute-retention": "PARITY_MINUTE_RETENTION", "demo": "PARITY_DEMO", "demo-fresh": "PARITY_DEMO_FRESH",
		"rollout-interval": "PARITY_ROLLOUT_INTERVAL", "rollout-settle": "PARITY_ROLLOUT_SETTLE",
		"demo-rate": "PARITY_DEMO_RATE", "log-level": "PARITY_LOG_LEVEL", "reconcile-sources": "PARITY_RECONCILE_SOURCES",
		"trust-forwarded-proto": "PARITY_TRUST_FORWARDED_PROTO", "ofrep-rate": "PARITY_OFREP_RATE", "ofrep-burst": "PARITY_OFREP_BURST",
		"ofrep-cors-origins": "PARITY_OFREP_CORS_ORIGINS",
	} {
		fs.Env(name, env)
	}
	finish := func() error {
		var err error
		if o.Logger, err = cli.Logger(*level); err != nil {
			return fmt.Errorf("collector: --log-level: %w", err)
		}
		o.IngestTokens = cli.List(*tokens)
		o.OperatorTokens = cli.List(*opTokens)
		o.ViewerTokens = cli.List(*viewTokens)
		o.HTTP.OFREPCORSOrigins = cli.List(*corsOrigins)
		if o.RolloutInterval <= 0 {
			return fmt.Errorf("collector: --rollout-interval: %v is not positive", o.RolloutInterval)
		}
		if o.RolloutSettle <= 0 {
			return fmt.Errorf("collector: --rollout-settle: %v is not positive", o.RolloutSettle)
		}
		if !*demoOn {
			o.DemoRate = 0
		}
		if o.ReconcileSources, err = parseSources(*sources); err != nil {
			return err
		}
		if o.NATSOptions, err = nats(); err != nil {
			return fmt.Errorf("collector: %w", err)
		}
		return vf()
	}
	return fs, o, finish
}

func parse(args []string) (collector.Options, error) {
	fs, o, finish := flags()
	if err := fs.Parse(args); err != nil {
		return collector.Options{}, err
	}
	return *o, finish()
}

// parseSources reads "name=URL name=URL" (spaces or newlines between
// pairs). Errors never quote a URL.
func parseSources(s string) (map[string]string, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(fields))
	for i, f := range fields {
		name, u, ok := strings.Cut(f, "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("collector: --reconcile-sources: entry %d is not name=URL", i+1)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("collector: --reconcile-sources: %q given twice", name)
		}
		out[name] = u
	}
	return out, nil
}
