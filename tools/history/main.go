// Command history writes synthetic count history into a Parity database (see
// internal/history): N days of per-minute counts and their hourly and daily
// rollups at a given shape, ending now, so history-dependent figures (stored
// bytes per day, dashboard speed at 30 days) can be rerun. With
// -minute-retention 72h the minutes are written only for the last 72 hours,
// as a running collector keeps them (B11's history:
// -days 30 -experiments 1 -variants 2 -signatures -minute-retention 72h).
//
//	go run ./tools/history -database-url postgres://postgres@127.0.0.1:5432/parity_hist \
//	    -days 1 -experiments 20 -operations 5 -segments 100
//
// The database is created and migrated if needed; the experiments written
// must not exist yet.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/parityhq/parity/internal/history"
	"github.com/parityhq/parity/internal/store"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "history:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	url := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL database to write into (created if missing)")
	days := fs.Float64("days", 1, "days of history, ending now")
	var sh history.Shape
	fs.IntVar(&sh.Experiments, "experiments", 20, "experiments")
	fs.IntVar(&sh.Operations, "operations", 5, "operations per experiment")
	fs.IntVar(&sh.Segments, "segments", 100, "segments per operation")
	fs.Int64Var(&sh.Pairs, "pairs", 20, "pairs per segment and minute")
	fs.StringVar(&sh.Prefix, "prefix", "hist", "experiment name prefix")
	fs.IntVar(&sh.Variants, "variants", 0, "flag variants per operation (0: no variant counts)")
	fs.BoolVar(&sh.Signatures, "signatures", false, "write a mismatch signature per divergent minute")
	keep := fs.Duration("minute-retention", 0, "write per-minute rows only for this long before now, as the collector's --minute-retention leaves them (0: every minute)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" {
		return fmt.Errorf("-database-url (or DATABASE_URL) is required")
	}
	if *days <= 0 {
		return fmt.Errorf("-days %v is not positive", *days)
	}
	sh.Minutes = int(*days * 24 * 60)
	now := time.Now().UTC().Truncate(time.Minute)
	sh.Start = now.Add(-time.Duration(sh.Minutes) * time.Minute)
	if *keep > 0 {
		sh.MinutesFrom = now.Add(-*keep).Truncate(time.Hour)
	}
	if err := sh.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	st, err := store.Open(ctx, *url, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	began := time.Now()
	n, err := history.Generate(ctx, st.Pool(), sh)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d minute rows (%d experiments × %d operations × %d segments × %d minutes) in %v\n",
		n, sh.Experiments, sh.Operations, sh.Segments, sh.Minutes, time.Since(began).Round(time.Millisecond))
	return nil
}
