package envelope

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode parses and validates one version-1 envelope. It never panics;
// every error wraps [ErrInvalid] and names the problem.
//
// It reads the envelope in a single pass that validates as it goes, and
// keeps each observation's Value as a slice of data (data must not be
// modified while the pair is in use). Envelopes outside the usual shape —
// keys that differ from the field names only in case, repeated fields,
// nulls, escaped keys — and every invalid envelope are decoded again by the
// general decoder, so that the same envelopes are accepted, with the same
// errors, as by encoding/json (the fuzz test FuzzDecodeMatchesOracle checks
// this against the previous decoder).
func Decode(data []byte) (*Pair, error) {
	if len(data) > MaxSize {
		return nil, ErrTooLarge
	}
	p := new(Pair)
	if fastDecode(data, p) {
		if err := p.validate(false); err != nil {
			return nil, err
		}
		return p, nil
	}
	return decodeGeneral(data)
}

// Top-level fields, as bits of a seen-set.
const (
	fVersion = 1 << iota
	fID
	fExperiment
	fOperation
	fKind
	fTime
	fStage
	fUser
	fFlag
	fMode
	fClientVerdict
	fControl
	fCandidate
)

var topFields = [...]string{"version", "id", "experiment", "operation", "kind", "time", "stage", "user", "flag", "mode", "client_verdict", "control", "candidate"}

var (
	userFields = [...]string{"key", "attrs"}
	flagFields = [...]string{"key", "variant", "reason"}
	obsFields  = [...]string{"value", "error", "status", "duration_ns"}
)

// decoder is the single-pass reader of the usual envelope. Its methods
// return false to hand the envelope to the general decoder.
type decoder struct{ scanner }

// fastDecode decodes data into p, reporting false when data is not an
// envelope of the usual shape (or not valid at all).
func fastDecode(data []byte, p *Pair) bool {
	s := scanner{data: data}
	s.skipSpace()
	end, ok := fastDecodeAt(data, s.pos, p)
	if !ok {
		return false
	}
	s.pos = end
	s.skipSpace()
	return s.pos == len(data)
}

// fastDecodeAt decodes the envelope starting at data[pos] into p and
// returns where it ends, reporting false as fastDecode does.
func fastDecodeAt(data []byte, pos int, p *Pair) (int, bool) {
	d := decoder{scanner{data: data, pos: pos}}
	var seen uint
	var ctl, cand bool
	var ctlDur, candDur bool
	ok := d.object(func(key []byte) bool {
		i := fieldIndex(key, topFields[:])
		if i < 0 {
			return i == -1 && d.skip()
		}
		if seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		switch 1 << i {
		case fVersion:
			if !d.literal("1") {
				return false
			}
			p.Version = 1
			return true
		case fID:
			return d.str(&p.ID)
		case fExperiment:
			return d.str(&p.Experiment)
		case fOperation:
			return d.str(&p.Operation)
		case fKind:
			return d.str((*string)(&p.Kind))
		case fTime:
			return d.time(&p.Time)
		case fStage:
			return d.str((*string)(&p.Stage))
		case fUser:
			return d.user(&p.User)
		case fFlag:
			p.Flag = new(Flag)
			return d.flag(p.Flag)
		case fMode:
			return d.str((*string)(&p.Mode))
		case fClientVerdict:
			return d.str(&p.ClientVerdict)
		case fControl:
			ctl = true
			return d.observation(&p.Control, &ctlDur)
		case fCandidate:
			cand = true
			return d.observation(&p.Candidate, &candDur)
		}
		return false
	})
	// Everything but a complete envelope with both durations goes to the
	// general decoder, which names what is missing in the order it checks.
	return d.pos, ok && seen&fVersion != 0 && ctl && cand && ctlDur && candDur &&
		(seen&fTime == 0 || !p.Time.IsZero())
}

// fieldIndex returns the index of key in fields, -1 for a key that matches
// none, or -2 for a key that encoding/json would match to a field without
// being spelt the same (another case, an escape): those go to the general
// decoder.
func fieldIndex(key []byte, fields []string) int {
	for i, f := range fields {
		if string(key) == f {
			return i
		}
	}
	if bytes.IndexByte(key, '\\') >= 0 {
		return -2
	}
	for _, f := range fields {
		if bytes.EqualFold(key, []byte(f)) {
			return -2
		}
	}
	return -1
}

