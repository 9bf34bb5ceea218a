package reconcile

import (
	"strings"

	"github.com/parityhq/parity/pkg/diff"
)

// Counts are the counters of a reconciliation, overall or for one segment.
// Every row seen on either side is in Compared exactly once, and in exactly
// one of the other counters.
type Counts struct {
	Compared     int64 `json:"rows_compared"`
	Matched      int64 `json:"matched"`
	Divergent    int64 `json:"divergent"`
	MissingInNew int64 `json:"missing_in_new"`
	ExtraInNew   int64 `json:"extra_in_new"`
	// Invalid counts rows whose value the differ could not parse.
	Invalid int64 `json:"invalid"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Compared += o.Compared
	c.Matched += o.Matched
	c.Divergent += o.Divergent
	c.MissingInNew += o.MissingInNew
	c.ExtraInNew += o.ExtraInNew
	c.Invalid += o.Invalid
}

// Differences is the number of rows that did not match.
func (c Counts) Differences() int64 {
	return c.Divergent + c.MissingInNew + c.ExtraInNew + c.Invalid
}

// The kinds of a [Sample] and the names of the signatures of rows missing
// or extra.
const (
	KindDivergent    = "divergent"
	KindMissingInNew = "missing_in_new"
	KindExtraInNew   = "extra_in_new"
	KindInvalid      = "invalid"
)

// Segment is the result for one segment of a chunk or a run.
type Segment struct {
	// Key is the canonical segment key, e.g. "country=IN,plan=pro", or "all"
	// when no segment columns were named.
	Key string
	// Attrs are the segment's column values.
	Attrs  map[string]string
	Counts Counts
	// Signatures count the differing rows per signature: a diff signature
	// for divergent rows, [KindMissingInNew] or [KindExtraInNew] for missing
	// and extra rows, [KindInvalid] for invalid ones.
	Signatures map[string]*Signature
}

// Signature counts the rows of one shape of difference.
type Signature struct {
	// Patterns is the diff pattern set (empty for missing, extra and
	// invalid rows).
	Patterns []diff.PatternKind
	Count    int64
}

// Sample is one differing row, kept for drill-down.
type Sample struct {
	Key     string
	Segment string
	Kind    string
	// Old and New are the two rows as JSON; nil when absent on that side.
	Old, New  []byte
	Diffs     []diff.Difference
	Signature string
	Patterns  []diff.PatternKind
	// Reason says why an invalid row could not be parsed.
	Reason string
}

// Chunk is the final result of one range of keys, (After, Through], handed
// to [Options.OnChunk] in key order once its differing rows were checked
// again. Through nil means the end of the key space: the run is complete
// once this chunk is committed.
type Chunk struct {
	After, Through *string
	// Segments are keyed by [Segment.Key].
	Segments map[string]*Segment
	Samples  []Sample
	// Checksummed says whether the chunk was first compared by checksum.
	Checksummed bool
}

// Counts sums the chunk's segments.
func (c *Chunk) Counts() Counts {
	var t Counts
	for _, s := range c.Segments {
		t.Add(s.Counts)
	}
	return t
}

func (c *Chunk) segment(key string, names, values []string) *Segment {
	s := c.Segments[key]
	if s == nil {
		s = &Segment{Key: key}
		if len(names) > 0 {
			s.Attrs = make(map[string]string, len(names))
			for i, n := range names {
				s.Attrs[n] = segValue(values, i)
			}
		}
		c.Segments[key] = s
	}
	return s
}

// sign counts a row under its signature; res is the diff's result for a
// divergent row (whose pattern set a new signature keeps), else nil.
func (s *Segment) sign(sig string, res *diff.Result) {
	if s.Signatures == nil {
		s.Signatures = map[string]*Signature{}
	}
	x := s.Signatures[sig]
	if x == nil {
		x = &Signature{}
		if res != nil {
			x.Patterns = res.Patterns()
		}
		s.Signatures[sig] = x
	}
	x.Count++
}

// merge adds o's counts and signatures to s.
func (s *Segment) merge(o *Segment) {
	s.Counts.Add(o.Counts)
	for sig, x := range o.Signatures {
		if s.Signatures == nil {
			s.Signatures = map[string]*Signature{}
		}
		y := s.Signatures[sig]
		if y == nil {
			y = &Signature{Patterns: x.Patterns}
			s.Signatures[sig] = y
		}
		y.Count += x.Count
	}
}

// Result is the outcome of [Run]: the sum of the chunks it committed.
type Result struct {
	Counts Counts
	// Segments are keyed by [Segment.Key].
	Segments map[string]*Segment
	// Samples are the first differing rows found, at most
	// [Options.MaxSamples].
	Samples []Sample
	// Chunks is the number of chunks committed, ChecksumChunks how many of
	// them first compared by checksum, and FetchedRows how many rows were
	// read to be compared row by row (both sides).
	Chunks, ChecksumChunks int
	FetchedRows            int64
	// Checksum says whether checksums were used.
	Checksum bool
	// ChecksumColumns are the columns the checksums covered, beside the key.
	ChecksumColumns []string
	// Complete says whether the run reached the end of the key space.
	Complete bool
}

// segmentKey renders a segment key as the verifier does:
// "country=IN,plan=pro", "(none)" for empty values, "all" without columns.
func segmentKey(names, values []string) string {
	if len(names) == 0 {
		return "all"
	}
	var sb strings.Builder
	for i, n := range names {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(n)
		sb.WriteByte('=')
		sb.WriteString(segValue(values, i))
	}
	return sb.String()
}

var segReplacer = strings.NewReplacer(",", "_", "=", "_")

func segValue(values []string, i int) string {
	v := ""
	if i < len(values) {
		v = values[i]
	}
	if v == "" {
		return "(none)"
	}
	if len(v) > 64 {
		v = strings.ToValidUTF8(v[:64], "")
	}
	return segReplacer.Replace(v)
}
