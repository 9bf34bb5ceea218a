package pgsource

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The row hash of [ChecksumAlgorithm] version 2. Version 1 formed a record of
// the key and the columns for every row and hashed it with
// hash_record_extended; forming and taking apart that record was a quarter
// of the checksum's work per row, and the record's hash, 31·hash(key) +
// hash(value), is linear, so a sum of them did not change when two rows
// swapped a value. Version 2 calls each column's own extended hash function,
// seeded with the hash of the key and the columns before it: a value moved
// to another column or another row changes the sum. (A XOR of separately
// seeded column hashes would not do either: summed over rows, two rows
// swapping a column's values cancel with a chance of about (3/4)^64, not
// 2^-64.)
const (
	// keySeed seeds the key's hash.
	keySeed = -7046029254386353131 // 0x9E3779B97F4A7C15
	// nullMul spreads a column's NULL mark: the i-th column's NULL is
	// hashed as its type's zero with the seed XORed with (i+1)·nullMul.
	nullMul uint64 = 0xC2B2AE3D27D4EB4F
)

// Timestamps with a time zone between these bounds are hashed as float8
// seconds since 2000 (tstzrange_subdiff, exact there: a microsecond is more
// than a float8's spacing below 2^52 µs), others by timestamp_hash_extended
// of their UTC time, which is three times slower.
const (
	tsFrom  = "'1900-01-01 00:00:00+00'"
	tsUntil = "'2100-01-01 00:00:00+00'"
	tsZero  = "'2000-01-01 00:00:00+00'"
)

// hashFuncs are the extended hash functions called directly, by type, with
// the zero that stands in for NULL. Types of one [reconcile.Form] family
// hash alike (hashint2extended(5) = hashint8extended(5)). Every other type
// with a hash function is hashed as a record of itself and true, which
// hash_record_extended hashes with the type's own function and which is
// never NULL.
var hashFuncs = map[string]struct{ fn, zero string }{
	"int2":    {"hashint2extended", "0::int2"},
	"int4":    {"hashint4extended", "0::int4"},
	"int8":    {"hashint8extended", "0::int8"},
	"float4":  {"hashfloat4extended", "0::float4"},
	"float8":  {"hashfloat8extended", "0::float8"},
	"numeric": {"hash_numeric_extended", "0::numeric"},
	"text":    {"hashtextextended", "''::text"},
	"varchar": {"hashtextextended", "''::text"},
	"uuid":    {"uuid_hash_extended", "'00000000-0000-0000-0000-000000000000'::uuid"},
}

// highHalf gives, for the integer types and timestamp (an int8 of
// microseconds), the shift that takes a value's high 32 bits as an int8
// would have them (0 or -1 for the narrower types). hashint8extended, and
// timestamp_hash_extended through it, hashes the low half XORed with the
// high half: -1 and 4294967295 hash alike, and a migration that turned a
// signed -1 into an unsigned 32-bit one would go unseen. XORing the high
// half into the seed tells them apart at the cost of a shift and a XOR,
// and keeps the widths hashing alike.
var highHalf = map[string]int{"int2": 15, "int4": 31, "int8": 32}

// foldedByHash are the types whose own hash functions fold an int8 to 32
// bits as hashint8extended does (time and timetz are microseconds, interval
// a 128-bit span folded likewise): they are hashed as their text, which is
// exact. Text that differs for equal values (another IntervalStyle on the
// other side) only sends the range to be compared row by row. (money has
// no hash function and is hashed as text anyway.)
var foldedByHash = map[string]bool{"time": true, "timetz": true, "interval": true}

// rowHash renders the hash of a row: the key's, then each of cols in turn,
// hashed by value or, where asText says, as its canonical text (see
// [Source.ChecksumForm]).
//
// A column declared NOT NULL is hashed without its NULL mark, which gives
// the same hash for every value: the other side may declare it nullable.
// Should a NULL appear in it anyway (the constraint dropped during a sweep),
// the chain is NULL and the row is hashed as a record of the same values,
// as version 1 did: never like a row of the other side that hashes the NULL
// with its mark, and like one that hashes it the same way only when every
// value agrees.
func (s *Source) rowHash(cols []string, asText []bool) (string, error) {
	text := !s.hashes[s.cfg.Key]
	h := s.columnHash(s.cfg.Key, text, fmt.Sprint(keySeed), 0)
	vals := []string{s.columnValue(s.cfg.Key, text)}
	for i, c := range cols {
		if _, ok := s.types[c]; !ok {
			return "", s.errf("column %q does not exist", c)
		}
		text := i < len(asText) && asText[i]
		h = s.columnHash(c, text, h, i+1)
		vals = append(vals, s.columnValue(c, text))
	}
	return fmt.Sprintf("coalesce(%s, hash_record_extended(ROW(%s), 0))", h, strings.Join(vals, ", ")), nil
}

// columnValue renders column col as it is hashed: its value, bytewise for
// strings, or its canonical text.
func (s *Source) columnValue(col string, text bool) string {
	q := "t." + pgx.Identifier{col}.Sanitize()
	typname := s.types[col]
	switch {
	case text && typname == "numeric":
		return "trim_scale(" + q + `)::text COLLATE "C"` // no trailing zeros
	case text:
		return q + `::text COLLATE "C"`
	case typname == "text" || typname == "varchar":
		return q + ` COLLATE "C"` // bytewise equality, whatever the collation
	}
	return q
}

// columnHash renders the hash of column col seeded with seed, the hash so
// far; i numbers the column for its NULL mark, which a column declared NOT
// NULL goes without (see rowHash).
func (s *Source) columnHash(col string, text bool, seed string, i int) string {
	raw := "t." + pgx.Identifier{col}.Sanitize()
	typname := s.types[col]
	text = text || foldedByHash[typname]
	q := s.columnValue(col, text)
	nullable := !s.notNull[col]
	mark := int64(uint64(i+1) * nullMul)
	f, direct := hashFuncs[typname]
	switch {
	case text:
		f = hashFuncs["text"]
	case typname == "timestamptz" || typname == "timestamp":
		// timestamp_hash_extended alone folds the high half of the
		// microseconds into the low (see highHalf); the float8 seconds
		// are exact in range and outside it tell apart what the fold
		// does not (values 2^32 µs apart).
		diff, cast, zero, from, until := "tstzrange_subdiff", "::timestamp", tsZero, tsFrom, tsUntil
		if typname == "timestamp" {
			diff, cast = "tsrange_subdiff", ""
			zero, from, until = zero+"::timestamp", from+"::timestamp", until+"::timestamp"
		}
		v, when := q, ""
		if nullable {
			v = "coalesce(" + q + ", " + zero + ")"
			when = fmt.Sprintf("WHEN %s IS NULL THEN %d ", q, mark)
		}
		return fmt.Sprintf("hashfloat8extended(%s(%s, %s), %s # CASE %sWHEN %s > %s AND %s < %s THEN 0 ELSE timestamp_hash_extended(%s%s, %d) END)",
			diff, v, zero, seed, when, q, from, q, until, q, cast, mark)
	case !direct:
		return fmt.Sprintf("hash_record_extended(ROW(%s, true), %s)", q, seed)
	}
	if nullable {
		q = "coalesce(" + q + ", " + f.zero + ")"
		seed = fmt.Sprintf("(%s # CASE WHEN %s IS NULL THEN %d ELSE 0 END)", seed, raw, mark)
	}
	if shift, ok := highHalf[typname]; ok && !text {
		seed = fmt.Sprintf("(%s # (%s >> %d))", seed, q, shift)
	}
	return fmt.Sprintf("%s(%s, %s)", f.fn, q, seed)
}
