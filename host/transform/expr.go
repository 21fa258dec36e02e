package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/connectd/connectd/sdk"
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// celEnv is the one environment every expression compiles in: the record's
// variables, CEL's standard library and the strings and base64 extensions.
// Nothing in it reads a clock, draws a random number or does I/O, so an
// expression gives the same result for the same record every time.
var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		cel.Variable("key", cel.BytesType),
		cel.Variable("value", cel.DynType),
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("timestamp", cel.TimestampType),
		cel.Variable("position", cel.MapType(cel.StringType, cel.DynType)),
		cel.CustomTypeAdapter(adapter{}),
		ext.Strings(),
		ext.Encoders(),
	)
	if err != nil {
		panic("transform: the CEL environment does not build: " + err.Error()) // a bug, found by every test
	}
	return env
}()

// adapter presents decoded JSON to CEL: a number as an int when it is a
// whole number that fits in 64 bits, else as a double; objects and arrays
// as CEL maps and lists whose elements are adapted the same way.
type adapter struct{}

// NativeToValue implements types.Adapter.
func (adapter) NativeToValue(v any) ref.Val {
	switch x := v.(type) {
	case ref.Val:
		return x
	case json.Number:
		return numberVal([]byte(x))
	case map[string]any:
		return sortedMap{types.NewStringInterfaceMap(adapter{}, x), func() []string { return keys(x) }}
	case map[string]string:
		return sortedMap{types.NewStringStringMap(adapter{}, x), func() []string { return keys(x) }}
	case []any:
		return types.NewDynamicList(adapter{}, x)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// sortedMap is a CEL map of the record (a JSON object, headers, position)
// whose comprehensions visit the keys in sorted order: CEL's own maps visit
// them in Go's random map order, and value.map(k, k) would give a list in a
// different order on every run.
type sortedMap struct {
	traits.Mapper
	keys func() []string
}

// Iterator implements traits.Iterable, in sorted key order.
func (m sortedMap) Iterator() traits.Iterator {
	ks := m.keys()
	slices.Sort(ks)
	return types.NewStringList(adapter{}, ks).Iterator()
}

// keys returns m's keys, in no order.
func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// unorderedIteration returns a comprehension of the expression that builds
// a list (m.map(…), m.filter(…)) from a map the expression itself builds:
// its order would change from run to run. Maps of the record iterate in
// sorted order (sortedMap) and are fine, as is a comprehension that gives a
// bool (all, exists).
func unorderedIteration(ast *cel.Ast) (celast.Expr, bool) {
	native := ast.NativeRep()
	var found celast.Expr
	celast.PreOrderVisit(native.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if found != nil || e.Kind() != celast.ComprehensionKind {
			return
		}
		r := e.AsComprehension().IterRange()
		if native.GetType(r.ID()).Kind() == types.MapKind && !fromRecord(r) && native.GetType(e.ID()).Kind() != types.BoolKind {
			found = e
		}
	}))
	return found, found != nil
}

// fromRecord reports whether e is a variable of the record or a field or
// element of one.
func fromRecord(e celast.Expr) bool {
	for {
		switch e.Kind() {
		case celast.IdentKind:
			return true
		case celast.SelectKind:
			e = e.AsSelect().Operand()
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != operators.Index || len(c.Args()) != 2 {
				return false
			}
			e = c.Args()[0]
		default:
			return false
		}
	}
}

// expression is one compiled CEL expression and where it came from.
type expression struct {
	attr string // what the expression is, for reasons: `where`, `fields "a.b"`
	prg  cel.Program
	out  *cel.Type // the result's type, as the checker knows it (often dyn)
	// fields is true when the expression reads a field or an element of
	// value (value.a, has(value.a), value["a"], value[0]): then a record
	// whose value is not JSON, or a JSON string, number, bool or null, is
	// rejected whatever the result (has(value.a) would be false on bytes,
	// a silent drop).
	fields bool
	fast   *shortcut // the plain cases computed without the program, or nil
}

// readsFields reports whether the expression selects or indexes into the
// variable value.
func readsFields(ast *cel.Ast) bool {
	found := false
	isValue := func(e celast.Expr) bool { return e.Kind() == celast.IdentKind && e.AsIdent() == "value" }
	celast.PreOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.SelectKind:
			found = found || isValue(e.AsSelect().Operand())
		case celast.CallKind:
			c := e.AsCall()
			found = found || (c.FunctionName() == operators.Index && len(c.Args()) == 2 && isValue(c.Args()[0]))
		}
	}))
	return found
}