// object reads an object at d.pos, calling member with each key (without
// quotes) with d.pos at the start of its value; member must consume the
// value.
func (d *decoder) object(member func(key []byte) bool) bool {
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return false
	}
	d.pos++
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return true
	}
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return false
		}
		start := d.pos
		if !d.scanner.str() {
			return false
		}
		key := d.data[start+1 : d.pos-1]
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return false
		}
		d.pos++
		d.skipSpace()
		if !member(key) {
			return false
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return false
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
		case '}':
			d.pos++
			return true
		default:
			return false
		}
	}
}

// skip consumes any valid value.
func (d *decoder) skip() bool { return d.value(nil, 0) }

func (d *decoder) literal(lit string) bool {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		return false
	}
	d.pos += len(lit)
	// The literal must end here: "10" is not "1".
	if d.pos < len(d.data) {
		switch c := d.data[d.pos]; {
		case c >= '0' && c <= '9', c == '.', c == 'e', c == 'E':
			return false
		}
	}
	return true
}

// str reads a JSON string into *dst.
func (d *decoder) str(dst *string) bool {
	raw, ok := d.rawString()
	if !ok {
		return false
	}
	s, ok := unquote(raw)
	*dst = s
	return ok
}

// rawString reads a string and returns it with its quotes.
func (d *decoder) rawString() ([]byte, bool) {
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return nil, false
	}
	start := d.pos
	if !d.scanner.str() {
		return nil, false
	}
	return d.data[start:d.pos], true
}

// time reads an RFC 3339 time exactly as time.Time's UnmarshalJSON does
// (which is what encoding/json calls).
func (d *decoder) time(dst *time.Time) bool {
	raw, ok := d.rawString()
	if !ok || bytes.IndexByte(raw, '\\') >= 0 {
		return false
	}
	return dst.UnmarshalJSON(raw) == nil
}

func (d *decoder) user(u *User) bool {
	var seen uint
	return d.object(func(key []byte) bool {
		i := fieldIndex(key, userFields[:])
		if i < 0 {
			return i == -1 && d.skip()
		}
		if seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		if i == 0 {
			return d.str(&u.Key)
		}
		if d.pos < len(d.data) && d.data[d.pos] != '{' {
			return false
		}
		u.Attrs = make(map[string]string)
		return d.object(func(key []byte) bool {
			if bytes.IndexByte(key, '\\') >= 0 {
				return false
			}
			if _, dup := u.Attrs[string(key)]; dup {
				return false
			}
			var v string
			if !d.str(&v) {
				return false
			}
			u.Attrs[string(key)] = v
			return true
		})
	})
}

func (d *decoder) flag(f *Flag) bool {
	var seen uint
	return d.object(func(key []byte) bool {
		i := fieldIndex(key, flagFields[:])
		if i < 0 {
			return i == -1 && d.skip()
		}
		if seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		switch i {
		case 0:
			return d.str(&f.Key)
		case 1:
			return d.str(&f.Variant)
		default:
			return d.str(&f.Reason)
		}
	})
}

func (d *decoder) observation(o *Observation, hasDuration *bool) bool {
	var seen uint
	return d.object(func(key []byte) bool {
		i := fieldIndex(key, obsFields[:])
		if i < 0 {
			return i == -1 && d.skip()
		}
		if seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		switch i {
		case 0:
			start := d.pos
			if !d.skip() {
				return false
			}
			o.Value = d.data[start:d.pos:d.pos]
			return true
		case 1:
			return d.str(&o.Error)
		case 2:
			return d.str((*string)(&o.Status))
		default:
			start := d.pos
			if !d.number() {
				return false
			}
			lit := d.data[start:d.pos]
			for _, c := range lit {
				if c == '.' || c == 'e' || c == 'E' {
					return false
				}
			}
			n, err := strconv.ParseInt(string(lit), 10, 64)
			if err != nil {
				return false
			}
			o.DurationNS = n
			*hasDuration = true
			return true
		}
	})
}

// unquote returns the text of a scanned (valid) JSON string literal, quotes
// included, decoding escapes as encoding/json does. It reports false for a
// surrogate escape, which it leaves to the general decoder.
func unquote(raw []byte) (string, bool) {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), true
	}
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch e := body[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 32)
			if err != nil || utf16.IsSurrogate(rune(r)) {
				return "", false
			}
			out = utf8.AppendRune(out, rune(r))
			i += 6
			continue
		}
		i += 2
	}
	return string(out), true
}
