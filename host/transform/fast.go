package transform

import (
	"math"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// shortcut evaluates the commonest expressions without the CEL interpreter:
// a field of value or of position (`value.offset`, `position.partition`),
// or such a field with an int literal added, subtracted, multiplied or
// taken modulo (`value.offset * 2`), alone or compared with a literal
// (`value.offset >= 0`, `value.offset % 2 == 0`, `value.status == 'paid'`).
// It computes only the plain case, where its result is the one CEL gives by
// definition (ints without overflow, two ints compared, two strings tested
// for equality, the field's value itself); anything else (a missing field, a
// value that is not an object, other types, an overflow, a modulo by zero)
// it leaves to the program, which also words the errors. So it changes no result, only what
// one costs.
type shortcut struct {
	variable string // "value" or "position"
	field    string
	key      ref.Val   // field as a CEL string
	arith    string    // "" or the operator applied to the field: +, -, *, %
	arg      types.Int // its right operand
	op       string    // "" for the field alone, else an operator of operators
	lit      ref.Val   // the literal compared with: types.Int or types.String
	swapped  bool      // the literal is on the left
}

// compileShortcut returns the shortcut for ast, or nil when it has none.
func compileShortcut(ast *cel.Ast) *shortcut {
	e := ast.NativeRep().Expr()
	if s, ok := operandOf(e); ok {
		return s
	}
	if e.Kind() != celast.CallKind {
		return nil
	}
	c := e.AsCall()
	switch c.FunctionName() {
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
	default:
		return nil
	}
	args := c.Args()
	if len(args) != 2 || c.IsMemberFunction() {
		return nil
	}
	attr, lit, swapped := args[0], args[1], false
	if attr.Kind() == celast.LiteralKind {
		attr, lit, swapped = lit, attr, true
	}
	s, ok := operandOf(attr)
	if !ok || lit.Kind() != celast.LiteralKind {
		return nil
	}
	switch l := lit.AsLiteral().(type) {
	case types.Int:
	case types.String:
		if c.FunctionName() != operators.Equals && c.FunctionName() != operators.NotEquals {
			return nil
		}
	default:
		_ = l
		return nil
	}
	s.op, s.lit, s.swapped = c.FunctionName(), lit.AsLiteral(), swapped
	return s
}

// operandOf returns the shortcut for e when e is a field (fieldOf) or a
// field with an int literal added, subtracted, multiplied or taken modulo.
func operandOf(e celast.Expr) (*shortcut, bool) {
	if s, ok := fieldOf(e); ok {
		return s, true
	}
	if e.Kind() != celast.CallKind {
		return nil, false
	}
	c := e.AsCall()
	switch c.FunctionName() {
	case operators.Add, operators.Subtract, operators.Multiply, operators.Modulo:
	default:
		return nil, false
	}
	args := c.Args()
	if len(args) != 2 || c.IsMemberFunction() || args[1].Kind() != celast.LiteralKind {
		return nil, false
	}
	arg, ok := args[1].AsLiteral().(types.Int)
	if !ok {
		return nil, false
	}
	s, ok := fieldOf(args[0])
	if !ok {
		return nil, false
	}
	s.arith, s.arg = c.FunctionName(), arg
	return s, true
}

// fieldOf returns the shortcut for e when e is value.<field> or
// position.<field> (not a has() test).
func fieldOf(e celast.Expr) (*shortcut, bool) {
	if e.Kind() != celast.SelectKind {
		return nil, false
	}
	sel := e.AsSelect()
	if sel.IsTestOnly() || sel.Operand().Kind() != celast.IdentKind {
		return nil, false
	}
	switch v := sel.Operand().AsIdent(); v {
	case "value", "position":
		return &shortcut{variable: v, field: sel.FieldName(), key: types.String(sel.FieldName())}, true
	}
	return nil, false
}

// eval returns the expression's result on a's record, and false when the
// case is not a plain one (then the program must run).
func (s *shortcut) eval(a *activation) (ref.Val, bool) {
	var v ref.Val
	switch s.variable {
	case "value":
		if _, err := a.json(); err != nil || !a.isObj {
			return nil, false
		}
		f := a.obj.find(s.field)
		if f == nil {
			return nil, false
		}
		v = a.obj.celValue(f)
	case "position":
		var ok bool
		if v, ok = (positionVal{&a.rec.Position}).Find(s.key); !ok {
			return nil, false
		}
	}
	if s.arith != "" {
		x, ok := v.(types.Int)
		if !ok {
			return nil, false
		}
		if v, ok = intArith(s.arith, x, s.arg); !ok {
			return nil, false
		}
	}
	if s.op == "" {
		return v, true
	}
	switch l := s.lit.(type) {
	case types.Int:
		x, ok := v.(types.Int)
		if !ok {
			return nil, false
		}
		if s.swapped {
			x, l = l, x
		}
		switch s.op {
		case operators.Equals:
			return types.Bool(x == l), true
		case operators.NotEquals:
			return types.Bool(x != l), true
		case operators.Less:
			return types.Bool(x < l), true
		case operators.LessEquals:
			return types.Bool(x <= l), true
		case operators.Greater:
			return types.Bool(x > l), true
		case operators.GreaterEquals:
			return types.Bool(x >= l), true
		}
	case types.String:
		x, ok := v.(types.String)
		if !ok {
			return nil, false
		}
		return types.Bool((x == l) == (s.op == operators.Equals)), true
	}
	return nil, false
}

// intArith is x op y for CEL's int operators, and false when CEL gives an
// error (overflow, modulo by zero).
func intArith(op string, x, y types.Int) (types.Int, bool) {
	switch op {
	case operators.Add:
		r := x + y
		return r, (x^r)&(y^r) >= 0
	case operators.Subtract:
		r := x - y
		return r, (x^y)&(x^r) >= 0
	case operators.Multiply:
		if x == 0 || y == 0 {
			return 0, true
		}
		r := x * y
		if r/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
			return 0, false
		}
		return r, true
	case operators.Modulo:
		if y == 0 || (x == math.MinInt64 && y == -1) {
			return 0, false
		}
		return x % y, true
	}
	return 0, false
}
