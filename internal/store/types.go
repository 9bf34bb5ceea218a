package store

import (
	"encoding/json"
	"time"
)

// OtherSegment is the segment that values past an experiment's segment cap
// fold into.
const OtherSegment = "other"

// Batch is what one verifier flush writes. [Store.Apply] writes all of it in
// one transaction, or none of it.
type Batch struct {
	Counts      []Count
	Samples     []Sample
	DeadLetters []DeadLetter

	// Stream names the JetStream stream the batch's messages came from, with
	// an epoch that changes when the stream is recreated (sequences restart),
	// e.g. "PARITY_PAIRS@<created-unix-nanos>". It is an opaque key.
	Stream string
	// Seqs are the stream sequences of the messages the batch consumed,
	// dead-lettered ones included. Apply records them with the batch, so a
	// redelivered message can be recognised with [Store.Applied].
	Seqs []uint64
}

// Count is a pre-aggregated set of counters for one experiment, operation,
// segment and minute. Apply adds it to what is stored.
type Count struct {
	Experiment string
	Operation  string
	// Segment is the canonical segment key, e.g. "country=IN,plan=pro".
	Segment string
	// Attrs are the segment's attribute values, e.g. {"country":"IN","plan":"pro"}.
	Attrs  map[string]string
	Minute time.Time // truncated to the minute, UTC

	Pairs           int64 // pairs judged
	Divergent       int64 // pairs whose candidate did not agree with control
	ControlErrors   int64 // pairs whose control side failed (error, panic or timeout)
	CandidateErrors int64 // pairs whose candidate side failed (error, panic or timeout)
	Skipped         int64 // write pairs whose non-authoritative write was skipped
	Timeouts        int64 // pairs whose candidate timed out
	LastStage       string
	LastSeen        time.Time
}

// Sample is one divergent pair kept for drill-down.
type Sample struct {
	ID         int64 // assigned by the store
	PairID     string
	Experiment string
	Operation  string
	Segment    string
	Kind       string
	Stage      string
	UserKey    string
	Time       time.Time
	// Control and Candidate are the observations as JSON (value, error,
	// status, duration_ns), with the meaning they arrived with (stored as jsonb:
	// key order and spacing may change).
	Control   json.RawMessage
	Candidate json.RawMessage
	// Paths are the differing paths, e.g. "items[3].price".
	Paths []string
}

// DeadLetter is an envelope that could not be used, with the reason.
type DeadLetter struct {
	ID      int64  // assigned by the store
	Source  string // "nats" or "http"
	Subject string
	Reason  string
	// Data is the start of the rejected bytes (at most MaxDeadLetterBytes).
	Data []byte
	Size int // the full size of the rejected bytes
	At   time.Time
}

// MaxDeadLetterBytes is how much of a rejected envelope is kept.
const MaxDeadLetterBytes = 16 << 10

// Experiment summarises one experiment for the overview.
type Experiment struct {
	Name      string
	Pairs     int64
	Divergent int64
	Stage     string // the stage of the last pair seen
	FirstSeen time.Time
	LastSeen  time.Time
}

// SegmentQuery selects the counts the segment table shows.
type SegmentQuery struct {
	Since, Until time.Time // [Since, Until); zero means unbounded
	Operation    string    // empty means all operations
}

// SegmentCount is one row of the segment table.
type SegmentCount struct {
	Segment         string
	Attrs           map[string]string
	Pairs           int64
	Divergent       int64
	ControlErrors   int64
	CandidateErrors int64
	Skipped         int64
	Timeouts        int64
	LastSeen        time.Time
}

// SampleQuery selects samples for drill-down.
type SampleQuery struct {
	Segment   string // empty means all segments
	Operation string // empty means all operations
	Limit     int    // at most this many, newest first; 0 means 50
}
