package verifier

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/store"
)

// RunOptions configure [Run]: a verifier process.
type RunOptions struct {
	DatabaseURL string
	NATSURL     string
	NATSOptions []nats.Option
	// Workers is the number of workers in this process, each on its own
	// connection. Defaults to 1.
	Workers int
	Store   store.Options
	Worker  Options
}

// Run opens the store, connects to NATS and runs the workers until ctx ends,
// then lets each flush what it received.
func Run(ctx context.Context, o RunOptions) error {
	if o.Workers == 0 {
		o.Workers = 1
	}
	st, err := store.Open(ctx, o.DatabaseURL, o.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	errc := make(chan error, o.Workers)
	for i := range o.Workers {
		opts := append([]nats.Option{nats.Name(fmt.Sprintf("parity-verifier-%d", i)), nats.MaxReconnects(-1)}, o.NATSOptions...)
		nc, err := nats.Connect(o.NATSURL, opts...)
		if err != nil {
			return fmt.Errorf("verifier: connect to NATS at %s: %w", o.NATSURL, err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("verifier: jetstream: %w", err)
		}
		w, err := New(js, st, o.Worker)
		if err != nil {
			return err
		}
		go func() { errc <- w.Run(ctx) }()
	}
	var errs []error
	for range o.Workers {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