// compile compiles the CEL expression that the HCL expression expr holds (a
// string). want lists the result types the expression may have (besides dyn,
// checked per record); what names them for a message. Errors point into the
// expression's text when its source is a plain string literal.
func compile(attr string, expr hcl.Expression, ctx *hcl.EvalContext, want []*cel.Type, what string) (*expression, hcl.Diagnostics) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Expression expected",
			Detail:   fmt.Sprintf("%s takes an expression in a string, such as \"value.amount > 100\"; got %s.", attr, friendly(v)),
			Subject:  expr.Range().Ptr(),
		}}
	}
	text := v.AsString()
	ast, iss := celEnv.Compile(text)
	if iss.Err() != nil {
		for _, e := range iss.Errors() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid expression",
				Detail:   fmt.Sprintf("%s: %s.", attr, strings.TrimSuffix(e.Message, ".")),
				Subject:  into(expr, text, e.Location.Line(), e.Location.Column()),
				Context:  expr.Range().Ptr(),
			})
		}
		return nil, diags
	}
	if c, ok := unorderedIteration(ast); ok {
		loc := ast.NativeRep().SourceInfo().GetStartLocation(c.ID())
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid expression",
			Detail:   fmt.Sprintf("%s: this makes a list from a map written in the expression, in an order that changes from run to run; iterate over a list instead (transforms must be deterministic).", attr),
			Subject:  into(expr, text, loc.Line(), loc.Column()),
			Context:  expr.Range().Ptr(),
		}}
	}
	if out := ast.OutputType(); out != cel.DynType && !typeIn(out, want) {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid expression type",
			Detail:   fmt.Sprintf("%s must be %s; this expression gives %s.", attr, what, out),
			Subject:  expr.Range().Ptr(),
		}}
	}
	prg, err := celEnv.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid expression",
			Detail:   fmt.Sprintf("%s: %s.", attr, err),
			Subject:  expr.Range().Ptr(),
		}}
	}
	return &expression{attr: attr, prg: prg, out: ast.OutputType(), fields: readsFields(ast), fast: compileShortcut(ast)}, nil
}

func typeIn(t *cel.Type, ts []*cel.Type) bool {
	if ts == nil {
		return true
	}
	for _, w := range ts {
		if t.IsExactType(w) {
			return true
		}
	}
	return false
}

// friendly describes a non-string value for a message, without the value.
func friendly(v cty.Value) string {
	switch {
	case !v.IsKnown():
		return "a value not known when the file is read"
	case v.IsNull():
		return "null"
	}
	return "a " + v.Type().FriendlyName()
}

// into returns the range of the character at (line, column) of the
// expression's text: line is 1-based and column 0-based, in characters, as
// CEL reports them. When the text is a plain string literal in the file
// (quoted, no escapes, no interpolation; or a heredoc that is not indented),
// file positions and text positions match one to one; otherwise the whole
// expression's range is the best it can say.
func into(expr hcl.Expression, text string, line, column int) *hcl.Range {
	whole := expr.Range()
	lit, ok := literal(expr)
	if !ok || lit.End.Byte-lit.Start.Byte != len(text) {
		return &whole
	}
	lines := strings.SplitAfter(text, "\n")
	if line < 1 || line > len(lines) {
		return &whole
	}
	off := 0
	for _, l := range lines[:line-1] {
		off += len(l)
	}
	cur := lines[line-1]
	col := 0
	for col < column && len(cur) > 0 {
		_, n := utf8.DecodeRuneInString(cur)
		cur = cur[n:]
		off += n
		col++
	}
	start := hcl.Pos{Line: lit.Start.Line + line - 1, Column: col + 1, Byte: lit.Start.Byte + off}
	if line == 1 {
		start.Column = lit.Start.Column + col
	}
	end := start
	if len(cur) > 0 {
		_, n := utf8.DecodeRuneInString(cur)
		end.Column++
		end.Byte += n
	}
	return &hcl.Range{Filename: whole.Filename, Start: start, End: end}
}

// literal returns the source range of the text of a string literal
// expression (inside the quotes).
func literal(expr hcl.Expression) (hcl.Range, bool) {
	t, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || len(t.Parts) != 1 {
		return hcl.Range{}, false
	}
	l, ok := t.Parts[0].(*hclsyntax.LiteralValueExpr)
	if !ok {
		return hcl.Range{}, false
	}
	return l.SrcRange, true
}

// activation is the record an expression runs on. It decodes the value, and
// builds headers, only when an expression reads them, once
// per record.
type activation struct {
	codec *jsonCodec
	rec   *sdk.Record

	decoded bool
	obj     object // the value, when it is a JSON object (isObj)
	isObj   bool
	value   any   // the decoded JSON value, when jsonErr is nil: objectVal{&obj} for an object
	jsonErr error // why the value is not JSON
	headers map[string]string
}

