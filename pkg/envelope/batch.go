package envelope

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
)

// BatchVersion is the version of a batch envelope: one message carrying
// several version-1 pairs of the same subject. See docs/wire-format.md.
const BatchVersion = 2

// MaxBatchPairs is the most pairs one batch envelope may carry.
const MaxBatchPairs = 1024

// ErrBatchFull is returned by [BatchWriter.Add] when a pair does not fit in
// the batch: the batch is at its pair or byte limit. The pair is not added.
var ErrBatchFull = errors.New("envelope: batch full")

// batchHead opens every batch; the id is written after the pairs, once they
// are known.
const batchHead = `{"version":2,"pairs":[`

// batchTail is the most bytes Finish appends after the last pair:
// `],"id":"` + 32 hex digits + `"}`.
const batchTail = len(`],"id":""}`) + 32

// BatchWriter packs pairs of one subject into a batch envelope, encoding
// each straight into one reused buffer. The zero value is not usable; use
// [NewBatchWriter]. A BatchWriter is not safe for concurrent use.
type BatchWriter struct {
	buf       []byte
	n         int
	firstID   string
	h         hash.Hash
	sum       [sha256.Size]byte
	maxPairs  int
	maxBytes  int
	finishing bool
}

// NewBatchWriter returns a writer whose batches hold at most maxPairs pairs
// (at most [MaxBatchPairs]) and maxBytes encoded bytes (at most [MaxSize]).
// A single pair larger than maxBytes still makes a batch of its own.
func NewBatchWriter(maxPairs, maxBytes int) *BatchWriter {
	w := &BatchWriter{h: sha256.New(), maxPairs: min(max(maxPairs, 1), MaxBatchPairs), maxBytes: min(max(maxBytes, 1), MaxSize)}
	w.Reset(nil)
	return w
}

// Reset empties the writer and makes it write into buf's storage, so the
// bytes a previous Finish returned stay untouched when buf is not them.
func (w *BatchWriter) Reset(buf []byte) {
	w.buf = append(buf[:0], batchHead...)
	w.n = 0
	w.firstID = ""
	w.h.Reset()
}

// Len returns how many pairs the batch holds.
func (w *BatchWriter) Len() int { return w.n }

// Size returns the encoded size of the batch so far, in bytes.
func (w *BatchWriter) Size() int { return len(w.buf) + batchTail }

// Add validates p, fills its Version when zero, and appends it to the
// batch. It returns [ErrBatchFull], adding nothing, when the batch already
// holds its limit of pairs or p would take it past its byte limit; any other
// error is p's own (see [Pair.Validate], [ErrTooLarge]) and p is not added.
func (w *BatchWriter) Add(p *Pair) error {
	if w.n >= w.maxPairs {
		return ErrBatchFull
	}
	start := len(w.buf)
	if w.n > 0 {
		w.buf = append(w.buf, ',')
	}
	b, err := AppendPair(w.buf, p)
	if err != nil {
		w.buf = w.buf[:start]
		return err
	}
	if w.n > 0 && len(b)+batchTail > w.maxBytes {
		w.buf = b[:start]
		return ErrBatchFull
	}
	w.buf = b
	if w.n == 0 {
		w.firstID = p.ID
	}
	w.h.Write([]byte(p.ID))
	w.h.Write([]byte{'\n'})
	w.n++
	return nil
}

// AddEncoded appends a pair that is already encoded: raw must be a
// version-1 envelope that [Decode] accepted, and id its pair's id. It
// returns [ErrBatchFull] as [BatchWriter.Add] does.
func (w *BatchWriter) AddEncoded(raw []byte, id string) error {
	if w.n >= w.maxPairs || w.n > 0 && len(w.buf)+1+len(raw)+batchTail > w.maxBytes {
		return ErrBatchFull
	}
	if w.n > 0 {
		w.buf = append(w.buf, ',')
	} else {
		w.firstID = id
	}
	w.buf = append(w.buf, raw...)
	w.h.Write([]byte(id))
	w.h.Write([]byte{'\n'})
	w.n++
	return nil
}

