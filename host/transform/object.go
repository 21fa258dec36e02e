package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"

	"github.com/connectd/connectd/sdk"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// object is a JSON object value read one level deep: each field's name and
// value bytes as the record holds them, decoded only when an expression
// reads the field or a step changes it. Encoding it writes the fields no step
// changed byte for byte, in their order, and the fields added after them.
// A record's value is the common case of a JSON object: reading it this way
// keeps a filter that reads one field from building the whole value.
type object struct {
	codec  *jsonCodec
	fields []field // reused from record to record
	// src is the value parse read, and compact whether it has no
	// whitespace outside its fields' values: then encode can copy it and
	// append the fields a step added, when it changed no other.
	src     []byte
	compact bool
}

// field is one field of an object.
type field struct {
	rawName []byte // the quoted name as in the record; nil for a field a step added
	name    string // the name, when rawName is nil or has escapes
	raw     []byte // the value's bytes as in the record, until decoded
	val     any    // the value, once decoded (see json.go)
	decoded bool
	changed bool // set by a step, or a field inside it: encode val, not raw
	gone    bool // removed by a step
}

// is reports whether f is named name.
func (f *field) is(name string) bool {
	if f.rawName != nil && f.name == "" {
		return string(f.rawName[1:len(f.rawName)-1]) == name
	}
	return f.name == name
}

// errNotObject says a value is JSON but not an object.
var errNotObject = errors.New("not an object")

// parse reads b, which must be exactly one JSON value. If it is an object,
// o holds its fields; if it is other JSON, parse returns it decoded, with
// errNotObject; if it is not JSON, the error says why.
func (o *object) parse(b []byte) (any, error) {
	if o.scanObject(b) {
		return nil, nil
	}
	return o.parseSlow(b)
}

