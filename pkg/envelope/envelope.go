package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parityhq/parity/pkg/natsnames"
)

// Version is the envelope version this package writes and accepts.
const Version = 1

// MaxSize is the largest encoded envelope accepted, in bytes (1,000,000). A
// larger one is rejected with [ErrTooLarge] before it is parsed. It leaves
// room for headers under NATS's default 1 MiB max_payload, so an envelope of
// the maximum size is never refused by a server with default settings.
const MaxSize = 1_000_000

// SubjectPrefix is the first part of every pair subject: pairs are published
// to SubjectPrefix.<experiment>.<operation>. It is
// [natsnames.PairSubjectPrefix], where every NATS name lives.
const SubjectPrefix = natsnames.PairSubjectPrefix

// Limits on the parts of a pair. They keep segments, keys and subjects bounded.
const (
	MaxNameLen      = 64  // experiment and operation names
	MaxIDLen        = 128 // pair ids
	MaxUserKeyLen   = 256 // the targeting key
	MaxAttrs        = 16  // user attributes
	MaxAttrValueLen = 128 // one attribute value
	MaxErrorLen     = 4096
)

// Errors returned by [Decode] and [Pair.Validate]. Every validation error
// wraps [ErrInvalid]; use errors.Is.
var (
	ErrInvalid  = errors.New("envelope: invalid pair")
	ErrTooLarge = fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxSize)
	ErrVersion  = fmt.Errorf("%w: unsupported version", ErrInvalid)
)

// FieldError reports what is wrong with one field of a pair. Field is a dotted
// path such as "control.status" or "user.attrs.country".
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	return "envelope: field " + e.Field + ": " + e.Problem
}

// Unwrap makes every FieldError match [ErrInvalid].
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Kind says whether the pair compares reads or writes.
type Kind string

// The kinds of a pair.
const (
	KindRead  Kind = "read"
	KindWrite Kind = "write"
)

// Stage is a migration stage, in rollout order. See docs/wire-format.md.
type Stage string

// The migration stages. StageFreeze refuses writes while a bulk copy runs.
const (
	StageOff       Stage = "off"
	StageFreeze    Stage = "freeze"
	StageDualWrite Stage = "dualwrite"
	StageShadow    Stage = "shadow"
	StageLive      Stage = "live"
	StageRampDown  Stage = "rampdown"
	StageComplete  Stage = "complete"
)

// Stages lists every valid stage in rollout order.
var Stages = []Stage{StageOff, StageFreeze, StageDualWrite, StageShadow, StageLive, StageRampDown, StageComplete}

// Valid reports whether s is one of [Stages].
func (s Stage) Valid() bool {
	for _, v := range Stages {
		if s == v {
			return true
		}
	}
	return false
}

// Status is the outcome of one side of a pair.
type Status string

// The outcomes of an observation. An empty Status means StatusError when the
// observation has an Error and StatusOK otherwise.
const (
	StatusOK      Status = "ok"
	StatusError   Status = "error"
	StatusTimeout Status = "timeout" // the side did not answer within its timeout
	StatusSkipped Status = "skipped" // a write not attempted because the authoritative one failed
	StatusPanic   Status = "panic"   // the user function panicked; Error holds the panic value
)

func (s Status) valid() bool {
	switch s {
	case "", StatusOK, StatusError, StatusTimeout, StatusSkipped, StatusPanic:
		return true
	}
	return false
}

// Mode says what a pair compares.
type Mode string

// The modes. In ModeAA the candidate is a second read of the control path, so
// its mismatches measure noise rather than divergence.
const (
	ModeNormal Mode = ""
	ModeAA     Mode = "aa"
)

// Pair is one comparison of the old path (Control) and the new path
// (Candidate) for one call.
type Pair struct {
	Version    int       `json:"version"`
	ID         string    `json:"id"`
	Experiment string    `json:"experiment"`
	Operation  string    `json:"operation"`
	Kind       Kind      `json:"kind"`
	Time       time.Time `json:"time"`
	Stage      Stage     `json:"stage"`
	User       User      `json:"user"`
	// Flag is how the stage was chosen, when it came from a feature flag.
	Flag *Flag `json:"flag,omitempty"`
	Mode Mode  `json:"mode,omitempty"`
	// ClientVerdict is the in-process comparison's verdict ("match" or
	// "mismatch"), when the application supplied a comparison.
	ClientVerdict string      `json:"client_verdict,omitempty"`
	Control       Observation `json:"control"`
	Candidate     Observation `json:"candidate"`
}

