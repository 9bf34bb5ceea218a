// Command reconcile shows a reconciliation sweep finding the orders
// example's backfill bugs, including those in rows its traffic never reads.
//
// It resets three databases on the local PostgreSQL (parity_reconcile_demo
// for Parity, parity_reconcile_old and parity_reconcile_new for the orders
// service, seeded with the backfill bugs), starts the collector with both
// orders databases as sweep sources and the orders service with traffic,
// then starts a sweep of every order through the API, prints what it found
// and keeps the dashboard up until Ctrl-C (`make reconcile-example`;
// docs/reconcile.md).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parityhq/parity/examples/orders/service"
	"github.com/parityhq/parity/internal/collector"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reconcile:", err)
		os.Exit(1)
	}
}

func run() error {
	admin := os.Getenv("DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	addr := flag.String("addr", "127.0.0.1:8080", "dashboard address")
	appAddr := flag.String("app-addr", "127.0.0.1:8081", "address of the orders service")
	flag.StringVar(&admin, "admin-url", admin, "PostgreSQL URL to create the example's databases from ($DATABASE_URL)")
	exit := flag.Bool("exit", false, "exit once the sweep is done instead of keeping the dashboard up")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	urls := map[string]string{}
	for _, name := range []string{"parity_reconcile_demo", "parity_reconcile_old", "parity_reconcile_new"} {
		u, err := resetDatabase(ctx, admin, name)
		if err != nil {
			return err
		}
		urls[name] = u
	}
	dir, err := os.MkdirTemp("", "parity-reconcile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var b [24]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	col, err := collector.Start(ctx, collector.Options{
		Addr: *addr, DatabaseURL: urls["parity_reconcile_demo"], EmbeddedNATSAddr: "127.0.0.1:-1", DataDir: dir,
		OperatorTokens: []string{token}, Logger: logger,
		ReconcileSources: map[string]string{"legacy": urls["parity_reconcile_old"], "cloud": urls["parity_reconcile_new"]},
	})
	if err != nil {
		return err
	}
	defer func() { _ = col.Shutdown(context.WithoutCancel(ctx)) }()
	svc, err := service.Setup(ctx, service.Options{AdminURL: admin, OldURL: urls["parity_reconcile_old"], NewURL: urls["parity_reconcile_new"],
		Reset: true, SeedBugs: true, NATSURL: col.NATSURL(), CreateStream: false})
	if err != nil {
		return err
	}
	defer svc.Close()
	ln, err := net.Listen("tcp", *appAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: svc.Handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	tctx, stopTraffic := context.WithCancel(ctx)
	var traffic sync.WaitGroup
	traffic.Go(func() { service.Traffic(tctx, "http://"+ln.Addr().String(), service.TrafficOptions{Rate: 50}) })
	defer func() { stopTraffic(); traffic.Wait() }()
	fmt.Printf("orders service at http://%s with traffic: reads orders 1–5, writes 6–8; orders %d–%d are cold\n",
		ln.Addr(), service.ColdFirst, service.ColdLast)

	api := func(method, path string, body, out any) error {
		raw, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, method, col.URL()+path, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, answer)
		}
		if out != nil {
			return json.Unmarshal(answer, out)
		}
		return nil
	}
	exp := "/api/v1/experiments/" + service.Experiment
	// The view shows the new schema in the old one's shape; updated_at is
	// set by each database on its own, so it is not compared.
	if err := api("PUT", exp+"/rules", collector.RulesUpdate{Reason: "reconcile orders",
		Rules: json.RawMessage(`{"operations":{"reconcile:orders":{"ignore":["updated_at"]}}}`)}, nil); err != nil {
		return err
	}
	var sw collector.SweepView
	if err := api("POST", exp+"/sweeps", map[string]any{"name": "orders", "old": map[string]string{"source": "legacy", "table": "orders"},
		"new": map[string]string{"source": "cloud", "table": "orders_v"}, "key": "id", "segments": []string{"status"}, "rate": 1000}, &sw); err != nil {
		return err
	}
	fmt.Printf("sweep %d started: every order, legacy.orders against cloud.orders_v, at most 1,000 rows/s\n", sw.ID)
	fmt.Printf("dashboard: %s/experiments/%s#sweeps\n", col.URL(), service.Experiment)
	for sw.Status == "running" {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		if err := api("GET", fmt.Sprintf("/api/v1/sweeps/%d", sw.ID), nil, &sw); err != nil {
			return err
		}
		fmt.Printf("  %d of ~%d rows, %d differences\n", sw.RowsDone, sw.Estimate, sw.Differences)
	}
	if sw.Status != "complete" {
		return errors.New("sweep " + sw.Status + ": " + sw.Error)
	}
	fmt.Printf("sweep %d complete: %d rows, %d divergent, %d missing in new, %d extra in new\n", sw.ID,
		sw.Counts.Compared, sw.Counts.Divergent, sw.Counts.MissingInNew, sw.Counts.ExtraInNew)
	var samples struct {
		Samples []struct {
			UserKey string   `json:"user_key"`
			Segment string   `json:"segment"`
			Verdict string   `json:"verdict"`
			Paths   []string `json:"paths"`
		} `json:"samples"`
	}
	if err := api("GET", exp+"/samples?operation=reconcile:orders", nil, &samples); err != nil {
		return err
	}
	for _, s := range samples.Samples {
		fmt.Printf("  %s (%s): %s %v\n", s.UserKey, s.Segment, s.Verdict, s.Paths)
	}
	fmt.Printf("orders 4 and 5 are read by the traffic; orders %d and %d are not: only the sweep finds them.\n", service.ColdRounded, service.ColdMissing)
	if *exit {
		return nil
	}
	fmt.Printf("\nThe dashboard stays up at %s/experiments/%s#sweeps. Ctrl-C to stop.\n", col.URL(), service.Experiment)
	<-ctx.Done()
	return nil
}

func resetDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL: %w", err)
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
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}
