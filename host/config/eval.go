package config

import (
	"fmt"
	"math"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// marker is the type of the cty mark put on values that must stay secret.
type marker string

// secretMark marks every value env() returns; marks survive templates, lists
// and conditionals, so any attribute that uses env() ends up marked.
const secretMark = marker("secret")

// envFunc is env("NAME"): the value of an environment variable. An unset
// variable is an error naming the variable; an empty one is fine.
var envFunc = function.New(&function.Spec{
	Description: "Returns the value of an environment variable; an unset variable is an error.",
	Params: []function.Parameter{{
		Name: "name",
		Type: cty.String,
	}},
	Type: function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].IsNull() {
			return cty.NilVal, function.NewArgErrorf(0, "the environment variable name must not be null")
		}
		name := args[0].AsString()
		if name == "" {
			return cty.NilVal, function.NewArgErrorf(0, "the environment variable name must not be empty")
		}
		v, ok := os.LookupEnv(name)
		if !ok {
			return cty.NilVal, function.NewArgErrorf(0, "environment variable %q is not set", name)
		}
		return cty.StringVal(v).Mark(secretMark), nil
	},
})

// evalContext is the context every expression is evaluated in: no variables,
// one function.
func evalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": envFunc}}
}

// evaluate returns an attribute's value without marks, and whether it was
// marked secret (it used env()).
func evaluate(attr *hcl.Attribute) (v cty.Value, secret bool, diags hcl.Diagnostics) {
	v, diags = attr.Expr.Value(evalContext())
	if diags.HasErrors() {
		return cty.NilVal, false, diags
	}
	v, marks := v.UnmarkDeep()
	if !v.IsWhollyKnown() {
		// Cannot happen without variables; guard anyway.
		return cty.NilVal, false, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown value",
			Detail:   fmt.Sprintf("The value of %q cannot be known when the file is read.", attr.Name),
			Subject:  attr.Expr.Range().Ptr(),
			Context:  attr.Range.Ptr(),
		})
	}
	return v, len(marks) > 0, diags
}

// typeDesc describes what a parameter of type t takes.
func typeDesc(t sdk.Type) string {
	switch t {
	case sdk.TypeString:
		return "a string"
	case sdk.TypeInt:
		return "an int (a whole number)"
	case sdk.TypeFloat:
		return "a number"
	case sdk.TypeBool:
		return "a bool (true or false)"
	case sdk.TypeDuration:
		return `a duration such as "500ms" or "2m"`
	case sdk.TypeStrings:
		return `a list of strings such as ["a", "b"]`
	}
	return string(t)
}

// describe renders a value for a message: its type and, unless secret, the
// value itself when it is short and primitive.
func describe(v cty.Value, secret bool) string {
	name := v.Type().FriendlyName()
	if secret {
		return "a " + name + " (value hidden: it is secret)"
	}
	if v.IsNull() {
		return "null"
	}
	switch v.Type() {
	case cty.String:
		s := v.AsString()
		if len(s) > 60 {
			s = s[:57] + "..."
		}
		return fmt.Sprintf("string %q", s)
	case cty.Number:
		return "number " + v.AsBigFloat().Text('g', -1)
	case cty.Bool:
		return fmt.Sprintf("bool %t", v.True())
	}
	return "a " + name
}

// toGo converts v (unmarked, known, not null) to the Go value of type t that
// sdk.NewConfig accepts. The problem it returns says what is wrong with the
// value, without the value itself when secret.
func toGo(t sdk.Type, v cty.Value, secret bool) (any, string) {
	got := "got " + describe(v, secret)
	switch t {
	case sdk.TypeString:
		c, err := convert.Convert(v, cty.String)
		if err != nil {
			return nil, got
		}
		return c.AsString(), ""
	case sdk.TypeInt, sdk.TypeFloat:
		c, err := convert.Convert(v, cty.Number)
		if err != nil {
			return nil, got
		}
		bf := c.AsBigFloat()
		if t == sdk.TypeFloat {
			f, _ := bf.Float64()
			if math.IsInf(f, 0) {
				return nil, got + ", which is out of range"
			}
			return f, ""
		}
		if !bf.IsInt() {
			return nil, got + ", which is not a whole number"
		}
		i, acc := bf.Int64()
		if acc != big.Exact {
			return nil, got + ", which is out of range"
		}
		return i, ""
	case sdk.TypeBool:
		c, err := convert.Convert(v, cty.Bool)
		if err != nil {
			return nil, got
		}
		return c.True(), ""
	case sdk.TypeDuration:
		c, err := convert.Convert(v, cty.String)
		if err != nil {
			return nil, got
		}
		s := c.AsString()
		if s != "" { // "" is 0, as sdk.Convert has it
			if _, err := time.ParseDuration(s); err != nil {
				return nil, got + ", which is not a duration"
			}
		}
		return s, ""
	case sdk.TypeStrings:
		c, err := convert.Convert(v, cty.List(cty.String))
		if err != nil {
			return nil, got
		}
		out := make([]string, 0, c.LengthInt())
		for i, e := range c.AsValueSlice() {
			if e.IsNull() {
				return nil, fmt.Sprintf("element %d is null", i)
			}
			out = append(out, e.AsString())
		}
		return out, ""
	}
	return nil, fmt.Sprintf("the spec declares the unknown type %q", t)
}

// goValueText renders a converted value as it would be written in HCL.
func goValueText(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = fmt.Sprintf("%q", s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case time.Duration:
		return fmt.Sprintf("%q", x.String())
	}
	return fmt.Sprint(v)
}
