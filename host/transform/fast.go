package transform

import (
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// shortcut evaluates the commonest expressions without the CEL interpreter:
// a field of value or of position (`value.offset`, `position.partition`),
// alone or compared with a literal (`value.offset >= 0`,
// `value.status == 'paid'`). It computes only the plain case, where its
// result is the one CEL gives by definition (two ints compared, two strings
// tested for equality, the field's value itself); anything else (a missing
// field, a value that is not an object, other types) it leaves to the
// program, which also words the errors. So it changes no result, only what
// one costs.
type shortcut struct {
	variable string // "value" or "position"
	field    string
	key      ref.Val // field as a CEL string
	op       string  // "" for the field alone, else an operator of operators
	lit      ref.Val // the literal compared with: types.Int or types.String
	swapped  bool    // the literal is on the left
}

// compileShortcut returns the shortcut for ast, or nil when it has none.
func compileShortcut(ast *cel.Ast) *shortcut {
	e := ast.NativeRep().Expr()
	if s, ok := fieldOf(e); ok {
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
	s, ok := fieldOf(attr)
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
