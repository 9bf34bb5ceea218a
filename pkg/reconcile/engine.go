package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parityhq/parity/pkg/diff"
)

// Defaults of [Options].
const (
	DefaultChunkRows       = 20000
	DefaultLeafRows        = 2000
	DefaultSplit           = 16
	DefaultRecheckDelay    = 2 * time.Second
	DefaultSamplesPerChunk = 5
	DefaultMaxSamples      = 20
	DefaultMaxPending      = 10000
)

// Options configure [Run]. The zero value means the defaults.
type Options struct {
	// Differ judges rows; nil means [diff.Exact].
	Differ *diff.Differ
	// Operation is the rules section rows are judged under. Defaults to
	// "reconcile:" and the old side's dataset name without its schema.
	Operation string
	// Segments names the columns (of the old side; of the new side for rows
	// only there) whose values make a row's segment.
	Segments []string
	// ChunkRows is the most rows of the old side in one chunk, the unit of
	// checkpoints. Defaults to 20,000.
	ChunkRows int
	// LeafRows: a range whose checksums differ is split into Split parts
	// and each compared by checksum again while it holds more than LeafRows
	// rows of the old side; smaller ranges are compared row by row.
	// Defaults to 2,000 and 16.
	LeafRows, Split int
	// NoChecksum compares every row, even when both sides can checksum.
	NoChecksum bool
	// RecheckDelay is how long after a row was first seen to differ it is
	// read again from both sides and judged again; only the second judgement
	// counts, so writes in flight during the sweep are not reported.
	// Defaults to 2s; negative means at once, without waiting.
	RecheckDelay time.Duration
	// RateLimit is the most rows of the old side read per second; 0 means
	// no limit.
	RateLimit float64
	// After resumes a run after this key (a [Chunk.Through] committed
	// earlier); nil starts at the beginning.
	After *string
	// OnChunk, when set, receives every chunk in key order once it is
	// final. A chunk's counts belong to the run only once OnChunk returned
	// nil: commit them and the checkpoint (Chunk.Through) together. An error
	// stops the run.
	OnChunk func(ctx context.Context, c *Chunk) error
	// OnProgress, when set, is called after each chunk.
	OnProgress func(Progress)
	// SamplesPerChunk bounds the samples a chunk keeps (5), MaxSamples
	// those [Result] keeps (20).
	SamplesPerChunk, MaxSamples int
	// MaxPending bounds the differing rows waiting for their second look
	// (10,000); past it the sweep waits.
	MaxPending int
}

// Progress describes a running reconciliation.
type Progress struct {
	// Rows is the number of old-side rows in committed chunks.
	Rows int64
	// Estimate is the old side's estimated row count; 0 when unknown.
	Estimate    int64
	Differences int64
	Chunks      int
	Elapsed     time.Duration
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.ChunkRows < 0:
		return o, fmt.Errorf("%w: ChunkRows %d is negative", ErrInvalidOption, o.ChunkRows)
	case o.LeafRows < 0:
		return o, fmt.Errorf("%w: LeafRows %d is negative", ErrInvalidOption, o.LeafRows)
	case o.Split < 0 || o.Split == 1:
		return o, fmt.Errorf("%w: Split %d must be 0 or at least 2", ErrInvalidOption, o.Split)
	case o.RateLimit < 0:
		return o, fmt.Errorf("%w: RateLimit %g is negative", ErrInvalidOption, o.RateLimit)
	case o.SamplesPerChunk < 0 || o.MaxSamples < 0 || o.MaxPending < 0:
		return o, fmt.Errorf("%w: sample and pending limits must not be negative", ErrInvalidOption)
	}
	if o.Differ == nil {
		o.Differ = diff.Exact()
	}
	if o.ChunkRows == 0 {
		o.ChunkRows = DefaultChunkRows
	}
	if o.LeafRows == 0 {
		o.LeafRows = DefaultLeafRows
	}
	if o.Split == 0 {
		o.Split = DefaultSplit
	}
	if o.RecheckDelay == 0 {
		o.RecheckDelay = DefaultRecheckDelay
	}
	if o.SamplesPerChunk == 0 {
		o.SamplesPerChunk = DefaultSamplesPerChunk
	}
	if o.MaxSamples == 0 {
		o.MaxSamples = DefaultMaxSamples
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.RateLimit > 0 && float64(o.ChunkRows) > o.RateLimit {
		// Keep the pauses short: a chunk is at most a second's worth.
		o.ChunkRows = max(1, int(o.RateLimit))
	}
	return o, nil
}

// Plan is what [Check] found: the two shapes and how they will be compared.
type Plan struct {
	Old, New Description
	// Operation is the rules section rows are judged under.
	Operation string
	// Checksum says whether chunks are compared by checksum first, with
	// ChecksumColumns (beside the key): every column but those the rules
	// ignore entirely.
	Checksum        bool
	ChecksumColumns []string
	// AsText says, per checksum column, whether it is hashed as text
	// because the two sides' types hash differently by value.
	AsText []bool
	// ChecksumNote says why checksums are not used.
	ChecksumNote string
}