// User is who the call was made for. Key is the OpenFeature targeting key;
// Attrs are the attributes segments are built from (country, plan, ...).
type User struct {
	Key   string            `json:"key"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Flag records the feature-flag evaluation that chose the stage.
type Flag struct {
	Key     string `json:"key,omitempty"`
	Variant string `json:"variant,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Observation is what one side returned.
type Observation struct {
	// Value is the result as JSON; absent when the side returned nothing.
	Value json.RawMessage `json:"value,omitempty"`
	// Error is the error text, if the side failed.
	Error  string `json:"error,omitempty"`
	Status Status `json:"status,omitempty"`
	// DurationNS is how long the side took, in nanoseconds.
	DurationNS int64 `json:"duration_ns"`
}

// Outcome returns the observation's status, deriving it from Error when the
// Status field is empty.
func (o *Observation) Outcome() Status {
	if o.Status != "" {
		return o.Status
	}
	if o.Error != "" {
		return StatusError
	}
	return StatusOK
}

// Duration returns DurationNS as a time.Duration.
func (o *Observation) Duration() time.Duration { return time.Duration(o.DurationNS) }

// Subject returns the subject a pair of this experiment and operation is
// published on. Both names must be valid (see [Pair.Validate]).
func Subject(experiment, operation string) string {
	return SubjectPrefix + "." + experiment + "." + operation
}

// Subject returns the subject p is published on.
func (p *Pair) Subject() string { return Subject(p.Experiment, p.Operation) }

// NewID returns a random 128-bit pair id, hex encoded.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error since Go 1.24
	return hex.EncodeToString(b[:])
}

// decodeGeneral is the general decoder behind [Decode]: encoding/json's
// rules, for envelopes the single-pass reader leaves to it and to name the
// problem of an invalid one.
func decodeGeneral(data []byte) (*Pair, error) {
	if !utf8.Valid(data) {
		return nil, &FieldError{Field: "(envelope)", Problem: "not valid UTF-8"}
	}
	var w wirePair
	if err := json.Unmarshal(data, &w); err != nil {
		// A future version may not fit this struct: say so rather than
		// report a confusing field error.
		if verr := versionError(data); verr != nil {
			return nil, verr
		}
		return nil, syntaxError(err)
	}
	p := &w.Pair
	if p.Version != Version {
		return nil, versionError(data)
	}
	for _, side := range []struct {
		name string
		obs  *wireObservation
		dst  *Observation
	}{{"control", w.Control, &p.Control}, {"candidate", w.Candidate, &p.Candidate}} {
		switch {
		case side.obs == nil:
			return nil, &FieldError{side.name, "missing"}
		case side.obs.DurationNS == nil:
			return nil, &FieldError{side.name + ".duration_ns", "missing"}
		}
		*side.dst = Observation{Value: side.obs.Value, Error: side.obs.Error, Status: side.obs.Status, DurationNS: *side.obs.DurationNS}
	}
	if w.Time != nil {
		p.Time = *w.Time
	}
	// The decoder has checked that both values are valid JSON.
	if err := p.validate(false); err != nil {
		var fe *FieldError
		if w.Time != nil && errors.As(err, &fe) && fe.Field == "time" {
			// Given, but as the zero time: not "missing", say what it is.
			return nil, &FieldError{"time", ErrZeroTime.Error()}
		}
		return nil, err
	}
	return p, nil
}

// ErrZeroTime is the problem reported for an envelope whose time is
// 0001-01-01T00:00:00Z, Go's zero time, which no call happened at.
var ErrZeroTime = errors.New("0001-01-01T00:00:00Z is not when the call happened")

// wirePair is a Pair as decoded, with its sides as pointers so that a side
// or a duration left out is an error rather than a silent zero (which would
// compare as a match), and its time as a pointer so that a time given as
// the zero time is told apart from one left out. Its Control, Candidate and
// Time hide the embedded Pair's.
type wirePair struct {
	Pair
	Time      *time.Time       `json:"time"`
	Control   *wireObservation `json:"control"`
	Candidate *wireObservation `json:"candidate"`
}

type wireObservation struct {
	Value      json.RawMessage `json:"value"`
	Error      string          `json:"error"`
	Status     Status          `json:"status"`
	DurationNS *int64          `json:"duration_ns"`
}

// versionError returns the error for an envelope whose version is missing or
// not [Version], or nil when it is readable and equal to Version.
func versionError(data []byte) error {
	var head struct {
		Version *json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil
	}
	if head.Version == nil {
		return &FieldError{Field: "version", Problem: "missing"}
	}
	if v := bytes.TrimSpace(*head.Version); string(v) != "1" {
		return fmt.Errorf("%w %s (a pair is version %d; version %d is a batch of them, sent over NATS only)", ErrVersion, truncate(string(v), 20), Version, BatchVersion)
	}
	return nil
}

