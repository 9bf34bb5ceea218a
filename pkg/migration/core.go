package migration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/pkg/envelope"
)

// core is what a Reader and a Writer share: the flag, sampling, counters and
// the publisher.
type core struct {
	experiment string
	operation  string
	kind       envelope.Kind
	flags      FlagEvaluator
	flagKey    string
	pub        Publisher
	opts       options
	defaultStr string
	n          counters
}

func newCore(experiment, operation string, kind envelope.Kind, flags FlagEvaluator, flagKey string, pub Publisher, opts []Option) (*core, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrInvalidOption)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &core{
		experiment: experiment, operation: operation, kind: kind,
		flags: flags, flagKey: flagKey, pub: pub, opts: o,
		defaultStr: string(o.defaultStage),
	}, nil
}

// flagResult is the stage chosen for a call and how it was chosen.
type flagResult struct {
	stage   envelope.Stage
	variant string
	reason  string
}

const reasonError = string(openfeature.ErrorReason)

// stage evaluates the flag for one call. A failed evaluation (a panicking
// evaluator included) or a value that is not a stage yields the default
// stage and is counted.
func (c *core) stage(ctx context.Context, ec openfeature.EvaluationContext) (fr flagResult) {
	defer func() {
		if recover() != nil {
			c.n.flagErrors.Add(1)
			fr = flagResult{stage: c.opts.defaultStage, reason: reasonError}
		}
	}()
	d, err := c.flags.StringValueDetails(ctx, c.flagKey, c.defaultStr, ec)
	if err != nil {
		c.n.flagErrors.Add(1)
		return flagResult{stage: c.opts.defaultStage, variant: d.Variant, reason: reasonError}
	}
	s := envelope.Stage(d.Value)
	if !s.Valid() {
		c.n.flagErrors.Add(1)
		return flagResult{stage: c.opts.defaultStage, variant: d.Variant, reason: reasonError}
	}
	return flagResult{stage: s, variant: d.Variant, reason: string(d.Reason)}
}

type samplingKey struct{}

// WithSampling returns a context that overrides the [Sampling] ratio for the
// calls made with it: 1 compares and publishes every such call, 0 none, and
// n > 1 one user in n. Use it to force a debugging request into the sample,
// or to keep a batch job out of it. A negative oneIn means 0.
//
// A user is in the sample for ratio n when h(key) mod n == 0, where key is
// the targeting key and h is 64-bit FNV-1a followed by the MurmurHash3
// 64-bit finaliser (fmix64). The rule depends on nothing but the key and n,
// so a user is in or out for every operation, process and restart alike.
// A call without a targeting key is sampled at random with probability 1/n.
func WithSampling(ctx context.Context, oneIn int) context.Context {
	if oneIn < 0 {
		oneIn = 0
	}
	return context.WithValue(ctx, samplingKey{}, uint64(oneIn))
}

// sampled reports whether a call for key is in the sample.
func (c *core) sampled(ctx context.Context, key string) bool {
	n := c.opts.sampling
	if v, ok := ctx.Value(samplingKey{}).(uint64); ok {
		n = v
	}
	return inSample(key, n)
}

func inSample(key string, n uint64) bool {
	switch n {
	case 0:
		return false
	case 1:
		return true
	}
	if key == "" {
		return rand.Uint64N(n) == 0
	}
	return keyHash(key)%n == 0
}