// Check describes both sides and checks that they can be compared: the same
// key kind, the same columns (by name; types may differ, e.g. numeric
// against float8), the segment columns present. Errors name the side and the
// column, and wrap [ErrSchema] when the shapes disagree.
func Check(ctx context.Context, old, new Source, opts Options) (Plan, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Plan{}, err
	}
	return check(ctx, old, new, opts)
}

func check(ctx context.Context, old, new Source, opts Options) (Plan, error) {
	var p Plan
	var oerr, nerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.New, nerr = new.Describe(ctx)
	}()
	p.Old, oerr = old.Describe(ctx)
	<-done
	if oerr != nil {
		return p, oerr
	}
	if nerr != nil {
		return p, nerr
	}
	o, n := p.Old, p.New
	if o.KeyKind != n.KeyKind {
		return p, fmt.Errorf("%w: key column %q is %s on the %s side but key column %q is %s on the %s side",
			ErrSchema, o.Key, o.KeyKind, o.Side, n.Key, n.KeyKind, n.Side)
	}
	oc, nc := columnSet(o), columnSet(n)
	for _, c := range o.Columns {
		if !nc[c.Name] {
			return p, fmt.Errorf("%w: %s side (%s): column %q is missing (the %s side has it)", ErrSchema, n.Side, n.Name, c.Name, o.Side)
		}
	}
	for _, c := range n.Columns {
		if !oc[c.Name] {
			return p, fmt.Errorf("%w: %s side (%s): column %q is not on the %s side", ErrSchema, n.Side, n.Name, c.Name, o.Side)
		}
	}
	if o.Key != n.Key {
		return p, fmt.Errorf("%w: the key column is %q on the %s side and %q on the %s side; rows are compared by column name, so name them alike (a view can rename)",
			ErrSchema, o.Key, o.Side, n.Key, n.Side)
	}
	for _, s := range opts.Segments {
		if !oc[s] {
			return p, fmt.Errorf("%w: %s side (%s): segment column %q does not exist", ErrSchema, o.Side, o.Name, s)
		}
	}
	p.Operation = opts.Operation
	if p.Operation == "" {
		name := o.Name
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		p.Operation = "reconcile:" + name
	}
	for _, c := range o.Columns {
		if c.Name != o.Key && !ignored(opts.Differ, p.Operation, c.Name) {
			p.ChecksumColumns = append(p.ChecksumColumns, c.Name)
		}
	}
	slices.Sort(p.ChecksumColumns)
	p.Checksum, p.ChecksumNote = checksumUsable(old, new, &p, opts)
	return p, nil
}

// checksumUsable says whether both sides checksum alike, and if not, why.
func checksumUsable(old, new Source, p *Plan, opts Options) (bool, string) {
	if opts.NoChecksum {
		return false, "checksums turned off"
	}
	oc, ok1 := old.(Checksummer)
	nc, ok2 := new.(Checksummer)
	if !ok1 || !ok2 {
		return false, "a side cannot checksum"
	}
	oa, of := oc.ChecksumForm(p.ChecksumColumns)
	na, nf := nc.ChecksumForm(p.ChecksumColumns)
	if oa != na {
		return false, fmt.Sprintf("the sides checksum differently (%s, %s)", oa, na)
	}
	p.AsText = make([]bool, len(p.ChecksumColumns))
	for i, c := range p.ChecksumColumns {
		switch {
		case of[i].Value != "" && of[i].Value == nf[i].Value:
		case of[i].Text == nf[i].Text:
			p.AsText[i] = true
		default:
			return false, fmt.Sprintf("column %q is hashed as %s on the %s side and as %s on the %s side", c, of[i].Text, p.Old.Side, nf[i].Text, p.New.Side)
		}
	}
	return true, ""
}

func columnSet(d Description) map[string]bool {
	m := make(map[string]bool, len(d.Columns))
	for _, c := range d.Columns {
		m[c.Name] = true
	}
	return m
}

// ignored reports whether the rules ignore the column entirely: values of
// every JSON type there compare equal. Only an ignore rule covering the
// member does that; number, string, timestamp and array rules never make a
// number equal to a string, or an array equal to an object.
func ignored(d *diff.Differ, op, column string) bool {
	k, _ := json.Marshal(column)
	probes := [][2]string{
		{`{` + string(k) + `:1}`, `{` + string(k) + `:"x"}`},
		{`{` + string(k) + `:[1]}`, `{` + string(k) + `:{"a":true}}`},
		{`{` + string(k) + `:null}`, `{` + string(k) + `:false}`},
	}
	for _, p := range probes {
		if d.ValuesFor(op, []byte(p[0]), []byte(p[1])).Verdict != diff.VerdictMatch {
			return false
		}
	}
	return true
}
