// Package redact masks or hashes chosen places of JSON values before Parity
// stores them, so that raw secrets never reach the database. The diff still
// sees the real values: only what is kept (samples, their differences, dead
// letters) is redacted.
//
// Places are named with the path patterns of diff rules (user.email,
// items[*].card, **.ssn). Field names match in any case ("Email" is
// "email"), and a rule written for a document also matches inside a root
// array of such documents ("user.email" redacts [{"user": {"email": …}}]);
// "**.email" matches the field at any depth. A value that cannot be parsed,
// and might contain a redacted place, is withheld whole: redaction fails
// closed.
package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/parityhq/parity/pkg/diff"
)

// Mode says what replaces a redacted value.
type Mode string

// The modes.
const (
	// Mask replaces the value with the string "[redacted]".
	Mask Mode = "mask"
	// Hash replaces the value with "hmac:" and 16 hex digits of its keyed
	// hash: equal values stay recognisably equal (a mismatch is still
	// visible) without being readable.
	Hash Mode = "hash"
)

// Masked is what a masked value becomes; Withheld is what a value that could
// not be parsed, and might hold a redacted place, becomes.
const (
	Masked   = "[redacted]"
	Withheld = "[withheld: could not be parsed for redaction]"
)

// Rule redacts the places a path pattern matches.
type Rule struct {
	Path string `json:"path"`
	Mode Mode   `json:"mode"`
}

// ErrInvalidRule is wrapped by every rule error.
var ErrInvalidRule = errors.New("redact: invalid rule")

// Redactor applies rules. The zero value and nil redact nothing. It is safe
// for concurrent use.
type Redactor struct {
	rules []rule
	key   []byte
}

type rule struct {
	pattern diff.Pattern
	mode    Mode
}

// New compiles rules; key keys the hashes (at least 16 bytes when any rule
// hashes).
func New(rules []Rule, key []byte) (*Redactor, error) {
	r := &Redactor{key: key}
	for i, rl := range rules {
		p, err := diff.ParsePattern(strings.ToLower(rl.Path))
		if err != nil {
			return nil, fmt.Errorf("%w: rules[%d]: %w", ErrInvalidRule, i, err)
		}
		switch rl.Mode {
		case Mask:
		case Hash:
			if len(key) < 16 {
				return nil, fmt.Errorf("%w: rules[%d]: hashing needs a key of at least 16 bytes", ErrInvalidRule, i)
			}
		default:
			return nil, fmt.Errorf("%w: rules[%d]: mode %q is not %q or %q", ErrInvalidRule, i, rl.Mode, Mask, Hash)
		}
		r.rules = append(r.rules, rule{p, rl.Mode})
	}
	return r, nil
}

// Active reports whether r redacts anything.
func (r *Redactor) Active() bool { return r != nil && len(r.rules) > 0 }

// at returns the rule matching the place at path, if any.
func (r *Redactor) at(path []any) (rule, bool) {
	p, q := forms(path)
	for _, rl := range r.rules {
		if rl.pattern.Matches(p) || q != nil && rl.pattern.Matches(q) {
			return rl, true
		}
	}
	return rule{}, false
}

func (r *Redactor) below(path []any) bool {
	p, q := forms(path)
	for _, rl := range r.rules {
		if rl.pattern.MatchesBelow(p) || q != nil && rl.pattern.MatchesBelow(q) {
			return true
		}
	}
	return false
}

// forms returns the paths a rule is matched against: path with its field
// names lower-cased (rules are compiled lower-cased: "Email" and "email" are
// one field), and, when path starts inside a root array, the same without
// the root array's indexes (nil otherwise), so that a rule written for a
// document ("user.email") also covers a list of such documents
// ([{"user": {"email": …}}]).
func forms(path []any) (p, q []any) {
	p = make([]any, len(path))
	for i, e := range path {
		if s, ok := e.(string); ok {
			e = strings.ToLower(s)
		}
		p[i] = e
	}
	n := 0
	for n < len(p) {
		if _, ok := p[n].(int); !ok {
			break
		}
		n++
	}
	if n > 0 {
		q = p[n:]
	}
	return p, q
}

func (r *Redactor) replace(rl rule, v any) any {
	if rl.mode == Mask {
		return Masked
	}
	b, _ := json.Marshal(v) // decoded JSON always marshals
	m := hmac.New(sha256.New, r.key)
	m.Write(b)
	return "hmac:" + hex.EncodeToString(m.Sum(nil))[:16]
}

// Value returns v, a JSON value found at path (nil: a document's root), with
// every matching place replaced.
func (r *Redactor) Value(path []any, v json.RawMessage) json.RawMessage {
	if !r.Active() || len(v) == 0 {
		return v
	}
	if rl, ok := r.at(path); ok {
		var x any
		if err := decode(v, &x); err != nil {
			return quote(Withheld)
		}
		return quote(r.replace(rl, x))
	}
	if !r.below(path) {
		return v
	}
	var x any
	if err := decode(v, &x); err != nil {
		return quote(Withheld)
	}
	out, err := json.Marshal(r.walk(append([]any(nil), path...), x))
	if err != nil {
		return quote(Withheld)
	}
	return out
}

func (r *Redactor) walk(path []any, x any) any {
	if rl, ok := r.at(path); ok {
		return r.replace(rl, x)
	}
	if !r.below(path) {
		return x
	}
	switch t := x.(type) {
	case map[string]any:
		for k, v := range t {
			t[k] = r.walk(append(path, k), v)
		}
	case []any:
		for i, v := range t {
			t[i] = r.walk(append(path, i), v)
		}
	}
	return x
}

// Observation redacts the value inside an observation's JSON (an object with
// "value", "error", "status", "duration_ns").
func (r *Redactor) Observation(obs json.RawMessage) json.RawMessage {
	if !r.Active() || len(obs) == 0 {
		return obs
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(obs, &o); err != nil {
		return quote(Withheld)
	}
	if v, ok := o["value"]; ok {
		o["value"] = r.Value(nil, v)
	}
	out, err := json.Marshal(o)
	if err != nil {
		return quote(Withheld)
	}
	return out
}

// Differences redacts the quoted values of a sample's differences: a JSON
// array of diff.Difference. A quoted value was cut to a length, so it may
// not parse: then it is withheld when it might hold a redacted place.
func (r *Redactor) Differences(diffs json.RawMessage) json.RawMessage {
	if !r.Active() || len(diffs) == 0 {
		return diffs
	}
	var ds []diff.Difference
	if err := json.Unmarshal(diffs, &ds); err != nil {
		return json.RawMessage("[]")
	}
	for i := range ds {
		path, err := diff.ParsePath(ds[i].Path)
		if err != nil {
			ds[i].Control, ds[i].Candidate = Withheld, Withheld
			continue
		}
		for _, s := range []*string{&ds[i].Control, &ds[i].Candidate} {
			if *s != "" {
				*s = string(r.Value(path, json.RawMessage(*s)))
			}
		}
	}
	out, _ := json.Marshal(ds) // strings always marshal
	return out
}

func decode(v []byte, x *any) error {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber() // numbers keep their text: 12345678901234567890 is not rounded
	if err := dec.Decode(x); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func quote(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
