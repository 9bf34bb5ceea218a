package envelope

import (
	"encoding/binary"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendPair validates p, fills Version when it is zero, and appends its
// version-1 encoding to dst. It writes exactly what encoding/json would
// write for p (field order, escaping, compacted values), in one pass and
// without allocating when dst has room. On error dst is returned unchanged
// in length.
func AppendPair(dst []byte, p *Pair) ([]byte, error) {
	if p.Version == 0 {
		p.Version = Version
	}
	if err := p.validate(false); err != nil {
		return dst, err
	}
	start := len(dst)
	out, err := appendPair(dst, p)
	if err != nil {
		return dst[:start], err
	}
	if len(out)-start > MaxSize {
		return dst[:start], ErrTooLarge
	}
	return out, nil
}

func appendPair(b []byte, p *Pair) ([]byte, error) {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, int64(p.Version), 10)
	b = append(b, `,"id":`...)
	b = appendString(b, p.ID)
	b = append(b, `,"experiment":`...)
	b = appendString(b, p.Experiment)
	b = append(b, `,"operation":`...)
	b = appendString(b, p.Operation)
	b = append(b, `,"kind":`...)
	b = appendString(b, string(p.Kind))
	b = append(b, `,"time":`...)
	if y := p.Time.Year(); y < 0 || y > 9999 {
		return b, &FieldError{"time", "year outside of range [0,9999]"}
	}
	b = append(b, '"')
	b = p.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = append(b, `,"stage":`...)
	b = appendString(b, string(p.Stage))
	b = append(b, `,"user":{"key":`...)
	b = appendString(b, p.User.Key)
	if len(p.User.Attrs) > 0 {
		// encoding/json sorts map keys; validation bounds them at MaxAttrs.
		var arr [MaxAttrs]string
		keys := arr[:0]
		for k := range p.User.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"attrs":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, p.User.Attrs[k])
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	if f := p.Flag; f != nil {
		b = append(b, `,"flag":{`...)
		sep := false
		for _, fv := range [...]struct{ name, v string }{{`"key":`, f.Key}, {`"variant":`, f.Variant}, {`"reason":`, f.Reason}} {
			if fv.v == "" {
				continue
			}
			if sep {
				b = append(b, ',')
			}
			sep = true
			b = append(b, fv.name...)
			b = appendString(b, fv.v)
		}
		b = append(b, '}')
	}
	if p.Mode != "" {
		b = append(b, `,"mode":`...)
		b = appendString(b, string(p.Mode))
	}
	if p.ClientVerdict != "" {
		b = append(b, `,"client_verdict":`...)
		b = appendString(b, p.ClientVerdict)
	}
	var err error
	b = append(b, `,"control":`...)
	if b, err = appendObservation(b, &p.Control, "control"); err != nil {
		return b, err
	}
	b = append(b, `,"candidate":`...)
	if b, err = appendObservation(b, &p.Candidate, "candidate"); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendObservation(b []byte, o *Observation, side string) ([]byte, error) {
	b = append(b, '{')
	if len(o.Value) > 0 {
		b = append(b, `"value":`...)
		var ok bool
		if b, ok = appendCompact(b, o.Value); !ok {
			return b, &FieldError{side + ".value", "not valid JSON"}
		}
		b = append(b, ',')
	}
	if o.Error != "" {
		b = append(b, `"error":`...)
		b = appendString(b, o.Error)
		b = append(b, ',')
	}
	if o.Status != "" {
		b = append(b, `"status":`...)
		b = appendString(b, string(o.Status))
		b = append(b, ',')
	}
	b = append(b, `"duration_ns":`...)
	b = strconv.AppendInt(b, o.DurationNS, 10)
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// safeASCII marks the ASCII bytes encoding/json writes as they are inside a
// string (HTML escaping on, as json.Marshal does).
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string exactly as encoding/json does:
// HTML characters and U+2028/U+2029 escaped, invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendCompact appends the JSON value v without insignificant white space,
// escaping HTML characters and U+2028/U+2029 inside strings as
// encoding/json's Marshal does for a json.RawMessage. It reports false when
// v is not exactly one valid JSON value.
func appendCompact(b []byte, v []byte) ([]byte, bool) {
	start := len(b)
	s := scanner{data: v}
	s.skipSpace()
	if !s.value(&b, 0) {
		return b[:start], false
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return b[:start], false
	}
	return b, true
}

// maxDepth bounds the nesting of values, as encoding/json does (10000).
const maxDepth = 10000

// scanner validates (and optionally copies compactly) JSON values in one
// pass. Its methods never panic on any input.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans one value starting at s.pos (no leading space) and, when out
// is not nil, appends its compact form to *out.
func (s *scanner) value(out *[]byte, depth int) bool {
	if s.pos >= len(s.data) || depth > maxDepth {
		return false
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(out, depth+1)
	case c == '[':
		return s.array(out, depth+1)
	case c == '"':
		start := s.pos
		if !s.str() {
			return false
		}
		if out != nil {
			*out = appendEscapedRaw(*out, s.data[start:s.pos])
		}
		return true
	case c == '-' || c >= '0' && c <= '9':
		start := s.pos
		if !s.number() {
			return false
		}
		if out != nil {
			*out = append(*out, s.data[start:s.pos]...)
		}
		return true
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
				if out != nil {
					*out = append(*out, lit...)
				}
				s.pos += len(lit)
				return true
			}
		}
		return false
	}
}

