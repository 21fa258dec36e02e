package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// A JSON value as the transforms hold it: map[string]any for an object, []any
// for an array, string, bool, nil for null, and json.Number for a number read
// from a record (kept as written, so a field no transform touches is written
// back unchanged). Values computed by expressions add int64, uint64 and
// float64.

// jsonCodec decodes and encodes record values. It keeps its decoder between
// records; it is for one goroutine at a time.
type jsonCodec struct {
	buf bytes.Buffer // holds the value being read: the decoder reads a bytes.Buffer in place
	dec *jsontext.Decoder
}

// start points the decoder at b.
func (c *jsonCodec) start(b []byte) {
	c.buf = *bytes.NewBuffer(b)
	if c.dec == nil {
		c.dec = jsontext.NewDecoder(&c.buf)
	} else {
		c.dec.Reset(&c.buf)
	}
}

// decode parses b, which must hold exactly one JSON value.
func (c *jsonCodec) decode(b []byte) (any, error) {
	c.start(b)
	v, err := c.value()
	if err != nil {
		return nil, jsonError(err)
	}
	if _, err := c.dec.ReadToken(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// jsonError shortens the decoder's message for a rejection reason.
func jsonError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("unexpected end of JSON input")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "jsontext: "))
}

func (c *jsonCodec) value() (any, error) {
	tok, err := c.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '{':
		m := make(map[string]any, 8)
		for c.dec.PeekKind() != '}' {
			k, err := c.dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := k.String() // before the next read voids k
			v, err := c.value()
			if err != nil {
				return nil, err
			}
			m[name] = v
		}
		_, err := c.dec.ReadToken()
		return m, err
	case '[':
		l := []any{}
		for c.dec.PeekKind() != ']' {
			v, err := c.value()
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := c.dec.ReadToken()
		return l, err
	case '"':
		return tok.String(), nil
	case '0':
		return json.Number(tok.String()), nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected %v", tok.Kind())
}

// encode appends v's compact JSON text to dst, object names in sorted order
// (so the output depends only on v).
func (c *jsonCodec) encode(dst []byte, v any) ([]byte, error) {
	if b, ok := appendScalar(dst, v); ok {
		return b, nil
	}
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return dst, fmt.Errorf("%v has no JSON form", x)
		}
		return appendFloat(dst, x), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = c.encode(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		slices.Sort(names)
		dst = append(dst, '{')
		for i, k := range names {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = jsontext.AppendQuote(dst, k); err != nil {
				return dst, fmt.Errorf("name %q: %v", k, err)
			}
			dst = append(dst, ':')
			if dst, err = c.encode(dst, x[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case string:
		return dst, fmt.Errorf("string %q: invalid UTF-8", x) // appendScalar refused it
	}
	return dst, fmt.Errorf("%T has no JSON form", v)
}

// appendFloat appends f as JSON writes numbers (ECMAScript's form, as
// encoding/json does): 0.5, 60, 1e+21, 1e-7.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if n := len(dst); format == 'e' && n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1] // e-07 → e-7
		dst = dst[:n-1]
	}
	return dst
}

// path is a dotted field path split at its dots: "a.b" is ["a", "b"].
type path []string

// parsePath splits a dotted path; every part must be non-empty.
func parsePath(s string) (path, error) {
	if s == "" {
		return nil, errors.New("a field path must not be empty")
	}
	p := strings.Split(s, ".")
	for _, part := range p {
		if part == "" {
			return nil, fmt.Errorf("field path %q has an empty part (a leading, trailing or double dot)", s)
		}
	}
	return p, nil
}

func (p path) String() string { return strings.Join(p, ".") }

// get returns the value at p in obj, and whether it is there (every parent
// an object that has the next name).
func (p path) get(obj map[string]any) (any, bool) {
	for i, name := range p {
		v, ok := obj[name]
		if !ok {
			return nil, false
		}
		if i == len(p)-1 {
			return v, true
		}
		if obj, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

// setFrom assigns v at p[from:] in obj, which is the object at p[:from],
// creating missing parents (or null ones) as empty objects. A parent of
// another kind is an error.
func (p path) setFrom(obj map[string]any, from int, v any) error {
	for i := from; i < len(p)-1; i++ {
		next, ok := obj[p[i]]
		if !ok || next == nil {
			m := map[string]any{}
			obj[p[i]] = m
			obj = m
			continue
		}
		if obj, ok = next.(map[string]any); !ok {
			return fmt.Errorf("cannot set field %q: %q is %s, not an object", p.String(), p[:i+1].String(), kindOf(next))
		}
	}
	obj[p[len(p)-1]] = v
	return nil
}

// remove deletes the value at p in obj and returns it, and whether it was there.
func (p path) remove(obj map[string]any) (any, bool) {
	for _, name := range p[:len(p)-1] {
		var ok bool
		if obj, ok = obj[name].(map[string]any); !ok {
			return nil, false
		}
	}
	v, ok := obj[p[len(p)-1]]
	delete(obj, p[len(p)-1])
	return v, ok
}

// kindOf names a JSON value's kind for a message: "an object", "a string", ….
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a bool"
	}
	return "a number"
}