// keyHash is 64-bit FNV-1a mixed by fmix64, so that every bit of the result
// depends on every byte of the key (plain FNV-1a mod 2^k is weak).
func keyHash(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// targetingKey is the call's user: the invocation context's targeting key,
// or the transaction context's when that is empty, as OpenFeature merges
// them.
func targetingKey(ctx context.Context, ec openfeature.EvaluationContext) (string, openfeature.EvaluationContext) {
	tc := openfeature.TransactionContext(ctx)
	if k := ec.TargetingKey(); k != "" {
		return k, tc
	}
	return tc.TargetingKey(), tc
}

// user builds the pair's user from the targeting key and the scalar
// attributes of the evaluation contexts (the invocation's win over the
// transaction's). Attributes whose name is not a valid envelope name or
// whose value is not a string, bool or number are dropped; values are cut to
// [envelope.MaxAttrValueLen] bytes; when more than [envelope.MaxAttrs]
// remain, the first by name are kept.
func user(key string, ec, tc openfeature.EvaluationContext) envelope.User {
	u := envelope.User{Key: truncateUTF8(key, envelope.MaxUserKeyLen)}
	ecAttrs := ec.Attributes()
	tcAttrs := tc.Attributes()
	if len(ecAttrs)+len(tcAttrs) == 0 {
		return u
	}
	attrs := make(map[string]string, len(ecAttrs)+len(tcAttrs))
	for _, m := range []map[string]any{tcAttrs, ecAttrs} {
		for k, v := range m {
			if !validName(k) {
				continue
			}
			s, ok := scalar(v)
			if !ok {
				delete(attrs, k) // an invocation non-scalar hides a transaction scalar
				continue
			}
			attrs[k] = truncateUTF8(s, envelope.MaxAttrValueLen)
		}
	}
	if len(attrs) > envelope.MaxAttrs {
		names := make([]string, 0, len(attrs))
		for k := range attrs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names[envelope.MaxAttrs:] {
			delete(attrs, k)
		}
	}
	if len(attrs) > 0 {
		u.Attrs = attrs
	}
	return u
}

func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int:
		return strconv.FormatInt(int64(v), 10), true
	case int8:
		return strconv.FormatInt(int64(v), 10), true
	case int16:
		return strconv.FormatInt(int64(v), 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case uint:
		return strconv.FormatUint(uint64(v), 10), true
	case uint8:
		return strconv.FormatUint(uint64(v), 10), true
	case uint16:
		return strconv.FormatUint(uint64(v), 10), true
	case uint32:
		return strconv.FormatUint(uint64(v), 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	}
	return "", false
}

// validName is the envelope's rule for attribute names: 1 to
// envelope.MaxNameLen bytes of A-Z a-z 0-9 _ -. TestValidNameAgreesWithEnvelope
// keeps it in step with envelope.Pair.Validate.
func validName(s string) bool {
	if len(s) == 0 || len(s) > envelope.MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxValueLen is the largest encoded result a pair carries; two of them and
// the rest of the pair stay under envelope.MaxSize.
const maxValueLen = (envelope.MaxSize - 32<<10) / 2

// side is what one path did in one call.
type side[Res any] struct {
	val    Res
	err    error
	dur    time.Duration
	status envelope.Status // ok, error, timeout, skipped or panic
	msg    string          // the error text for timeout and panic
	json   []byte          // the value encoded on the caller's goroutine (SnapshotResult)
	jsonOK bool
	encErr string
}

// record stores a function's return.
func (s *side[Res]) record(ctx context.Context, res Res, err error, dur time.Duration) {
	s.val, s.err, s.dur = res, err, dur
	s.status = envelope.StatusOK
	if err != nil {
		s.status = envelope.StatusError
		if ctx != nil && ctx.Err() == context.DeadlineExceeded && errors.Is(err, context.DeadlineExceeded) {
			s.status = envelope.StatusTimeout
			s.msg = truncateUTF8("migration: no answer within the timeout: "+safeError(err), envelope.MaxErrorLen)
		}
	}
}

// recordPanic stores a recovered panic (or runtime.Goexit when r is nil).
func (s *side[Res]) recordPanic(r any, dur time.Duration) {
	s.dur = dur
	s.status = envelope.StatusPanic
	if r == nil {
		s.msg = "migration: the function called runtime.Goexit"
		return
	}
	s.msg = "panic: " + safeSprint(r)
}

// snapshot encodes the value now, for SnapshotResult.
func (s *side[Res]) snapshot() {
	if s.status != envelope.StatusOK {
		return
	}
	s.json, s.encErr = encode(s.val)
	s.jsonOK = s.encErr == ""
}

// encode marshals v to JSON, turning every failure (including a panicking
// MarshalJSON and an oversized result) into an error text.
func encode(v any) (b []byte, errText string) {
	defer func() {
		if r := recover(); r != nil {
			b, errText = nil, "migration: cannot encode the result as JSON: panic: "+safeSprint(r)
		}
	}()
	b, err := json.Marshal(v)
	if err != nil {
		return nil, "migration: cannot encode the result as JSON: " + safeError(err)
	}
	if len(b) > maxValueLen {
		return nil, fmt.Sprintf("migration: the result is %d bytes of JSON, more than the %d a pair carries", len(b), maxValueLen)
	}
	return b, ""
}

func safeError(err error) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("migration: the error's Error method panicked: %v", r)
		}
	}()
	return truncateUTF8(err.Error(), envelope.MaxErrorLen)
}

func safeSprint(v any) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("(%T whose String or Error method panicked)", v)
		}
	}()
	return truncateUTF8(fmt.Sprint(v), envelope.MaxErrorLen-len("panic: "))
}

// publish hands p to the Publisher and counts the outcome. A Publisher that
// panics has dropped the pair.
func (c *core) publish(p *envelope.Pair) {
	ok := false
	func() {
		defer func() {
			if recover() != nil {
				ok = false
			}
		}()
		ok = c.pub.Publish(p)
	}()
	if ok {
		c.n.published.Add(1)
	} else {
		c.n.dropped.Add(1)
	}
}
