package elasticsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/connectd/connectd/sdk"
)

// Template is a parsed index template: literal text and placeholders filled
// from a record.
type Template struct {
	src   string
	parts []part
}

// The kinds of placeholder.
const (
	kindLiteral   = ""
	kindHeader    = "header"
	kindField     = "field"
	kindTimestamp = "timestamp"
)

type part struct {
	kind string // kindLiteral or a placeholder kind
	arg  string // literal text, header name, field path or time layout
	path []string
}

// ParseTemplate parses an index template: text with placeholders
// {header:NAME}, {field:a.b} and {timestamp:LAYOUT}; "{{" stands for "{".
// Text without placeholders is a static index name.
func ParseTemplate(s string) (Template, error) {
	t := Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{arg: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '{' {
			lit.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			lit.WriteByte('{')
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return Template{}, fmt.Errorf("index template %q: %q at byte %d is not closed by \"}\" (write \"{{\" for a literal \"{\")", s, "{", i)
		}
		kind, arg, ok := strings.Cut(s[i+1:i+end], ":")
		if !ok || arg == "" {
			return Template{}, fmt.Errorf("index template %q: placeholder %q needs the form {header:NAME}, {field:a.b} or {timestamp:LAYOUT}", s, s[i:i+end+1])
		}
		p := part{kind: kind, arg: arg}
		switch kind {
		case kindHeader, kindTimestamp:
		case kindField:
			p.path = strings.Split(arg, ".")
			for _, seg := range p.path {
				if seg == "" {
					return Template{}, fmt.Errorf("index template %q: field path %q has an empty segment", s, arg)
				}
			}
		default:
			return Template{}, fmt.Errorf("index template %q: unknown placeholder %q; want header, field or timestamp", s, kind)
		}
		flush()
		t.parts = append(t.parts, p)
		i += end
	}
	flush()
	if len(t.parts) == 0 {
		return Template{}, errors.New("index is empty")
	}
	return t, nil
}

// String returns the template as it was written.
func (t Template) String() string { return t.src }

// Static reports whether the template has no placeholders.
func (t Template) Static() bool {
	return len(t.parts) == 1 && t.parts[0].kind == kindLiteral
}

// Pattern returns an index pattern that matches every index the template can
// produce: each placeholder becomes "*".
func (t Template) Pattern() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.kind == kindLiteral {
			b.WriteString(p.arg)
		} else if !strings.HasSuffix(b.String(), "*") {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// Render fills the template from record r. The error says which placeholder
// could not be filled and why.
func (t Template) Render(r *sdk.Record) (string, error) {
	if t.Static() {
		return t.parts[0].arg, nil
	}
	var b strings.Builder
	var doc map[string]any
	for _, p := range t.parts {
		switch p.kind {
		case kindLiteral:
			b.WriteString(p.arg)
		case kindHeader:
			v := headerValue(r, p.arg)
			if v == nil {
				return "", fmt.Errorf("index template %q: the record has no header %q", t.src, p.arg)
			}
			if len(v) == 0 || !utf8.Valid(v) {
				return "", fmt.Errorf("index template %q: header %q is empty or not UTF-8", t.src, p.arg)
			}
			b.Write(v)
		case kindTimestamp:
			if r.Timestamp.IsZero() {
				return "", fmt.Errorf("index template %q: the record has no timestamp", t.src)
			}
			b.WriteString(r.Timestamp.UTC().Format(p.arg))
		case kindField:
			if doc == nil {
				dec := json.NewDecoder(bytes.NewReader(r.Value))
				dec.UseNumber()
				if err := dec.Decode(&doc); err != nil || doc == nil {
					return "", fmt.Errorf("index template %q: field %q: the record value is not a JSON object", t.src, p.arg)
				}
			}
			s, err := fieldText(doc, p.path)
			if err != nil {
				return "", fmt.Errorf("index template %q: field %q: %v", t.src, p.arg, err)
			}
			b.WriteString(s)
		}
	}
	return b.String(), nil
}

// headerValue returns the value of the first header named key; nil when
// there is none (an empty header is a non-nil empty slice).
func headerValue(r *sdk.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			if h.Value == nil {
				return []byte{}
			}
			return h.Value
		}
	}
	return nil
}

// fieldText returns the text of the field at path: a string as it is, a
// number as written, a bool as true or false.
func fieldText(doc map[string]any, path []string) (string, error) {
	var v any = doc
	for _, seg := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", errors.New("the value has no such field")
		}
		if v, ok = m[seg]; !ok {
			return "", errors.New("the value has no such field")
		}
	}
	switch x := v.(type) {
	case string:
		if x == "" {
			return "", errors.New("the field is an empty string")
		}
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", errors.New("the field is null")
	}
	return "", fmt.Errorf("the field is a JSON %s, not a string, number or bool", jsonKind(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}
