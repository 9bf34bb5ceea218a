package migration

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/pkg/envelope"
)

var (
	// ErrInvalidOption is wrapped by every error [NewReader] and [NewWriter]
	// return for a bad [Config] field or [Option]; the message names the
	// field.
	ErrInvalidOption = errors.New("migration: invalid option")

	// ErrWriteFrozen is wrapped by the error [Writer.Write] returns while the
	// flag says [envelope.StageFreeze]: no write is attempted on either path.
	// Test for it with errors.Is.
	ErrWriteFrozen = errors.New("migration: writes are frozen")
)

// Func is one path of a migration: the old or the new implementation of one
// read or one write. It must honour ctx; see [Reader.Read] for what happens
// when the non-authoritative path does not.
type Func[Req, Res any] func(ctx context.Context, req Req) (Res, error)

// Publisher receives the pairs a migration produces. Publish must not block;
// it takes ownership of the pair and reports whether it accepted it.
// *publish.Publisher (package github.com/parityhq/parity/pkg/publish)
// satisfies it.
type Publisher interface {
	Publish(*envelope.Pair) bool
}

// FlagEvaluator evaluates the string flag that holds the stage.
// *openfeature.Client satisfies it.
type FlagEvaluator interface {
	StringValueDetails(ctx context.Context, flag string, defaultValue string, evalCtx openfeature.EvaluationContext, options ...openfeature.Option) (openfeature.StringEvaluationDetails, error)
}

// Config describes one migrating operation: one read (for [NewReader]) or one
// write (for [NewWriter]) with an old and a new implementation. Every field
// but Compare is required.
type Config[Req, Res any] struct {
	// Experiment and Operation name the migration and the call in every pair
	// and in the NATS subject (parity.pairs.<experiment>.<operation>): 1 to
	// 64 characters of A-Z a-z 0-9 _ -.
	Experiment string
	Operation  string

	// Flags evaluates FlagKey, a string flag whose value is the stage
	// ("off", "freeze", "dualwrite", "shadow", "live", "rampdown",
	// "complete"), once per call with the call's evaluation context.
	Flags   FlagEvaluator
	FlagKey string

	// Publisher receives the pairs.
	Publisher Publisher

	// Old and New are the two paths. Control in a pair is always Old and
	// candidate always New, whichever is authoritative. Both are required:
	// the stage comes from a flag at call time, so either may be needed.
	// In the shadow and live stages of a [Reader] they run concurrently
	// with the same request, so they must not modify it.
	Old Func[Req, Res]
	New Func[Req, Res]

	// Compare, if set, compares the two results in-process when both paths
	// succeeded; its verdict goes into the pair's ClientVerdict ("match" or
	// "mismatch"). It runs off the caller's goroutine, after the call has
	// returned. A Compare that panics leaves the verdict empty and is
	// counted in [Stats.Panics]. See [CmpEqual] for a comparison with
	// go-cmp options.
	Compare func(control, candidate Res) bool
}

