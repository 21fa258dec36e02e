package postgres

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	case s == "timestamp":
		src.kind = srcTimestamp
	default:
		return src, fmt.Errorf("unknown source %q (want value, value.<field>, key, header.<name>, partition, offset or timestamp)", s)
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

// record is one record being turned into a row, with its value's JSON
// decoded at most once.
type record struct {
	r      *sdk.Record
	obj    map[string]json.RawMessage
	objErr error
	parsed bool
}

func (rc *record) object() (map[string]json.RawMessage, error) {
	if !rc.parsed {
		rc.parsed = true
		v := bytes.TrimSpace(rc.r.Value)
		if len(v) == 0 || v[0] != '{' {
			rc.objErr = fmt.Errorf("its value is not a JSON object")
		} else if err := json.Unmarshal(v, &rc.obj); err != nil {
			rc.objErr = fmt.Errorf("its value is not a JSON object: %v", err)
		}
	}
	return rc.obj, rc.objErr
}

// field returns the raw JSON at path, and false when it is missing.
func (rc *record) field(path []string) (json.RawMessage, bool, error) {
	obj, err := rc.object()
	if err != nil {
		return nil, false, err
	}
	raw, ok := obj[path[0]]
	for _, p := range path[1:] {
		if !ok {
			break
		}
		var sub map[string]json.RawMessage
		if json.Unmarshal(raw, &sub) != nil {
			return nil, false, nil // not an object: the nested field is missing
		}
		raw, ok = sub[p]
	}
	return raw, ok, nil
}

// text returns the text PostgreSQL parses for column c from src of rc; null
// is true for SQL NULL.
func (rc *record) text(src source, c column) (s string, null bool, err error) {
	var b []byte
	switch src.kind {
	case srcValue:
		b = rc.r.Value
		if len(b) == 0 {
			return "", true, nil
		}
	case srcKey:
		b = rc.r.Key
		if len(b) == 0 {
			return "", true, nil
		}
	case srcHeader:
		b = rc.r.Header(src.header)
		if b == nil {
			return "", true, nil
		}
	case srcPartition:
		b = []byte(rc.r.Position.Partition)
	case srcOffset:
		b = strconv.AppendInt(nil, rc.r.Position.Offset, 10)
	case srcTimestamp:
		if rc.r.Timestamp.IsZero() {
			return "", true, nil
		}
		b = []byte(rc.r.Timestamp.UTC().Format(time.RFC3339Nano))
	case srcField:
		raw, ok, err := rc.field(src.path)
		if err != nil {
			return "", false, err
		}
		raw = bytes.TrimSpace(raw)
		if !ok || len(raw) == 0 || string(raw) == "null" {
			return "", true, nil
		}
		if raw[0] == '"' && c.kind != kindJSON {
			var str string
			if err := json.Unmarshal(raw, &str); err != nil {
				return "", false, fmt.Errorf("field %s: %v", src.text, err)
			}
			b = []byte(str)
		} else {
			b = raw
		}
	}
	if c.kind == kindBytea {
		return `\x` + hex.EncodeToString(b), false, nil
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "", false, fmt.Errorf("%s holds a NUL byte, which a %s column cannot store (map it to a bytea column)", src.text, c.typ)
	}
	return string(b), false, nil
}

// appendCopyText appends s as one field of COPY's text format.
func appendCopyText(buf []byte, s string, null bool) []byte {
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
