package transform

import (
	"fmt"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
	"github.com/google/cel-go/common/types"
)

// TestShortcut checks that the expressions the shortcut computes give what
// the CEL program gives, on every kind of value, and that the others have
// no shortcut.
func TestShortcut(t *testing.T) {
	exprs := []string{
		`value.offset >= 0`, `0 < value.offset`, `value.offset == 17`, `value.offset != 17`, `value.offset <= -3`,
		`value.offset > 16`, `value.id == '0-17'`, `'x' != value.id`, `value.offset`, `value.id`, `value.o`,
		`position.partition`, `position.offset > 6`, `position.partition == 't/0'`, `position.index`, `position.index == 1`,
		`value.offset % 2 == 0`, `value.offset * 2`, `value.offset + 1 > 2`, `value.offset - 1 == 16`, `value.offset % -1`,
		`value.offset * -1 < 0`, `value.offset * 3`, `value.offset + 9223372036854775807`, `value.offset - 9223372036854775807 != 0`,
		`value.offset * 9223372036854775807`, `value.offset * -9223372036854775807`, `value.offset % 7 > 2`, `position.offset * 2 == 14`,
		`value.offset % 0`, `value.offset - 1`,
	}
	values := []string{
		`{"id":"0-17","offset":17,"o":{"a":[1]}}`, `{"id":1,"offset":"17"}`, `{"offset":17.5,"id":null}`, `{"offset":-3}`,
		`{"offset":1e2}`, `{}`, `[1]`, `"s"`, `not json`, ``, `{"offset":99999999999999999999}`, `{"offset":1,"offset":2}`,
		`{"offset":16,"id":"x"}`, `{"id":"0-\u0031"}`, `{"offset":9223372036854775807}`, `{"offset":-9223372036854775808}`,
		`{"offset":-1}`, `{"offset":0}`, `{"offset":-7}`, `{"offset":4611686018427387904}`, `{"offset":-4611686018427387905}`,
	}
	for _, src := range exprs {
		e := compiled(t, src)
		if e.fast == nil {
			t.Errorf("%s: no shortcut", src)
			continue
		}
		for _, v := range values {
			r := rec(v, 7)
			var a activation
			a.codec = &jsonCodec{}
			a.reset(&r)
			fast, ok := e.fast.eval(&a)
			a.reset(&r)
			want, _, err := e.prg.Eval(&a)
			if !ok {
				continue
			}
			if err != nil || want.Equal(fast) != types.True || want.Type() != fast.Type() {
				t.Errorf("%s on %s: shortcut %v (%T), program %v %v", src, v, fast, fast, want, err)
			}
		}
	}
	for _, src := range []string{`has(value.offset)`, `value.offset >= 0.5`, `value.id < 'a'`, `value.a.b == 1`, `[{'value': 1}].exists(value, value.value == 1)`, `value.offset + value.offset`, `1 + value.offset`, `value.offset / 2`, `value.offset * 2.0`, `key == b'k'`} {
		if e := compiled(t, src); e.fast != nil {
			t.Errorf("%s has a shortcut", src)
		}
	}
	// The shortcut takes the plain case on the benchmark's records.
	r := rec(`{"id":"0-17","offset":17}`, 7)
	var a activation
	a.codec = &jsonCodec{}
	a.reset(&r)
	if v, ok := compiled(t, `value.offset >= 0`).fast.eval(&a); !ok || v != types.True {
		t.Errorf("value.offset >= 0: %v %v", v, ok)
	}
}

// compiled is the expression src, as set's fields take it (any type).
func compiled(t *testing.T, src string) *expression {
	t.Helper()
	return step(t, fmt.Sprintf("transform \"set\" {\n  fields = { x = %q }\n}", src)).(*set).fields[0].expr
}

// TestFilterKeepsInPlace checks the filter's output whichever records it
// drops or rejects, and that appending to it never writes into its input.
func TestFilterKeepsInPlace(t *testing.T) {
	f := step(t, `transform "filter" { where = "value.k" }`)
	for _, pattern := range []string{"", "k", "kk", "kkk", "d", "r", "kkd", "dkk", "kdk", "krk", "kkr", "rkk", "ddd", "kdrk"} {
		var recs []sdk.Record
		var want []int64
		for i, c := range pattern {
			v := map[rune]string{'k': `{"k":true}`, 'd': `{"k":false}`, 'r': `{}`}[c]
			recs = append(recs, rec(v, int64(i)))
			if c == 'k' {
				want = append(want, int64(i))
			}
		}
		before := fmt.Sprint(recs)
		out, rej := f.Apply(recs)
		var got []int64
		for _, r := range out {
			got = append(got, r.Position.Offset)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || len(rej) != strings.Count(pattern, "r") {
			t.Errorf("%q: kept %v, rejected %d; want %v", pattern, got, len(rej), want)
		}
		_ = append(out, rec(`{"k":"appended"}`, 99))
		if fmt.Sprint(recs) != before {
			t.Errorf("%q: appending to the output changed the input", pattern)
		}
	}
}