// Finish completes the batch and returns the message to publish and the id
// to send as its Nats-Msg-Id header. A batch of one pair is sent as that
// pair's version-1 envelope, with the pair's id. A larger one is a
// version-2 envelope whose id is derived from its pairs' ids (the first 16
// bytes of the SHA-256 of each id followed by a newline, in hex), so the
// same pairs batched the same way have the same id. data points into the
// writer's buffer and stays valid until the next Reset with that buffer.
func (w *BatchWriter) Finish() (data []byte, id string) {
	switch w.n {
	case 0:
		return nil, ""
	case 1:
		return w.buf[len(batchHead):], w.firstID
	}
	sum := w.h.Sum(w.sum[:0])
	id = hex.EncodeToString(sum[:16])
	w.buf = append(w.buf, `],"id":"`...)
	w.buf = append(w.buf, id...)
	w.buf = append(w.buf, `"}`...)
	return w.buf, id
}

// Detach returns the writer's buffer, which holds the bytes the last Finish
// returned, and leaves the writer without one until the next Reset. Use it
// to keep a finished batch while the writer goes on with another buffer.
func (w *BatchWriter) Detach() []byte {
	b := w.buf
	w.buf = nil
	return b
}

// Message is one decoded NATS message: a single pair (version 1) or a
// batch (version 2).
type Message struct {
	// Version is 1 for a single pair, 2 for a batch.
	Version int
	// ID is the message's identity, which its Nats-Msg-Id header must
	// carry: the pair's id, or the batch's id.
	ID string
	// Items are the message's pairs in order; a single pair is one item.
	Items []Item
}

// Item is one pair of a message: decoded, or refused with the reason.
type Item struct {
	// Raw is the pair's own envelope, a slice of the message.
	Raw []byte
	// Pair is the decoded pair; nil when Err is set.
	Pair *Pair
	// Err is why the pair was refused; it wraps [ErrInvalid].
	Err error
}

// DecodeMessage decodes a message holding one pair or a batch of them. An
// error means the message as a whole is unusable (not JSON, an unknown
// version, a malformed batch); a batch's pairs are decoded one by one, and
// a bad pair is reported in its [Item] without affecting the others. It
// never panics; every error wraps [ErrInvalid].
func DecodeMessage(data []byte) (Message, error) {
	if len(data) > MaxSize {
		return Message{}, ErrTooLarge
	}
	if !isBatch(data) {
		p, err := Decode(data)
		if err != nil {
			return Message{}, err
		}
		return Message{Version: Version, ID: p.ID, Items: []Item{{Raw: data, Pair: p}}}, nil
	}
	return decodeBatch(data)
}

// isBatch reports whether data is an object whose "version" member is 2.
// It scans the top level only; anything else is left to [Decode].
func isBatch(data []byte) bool {
	s := scanner{data: data}
	s.skipSpace()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return false
	}
	s.pos++
	for {
		s.skipSpace()
		if s.pos >= len(data) || data[s.pos] != '"' {
			return false
		}
		start := s.pos
		if !s.str() {
			return false
		}
		key := data[start+1 : s.pos-1]
		s.skipSpace()
		if s.pos >= len(data) || data[s.pos] != ':' {
			return false
		}
		s.pos++
		s.skipSpace()
		vstart := s.pos
		if !s.value(nil, 0) {
			return false
		}
		if string(key) == "version" {
			return string(data[vstart:s.pos]) == "2"
		}
		s.skipSpace()
		if s.pos >= len(data) || data[s.pos] != ',' {
			return false
		}
		s.pos++
	}
}