// parseSlow is parse with the decoder: for what the scanner leaves to it,
// and for the reason a value is not JSON.
func (o *object) parseSlow(b []byte) (any, error) {
	o.fields, o.src, o.compact = o.fields[:0], nil, false
	c := o.codec
	c.start(b)
	if c.dec.PeekKind() != '{' {
		v, err := c.decode(b)
		if err != nil {
			return nil, err
		}
		return v, errNotObject
	}
	if _, err := c.dec.ReadToken(); err != nil {
		return nil, jsonError(err)
	}
	for c.dec.PeekKind() != '}' {
		name, err := c.dec.ReadValue()
		if err != nil {
			return nil, jsonError(err)
		}
		end := int(c.dec.InputOffset())
		f := field{rawName: b[end-len(name) : end : end]}
		if bytes.IndexByte(f.rawName, '\\') >= 0 {
			u, err := jsontext.AppendUnquote(nil, f.rawName)
			if err != nil {
				return nil, jsonError(err)
			}
			f.name = string(u)
		}
		v, err := c.dec.ReadValue()
		if err != nil {
			return nil, jsonError(err)
		}
		end = int(c.dec.InputOffset())
		f.raw = b[end-len(v) : end : end]
		o.fields = append(o.fields, f)
	}
	if _, err := c.dec.ReadToken(); err != nil {
		return nil, jsonError(err)
	}
	if _, err := c.dec.ReadToken(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return nil, nil
}

// find returns the field named name, or nil.
func (o *object) find(name string) *field {
	for i := range o.fields {
		if f := &o.fields[i]; !f.gone && f.is(name) {
			return f
		}
	}
	return nil
}

// value decodes f's value if it is not yet.
func (o *object) value(f *field) any {
	if !f.decoded {
		f.val = o.codec.decodeRaw(f.raw)
		f.decoded = true
	}
	return f.val
}

// get returns the value at p, and whether it is there.
func (o *object) get(p path) (any, bool) {
	f := o.find(p[0])
	if f == nil {
		return nil, false
	}
	v := o.value(f)
	if len(p) == 1 {
		return v, true
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	return p[1:].get(m)
}

// set assigns v at p, creating missing parents (or null ones) as objects; a
// parent of another kind is an error. A new field goes after the others.
func (o *object) set(p path, v any) error {
	f := o.find(p[0])
	if f == nil {
		o.fields = append(o.fields, field{name: p[0], decoded: true})
		f = &o.fields[len(o.fields)-1]
	}
	f.changed = true
	if len(p) == 1 {
		f.val, f.decoded = v, true
		return nil
	}
	m, ok := o.value(f).(map[string]any)
	if !ok {
		if f.val != nil {
			return fmt.Errorf("cannot set field %q: %q is %s, not an object", p.String(), p[0], kindOf(f.val))
		}
		m = map[string]any{}
		f.val = m
	}
	return p.setFrom(m, 1, v)
}

// remove deletes the value at p and returns it, and whether it was there.
func (o *object) remove(p path) (any, bool) {
	f := o.find(p[0])
	if f == nil {
		return nil, false
	}
	if len(p) == 1 {
		f.gone = true
		return o.value(f), true
	}
	m, ok := o.value(f).(map[string]any)
	if !ok {
		return nil, false
	}
	v, ok := p[1:].remove(m)
	f.changed = f.changed || ok
	return v, ok
}

// native returns the whole object as a map[string]any.
func (o *object) native() map[string]any {
	m := make(map[string]any, len(o.fields))
	for i := range o.fields {
		f := &o.fields[i]
		if f.gone {
			continue
		}
		name := f.name
		if name == "" && f.rawName != nil {
			name = string(f.rawName[1 : len(f.rawName)-1])
		}
		m[name] = o.value(f)
	}
	return m
}

// encode appends the object's JSON text to dst.
func (o *object) encode(dst []byte) ([]byte, error) {
	if dst, ok, err := o.splice(dst); ok {
		return dst, err
	}
	dst = append(dst, '{')
	first := true
	for i := range o.fields {
		f := &o.fields[i]
		if f.gone {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		var err error
		if f.rawName != nil {
			dst = append(dst, f.rawName...)
		} else if dst, err = jsontext.AppendQuote(dst, f.name); err != nil {
			return dst, err
		}
		dst = append(dst, ':')
		if !f.changed {
			dst = append(dst, f.raw...)
		} else if dst, err = o.codec.encode(dst, f.val); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// splice is encode for the common change of a compact object: fields
// added after the ones it had, none of those changed or removed. It copies
// the value but its last '}' and appends the new fields; ok is false (and
// dst unchanged) when o is not such an object.
func (o *object) splice(dst []byte) (_ []byte, ok bool, err error) {
	if !o.compact || len(o.src) < 2 {
		return dst, false, nil
	}
	n := 0 // the fields the value had
	for i := range o.fields {
		f := &o.fields[i]
		if f.rawName == nil {
			break
		}
		if f.changed || f.gone {
			return dst, false, nil
		}
		n++
	}
	for i := n; i < len(o.fields); i++ {
		if f := &o.fields[i]; f.rawName != nil || f.gone {
			return dst, false, nil
		}
	}
	at := len(dst)
	dst = append(dst, o.src[:len(o.src)-1]...)
	for i := n; i < len(o.fields); i++ {
		f := &o.fields[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = jsontext.AppendQuote(dst, f.name); err != nil {
			return dst[:at], true, err
		}
		dst = append(dst, ':')
		if dst, err = o.codec.encode(dst, f.val); err != nil {
			return dst[:at], true, err
		}
	}
	return append(dst, '}'), true, nil
}

// decodeRaw decodes a value that parse already found valid, with no
// decoder for the common scalars.
func (c *jsonCodec) decodeRaw(raw []byte) any {
	switch raw[0] {
	case '"':
		if bytes.IndexByte(raw, '\\') < 0 {
			return string(raw[1 : len(raw)-1])
		}
	case 't':
		return true
	case 'f':
		return false
	case 'n':
		return nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return json.Number(raw)
	}
	v, err := c.decode(raw)
	if err != nil { // cannot happen: parse validated raw
		return nil
	}
	return v
}

// objectVal presents an object to CEL as a map(string, dyn), decoding only
// the fields an expression reads.
type objectVal struct {
	o *object
}

var _ traits.Mapper = objectVal{}

// full is the object as a CEL map, for what needs all of it.
func (v objectVal) full() traits.Mapper {
	return adapter{}.NativeToValue(v.o.native()).(traits.Mapper)
}

// ConvertToNative implements ref.Val.
func (v objectVal) ConvertToNative(t reflect.Type) (any, error) { return v.full().ConvertToNative(t) }

// ConvertToType implements ref.Val.
func (v objectVal) ConvertToType(t ref.Type) ref.Val { return v.full().ConvertToType(t) }

// Equal implements ref.Val.
func (v objectVal) Equal(other ref.Val) ref.Val { return v.full().Equal(other) }

// Type implements ref.Val.
func (v objectVal) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (v objectVal) Value() any { return v.o.native() }

// Contains implements traits.Container.
func (v objectVal) Contains(k ref.Val) ref.Val {
	_, found := v.Find(k)
	return types.Bool(found)
}

// Get implements traits.Indexer.
func (v objectVal) Get(k ref.Val) ref.Val {
	e, found := v.Find(k)
	if !found {
		return types.ValOrErr(e, "no such key: %v", k)
	}
	return e
}

// Find implements traits.Mapper.
func (v objectVal) Find(k ref.Val) (ref.Val, bool) {
	s, ok := k.(types.String)
	if !ok {
		return v.full().Find(k)
	}
	f := v.o.find(string(s))
	if f == nil {
		return nil, false
	}
	return v.o.celValue(f), true
}

// celValue is f's value for CEL. A scalar the record holds is made from its
// bytes directly, without the Go value in between (fewer allocations for
// the common value.field).
func (o *object) celValue(f *field) ref.Val {
	if f.decoded {
		return adapter{}.NativeToValue(f.val)
	}
	raw := f.raw
	switch raw[0] {
	case '"':
		if bytes.IndexByte(raw, '\\') < 0 {
			return types.String(raw[1 : len(raw)-1])
		}
	case 't':
		return types.True
	case 'f':
		return types.False
	case 'n':
		return types.NullValue
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return numberVal(raw)
	}
	return adapter{}.NativeToValue(o.value(f))
}

// numberVal is a JSON number as CEL sees it: an int when it is a whole
// number that fits in 64 bits, else a double (see adapter).
func numberVal(raw []byte) ref.Val {
	if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return types.Int(i)
	}
	d, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return types.NewErr("number %s is out of range", raw)
	}
	return types.Double(d)
}

// Iterator implements traits.Iterable.
func (v objectVal) Iterator() traits.Iterator { return v.full().Iterator() }

// Size implements traits.Sizer.
func (v objectVal) Size() ref.Val {
	n := 0
	for i := range v.o.fields {
		if !v.o.fields[i].gone {
			n++
		}
	}
	return types.Int(n)
}

// appendScalar appends the JSON text of a scalar without an encoder; ok is
// false for the kinds it leaves to the encoder.
func appendScalar(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case bool:
		return strconv.AppendBool(dst, x), true
	case json.Number:
		return append(dst, x...), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case uint64:
		return strconv.AppendUint(dst, x, 10), true
	case string:
		b, err := jsontext.AppendQuote(dst, x)
		return b, err == nil
	}
	return dst, false
}

// positionVal presents a record's position to CEL as a map(string, dyn)
// with the keys partition, offset and index, without building a map for
// the common position.offset.
type positionVal struct {
	p *sdk.Position
}

var _ traits.Mapper = positionVal{}

// native is the position as a Go map.
func (v positionVal) native() map[string]any {
	return map[string]any{"partition": v.p.Partition, "offset": v.p.Offset, "index": int64(v.p.Index)}
}

// full is the position as a CEL map (keys iterated in sorted order).
func (v positionVal) full() traits.Mapper {
	return adapter{}.NativeToValue(v.native()).(traits.Mapper)
}

// ConvertToNative implements ref.Val.
func (v positionVal) ConvertToNative(t reflect.Type) (any, error) {
	return v.full().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (v positionVal) ConvertToType(t ref.Type) ref.Val { return v.full().ConvertToType(t) }

// Equal implements ref.Val.
func (v positionVal) Equal(other ref.Val) ref.Val { return v.full().Equal(other) }

// Type implements ref.Val.
func (v positionVal) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (v positionVal) Value() any { return v.native() }

// Contains implements traits.Container.
func (v positionVal) Contains(k ref.Val) ref.Val {
	_, found := v.Find(k)
	return types.Bool(found)
}

// Get implements traits.Indexer.
func (v positionVal) Get(k ref.Val) ref.Val {
	e, found := v.Find(k)
	if !found {
		return types.ValOrErr(e, "no such key: %v", k)
	}
	return e
}

// Find implements traits.Mapper.
func (v positionVal) Find(k ref.Val) (ref.Val, bool) {
	s, ok := k.(types.String)
	if !ok {
		return v.full().Find(k)
	}
	switch s {
	case "partition":
		return types.String(v.p.Partition), true
	case "offset":
		return types.Int(v.p.Offset), true
	case "index":
		return types.Int(v.p.Index), true
	}
	return nil, false
}

// Iterator implements traits.Iterable.
func (v positionVal) Iterator() traits.Iterator { return v.full().Iterator() }

// Size implements traits.Sizer.
func (v positionVal) Size() ref.Val { return types.Int(3) }
