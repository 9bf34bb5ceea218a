// Package pgsource is the PostgreSQL side of a reconciliation: a table or a
// view in one database, read through pgx, that implements
// [reconcile.Source], [reconcile.Checksummer] and [reconcile.Estimator].
//
// The dataset needs one key column of an orderable type: integers (gaps
// are fine), text, UUID, or any other type with a b-tree ordering. [Open]
// checks it before any row is read, and its errors name the side and the
// column: a database that cannot be reached, a table or view that does not
// exist, a key column that is missing, nullable or not unique.
//
// Rows are read as the JSON row_to_json renders for the table's row, byte
// for byte, in the session time zone UTC and with floats in their shortest
// exact form, so both sides render values alike (numbers, booleans and
// strings are read as text and made JSON here; other columns through
// to_json in the database). Checksums are computed inside the database: a
// row's hash chains the extended hash functions of the key's and the covered
// columns' types, each seeded with the hash so far, so a value moved to
// another column or row changes it; a range's is the sum of its rows'
// hashes modulo 2^64, with counts per segment. A column is hashed by value
// where both sides' types hash alike (values equal under the type's
// equality render as equal JSON), else by its canonical text (numbers as
// decimal literals, so numeric 1.50 and float8 1.5 hash alike); NULL hashes
// apart from every value. See [Source.ChecksumForm] and docs/reconcile.md.
// Two ranges with equal sums hold rows the differ's exact rules find equal,
// but for a chance of about 2^-64 (PostgreSQL's int8 hash folds 64 bits to
// 32, so integers carry their high half in the seed and times are hashed
// as float8 or text; see checksum.go).
//
// Keys are compared in the key column's own ordering; for text keys that is
// the column's collation, reported in the key kind so that two sides that
// would order keys differently are refused ([Config.KeyCollation] chooses
// one).
package pgsource

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parityhq/parity/pkg/reconcile"
)

// ChecksumAlgorithm names the checksum of this package; see the package
// documentation. Version 1 ("pg-hash-record-sum-v1") hashed a record of
// each row; version 2 chains the columns' hash functions. Two sources
// compare checksums only when they name the same algorithm, and nothing
// stores it, so a source of another version is compared row by row.
const ChecksumAlgorithm = "pg-hash-chain-sum-v2"

// Config says where one side's dataset is.
type Config struct {
	// Side names the side in errors: "old" or "new".
	Side string
	// URL is the database, as pgx accepts it.
	URL string
	// Table is the table or view, optionally schema-qualified
	// ("public.orders"); case-sensitive names need double quotes.
	Table string
	// Key is the key column.
	Key string
	// KeyCollation, for a text key, compares keys in this collation (e.g.
	// "C") instead of the column's; the same on both sides.
	KeyCollation string
	// MaxConns bounds the connections. Defaults to 4.
	MaxConns int32
}

// Source is one side of a reconciliation in PostgreSQL. It is safe for
// concurrent use.
type Source struct {
	cfg     Config
	pool    *pgxpool.Pool
	rel     string // quoted relation
	key     string // quoted key column
	keyType string // format_type of the key
	keyExpr string // the key with its collation, for comparisons
	desc    reconcile.Description
	types   map[string]string // column -> type name
	hashes  map[string]bool   // column -> its type has a hash function
	notNull map[string]bool   // column -> declared NOT NULL
	kind    byte              // relkind
	probe   string            // the hash functions' results for fixed values
	// docCols renders each column for Rows, in the table's order: its
	// expression and how its text becomes JSON (see docColumn).
	docCols []docColumn
}

