package transform

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/connectd/connectd/sdk"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// filter keeps the records for which where is true.
type filter struct {
	where *expression
	act   activation
	codec jsonCodec
}

func decodeFilter(body hcl.Body, ctx *hcl.EvalContext) (Step, hcl.Diagnostics) {
	attrs, diags := content(body, map[string]bool{"where": true})
	if diags.HasErrors() {
		return nil, diags
	}
	e, d := compile("where", attrs["where"].Expr, ctx, []*cel.Type{cel.BoolType}, "a bool")
	if diags = append(diags, d...); diags.HasErrors() {
		return nil, diags
	}
	f := &filter{where: e}
	f.act.codec = &f.codec
	return f, diags
}

// Name implements Step.
func (f *filter) Name() string { return "filter" }

// Apply implements Step. While every record so far is kept, out is a part
// of recs (capped): a filter that keeps a whole batch copies nothing.
func (f *filter) Apply(recs []sdk.Record) (out []sdk.Record, rejected []sdk.Rejection) {
	kept := 0 // recs[:kept] all go on, while out is nil
	drop := func() {
		if out == nil {
			out = make([]sdk.Record, 0, len(recs)-1)
			out = append(out, recs[:kept]...)
		}
	}
	for i := range recs {
		f.act.reset(&recs[i])
		v, err := f.where.eval(&f.act)
		if err != nil {
			drop()
			rejected = append(rejected, sdk.Rejection{Index: i, Reason: err.Error()})
			continue
		}
		switch v {
		case types.True:
			if out == nil {
				kept++
			} else {
				out = append(out, recs[i])
			}
		case types.False:
			drop()
		default:
			drop()
			rejected = append(rejected, sdk.Rejection{Index: i, Reason: fmt.Sprintf("where: got %s, want a bool", typeName(v))})
		}
	}
	f.act.reset(nil)
	if out == nil {
		out = recs[:kept:kept]
	}
	return out, rejected
}

// assignment is one entry of set's fields or headers.
type assignment struct {
	name  string
	field path // fields only
	expr  *expression
}

// set assigns fields of a JSON object value, the key and headers from
// expressions, all evaluated on the record as it came in.
type set struct {
	objectStep
	fields  []assignment
	key     *expression
	headers []assignment
	act     activation
	results []any // fields' values for the current record

	// Buffers for the batch's new keys, header values and header lists:
	// each record's are sub-slices, capped, so one allocation serves many
	// records.
	bytesBuf  []byte
	headerBuf []sdk.Header
}

