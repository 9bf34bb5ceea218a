package store

import (
	"encoding/json"
	"time"

	"github.com/parityhq/parity/pkg/report"
	"github.com/parityhq/parity/pkg/segment"
)

// OtherSegment is the segment that values past an experiment's segment cap
// fold into: [segment.Other].
const OtherSegment = segment.Other

// Batch is what one verifier flush writes. [Store.Apply] writes all of it in
// one transaction, or none of it.
type Batch struct {
	Counts      []Count
	Samples     []Sample
	DeadLetters []DeadLetter
	// Signatures are mismatch counts per signature; Apply adds them to the
	// stored ones and keeps first and last seen.
	Signatures []SignatureCount
	// Latencies are latency histograms per experiment, operation, segment
	// and hour; Apply merges them into the stored ones.
	Latencies []Latency
	// Variants are counts per flag variant and reason per minute.
	Variants []VariantCount

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

	// Counters are what the minute's pairs added; Apply adds them to the
	// stored ones. A/A counts are stored beside the others but never added
	// to an experiment's totals.
	report.Counters
	LastStage string
	// FirstSeen and LastSeen are the times of the earliest and the latest
	// pair counted; zero means Minute. The experiment's first seen is its
	// earliest pair's time, not the start of that pair's minute or hour.
	FirstSeen time.Time
	LastSeen  time.Time
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
	// Verdict is the diff verdict (e.g. "mismatch", "candidate_error").
	Verdict string
	// Signature fingerprints the mismatch (empty for other verdicts).
	Signature string
	// RulesVersion is the version of the diff rules the pair was judged under.
	RulesVersion int64
	// Diffs are the differences in detail (path, pattern, kind, both values
	// truncated), as JSON: a []diff.Difference.
	Diffs json.RawMessage
}

// SignatureCount counts the mismatches of one signature in one experiment,
// operation, segment and minute.
type SignatureCount struct {
	Experiment string
	Operation  string
	Segment    string
	Minute     time.Time
	Signature  string
	// Patterns is the signature's sorted set of (pattern, kind), as JSON: a
	// []diff.PatternKind. Stored once per signature.
	Patterns json.RawMessage
	Count    int64
	// FirstSeen and LastSeen bound the pair times counted.
	FirstSeen, LastSeen time.Time
}

// SignatureSummary is one row of an experiment's top signatures. Count,
// Segments, FirstSeen and LastSeen describe the [SignatureQuery]'s selection
// (window, operation, segment), not all time.
type SignatureSummary struct {
	Signature string
	// Patterns is the signature's pattern set as JSON, a []diff.PatternKind;
	// "[]" when none was received (e.g. a signature named after a verdict).
	Patterns  json.RawMessage
	Count     int64
	Segments  int64 // distinct segments it was seen in
	FirstSeen time.Time
	LastSeen  time.Time
}

// SignatureQuery selects the signatures an experiment page shows.
type SignatureQuery struct {
	Since, Until time.Time // [Since, Until) of minutes; zero means unbounded
	Operation    string    // empty means all
	Segment      string    // empty means all
	Limit        int       // 0 means 20
}

// Rules is one version of an experiment's diff rules.
type Rules struct {
	Experiment string
	Version    int64
	// Rules is the diff.Rules document as JSON.
	Rules     json.RawMessage
	Author    string
	Reason    string
	CreatedAt time.Time
}

// PatternStat is how often one pattern appeared in mismatches of one
// operation, for noise detection.
type PatternStat struct {
	Operation string
	Pattern   string
	Kind      string
	Count     int64
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
	Segment string
	Attrs   map[string]string
	report.Counters
	LastSeen time.Time
}

// SampleQuery selects samples for drill-down.
type SampleQuery struct {
	Segment   string // empty means all segments
	Operation string // empty means all operations
	Limit     int    // at most this many, newest first; 0 means 50
}

// Latency holds the latency histograms of one experiment, operation, segment
// and hour, as report.Histogram encodings (report.Histogram.Encode).
type Latency struct {
	Experiment string
	Operation  string
	Segment    string
	Hour       time.Time // truncated to the hour, UTC
	Control    []int64
	Candidate  []int64
}

// VariantCount counts pairs per flag variant and resolution reason (the
// targeting rule that chose the stage) in one minute.
type VariantCount struct {
	Experiment string
	Operation  string
	Variant    string // empty when the stage did not come from a flag
	Reason     string
	Minute     time.Time
	Pairs      int64
	Divergent  int64
}

// LatencyRow is the merged latency of one segment over a window.
type LatencyRow struct {
	Segment   string
	Control   []int64 // report.Histogram encoding
	Candidate []int64
}

// MinuteCount is one segment's counters in one minute ([Store.Minutes]).
type MinuteCount struct {
	Segment string
	Minute  time.Time // the minute's start, UTC
	report.Counters
}

// SeriesPoint is one segment's counts in one time bucket, for charts.
type SeriesPoint struct {
	Segment   string
	At        time.Time // start of the bucket
	Pairs     int64
	Divergent int64
}

// GateSpec is an experiment's stored promotion gate, as JSON.
type GateSpec struct {
	Experiment string
	Spec       []byte
	Author     string
	UpdatedAt  time.Time
}
