package transform

import (
	"fmt"
	"sort"
	"strings"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Step is one built-in transform, compiled; safe for one goroutine at a time.
type Step interface {
	// Name is the built-in's name: "filter", "set", "drop_fields", "rename"
	// or "mask".
	Name() string
	// Apply transforms recs in order and returns the records that go on, in
	// order, each with the Position of the record it came from. A record the
	// step cannot handle (a value that is not JSON where a field is used, an
	// expression that fails on it) is not in out but in rejected (its index
	// into recs and why). Apply never changes recs or the bytes they point
	// to, and gives the same result for the same records every time. out
	// may be recs itself or a part of it, capped (a filter that keeps every
	// record): the caller must not change out's records in place.
	Apply(recs []sdk.Record) (out []sdk.Record, rejected []sdk.Rejection)
}

// decoders maps each built-in's name to what compiles its block body.
var decoders = map[string]func(hcl.Body, *hcl.EvalContext) (Step, hcl.Diagnostics){
	"filter":      decodeFilter,
	"set":         decodeSet,
	"drop_fields": decodeDropFields,
	"rename":      decodeRename,
	"mask":        decodeMask,
}

// Builtin reports whether name is a built-in transform; any other transform
// name is a processor plugin's.
func Builtin(name string) bool {
	_, ok := decoders[name]
	return ok
}

// Names lists the built-in transforms in sorted order.
func Names() []string {
	ns := make([]string, 0, len(decoders))
	for n := range decoders {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Decode compiles a `transform "<name>" { … }` block's body. ctx is the
// pipeline file's eval context (it has env()). Diagnostics carry
// file:line:column; an expression's syntax or type error points into the
// expression string. A name that is not a built-in is a diagnostic, as is
// any attribute or block the built-in does not take. The value of mask's key
// is never in a diagnostic.
func Decode(name string, body hcl.Body, ctx *hcl.EvalContext) (Step, hcl.Diagnostics) {
	dec, ok := decoders[name]
	if !ok {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unknown built-in transform",
			Detail:   fmt.Sprintf("%q is not a built-in transform; the built-ins are %s.", name, strings.Join(Names(), ", ")),
			Subject:  body.MissingItemRange().Ptr(),
		}}
	}
	return dec(body, ctx)
}

// content reads body against attrs (name → required) and allows no blocks.
func content(body hcl.Body, attrs map[string]bool) (map[string]*hcl.Attribute, hcl.Diagnostics) {
	var schema hcl.BodySchema
	for name, required := range attrs {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: name, Required: required})
	}
	sort.Slice(schema.Attributes, func(i, j int) bool { return schema.Attributes[i].Name < schema.Attributes[j].Name })
	c, diags := body.Content(&schema)
	if c == nil {
		return nil, diags
	}
	return c.Attributes, diags
}

// pair is one entry of an HCL map attribute such as fields = { "a" = "x" }.
type pair struct {
	name  string
	nameR hcl.Range
	value hcl.Expression
}

// pairs reads a map attribute's entries in file order; names must be
// strings and unique.
func pairs(attr *hcl.Attribute, ctx *hcl.EvalContext) ([]pair, hcl.Diagnostics) {
	kvs, diags := hcl.ExprMap(attr.Expr)
	if diags.HasErrors() {
		return nil, diags
	}
	var out []pair
	seen := map[string]bool{}
	for _, kv := range kvs {
		k, d := kv.Key.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		k, _ = k.UnmarkDeep()
		if k.IsNull() || !k.IsKnown() || k.Type() != cty.String {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid name",
				Detail:   fmt.Sprintf("The names in %s are strings; got %s.", attr.Name, friendly(k)),
				Subject:  kv.Key.Range().Ptr(),
			})
			continue
		}
		name := k.AsString()
		if seen[name] {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate name",
				Detail:   fmt.Sprintf("%q appears twice in %s.", name, attr.Name),
				Subject:  kv.Key.Range().Ptr(),
			})
			continue
		}
		seen[name] = true
		out = append(out, pair{name: name, nameR: kv.Key.Range(), value: kv.Value})
	}
	return out, diags
}