// Open connects to the database and checks the dataset: it exists, and its
// key column exists, is not nullable and is unique (a primary key or a
// unique index on it alone; for a view, checked by a scan).
func Open(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.Side == "" {
		cfg.Side = "source"
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 4
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("pgsource: %s side: database URL: %w", cfg.Side, redact(err, cfg.URL))
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pcfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pcfg.ConnConfig.RuntimeParams["application_name"] = "parity-reconcile"
	pcfg.ConnConfig.RuntimeParams["extra_float_digits"] = "1" // floats in their shortest exact form
	pcfg.MaxConns = cfg.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("pgsource: %s side: %w", cfg.Side, redact(err, cfg.URL))
	}
	s := &Source{cfg: cfg, pool: pool}
	if err := s.describe(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connections.
func (s *Source) Close() { s.pool.Close() }

// redact removes the URL's password from an error's text.
func redact(err error, raw string) error {
	u, perr := url.Parse(raw)
	if perr != nil || u.User == nil {
		return err
	}
	if p, ok := u.User.Password(); ok && p != "" {
		return errors.New(strings.ReplaceAll(err.Error(), p, "xxxxx"))
	}
	return err
}

func (s *Source) errf(format string, args ...any) error {
	return fmt.Errorf("pgsource: %s side (%s): %s", s.cfg.Side, s.cfg.Table, fmt.Sprintf(format, args...))
}

func (s *Source) describe(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgsource: %s side: cannot reach the database: %w", s.cfg.Side, redact(err, s.cfg.URL))
	}
	if err := s.pool.QueryRow(ctx, `SELECT hash_record_extended(ROW(true), hashfloat8extended(tstzrange_subdiff('2026-01-01 00:00:00+00', '2000-01-01 00:00:00+00'),
		timestamp_hash_extended('2026-01-01', uuid_hash_extended('00000000-0000-4000-8000-000000000001', hashfloat8extended(2.5,
		hash_numeric_extended(1.5, hashtextextended('parity reconcile', hashint8extended(2, 0))))))))::text`).Scan(&s.probe); err != nil {
		return fmt.Errorf("pgsource: %s side: PostgreSQL 14 or later is needed: %w", s.cfg.Side, err)
	}
	ident, err := parseIdent(s.cfg.Table)
	if err != nil {
		return s.errf("%v", err)
	}
	s.rel = ident.Sanitize()
	var oid uint32
	var found bool
	err = s.pool.QueryRow(ctx, `SELECT c.oid, c.relkind::text::"char", true FROM pg_class c WHERE c.oid = to_regclass($1)`, s.rel).Scan(&oid, &s.kind, &found)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.errf("table or view does not exist")
	}
	if err != nil {
		return s.errf("look up the table: %v", err)
	}
	switch s.kind {
	case 'r', 'v', 'm', 'p', 'f':
	default:
		return s.errf("is not a table or a view")
	}
	rows, err := s.pool.Query(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, a.attnotnull, coalesce(co.collname, ''), t.typcategory::text,
			EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
				WHERE am.amname = 'hash' AND oc.opcdefault AND (oc.opcintype = a.atttypid OR (t.typcategory = 'A' AND oc.opcintype = 'anyarray'::regtype
					AND EXISTS (SELECT 1 FROM pg_opclass e WHERE e.opcmethod = am.oid AND e.opcdefault AND e.opcintype = t.typelem))))
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
	if err != nil {
		return s.errf("read the columns: %v", err)
	}
	type col struct {
		name, typ, typname, coll, cat string
		notnull, hashable             bool
	}
	var cols []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.name, &c.typ, &c.typname, &c.notnull, &c.coll, &c.cat, &c.hashable); err != nil {
			rows.Close()
			return s.errf("read the columns: %v", err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return s.errf("read the columns: %v", err)
	}
	s.types, s.hashes, s.notNull = map[string]string{}, map[string]bool{}, map[string]bool{}
	s.desc = reconcile.Description{Side: s.cfg.Side, Name: strings.Trim(s.cfg.Table, `"`), Key: s.cfg.Key}
	var key *col
	for i := range cols {
		c := &cols[i]
		s.desc.Columns = append(s.desc.Columns, reconcile.Column{Name: c.name, Type: c.typ})
		s.types[c.name] = c.typname
		s.docCols = append(s.docCols, newDocColumn(c.name, c.typname))
		s.hashes[c.name] = c.hashable || c.typname == "varchar" // varchar hashes with text's function
		s.notNull[c.name] = c.notnull
		if c.name == s.cfg.Key {
			key = c
		}
	}
	if key == nil {
		return s.errf("key column %q does not exist", s.cfg.Key)
	}
	s.key = pgx.Identifier{key.name}.Sanitize()
	s.keyType = key.typ
	s.keyExpr = "t." + s.key
	switch key.typname {
	case "int2", "int4", "int8":
		s.desc.KeyKind = "integer"
	case "uuid":
		s.desc.KeyKind = "uuid"
	default:
		if key.cat == "S" {
			coll := key.coll
			if s.cfg.KeyCollation != "" {
				coll = s.cfg.KeyCollation
				s.keyExpr += " COLLATE " + pgx.Identifier{coll}.Sanitize()
			}
			if coll == "default" {
				if err := s.pool.QueryRow(ctx, `SELECT datcollate FROM pg_database WHERE datname = current_database()`).Scan(&coll); err != nil {
					return s.errf("read the database collation: %v", err)
				}
			}
			s.desc.KeyKind = fmt.Sprintf("text collate %q", coll)
		} else {
			s.desc.KeyKind = key.typ
		}
	}
	var hasOrder bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_opclass WHERE opcintype = (SELECT atttypid FROM pg_attribute WHERE attrelid = $1 AND attname = $2) AND opcmethod = (SELECT oid FROM pg_am WHERE amname = 'btree') AND opcdefault)`, oid, key.name).Scan(&hasOrder); err != nil {
		return s.errf("look up the key's ordering: %v", err)
	}
	if !hasOrder {
		return s.errf("key column %q is of type %s, which has no ordering", key.name, key.typ)
	}
	if s.kind == 'r' || s.kind == 'p' || s.kind == 'm' {
		if !key.notnull {
			return s.errf("key column %q is nullable; a key must be NOT NULL", key.name)
		}
		var unique bool
		if err := s.pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1 AND i.indisunique AND i.indnkeyatts = 1
				AND i.indpred IS NULL AND i.indexprs IS NULL
				AND i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = $1 AND attname = $2))`, oid, key.name).Scan(&unique); err != nil {
			return s.errf("look up the key's index: %v", err)
		}
		if !unique {
			return s.errf("key column %q is not unique: it needs a primary key or a unique index on it alone", key.name)
		}
		return nil
	}
	// A view cannot declare its key: scan it once.
	var nulls, dups int64
	q := fmt.Sprintf(`SELECT count(*) FILTER (WHERE %[1]s IS NULL), count(%[1]s) - count(DISTINCT %[1]s) FROM %[2]s t`, s.keyExpr, s.rel)
	if err := s.pool.QueryRow(ctx, q).Scan(&nulls, &dups); err != nil {
		return s.errf("check the key: %v", err)
	}
	if nulls > 0 {
		return s.errf("key column %q is NULL in %d rows", key.name, nulls)
	}
	if dups > 0 {
		return s.errf("key column %q is not unique: %d repeated values", key.name, dups)
	}
	return nil
}