func decodeSet(body hcl.Body, ctx *hcl.EvalContext) (Step, hcl.Diagnostics) {
	attrs, diags := content(body, map[string]bool{"fields": false, "key": false, "headers": false})
	if diags.HasErrors() {
		return nil, diags
	}
	if len(attrs) == 0 {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Nothing to set",
			Detail:   "A set transform takes at least one of fields = { \"path\" = \"<expression>\" }, key = \"<expression>\" and headers = { \"name\" = \"<expression>\" }.",
			Subject:  body.MissingItemRange().Ptr(),
		})
	}
	s := &set{}
	s.act.codec = &s.codec
	bytesOrString := []*cel.Type{cel.StringType, cel.BytesType, cel.NullType}
	if a := attrs["fields"]; a != nil {
		ps, d := pairs(a, ctx)
		diags = append(diags, d...)
		for _, p := range ps {
			f, d := fieldPath(p.name, p.nameR)
			diags = append(diags, d...)
			e, d := compile(fmt.Sprintf("fields %q", p.name), p.value, ctx, nil, "")
			diags = append(diags, d...)
			if e != nil && e.out.IsExactType(cel.BytesType) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid expression type",
					Detail:   fmt.Sprintf("%s gives bytes, which have no JSON form: convert with string(…) or base64.encode(…).", e.attr),
					Subject:  p.value.Range().Ptr(),
				})
			}
			s.fields = append(s.fields, assignment{name: p.name, field: f, expr: e})
		}
	}
	if a := attrs["key"]; a != nil {
		e, d := compile("key", a.Expr, ctx, bytesOrString, "a string, bytes or null")
		diags = append(diags, d...)
		s.key = e
	}
	if a := attrs["headers"]; a != nil {
		ps, d := pairs(a, ctx)
		diags = append(diags, d...)
		for _, p := range ps {
			if p.name == "" {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid header name", Detail: "A header name must not be empty.", Subject: p.nameR.Ptr()})
				continue
			}
			e, d := compile(fmt.Sprintf("headers %q", p.name), p.value, ctx, bytesOrString, "a string, bytes or null")
			diags = append(diags, d...)
			s.headers = append(s.headers, assignment{name: p.name, expr: e})
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	s.results = make([]any, len(s.fields))
	return s, diags
}

// Name implements Step.
func (s *set) Name() string { return "set" }

// Apply implements Step.
func (s *set) Apply(recs []sdk.Record) (out []sdk.Record, rejected []sdk.Rejection) {
	if len(s.fields) > 0 {
		extra := 16
		for _, f := range s.fields {
			extra += len(f.name) + 32 // ,"name":value
		}
		s.start(recs, extra)
	}
	n := len(s.headers)
	if s.key != nil {
		n++
	}
	s.bytesBuf = make([]byte, 0, 32*n*len(recs))
	if len(s.headers) > 0 {
		h := 0
		for i := range recs {
			h += len(recs[i].Headers) + len(s.headers)
		}
		s.headerBuf = make([]sdk.Header, 0, h)
	}
	out = make([]sdk.Record, 0, len(recs))
	for i := range recs {
		r, err := s.apply(&recs[i])
		if err != nil {
			rejected = append(rejected, sdk.Rejection{Index: i, Reason: err.Error()})
			continue
		}
		out = append(out, r)
	}
	s.act.reset(nil)
	s.slab, s.bytesBuf, s.headerBuf = nil, nil, nil
	return out, rejected
}

// bytesOf converts the result of a key or header expression into the
// batch's byte buffer: a string (its UTF-8 bytes) or bytes; null is
// (nil, false). The bytes are capped: appending to them copies.
func (s *set) bytesOf(v ref.Val) ([]byte, bool, error) {
	at := len(s.bytesBuf)
	switch x := v.(type) {
	case types.String:
		s.bytesBuf = append(s.bytesBuf, x...) // if append grows it, the bytes before stay where they were
	case types.Bytes:
		s.bytesBuf = append(s.bytesBuf, x...)
	case types.Null:
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("got %s, want a string, bytes or null", typeName(v))
	}
	return s.bytesBuf[at:len(s.bytesBuf):len(s.bytesBuf)], true, nil
}

// apply returns the record rec becomes.
func (s *set) apply(rec *sdk.Record) (sdk.Record, error) {
	s.act.reset(rec)
	out := *rec
	if rec.Tombstone && len(s.fields) > 0 {
		// Assigning fields would turn a null value into an object: the
		// tombstone would silently become a record to write.
		return out, errors.New("the record is a tombstone (its value is null): set cannot assign fields of it")
	}
	for i, f := range s.fields {
		v, err := f.expr.eval(&s.act)
		if err != nil {
			return out, err
		}
		if s.results[i], err = toJSON(v); err != nil {
			return out, fmt.Errorf("%s: %v", f.expr.attr, err)
		}
	}
	if s.key != nil {
		v, err := s.key.eval(&s.act)
		if err != nil {
			return out, err
		}
		if out.Key, _, err = s.bytesOf(v); err != nil {
			return out, fmt.Errorf("key: %v", err)
		}
	}
	if len(s.headers) > 0 {
		// headerBuf has room for every record's headers and the new ones.
		at := len(s.headerBuf)
		hs := s.headerBuf[at:at:cap(s.headerBuf)]
		for _, h := range rec.Headers {
			if !s.setsHeader(h.Key) {
				hs = append(hs, h)
			}
		}
		for _, h := range s.headers {
			v, err := h.expr.eval(&s.act)
			if err != nil {
				return out, err
			}
			b, ok, err := s.bytesOf(v)
			if err != nil {
				return out, fmt.Errorf("%s: %v", h.expr.attr, err)
			}
			if ok {
				hs = append(hs, sdk.Header{Key: h.name, Value: b})
			}
		}
		out.Headers = hs[:len(hs):len(hs)]
		s.headerBuf = s.headerBuf[:at+len(hs)]
	}
	if len(s.fields) > 0 {
		// The expressions ran on the value as it came in and their results
		// are copies (toJSON): the value they decoded can now be changed.
		obj, err := s.decoded(rec)
		if err != nil {
			return out, err
		}
		for i, f := range s.fields {
			if err := obj.set(f.field, s.results[i]); err != nil {
				return out, err
			}
		}
		if out.Value, err = s.encode(obj); err != nil {
			return out, fmt.Errorf("the new value has no JSON form: %v", err)
		}
	}
	return out, nil
}

// decoded returns rec's value as a JSON object, read once per record: the
// expressions may have read it already.
func (s *set) decoded(rec *sdk.Record) (*object, error) {
	if !s.act.decoded {
		return s.object(rec)
	}
	if s.act.jsonErr != nil {
		return nil, fmt.Errorf("the value is not JSON: %v", s.act.jsonErr)
	}
	if !s.act.isObj {
		return nil, fmt.Errorf("the value is %s, not a JSON object", kindOf(s.act.value))
	}
	return &s.act.obj, nil
}

// setsHeader reports whether the step sets header name.
func (s *set) setsHeader(name string) bool {
	for _, h := range s.headers {
		if h.name == name {
			return true
		}
	}
	return false
}

// dropFields removes fields from JSON object values.
type dropFields struct {
	objectStep
	fields []path
}

func decodeDropFields(body hcl.Body, ctx *hcl.EvalContext) (Step, hcl.Diagnostics) {
	attrs, diags := content(body, map[string]bool{"fields": true})
	if diags.HasErrors() {
		return nil, diags
	}
	fs, d := fieldList(attrs["fields"], ctx)
	if diags = append(diags, d...); diags.HasErrors() {
		return nil, diags
	}
	return &dropFields{fields: fs}, diags
}

// Name implements Step.
func (s *dropFields) Name() string { return "drop_fields" }

// Apply implements Step.
func (s *dropFields) Apply(recs []sdk.Record) ([]sdk.Record, []sdk.Rejection) {
	return s.each(recs, func(obj *object) (changed bool, _ error) {
		for _, f := range s.fields {
			if _, ok := obj.remove(f); ok {
				changed = true
			}
		}
		return changed, nil
	})
}

// rename moves fields of JSON object values to new paths.
type rename struct {
	objectStep
	from, to []path
}

func decodeRename(body hcl.Body, ctx *hcl.EvalContext) (Step, hcl.Diagnostics) {
	attrs, diags := content(body, map[string]bool{"fields": true})
	if diags.HasErrors() {
		return nil, diags
	}
	ps, d := pairs(attrs["fields"], ctx)
	if diags = append(diags, d...); diags.HasErrors() {
		return nil, diags
	}
	if len(ps) == 0 {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Nothing to rename",
			Detail:   "rename takes fields = { \"old\" = \"new\", … } with at least one entry.",
			Subject:  attrs["fields"].Expr.Range().Ptr(),
		})
	}
	s := &rename{}
	for _, p := range ps {
		from, d := fieldPath(p.name, p.nameR)
		diags = append(diags, d...)
		v, d := p.value.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		v, _ = v.UnmarkDeep()
		if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid field path",
				Detail:   fmt.Sprintf("The new name of %q must be a string; got %s.", p.name, friendly(v)),
				Subject:  p.value.Range().Ptr(),
			})
			continue
		}
		to, d := fieldPath(v.AsString(), p.value.Range())
		diags = append(diags, d...)
		if d.HasErrors() || from == nil {
			continue
		}
		if to.String() == from.String() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid rename",
				Detail:   fmt.Sprintf("%q is renamed to itself.", p.name),
				Subject:  p.value.Range().Ptr(),
			})
			continue
		}
		for i, other := range s.to {
			if other.String() == to.String() {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid rename",
					Detail:   fmt.Sprintf("%q and %q are both renamed to %q.", s.from[i].String(), p.name, to.String()),
					Subject:  p.value.Range().Ptr(),
				})
			}
		}
		s.from, s.to = append(s.from, from), append(s.to, to)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return s, diags
}

