// Command loadgen publishes the demo's synthetic pairs through the Go hook to
// a running Parity (any NATS server with the pair stream), for trying a
// deployment or loading it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parityhq/parity/internal/cli"
	"github.com/parityhq/parity/internal/demo"
	"github.com/parityhq/parity/pkg/publish"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := cli.New("loadgen")
	url := fs.String("nats-url", "nats://127.0.0.1:4223", "NATS server URL (the collector's embedded server by default)")
	natsFlags := cli.NATSFlags(fs)
	rate := fs.Int("rate", 200, "pairs per second")
	dur := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	fs.Env("nats-url", "NATS_URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, err := natsFlags()
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	nc, err := nats.Connect(*url, append(opts, nats.Name("parity-loadgen"))...)
	if err != nil {
		return fmt.Errorf("loadgen: connect to %s: %w", *url, err)
	}
	defer nc.Close()
	pub, err := publish.New(nc, publish.Options{})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	runErr := demo.Run(ctx, pub, *rate)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closeErr := pub.Close(cctx)
	st := pub.Stats()
	fmt.Printf("loadgen: offered %d, published %d, dropped %d, failed %d\n", st.Offered, st.Published, st.Dropped, st.Failed)
	if runErr != nil {
		return runErr
	}
	return closeErr
}
