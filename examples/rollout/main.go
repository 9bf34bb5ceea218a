// Command rollout runs Parity's closed-loop rollout scenario in one process
// and narrates it while the dashboard shows it: the orders example under
// load reads its migration stage from Parity's OpenFeature provider, the
// new read path has a bug for country=IN, the controller advances the
// testing group, starts the percentage steps, finds the breach in IN and
// steps back; the bug is fixed, the operator resumes and the controller
// advances to complete. See package scenario.
//
//	go run ./examples/rollout            # or: make rollout-demo
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parityhq/parity/examples/rollout/scenario"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rollout:", err)
		os.Exit(1)
	}
}

func run() error {
	admin := os.Getenv("DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	cfg := scenario.Config{AdminURL: admin, EmbeddedNATSAddr: "127.0.0.1:-1"}
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "dashboard address")
	flag.StringVar(&cfg.AppAddr, "app-addr", "127.0.0.1:8081", "address of the orders service")
	flag.StringVar(&cfg.AdminURL, "admin-url", admin, "PostgreSQL URL to create the scenario's databases from ($DATABASE_URL)")
	flag.IntVar(&cfg.Rate, "rate", 200, "requests per second to the orders service")
	flag.IntVar(&cfg.Users, "users", 300, "distinct users sending them")
	flag.DurationVar(&cfg.Hold, "hold", 10*time.Second, "every step's hold time")
	flag.DurationVar(&cfg.FixAfter, "fix-after", 20*time.Second, "how long the rollout stays paused on the breach before the bug is fixed")
	flag.DurationVar(&cfg.Interval, "interval", time.Second, "how often the controller looks at the gate")
	exit := flag.Bool("exit", false, "exit once the rollout is complete instead of keeping the dashboard up")
	flag.Parse()
	switch {
	case cfg.Rate <= 0 || cfg.Users <= 0:
		return fmt.Errorf("--rate and --users must be positive")
	case cfg.Hold < 0 || cfg.FixAfter < 0 || cfg.Interval <= 0:
		return fmt.Errorf("--hold and --fix-after must not be negative, --interval must be positive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Fresh databases every run: the scenario starts from no rollout.
	urls := map[string]*string{"parity_rollout_demo": &cfg.DatabaseURL, "parity_rollout_old": &cfg.OldURL, "parity_rollout_new": &cfg.NewURL}
	for name, dst := range urls {
		u, err := resetDatabase(ctx, cfg.AdminURL, name)
		if err != nil {
			return err
		}
		*dst = u
	}
	dir, err := os.MkdirTemp("", "parity-rollout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.DataDir = dir
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Progress = func(s string) { fmt.Println(s) }
	if !*exit {
		cfg.Linger = func(dashboard string) {
			fmt.Printf("\nThe dashboard stays up at %s/experiments/%s#rollout. Ctrl-C to stop.\n", dashboard, scenario.Experiment)
			<-ctx.Done()
		}
	}
	start := time.Now()
	if _, err := scenario.Run(ctx, cfg); err != nil {
		return err
	}
	fmt.Printf("done in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// resetDatabase drops and creates database name on the server of adminURL
// and returns its URL.
func resetDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL at %s: %w", redact(adminURL), err)
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("--admin-url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return strings.Replace(u.Redacted(), "xxxxx", "…", 1)
}
