package verifier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/pkg/natsnames"
)

// StreamOptions configure the pair stream. The zero value is valid.
type StreamOptions struct {
	// Name of the stream. Defaults to natsnames.PairStream ("PARITY_PAIRS").
	Name string
	// MaxBytes caps the stream's size; when full, new publishes are refused
	// (DiscardNew) and the hooks count them as failed, so nothing already
	// stored is lost silently. Defaults to 1 GiB.
	MaxBytes int64
	// MaxAge is how long an unconsumed pair is kept. Defaults to 24h.
	MaxAge time.Duration
	// Replicas is the stream's replication factor (1, 3 or 5). Defaults to 1.
	Replicas int
	// Duplicates is the window within which a message published twice
	// with the same Nats-Msg-Id (its envelope's id) is stored once. It needs
	// to cover the hooks' retries: the Go hook resends a message only until
	// its AckTimeout (5s by default), an HTTP client retries a failed
	// request within seconds. The server keeps every id of the window in
	// memory, so a longer window costs memory in proportion to the message
	// rate; the verifier's check of each message's id against its envelope
	// (docs/guarantees.md) does not depend on it. Defaults to 30s.
	Duplicates time.Duration
}

// maxMsgSize is the pair stream's largest message: envelope.MaxSize plus
// room for headers.
const maxMsgSize = 1 << 20

// DefaultDuplicates is the default duplicate window of the pair stream.
const DefaultDuplicates = 30 * time.Second

// DefaultStreamOptions returns the options a zero [StreamOptions] stands
// for.
func DefaultStreamOptions() StreamOptions {
	return StreamOptions{Name: natsnames.PairStream, MaxBytes: 1 << 30, MaxAge: 24 * time.Hour, Replicas: 1,
		Duplicates: DefaultDuplicates}
}

func (o *StreamOptions) setDefaults() error {
	d := DefaultStreamOptions()
	if o.Name == "" {
		o.Name = d.Name
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = d.MaxBytes
	}
	if o.MaxAge == 0 {
		o.MaxAge = d.MaxAge
	}
	if o.Replicas == 0 {
		o.Replicas = d.Replicas
	}
	if o.Duplicates == 0 {
		o.Duplicates = d.Duplicates
	}
	switch {
	case o.MaxBytes < 0:
		return fmt.Errorf("%w: stream MaxBytes: must not be negative", ErrInvalidOption)
	case o.MaxAge < 0:
		return fmt.Errorf("%w: stream MaxAge: must not be negative", ErrInvalidOption)
	case o.Replicas != 1 && o.Replicas != 3 && o.Replicas != 5:
		return fmt.Errorf("%w: stream Replicas: must be 1, 3 or 5, got %d", ErrInvalidOption, o.Replicas)
	case o.Duplicates < 0:
		return fmt.Errorf("%w: stream Duplicates: must not be negative", ErrInvalidOption)
	}
	return nil
}

// EnsureStream creates the pair stream, or updates it to opts, idempotently.
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts StreamOptions) (jetstream.Stream, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	cfg := jetstream.StreamConfig{
		Name:        opts.Name,
		Description: "Parity pairs: old and new results of migrated calls",
		Subjects:    []string{natsnames.PairSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxBytes:    opts.MaxBytes,
		MaxAge:      opts.MaxAge,
		MaxMsgSize:  maxMsgSize,
		Discard:     jetstream.DiscardNew,
		Duplicates:  opts.Duplicates,
		Replicas:    opts.Replicas,
	}
	// Read first and write only when the settings differ: many verifiers
	// start at once, and updating a stream while another process creates its
	// consumer is needless churn on the server.
	if st, err := js.Stream(ctx, opts.Name); err == nil && sameSettings(st.CachedInfo().Config, cfg) {
		return st, nil
	} else if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("verifier: ensure stream %s: %w", opts.Name, err)
	}
	st, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("verifier: ensure stream %s: %w", opts.Name, err)
	}
	return st, nil
}

// sameSettings reports whether the stream already has every setting Parity
// manages.
func sameSettings(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.MaxBytes == want.MaxBytes && have.MaxAge == want.MaxAge && have.MaxMsgSize == want.MaxMsgSize &&
		have.Discard == want.Discard && have.Duplicates == want.Duplicates && have.Replicas == want.Replicas
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream, durable string, o *Options) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "Parity verifier workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1, // poison messages are terminated explicitly; infrastructure failures must not lose pairs
		MaxAckPending: o.MaxAckPending,
		FilterSubject: natsnames.PairSubjects,
	}
	// Read first and write only when the settings differ: verifiers that
	// all create the consumer at once, each through a different server of a
	// cluster, can leave some of them without pull requests served.
	if c, err := js.Consumer(ctx, stream, durable); err == nil {
		have := c.CachedInfo().Config
		if have.AckPolicy == cfg.AckPolicy && have.AckWait == cfg.AckWait && have.MaxDeliver == cfg.MaxDeliver &&
			have.MaxAckPending == cfg.MaxAckPending && have.FilterSubject == cfg.FilterSubject {
			return c, nil
		}
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		// Another verifier may have created it with slightly different
		// settings; bind to what exists rather than fail.
		if c2, err2 := js.Consumer(ctx, stream, durable); err2 == nil {
			return c2, nil
		}
		return nil, fmt.Errorf("verifier: ensure consumer %s on %s: %w", durable, stream, err)
	}
	return c, nil
}

// ErrInvalidOption is wrapped by every options error.
var ErrInvalidOption = errors.New("verifier: invalid option")