// Name implements Step.
func (s *rename) Name() string { return "rename" }

// Apply implements Step.
func (s *rename) Apply(recs []sdk.Record) ([]sdk.Record, []sdk.Rejection) {
	return s.each(recs, func(obj *object) (changed bool, _ error) {
		for i, from := range s.from {
			v, ok := obj.remove(from)
			if !ok {
				continue
			}
			if _, taken := obj.get(s.to[i]); taken {
				return false, fmt.Errorf("cannot rename %q to %q: the value already has a field %q", from, s.to[i], s.to[i])
			}
			if err := obj.set(s.to[i], v); err != nil {
				return false, err
			}
			changed = true
		}
		return changed, nil
	})
}

// mask replaces fields of JSON object values by their keyed hash.
type mask struct {
	objectStep
	fields []path
	mac    hash.Hash
	sum    []byte
	buf    []byte
}

func decodeMask(body hcl.Body, ctx *hcl.EvalContext) (Step, hcl.Diagnostics) {
	attrs, diags := content(body, map[string]bool{"fields": true, "key": true})
	if diags.HasErrors() {
		return nil, diags
	}
	fs, d := fieldList(attrs["fields"], ctx)
	diags = append(diags, d...)
	key, d := maskKey(attrs["key"], ctx)
	if diags = append(diags, d...); diags.HasErrors() {
		return nil, diags
	}
	return &mask{fields: fs, mac: hmac.New(sha256.New, key)}, diags
}

