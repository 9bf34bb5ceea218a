package reconcile

import (
	"context"
	"errors"
)

// Source is one side of a reconciliation: a keyed dataset that can be read
// in key order. The engine never compares keys itself; it only passes keys a
// source returned back to both sources as range bounds, so the two sources
// must order keys the same way ([Description.KeyKind] must be equal).
//
// Keys travel as text: the canonical text of the key value (for PostgreSQL,
// the key cast to text), unique within a source.
//
// Implementations must be safe for concurrent use by two goroutines.
type Source interface {
	// Describe returns the dataset's shape. It is called once, before any
	// row is read; an error should name the side and the problem (a missing
	// table, a key that is not unique).
	Describe(ctx context.Context) (Description, error)
	// Rows returns the rows the request selects, in key order: those whose
	// key is in (After, Through] (a nil bound is open), at most Limit of them
	// (0: no limit), or, when Keys is set, the rows with those keys in any
	// order (absent keys are simply not returned). Each row's Segment holds
	// the text values of the request's Segments columns, in order.
	Rows(ctx context.Context, req Request) ([]Row, error)
}

// Checksummer is implemented by a [Source] that can summarise a key range
// inside its store. The engine uses checksums only when both sides implement
// Checksummer with the same [Checksummer.ChecksumForm], and compares
// rows only in ranges whose checksums differ.
type Checksummer interface {
	// ChecksumForm names the checksum function and, for each of columns,
	// the form its values are hashed in. The engine compares two sources'
	// checksums only when their functions and the forms of every covered
	// column are equal; the name must change whenever the function or the
	// canonical form changes.
	ChecksumForm(columns []string) (algorithm string, forms []Form)
	// Checksum summarises the rows [Source.Rows] would return for req (Keys
	// is never set): their number, a hash of their canonical form over the
	// key and req.Columns only, the last key (when req.Limit is set), and the
	// number of rows per distinct value of req.Segments.
	//
	// The canonical form must be such that two rows with equal hashes (but
	// for a negligible chance) compare equal under the exact rules of
	// pkg/diff over the columns hashed.
	Checksum(ctx context.Context, req Request) (Sum, error)
}

// Estimator is implemented by a [Source] that can estimate its row count
// cheaply, for progress and ETA.
type Estimator interface {
	EstimateRows(ctx context.Context) (int64, error)
}

// Request selects rows of a [Source].
type Request struct {
	// After and Through bound the key range (After, Through]; nil is open.
	After, Through *string
	// Limit is the most rows returned, the first in key order; 0 is none.
	Limit int
	// Keys, when not nil, selects these keys instead of a range.
	Keys []string
	// Segments names the columns whose text values make a row's segment.
	Segments []string
	// Columns names the columns a [Checksummer.Checksum] covers, beside the
	// key.
	Columns []string
	// AsText says, per column of Columns, to hash it in its text form (see
	// [Form]) rather than by value.
	AsText []bool
}

// Form says how a [Checksummer] hashes one column. A column is hashed by
// value when both sides' Value forms are equal and not empty, else as text
// when their Text forms are equal; otherwise checksums are not used.
type Form struct {
	// Value names the family of types whose values hash alike, e.g.
	// "integer"; empty when the column cannot be hashed by value.
	Value string
	// Text names the canonical text form, e.g. "number" for decimal
	// literals, so that numeric 1.50 and float8 1.5 hash alike.
	Text string
}

// Row is one row of a [Source].
type Row struct {
	// Key is the canonical text of the row's key.
	Key string
	// Doc is the row as a JSON object, one member per column; pkg/diff
	// compares it with the other side's.
	Doc []byte
	// Segment holds the text values of the requested segment columns; ""
	// stands for NULL.
	Segment []string
}

// Sum is what [Checksummer.Checksum] returns.
type Sum struct {
	Rows int64
	// Hash summarises the rows; equal hashes of equal algorithms mean equal
	// rows. It is opaque.
	Hash string
	// Last is the last key in key order, when the request had a Limit and
	// Rows > 0.
	Last string
	// Segments counts the rows per segment value.
	Segments []SegmentRows
}

// SegmentRows is the number of rows of one segment value in a [Sum].
type SegmentRows struct {
	Values []string
	Rows   int64
}

// Description is the shape of a [Source].
type Description struct {
	// Side names the source in errors, e.g. "old" or "new".
	Side string
	// Name names the dataset, e.g. "public.orders".
	Name string
	// Key is the key column.
	Key string
	// KeyKind says how keys are ordered, e.g. "integer", "uuid",
	// `text collate "C"`; both sides must report the same.
	KeyKind string
	// Columns are the dataset's columns, key included.
	Columns []Column
}

// Column is one column of a [Description].
type Column struct {
	Name string
	Type string
}

// Errors returned by the engine, wrapped; test with [errors.Is].
var (
	// ErrSchema reports sides whose shapes cannot be compared: key kinds
	// differ, columns differ, a segment column is missing. The message names
	// the side and the column.
	ErrSchema = errors.New("reconcile: schema")
	// ErrInvalidOption reports an [Options] field out of range.
	ErrInvalidOption = errors.New("reconcile: invalid option")
)