func syntaxError(err error) error {
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return &FieldError{Field: "time", Problem: "not an RFC 3339 time, e.g. 2026-11-21T10:15:30Z"}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := strings.TrimPrefix(te.Field, "Pair.") // wirePair embeds Pair
		if field == "" {
			// The envelope itself: not the decoder's type name, which
			// means nothing to whoever sent it.
			return &FieldError{Field: "(envelope)", Problem: "wrong type: got JSON " + te.Value + ", want an object"}
		}
		want := te.Type.String()
		if t := te.Type; t.Kind() == reflect.Struct || t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
			want = "an object" // not the decoder's own type names
		}
		return &FieldError{Field: field, Problem: "wrong type: got JSON " + te.Value + ", want " + want}
	}
	return &FieldError{Field: "(envelope)", Problem: "not valid JSON: " + err.Error()}
}

// Validate checks every field of p and returns the first problem as a
// [*FieldError].
func (p *Pair) Validate() error { return p.validate(true) }

// validate checks p; checkValues also checks that the values are valid JSON.
func (p *Pair) validate(checkValues bool) error {
	switch {
	case p.Version != Version:
		return &FieldError{"version", fmt.Sprintf("unsupported version %d (this build reads version %d)", p.Version, Version)}
	case !validToken(p.ID, MaxIDLen, true):
		return &FieldError{"id", fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 _ - . :", MaxIDLen)}
	case !validToken(p.Experiment, MaxNameLen, false):
		return &FieldError{"experiment", fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 _ -", MaxNameLen)}
	case !validToken(p.Operation, MaxNameLen, false):
		return &FieldError{"operation", fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 _ -", MaxNameLen)}
	case p.Kind != KindRead && p.Kind != KindWrite:
		return &FieldError{"kind", fmt.Sprintf("must be %q or %q, got %q", KindRead, KindWrite, truncate(string(p.Kind), 20))}
	case p.Time.IsZero():
		return &FieldError{"time", "missing"}
	case !p.Stage.Valid():
		return &FieldError{"stage", fmt.Sprintf("unknown stage %q", truncate(string(p.Stage), 20))}
	case p.Mode != ModeNormal && p.Mode != ModeAA:
		return &FieldError{"mode", fmt.Sprintf("must be absent or %q", ModeAA)}
	case p.ClientVerdict != "" && p.ClientVerdict != "match" && p.ClientVerdict != "mismatch":
		return &FieldError{"client_verdict", `must be absent, "match" or "mismatch"`}
	}
	if err := p.User.validate(); err != nil {
		return err
	}
	if f := p.Flag; f != nil {
		for _, fv := range [...]struct{ name, v string }{{"flag.key", f.Key}, {"flag.variant", f.Variant}, {"flag.reason", f.Reason}} {
			if len(fv.v) > MaxAttrValueLen {
				return &FieldError{fv.name, fmt.Sprintf("longer than %d bytes", MaxAttrValueLen)}
			}
		}
	}
	if err := p.Control.validate("control", checkValues); err != nil {
		return err
	}
	return p.Candidate.validate("candidate", checkValues)
}

func (u *User) validate() error {
	if len(u.Key) > MaxUserKeyLen {
		return &FieldError{"user.key", fmt.Sprintf("longer than %d bytes", MaxUserKeyLen)}
	}
	if len(u.Attrs) > MaxAttrs {
		return &FieldError{"user.attrs", fmt.Sprintf("more than %d attributes", MaxAttrs)}
	}
	for k, v := range u.Attrs {
		if !validToken(k, MaxNameLen, false) {
			return &FieldError{"user.attrs", fmt.Sprintf("attribute name %q must be 1 to %d characters of A-Z a-z 0-9 _ -", truncate(k, 20), MaxNameLen)}
		}
		if len(v) > MaxAttrValueLen {
			return &FieldError{"user.attrs." + k, fmt.Sprintf("longer than %d bytes", MaxAttrValueLen)}
		}
	}
	return nil
}

func (o *Observation) validate(side string, checkValue bool) error {
	switch {
	case !o.Status.valid():
		return &FieldError{side + ".status", fmt.Sprintf("unknown status %q", truncate(string(o.Status), 20))}
	case o.Status == StatusError && o.Error == "":
		return &FieldError{side + ".error", `missing while status is "error"`}
	case len(o.Error) > MaxErrorLen:
		return &FieldError{side + ".error", fmt.Sprintf("longer than %d bytes", MaxErrorLen)}
	case o.DurationNS < 0:
		return &FieldError{side + ".duration_ns", "negative"}
	case checkValue && len(o.Value) > 0 && !json.Valid(o.Value):
		return &FieldError{side + ".value", "not valid JSON"}
	}
	return nil
}

// validToken reports whether s is 1..max bytes of [A-Za-z0-9_-], plus '.' and
// ':' when ext is set. Names used in subjects must not contain '.'.
func validToken(s string, max int, ext bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		case ext && (c == '.' || c == ':'):
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
