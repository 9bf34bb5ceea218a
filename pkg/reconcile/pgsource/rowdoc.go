package pgsource

import (
	"github.com/jackc/pgx/v5"
)

// docColumn is one column of the documents Rows returns. A row's document
// is what row_to_json renders for it, byte for byte, but most columns are
// read as their text and made JSON here: row_to_json categorises each
// column's type and looks up its output function again for every row, and
// the database's work per row was about three times COPY's (B13's
// reference). Columns of the kinds below
// are read as text; every other type (dates and times, arrays, composites,
// domains, json and jsonb, enums, …) is rendered by to_json inside the
// database, which row_to_json calls for each column.
type docColumn struct {
	name string // the JSON member name with its quotes and the colon
	expr string // the select expression, text
	kind docKind
}

type docKind uint8

const (
	docRaw    docKind = iota // to_json's text, or true/false: as it is
	docNumber                // a number's text: as it is when it is a JSON number, else a string (NaN, Infinity)
	docString                // a string's text: a JSON string
)

func newDocColumn(name, typname string) docColumn {
	q := "t." + pgx.Identifier{name}.Sanitize()
	c := docColumn{name: string(appendJSONString(nil, []byte(name))) + ":"}
	switch typname {
	case "int2", "int4", "int8", "float4", "float8", "numeric":
		c.expr, c.kind = q+"::text", docNumber
	case "text", "varchar":
		c.expr, c.kind = q+"::text", docString
	case "bool":
		c.expr, c.kind = q+"::text", docRaw // 'true' or 'false'
	default:
		c.expr, c.kind = "to_json("+q+")::text", docRaw
	}
	return c
}

// appendJSON appends the JSON of the column's text v (nil: NULL) to b.
func (c *docColumn) appendJSON(b, v []byte) []byte {
	switch {
	case v == nil:
		return append(b, "null"...)
	case c.kind == docString, c.kind == docNumber && !isJSONNumber(v):
		return appendJSONString(b, v)
	}
	return append(b, v...)
}

// appendJSONString appends s as a JSON string, escaped as PostgreSQL's
// escape_json does: quotes, backslashes and control characters; everything
// else as it is.
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"':
			b = append(b, '\\', '"')
		case c == '\\':
			b = append(b, '\\', '\\')
		case c >= 0x20:
			b = append(b, c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		}
	}
	return append(b, '"')
}

// isJSONNumber reports whether s is a number in JSON's grammar, as
// PostgreSQL's IsValidJsonNumber decides before writing a number unquoted.
func isJSONNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