// fieldPath parses a field path, or says at r why it is not one.
func fieldPath(s string, r hcl.Range) (path, hcl.Diagnostics) {
	p, err := parsePath(s)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid field path",
			Detail:   fmt.Sprintf("%s. A field path is a name, or names joined by dots (\"customer.email\").", upper(err.Error())),
			Subject:  r.Ptr(),
		}}
	}
	return p, nil
}

// fieldList reads a list-of-field-paths attribute such as fields = ["a", "b.c"].
func fieldList(attr *hcl.Attribute, ctx *hcl.EvalContext) ([]path, hcl.Diagnostics) {
	v, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	v, _ = v.UnmarkDeep()
	l, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || l.IsNull() || !l.IsWhollyKnown() || l.LengthInt() == 0 {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid fields",
			Detail:   fmt.Sprintf("%s takes a non-empty list of field paths such as [\"card\", \"customer.email\"]; got %s.", attr.Name, friendly(v)),
			Subject:  attr.Expr.Range().Ptr(),
		}}
	}
	var out []path
	for _, e := range l.AsValueSlice() {
		if e.IsNull() {
			return nil, append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid field path",
				Detail:   fmt.Sprintf("%s holds a null.", attr.Name),
				Subject:  attr.Expr.Range().Ptr(),
			})
		}
		p, d := fieldPath(e.AsString(), attr.Expr.Range())
		if d.HasErrors() {
			return nil, append(diags, d...)
		}
		out = append(out, p)
	}
	return out, diags
}

// upper capitalizes a message's first letter.
func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// objectStep is the shared part of the steps that change a JSON object
// value: read it, change it, encode it into a buffer shared by the batch's
// output values.
type objectStep struct {
	codec jsonCodec
	obj   object
	slab  []byte
}

// object reads rec's value, which must be a JSON object, into s.obj.
func (s *objectStep) object(rec *sdk.Record) (*object, error) {
	s.obj.codec = &s.codec
	v, err := s.obj.parse(rec.Value)
	switch err {
	case nil:
		return &s.obj, nil
	case errNotObject:
		return nil, fmt.Errorf("the value is %s, not a JSON object", kindOf(v))
	}
	return nil, fmt.Errorf("the value is not JSON: %v", err)
}

// start prepares the output buffer for recs, each value growing by about
// extra bytes (a buffer too small is copied into a larger one as it grows).
func (s *objectStep) start(recs []sdk.Record, extra int) {
	n := 0
	for i := range recs {
		n += len(recs[i].Value) + extra
	}
	s.slab = make([]byte, 0, n)
}

// encode encodes o into the batch's buffer and returns its bytes, capped so
// that appending to them never touches the next value.
func (s *objectStep) encode(o *object) ([]byte, error) {
	at := len(s.slab)
	b, err := o.encode(s.slab)
	if err != nil {
		return nil, err
	}
	s.slab = b // if append grew it, the values before stay where they were
	return b[at:len(b):len(b)], nil
}

// each runs change on every record's object value and encodes the result
// when change says it changed something (else the value's bytes go on as
// they were); a record whose value is not a JSON object, or for which change
// fails, is rejected. A tombstone goes on unchanged: its null value has no
// field to drop, rename or mask.
func (s *objectStep) each(recs []sdk.Record, change func(*object) (bool, error)) (out []sdk.Record, rejected []sdk.Rejection) {
	s.start(recs, 16)
	out = make([]sdk.Record, 0, len(recs))
	for i := range recs {
		r := recs[i]
		if r.Tombstone {
			out = append(out, r)
			continue
		}
		obj, err := s.object(&r)
		changed := false
		if err == nil {
			changed, err = change(obj)
		}
		if err == nil && changed {
			r.Value, err = s.encode(obj)
		}
		if err != nil {
			rejected = append(rejected, sdk.Rejection{Index: i, Reason: err.Error()})
			continue
		}
		out = append(out, r)
	}
	s.slab = nil
	return out, rejected
}
