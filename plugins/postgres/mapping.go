package postgres

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectd/connectd/sdk"
)

// srcKind is where a column's value comes from.
type srcKind int

const (
	srcValue srcKind = iota
	srcField
	srcKey
	srcHeader
	srcPartition
	srcOffset
	srcIndex    // Position.Index
	srcPosition // Position.String()
	srcTimestamp
)

// source is the right-hand side of a columns entry.
type source struct {
	kind   srcKind
	path   []string // srcField: value.a.b → ["a", "b"]
	header string   // srcHeader
	text   string   // as written, for messages
}

// defaultType is the column type create uses when the entry names none.
func (s source) defaultType() string {
	switch s.kind {
	case srcValue:
		return "jsonb"
	case srcOffset:
		return "bigint"
	case srcIndex:
		return "integer"
	case srcTimestamp:
		return "timestamptz"
	}
	return "text"
}

func parseSource(s string) (source, error) {
	src := source{text: s}
	switch {
	case s == "value":
		src.kind = srcValue
	case strings.HasPrefix(s, "value."):
		src.kind = srcField
		src.path = strings.Split(strings.TrimPrefix(s, "value."), ".")
		for _, p := range src.path {
			if p == "" {
				return src, fmt.Errorf("source %q has an empty field name", s)
			}
		}
	case s == "key":
		src.kind = srcKey
	case strings.HasPrefix(s, "header."):
		src.kind = srcHeader
		src.header = strings.TrimPrefix(s, "header.")
		if src.header == "" {
			return src, fmt.Errorf("source %q names no header", s)
		}
	case s == "partition":
		src.kind = srcPartition
	case s == "offset":
		src.kind = srcOffset
	case s == "index":
		src.kind = srcIndex
	case s == "position":
		src.kind = srcPosition
	case s == "timestamp":
		src.kind = srcTimestamp
	default:
		return src, fmt.Errorf("unknown source %q (want value, value.<field>, key, header.<name>, partition, offset, index, position or timestamp)", s)
	}
	return src, nil
}

// mapping is one parsed columns entry.
type mapping struct {
	column string
	typ    string // "" when the entry names none
	src    source
}

// parseColumns parses the columns parameter.
func parseColumns(entries []string) ([]mapping, error) {
	var out []mapping
	seen := map[string]bool{}
	for i, e := range entries {
		left, right, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("columns[%d] %q: want \"<column> [<type>] = <source>\", such as \"id text = value.id\"", i, e)
		}
		f := strings.Fields(left)
		if len(f) == 0 {
			return nil, fmt.Errorf("columns[%d] %q: no column name before '='", i, e)
		}
		src, err := parseSource(strings.TrimSpace(right))
		if err != nil {
			return nil, fmt.Errorf("columns[%d] %q: %w", i, e, err)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("columns[%d] %q: column %q is mapped twice", i, e, f[0])
		}
		seen[f[0]] = true
		out = append(out, mapping{column: f[0], typ: strings.Join(f[1:], " "), src: src})
	}
	return out, nil
}

// colKind is how a column's text is made from a source's bytes.
type colKind int

const (
	kindText  colKind = iota // any type PostgreSQL parses from text
	kindJSON                 // json, jsonb: JSON text, strings keep their quotes
	kindBytea                // bytea: \x and hex digits
)

// column is a column of the table.
type column struct {
	name string
	typ  string // format_type(), for casts
	kind colKind
}

// record is one record being turned into a row, with its value's top-level
// JSON members found at most once.
type record struct {
	r       *sdk.Record
	members []member
	objErr  error
	parsed  bool
}

// member is one top-level member of a JSON object: its name (unescaped) and
// raw value.
type member struct {
	name []byte
	raw  []byte
}

func (rc *record) object() ([]member, error) {
	if !rc.parsed {
		rc.parsed = true
		rc.objErr = scanObject(rc.r.Value, func(name, raw []byte) {
			rc.members = append(rc.members, member{name, raw})
		})
	}
	return rc.members, rc.objErr
}

func lookup(ms []member, name string) ([]byte, bool) {
	for i := len(ms) - 1; i >= 0; i-- { // the last of duplicate names wins, as in encoding/json
		if string(ms[i].name) == name {
			return ms[i].raw, true
		}
	}
	return nil, false
}

// field returns the raw JSON at path, and false when it is missing.
func (rc *record) field(path []string) ([]byte, bool, error) {
	ms, err := rc.object()
	if err != nil {
		return nil, false, err
	}
	raw, ok := lookup(ms, path[0])
	for _, p := range path[1:] {
		if !ok {
			break
		}
		var sub []member
		if scanObject(raw, func(name, r []byte) { sub = append(sub, member{name, r}) }) != nil {
			return nil, false, nil // not an object: the nested field is missing
		}
		raw, ok = lookup(sub, p)
	}
	return raw, ok, nil
}