// parseIdent splits "schema.table" into an identifier, honouring double
// quotes.
func parseIdent(s string) (pgx.Identifier, error) {
	var parts pgx.Identifier
	var cur strings.Builder
	quoted, wasQuoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' && quoted && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"':
			quoted = !quoted
			wasQuoted = true
		case c == '.' && !quoted:
			parts = append(parts, cur.String())
			cur.Reset()
			wasQuoted = false
		default:
			if !quoted && !wasQuoted {
				c = lower(c)
			}
			cur.WriteByte(c)
		}
	}
	parts = append(parts, cur.String())
	if quoted || len(parts) > 2 {
		return nil, fmt.Errorf("table name %q: want table or schema.table", s)
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("table name %q: empty part", s)
		}
	}
	return parts, nil
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Describe returns the dataset's shape.
func (s *Source) Describe(context.Context) (reconcile.Description, error) { return s.desc, nil }

// ChecksumAlgorithm names the checksum.
func (s *Source) ChecksumAlgorithm() string { return ChecksumAlgorithm }

// EstimateRows returns the planner's estimate of the row count, or, for a
// table never analysed and for a view, a count bounded to 5 seconds (0 when
// that is not enough).
func (s *Source) EstimateRows(ctx context.Context) (int64, error) {
	var n float64
	if err := s.pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)`, s.rel).Scan(&n); err != nil {
		return 0, fmt.Errorf("pgsource: estimate rows: %w", err)
	}
	if n > 0 && s.kind != 'v' {
		return int64(n), nil
	}
	var count int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '5s'"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT count(*) FROM "+s.rel).Scan(&count)
	})
	if err != nil {
		return 0, nil // no estimate: progress shows rows done only
	}
	return count, nil
}

// where renders the request's selection and its arguments.
func (s *Source) where(req reconcile.Request) (string, []any) {
	var conds []string
	var args []any
	if req.Keys != nil {
		args = append(args, req.Keys)
		return fmt.Sprintf("t.%s = ANY($1::%s[])", s.key, s.keyType), args
	}
	if req.After != nil {
		args = append(args, *req.After)
		conds = append(conds, fmt.Sprintf("%s > $%d::%s", s.keyExpr, len(args), s.keyType))
	}
	if req.Through != nil {
		args = append(args, *req.Through)
		conds = append(conds, fmt.Sprintf("%s <= $%d::%s", s.keyExpr, len(args), s.keyType))
	}
	if len(conds) == 0 {
		return "true", args
	}
	return strings.Join(conds, " AND "), args
}

// segExprs renders the segment columns as text, after a comma, each with
// the alias prefix and its index when alias is not empty.
func (s *Source) segExprs(req reconcile.Request, alias string) (string, error) {
	var b strings.Builder
	for i, c := range req.Segments {
		if _, ok := s.types[c]; !ok {
			return "", s.errf("segment column %q does not exist", c)
		}
		fmt.Fprintf(&b, ", coalesce(t.%s::text, '')", pgx.Identifier{c}.Sanitize())
		if alias != "" {
			fmt.Fprintf(&b, " AS %s%d", alias, i)
		}
	}
	return b.String(), nil
}

// Rows returns the rows the request selects; see [reconcile.Source].
func (s *Source) Rows(ctx context.Context, req reconcile.Request) ([]reconcile.Row, error) {
	where, args := s.where(req)
	segs, err := s.segExprs(req, "")
	if err != nil {
		return nil, err
	}
	var cols strings.Builder
	for _, c := range s.docCols {
		cols.WriteString(", ")
		cols.WriteString(c.expr)
	}
	q := fmt.Sprintf(`SELECT t.%s::text%s%s FROM %s t WHERE %s`, s.key, segs, cols.String(), s.rel, where)
	if req.Keys == nil {
		q += " ORDER BY " + s.keyExpr
		if req.Limit > 0 {
			q += fmt.Sprintf(" LIMIT %d", req.Limit)
		}
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, s.errf("read rows: %v", err)
	}
	defer rows.Close()
	var out []reconcile.Row
	if req.Limit > 0 {
		out = make([]reconcile.Row, 0, req.Limit)
	}
	nseg := len(req.Segments)
	// Keys and documents are written into large shared blocks: two
	// allocations per row otherwise dominate a full comparison. A block is
	// never written after a row points into it.
	var block []byte
	// reserve makes room for n more bytes in block, in a new block when
	// the current one is too small, and keeps from's bytes, the start of an
	// unfinished value, at the new block's start.
	reserve := func(from, n int) int {
		if len(block)+n <= cap(block) {
			return from
		}
		nb := make([]byte, 0, max(64<<10, 2*(len(block)-from+n)))
		block = append(nb, block[from:]...)
		return 0
	}
	for rows.Next() {
		raw := rows.RawValues()
		start := reserve(len(block), len(raw[0]))
		block = append(block, raw[0]...)
		key := block[start:len(block):len(block)]
		start = len(block)
		for i, c := range s.docCols {
			v := raw[1+nseg+i]
			start = reserve(start, len(c.name)+6*len(v)+8) // an escape is at most 6 bytes
			if i == 0 {
				block = append(block, '{')
			} else {
				block = append(block, ',')
			}
			block = append(block, c.name...)
			block = c.appendJSON(block, v)
		}
		if len(s.docCols) == 0 {
			start = reserve(start, 1)
			block = append(block, '{')
		}
		start = reserve(start, 1)
		block = append(block, '}')
		r := reconcile.Row{Key: unsafe.String(unsafe.SliceData(key), len(key)), Doc: block[start:len(block):len(block)]}
		if nseg > 0 {
			r.Segment = make([]string, nseg)
			for i := range nseg {
				r.Segment[i] = string(raw[1+i])
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf("read rows: %v", err)
	}
	return out, nil
}

// ChecksumForm names the checksum function (with a probe of PostgreSQL's
// hash, so that servers whose hashes differ are never compared) and each
// column's form: hashed by value, values equal under the type's equality
// hash alike, so forms name the family of types whose hashes agree
// (integers of every width; text and varchar; else the type itself: float4
// and float8 hash alike but render differently, float4 0.1 as 0.1 and the
// float8 it widens to as 0.10000000149011612); hashed as text, numbers are
// decimal literals (numeric without trailing zeros, floats in their
// shortest exact form) and strings their characters.
func (s *Source) ChecksumForm(columns []string) (string, []reconcile.Form) {
	forms := make([]reconcile.Form, len(columns))
	for i, c := range columns {
		typname := s.types[c]
		var f reconcile.Form
		switch typname {
		case "int2", "int4", "int8":
			f = reconcile.Form{Value: "integer", Text: "number"}
		case "numeric":
			f = reconcile.Form{Value: "numeric", Text: "number"}
		case "float4":
			f = reconcile.Form{Value: "float4", Text: "number"}
		case "float8":
			f = reconcile.Form{Value: "float", Text: "number"}
		case "text", "varchar":
			f = reconcile.Form{Value: "text", Text: "string"}
		default:
			f = reconcile.Form{Value: typname, Text: typname + " as text"}
		}
		if !s.hashes[c] {
			f.Value = "" // no hash function: by text only
		}
		forms[i] = f
	}
	return ChecksumAlgorithm + "/" + s.probe, forms
}

// Checksum summarises the rows the request selects inside the database; see
// [reconcile.Checksummer] and the package documentation.
func (s *Source) Checksum(ctx context.Context, req reconcile.Request) (reconcile.Sum, error) {
	if req.Keys != nil {
		return reconcile.Sum{}, s.errf("checksum of a key list is not supported")
	}
	where, args := s.where(req)
	segs, err := s.segExprs(req, "s")
	if err != nil {
		return reconcile.Sum{}, err
	}
	hash, err := s.rowHash(req.Columns, req.AsText)
	if err != nil {
		return reconcile.Sum{}, err
	}
	segList := ""
	for i := range req.Segments {
		segList += fmt.Sprintf(", s%d", i)
	}
	inner := fmt.Sprintf(`SELECT %s AS k_, %s AS h_%s FROM %s t WHERE %s`, s.keyExpr, hash, segs, s.rel, where)
	last := "''"
	if req.Limit > 0 {
		inner += fmt.Sprintf(" ORDER BY %s LIMIT %d", s.keyExpr, req.Limit)
		switch s.desc.KeyKind {
		case "uuid":
			last = `max(k_::text COLLATE "C")`
		case "integer":
			last = "max(k_)::text"
		default:
			if strings.HasPrefix(s.desc.KeyKind, "text") {
				last = "max(k_)::text"
			} else {
				last = "(array_agg(k_ ORDER BY k_ DESC))[1]::text"
			}
		}
		if segList != "" {
			last = strings.Replace(last, "max(", "max(max(", 1)
			last = strings.Replace(last, ")", ")) OVER ()", 1)
			if strings.HasPrefix(last, "(array_agg") {
				last = "''" // set below from a second query
			}
		}
	}
	q := fmt.Sprintf(`SELECT count(*)::text, coalesce(sum(h_), 0)::text, coalesce(%s, '')%s FROM (%s) c%s`, last, segList, inner, groupBy(segList))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return reconcile.Sum{}, s.errf("checksum: %v", err)
	}
	defer rows.Close()
	var sum reconcile.Sum
	var hashes []string
	for rows.Next() {
		raw := rows.RawValues()
		n, err := strconv.ParseInt(string(raw[0]), 10, 64)
		if err != nil {
			return reconcile.Sum{}, s.errf("checksum: count %q", raw[0])
		}
		if n == 0 {
			continue // the one row of an aggregate over nothing
		}
		sum.Rows += n
		hashes = append(hashes, string(raw[1]))
		sum.Last = string(raw[2])
		sr := reconcile.SegmentRows{Rows: n}
		for i := range req.Segments {
			sr.Values = append(sr.Values, string(raw[3+i]))
		}
		sum.Segments = append(sum.Segments, sr)
	}
	if err := rows.Err(); err != nil {
		return reconcile.Sum{}, s.errf("checksum: %v", err)
	}
	if sum.Hash, err = reconcile.AddHashes(hashes...); err != nil {
		return reconcile.Sum{}, s.errf("checksum: %v", err)
	}
	if req.Limit > 0 && sum.Rows > 0 && sum.Last == "" {
		q := fmt.Sprintf(`SELECT max_k::text FROM (SELECT %s AS max_k FROM %s t WHERE %s ORDER BY %s LIMIT %d) c ORDER BY max_k DESC LIMIT 1`,
			s.keyExpr, s.rel, where, s.keyExpr, req.Limit)
		if err := s.pool.QueryRow(ctx, q, args...).Scan(&sum.Last); err != nil {
			return reconcile.Sum{}, s.errf("checksum: last key: %v", err)
		}
	}
	return sum, nil
}

func groupBy(segList string) string {
	if segList == "" {
		return ""
	}
	return " GROUP BY " + segList[2:]
}