// maskKey evaluates mask's key. Its value is secret: no diagnostic shows it.
func maskKey(attr *hcl.Attribute, ctx *hcl.EvalContext) ([]byte, hcl.Diagnostics) {
	v, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() {
		// env()'s own diagnostics name the variable, never its value.
		return nil, diags
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String || v.AsString() == "" {
		got := friendly(v)
		if v.IsKnown() && v.Type() == cty.String && !v.IsNull() {
			got = "an empty string"
		}
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid mask key",
			Detail:   fmt.Sprintf("key must be a non-empty string, such as env(\"MASK_KEY\"); got %s (its value is secret and not shown).", got),
			Subject:  attr.Expr.Range().Ptr(),
		})
	}
	return []byte(v.AsString()), diags
}

// Name implements Step.
func (s *mask) Name() string { return "mask" }

// String describes the step without its key, so that printing it (%v, %+v)
// never shows the secret.
func (s *mask) String() string { return fmt.Sprintf("mask %v (key hidden)", s.fields) }

// GoString is String, for %#v.
func (s *mask) GoString() string { return s.String() }

// Apply implements Step.
func (s *mask) Apply(recs []sdk.Record) ([]sdk.Record, []sdk.Rejection) {
	return s.each(recs, func(obj *object) (changed bool, _ error) {
		for _, f := range s.fields {
			v, ok := obj.get(f)
			if !ok {
				continue
			}
			h, err := s.hash(v)
			if err != nil {
				return false, fmt.Errorf("cannot mask %q: %v", f, err)
			}
			if err := obj.set(f, h); err != nil {
				return false, err
			}
			changed = true
		}
		return changed, nil
	})
}

// hash is the hex HMAC-SHA256 of a field's value: of a string's UTF-8
// bytes, or of any other value's compact JSON text (names sorted).
func (s *mask) hash(v any) (string, error) {
	var in []byte
	if str, ok := v.(string); ok {
		in = append(s.buf[:0], str...)
	} else {
		var err error
		if in, err = s.codec.encode(s.buf[:0], v); err != nil {
			return "", err
		}
	}
	s.buf = in
	s.mac.Reset()
	s.mac.Write(in)
	s.sum = s.mac.Sum(s.sum[:0])
	return hex.EncodeToString(s.sum), nil
}