// text returns the bytes PostgreSQL parses for column c from src of rc (valid
// until the next call; do not keep them); null is true for SQL NULL.
func (rc *record) text(src source, c column, scratch []byte) (b []byte, null bool, err error) {
	switch src.kind {
	case srcValue:
		b = rc.r.Value
		if len(b) == 0 {
			return nil, true, nil
		}
	case srcKey:
		b = rc.r.Key
		if len(b) == 0 {
			return nil, true, nil
		}
	case srcHeader:
		b = rc.r.Header(src.header)
		if b == nil {
			return nil, true, nil
		}
	case srcPartition:
		b = append(scratch[:0], rc.r.Position.Partition...)
	case srcOffset:
		b = strconv.AppendInt(scratch[:0], rc.r.Position.Offset, 10)
	case srcIndex:
		b = strconv.AppendInt(scratch[:0], int64(rc.r.Position.Index), 10)
	case srcPosition:
		b = append(scratch[:0], rc.r.Position.String()...)
	case srcTimestamp:
		if rc.r.Timestamp.IsZero() {
			return nil, true, nil
		}
		b = rc.r.Timestamp.UTC().AppendFormat(scratch[:0], time.RFC3339Nano)
	case srcField:
		raw, ok, err := rc.field(src.path)
		if err != nil {
			return nil, false, err
		}
		if !ok || len(raw) == 0 || string(raw) == "null" {
			return nil, true, nil
		}
		b = raw
		if raw[0] == '"' && c.kind != kindJSON {
			if b, err = unquote(raw, scratch); err != nil {
				return nil, false, fmt.Errorf("field %s: %v", src.text, err)
			}
		}
	}
	if c.kind == kindBytea {
		out := append(scratch[:0], `\x`...)
		return hex.AppendEncode(out, b), false, nil
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, false, fmt.Errorf("%s holds a NUL byte, which a %s column cannot store (map it to a bytea column)", src.text, c.typ)
	}
	return b, false, nil
}

// unquote returns the content of the JSON string raw.
func unquote(raw, scratch []byte) ([]byte, error) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return nil, err
	}
	return append(scratch[:0], str...), nil
}

// scanObject calls f with the name (unescaped; it may share v's memory) and
// raw value of every top-level member of the JSON object v, in order. It
// checks the object's structure (strings, nesting, separators), not every
// literal inside it: PostgreSQL parses each value with its column's type.
func scanObject(v []byte, f func(name, raw []byte)) error {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return errors.New("its value is not a JSON object")
	}
	i = skipSpace(v, i+1)
	if i < len(v) && v[i] == '}' {
		return trailing(v, i+1)
	}
	for {
		if i >= len(v) || v[i] != '"' {
			return bad(v, i, "a member name")
		}
		end, err := skipString(v, i)
		if err != nil {
			return err
		}
		name := v[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 || !utf8.Valid(name) {
			var str string
			if err := json.Unmarshal(v[i:end], &str); err != nil {
				return fmt.Errorf("its value is not valid JSON: member name at byte %d: %v", i, err)
			}
			name = []byte(str)
		}
		i = skipSpace(v, end)
		if i >= len(v) || v[i] != ':' {
			return bad(v, i, "':'")
		}
		start := skipSpace(v, i+1)
		end, err = skipValue(v, start)
		if err != nil {
			return err
		}
		f(name, v[start:end])
		i = skipSpace(v, end)
		switch {
		case i < len(v) && v[i] == ',':
			i = skipSpace(v, i+1)
		case i < len(v) && v[i] == '}':
			return trailing(v, i+1)
		default:
			return bad(v, i, "',' or '}'")
		}
	}
}

func skipSpace(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

func trailing(v []byte, i int) error {
	if i = skipSpace(v, i); i < len(v) {
		return bad(v, i, "nothing after the object")
	}
	return nil
}

func bad(v []byte, i int, want string) error {
	if i >= len(v) {
		return fmt.Errorf("its value is not valid JSON: it ends where %s should be", want)
	}
	return fmt.Errorf("its value is not valid JSON: %q at byte %d where %s should be", v[i], i, want)
}

// skipString returns the index after the JSON string that starts at v[i].
func skipString(v []byte, i int) (int, error) {
	for j := i + 1; j < len(v); j++ {
		switch v[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("its value is not valid JSON: the string at byte %d does not end", i)
}

// skipValue returns the index after the JSON value that starts at v[i].
func skipValue(v []byte, i int) (int, error) {
	if i >= len(v) {
		return 0, bad(v, i, "a value")
	}
	switch v[i] {
	case '"':
		return skipString(v, i)
	case '{', '[':
		var open []byte // the closers still expected, innermost last
		for j := i; j < len(v); j++ {
			switch c := v[j]; c {
			case '"':
				end, err := skipString(v, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{':
				open = append(open, '}')
			case '[':
				open = append(open, ']')
			case '}', ']':
				if open[len(open)-1] != c {
					return 0, fmt.Errorf("its value is not valid JSON: %q at byte %d where %q should be", c, j, open[len(open)-1])
				}
				if open = open[:len(open)-1]; len(open) == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("its value is not valid JSON: the %c at byte %d is not closed", v[i], i)
	}
	j := i
	for j < len(v) && v[j] != ',' && v[j] != '}' && v[j] != ']' && v[j] != ' ' && v[j] != '\t' && v[j] != '\n' && v[j] != '\r' {
		j++
	}
	if j == i {
		return 0, bad(v, i, "a value")
	}
	return j, nil
}

// appendCopyText appends s as one field of COPY's text format.
func appendCopyText(buf []byte, s []byte, null bool) []byte {
	if null {
		return append(buf, `\N`...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}