// reset points a at rec, forgetting everything decoded for the last record.
func (a *activation) reset(rec *sdk.Record) {
	a.rec = rec
	a.decoded, a.isObj, a.value, a.jsonErr = false, false, nil, nil
	a.headers = nil
}

// json returns the record's value decoded, or why it is not JSON. A
// tombstone's value is null (nil), as JSON's null is.
func (a *activation) json() (any, error) {
	if !a.decoded {
		a.decoded = true
		if a.rec.Tombstone {
			return nil, nil
		}
		a.obj.codec = a.codec
		v, err := a.obj.parse(a.rec.Value)
		switch err {
		case nil:
			a.value, a.isObj = objectVal{&a.obj}, true
		case errNotObject:
			a.value = v
		default:
			a.jsonErr = err
		}
	}
	return a.value, a.jsonErr
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "key":
		return types.Bytes(a.rec.Key), true
	case "value":
		v, err := a.json()
		if err != nil {
			return types.Bytes(a.rec.Value), true
		}
		return v, true
	case "headers":
		if a.headers == nil {
			a.headers = make(map[string]string, len(a.rec.Headers))
			for _, h := range a.rec.Headers {
				if _, dup := a.headers[h.Key]; !dup { // the first wins, as sdk.Record.Header has it
					a.headers[h.Key] = string(h.Value)
				}
			}
		}
		return a.headers, true
	case "timestamp":
		return types.Timestamp{Time: a.rec.Timestamp}, true
	case "position":
		return positionVal{&a.rec.Position}, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// eval runs e on a's record. An error says why for a rejection.
func (e *expression) eval(a *activation) (ref.Val, error) {
	if e.fast != nil {
		if out, ok := e.fast.eval(a); ok {
			return out, nil
		}
	}
	out, _, err := e.prg.Eval(a)
	if e.fields && a.decoded && !a.isObj {
		switch a.value.(type) {
		case []any: // value[0] reads an array's element
		default:
			if a.rec.Tombstone {
				// An expression that tests for null before it reads a
				// field (value == null || value.a > 1) has a result on a
				// tombstone; one that reads a field of null fails, and the
				// reason names the tombstone.
				if err != nil {
					return nil, fmt.Errorf("%s: the record is a tombstone (its value is null, not a JSON object): %v", e.attr, err)
				}
				return out, nil
			}
			if a.jsonErr != nil {
				return nil, fmt.Errorf("%s: the value is not JSON: %v", e.attr, a.jsonErr)
			}
			return nil, fmt.Errorf("%s: the value is %s, not a JSON object", e.attr, kindOf(a.value))
		}
	}
	if err != nil {
		if a.decoded && a.jsonErr != nil {
			return nil, fmt.Errorf("%s: %v (the value is not JSON: %v)", e.attr, err, a.jsonErr)
		}
		return nil, fmt.Errorf("%s: %v", e.attr, err)
	}
	return out, nil
}

// toJSON converts an expression's result to a JSON value (see json.go); a
// result with no JSON form (bytes, a non-string map key, NaN) is an error.
func toJSON(v ref.Val) (any, error) {
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		return uint64(x), nil
	case types.Double:
		return float64(x), nil
	case types.String:
		return string(x), nil
	case types.Bytes:
		return nil, errors.New("bytes have no JSON form: convert with string(…) or base64.encode(…)")
	case types.Timestamp, types.Duration:
		s := x.ConvertToType(types.StringType)
		if types.IsError(s) {
			return nil, s.(*types.Err)
		}
		return string(s.(types.String)), nil
	case traits.Mapper:
		m := map[string]any{}
		for it := x.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("a JSON object's names are strings; got a %s name", k.Type())
			}
			e, err := toJSON(x.Get(k))
			if err != nil {
				return nil, err
			}
			m[string(ks)] = e
		}
		return m, nil
	case traits.Lister:
		n := int(x.Size().(types.Int))
		l := make([]any, n)
		for i := range l {
			e, err := toJSON(x.Get(types.Int(i)))
			if err != nil {
				return nil, err
			}
			l[i] = e
		}
		return l, nil
	}
	if types.IsError(v) {
		return nil, v.(*types.Err)
	}
	return nil, fmt.Errorf("a %s has no JSON form", v.Type())
}

// typeName names a result's CEL type for a reason.
func typeName(v ref.Val) string {
	if v == nil || reflect.ValueOf(v).Kind() == reflect.Invalid {
		return "nothing"
	}
	return v.Type().(ref.Type).TypeName()
}