func (c *Config[Req, Res]) validate() error {
	probe := envelope.Pair{
		Version: envelope.Version, ID: "probe", Kind: envelope.KindRead,
		Time: time.Unix(1, 0), Stage: envelope.StageOff,
		Experiment: c.Experiment, Operation: c.Operation,
	}
	if err := probe.Validate(); err != nil {
		var fe *envelope.FieldError
		if errors.As(err, &fe) {
			return fmt.Errorf("%w: Config.%s: %s", ErrInvalidOption, exported(fe.Field), fe.Problem)
		}
		return fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	switch {
	case c.Flags == nil:
		return fmt.Errorf("%w: Config.Flags is nil", ErrInvalidOption)
	case c.FlagKey == "":
		return fmt.Errorf("%w: Config.FlagKey is empty", ErrInvalidOption)
	case c.Publisher == nil:
		return fmt.Errorf("%w: Config.Publisher is nil", ErrInvalidOption)
	case c.Old == nil:
		return fmt.Errorf("%w: Config.Old is nil (the off, freeze, dualwrite, shadow, live and rampdown stages call it)", ErrInvalidOption)
	case c.New == nil:
		return fmt.Errorf("%w: Config.New is nil (the dualwrite, shadow, live, rampdown and complete stages call it)", ErrInvalidOption)
	}
	return nil
}

func exported(field string) string {
	switch field {
	case "experiment":
		return "Experiment"
	case "operation":
		return "Operation"
	}
	return field
}

// Defaults for the options.
const (
	DefaultTimeout     = time.Second
	DefaultSampling    = 1
	DefaultMaxInFlight = 1024
)

type options struct {
	timeout       time.Duration
	sampling      uint64 // 0: never
	defaultStage  envelope.Stage
	cancelWithCtx bool
	maxInFlight   int64
	snapshot      bool
}

func defaultOptions() options {
	return options{
		timeout:      DefaultTimeout,
		sampling:     DefaultSampling,
		defaultStage: envelope.StageOff,
		maxInFlight:  DefaultMaxInFlight,
	}
}

// Option changes a default of [NewReader] or [NewWriter]. An option given a
// bad value makes the constructor fail with an error wrapping
// [ErrInvalidOption].
type Option func(*options) error

// Timeout bounds the non-authoritative path. A non-authoritative read gets a
// context whose deadline is the start of the call plus d, and is abandoned
// when it passes: its pair is published with status "timeout" at the
// deadline even if the function ignores its context. A non-authoritative write runs on the caller's
// goroutine with a context carrying this deadline; it cannot be abandoned, so
// a write that ignores its context delays the caller. The authoritative path
// is never given a deadline by Parity. Defaults to [DefaultTimeout] (1s); d
// must be positive.
func Timeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: Timeout: must be positive, got %v", ErrInvalidOption, d)
		}
		o.timeout = d
		return nil
	}
}

// Sampling publishes the pairs of one user in oneIn: 1 compares and publishes
// every call, 0 none, and n > 1 the calls of the users whose targeting key
// hashes to 0 mod n (see [WithSampling] for the hash), so a user's pairs are
// all in the sample or all out. Defaults to [DefaultSampling] (1); oneIn must
// not be negative.
func Sampling(oneIn int) Option {
	return func(o *options) error {
		if oneIn < 0 {
			return fmt.Errorf("%w: Sampling: must be >= 0, got %d", ErrInvalidOption, oneIn)
		}
		o.sampling = uint64(oneIn)
		return nil
	}
}

// DefaultStage is the stage used when the flag cannot be evaluated or its
// value is not a stage. Defaults to [envelope.StageOff].
func DefaultStage(s envelope.Stage) Option {
	return func(o *options) error {
		if !s.Valid() {
			return fmt.Errorf("%w: DefaultStage: unknown stage %q", ErrInvalidOption, s)
		}
		o.defaultStage = s
		return nil
	}
}

// CancelWithCaller makes the non-authoritative read's context a child of the
// caller's, so cancelling the caller's context (which an HTTP server does as
// soon as the handler returns) abandons the comparison too. By default the
// non-authoritative read runs on context.WithoutCancel(ctx): it keeps the
// caller's values but not its cancellation, and is bounded only by
// [Timeout].
func CancelWithCaller() Option {
	return func(o *options) error {
		o.cancelWithCtx = true
		return nil
	}
}

// MaxInFlight caps how many non-authoritative reads of one [Reader] may be
// running at once, counting the ones abandoned at their timeout whose
// function has not returned yet. A call beyond the cap is served by the
// authoritative path alone and its pair counted as dropped, so a new path
// that hangs holds at most n goroutines. Defaults to [DefaultMaxInFlight]
// (1024); n must be positive.
func MaxInFlight(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: MaxInFlight: must be positive, got %d", ErrInvalidOption, n)
		}
		o.maxInFlight = int64(n)
		return nil
	}
}

// SnapshotResult encodes the authoritative result to JSON on the caller's
// goroutine, before Read or Write returns, instead of in the background.
//
// By default Parity keeps the result it returned to the caller and encodes it
// after the call, when the pair is complete. That is safe when the result is
// a value or is never modified after it is returned. If the caller modifies a
// returned map, slice or pointed-to struct in place, set this option: it
// costs the encoding time on the caller's path, and [Config.Compare] then
// sees a copy decoded from that JSON rather than the caller's value.
func SnapshotResult() Option {
	return func(o *options) error {
		o.snapshot = true
		return nil
	}
}