// decodeBatch decodes a version-2 envelope: {"version":2,"id":...,"pairs":[...]}.
func decodeBatch(data []byte) (Message, error) {
	m := Message{Version: BatchVersion}
	s := scanner{data: data}
	s.skipSpace()
	s.pos++ // isBatch saw the '{'
	var sawPairs, sawID bool
	for {
		s.skipSpace()
		if s.pos >= len(data) || data[s.pos] != '"' {
			return Message{}, batchSyntax()
		}
		start := s.pos
		if !s.str() {
			return Message{}, batchSyntax()
		}
		key := string(data[start+1 : s.pos-1])
		s.skipSpace()
		if s.pos >= len(data) || data[s.pos] != ':' {
			return Message{}, batchSyntax()
		}
		s.pos++
		s.skipSpace()
		vstart := s.pos
		switch key {
		case "pairs":
			if sawPairs {
				return Message{}, &FieldError{"pairs", "given twice"}
			}
			sawPairs = true
			if s.pos >= len(data) || data[s.pos] != '[' {
				if !s.value(nil, 0) {
					return Message{}, batchSyntax()
				}
				return Message{}, &FieldError{"pairs", "must be an array of pairs"}
			}
			items, ok := s.pairs()
			if !ok {
				return Message{}, batchSyntax()
			}
			m.Items = items
		case "id":
			if sawID {
				return Message{}, &FieldError{"id", "given twice"}
			}
			sawID = true
			if !s.value(nil, 0) {
				return Message{}, batchSyntax()
			}
			raw := data[vstart:s.pos]
			id, err := strconv.Unquote(string(raw))
			if raw[0] != '"' || err != nil || !validToken(id, MaxIDLen, true) {
				return Message{}, &FieldError{"id", fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 _ - . :", MaxIDLen)}
			}
			m.ID = id
		default: // version, already checked, and fields a newer producer adds
			if !s.value(nil, 0) {
				return Message{}, batchSyntax()
			}
		}
		s.skipSpace()
		if s.pos >= len(data) {
			return Message{}, batchSyntax()
		}
		if data[s.pos] == '}' {
			s.pos++
			break
		}
		if data[s.pos] != ',' {
			return Message{}, batchSyntax()
		}
		s.pos++
	}
	s.skipSpace()
	switch {
	case s.pos != len(data):
		return Message{}, batchSyntax()
	case !sawID:
		return Message{}, &FieldError{"id", "missing"}
	case !sawPairs:
		return Message{}, &FieldError{"pairs", "missing"}
	case len(m.Items) == 0:
		return Message{}, &FieldError{"pairs", "empty"}
	case len(m.Items) > MaxBatchPairs:
		return Message{}, &FieldError{"pairs", fmt.Sprintf("%d pairs; at most %d in one batch", len(m.Items), MaxBatchPairs)}
	}
	for i := range m.Items {
		it := &m.Items[i]
		if it.Pair != nil { // read in the same pass as the batch
			if it.Err = it.Pair.validate(false); it.Err != nil {
				it.Pair = nil
			}
			continue
		}
		it.Pair, it.Err = Decode(it.Raw)
	}
	return m, nil
}

// pairs scans the batch's array and returns each element's bytes, not yet
// decoded; it stops counting past MaxBatchPairs+1.
func (s *scanner) pairs() ([]Item, bool) {
	s.pos++ // [
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil, true
	}
	items := make([]Item, 0, 16)
	for {
		// Each pair is read as it is reached, by the single-pass decoder;
		// one it leaves to the general decoder is only delimited here.
		start := s.pos
		var p *Pair
		if len(items) < MaxBatchPairs {
			p = new(Pair)
			end, ok := fastDecodeAt(s.data, start, p)
			if ok {
				s.pos = end
			} else {
				p = nil
			}
		}
		if p == nil && !s.value(nil, 0) {
			return nil, false
		}
		if len(items) <= MaxBatchPairs {
			items = append(items, Item{Raw: s.data[start:s.pos:s.pos], Pair: p})
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return nil, false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case ']':
			s.pos++
			return items, true
		default:
			return nil, false
		}
	}
}

func batchSyntax() error {
	return &FieldError{Field: "(envelope)", Problem: "not valid JSON: a version 2 batch must be an object of id and pairs"}
}