func (s *scanner) object(out *[]byte, depth int) bool {
	s.pos++ // {
	if out != nil {
		*out = append(*out, '{')
	}
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		if out != nil {
			*out = append(*out, '}')
		}
		return true
	}
	for {
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		start := s.pos
		if !s.str() {
			return false
		}
		if out != nil {
			*out = appendEscapedRaw(*out, s.data[start:s.pos])
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		if out != nil {
			*out = append(*out, ':')
		}
		s.skipSpace()
		if !s.value(out, depth) {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			if out != nil {
				*out = append(*out, ',')
			}
			s.skipSpace()
		case '}':
			s.pos++
			if out != nil {
				*out = append(*out, '}')
			}
			return true
		default:
			return false
		}
	}
}

func (s *scanner) array(out *[]byte, depth int) bool {
	s.pos++ // [
	if out != nil {
		*out = append(*out, '[')
	}
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		if out != nil {
			*out = append(*out, ']')
		}
		return true
	}
	for {
		if !s.value(out, depth) {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			if out != nil {
				*out = append(*out, ',')
			}
			s.skipSpace()
		case ']':
			s.pos++
			if out != nil {
				*out = append(*out, ']')
			}
			return true
		default:
			return false
		}
	}
}

// Word-at-a-time constants for str's fast path.
const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	quotes = ones * '"'
	slashs = ones * '\\'
)

// plainWord reports whether the 8 bytes of x are all printable ASCII other
// than '"' and '\': bytes a string can hold as they are.
func plainWord(x uint64) bool {
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return x&highs == 0 && // ASCII
		(x-ones*0x20)&^x&highs == 0 && // no byte below 0x20 (valid as every byte is below 0x80)
		hasZero(x^quotes) == 0 && hasZero(x^slashs) == 0
}

// str scans a string starting at its opening quote and leaves s.pos after
// the closing one. It checks escapes, control characters and UTF-8.
func (s *scanner) str() bool {
	s.pos++ // "
	for s.pos < len(s.data) {
		// Runs of plain ASCII, eight bytes at a time.
		for s.pos+8 <= len(s.data) && plainWord(binary.LittleEndian.Uint64(s.data[s.pos:])) {
			s.pos += 8
		}
		if s.pos >= len(s.data) {
			break
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return true
		case c == '\\':
			if s.pos+1 >= len(s.data) {
				return false
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.data) {
					return false
				}
				for _, h := range s.data[s.pos+2 : s.pos+6] {
					if !isHex(h) {
						return false
					}
				}
				s.pos += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			s.pos += size
		}
	}
	return false
}

func (s *scanner) number() bool {
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// appendEscapedRaw appends a scanned (valid) JSON string literal, escaping
// HTML characters and U+2028/U+2029 as encoding/json's compaction does.
func appendEscapedRaw(b []byte, lit []byte) []byte {
	start := 0
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c == '<' || c == '>' || c == '&' {
			b = append(b, lit[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		}
		// U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
		if c == 0xE2 && i+2 < len(lit) && lit[i+1] == 0x80 && lit[i+2]&^1 == 0xA8 {
			b = append(b, lit[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[lit[i+2]&0xF])
			start = i + 3
			i += 2
		}
	}
	return append(b, lit[start:]...)
}

// Marshal validates p and encodes it. It fills Version when it is zero.
func Marshal(p *Pair) ([]byte, error) {
	b, err := AppendPair(nil, p)
	if err != nil {
		return nil, err
	}
	return b, nil
}
