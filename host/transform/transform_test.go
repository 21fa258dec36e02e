package transform

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// envCtx is a pipeline file's eval context as host/config builds it: env()
// returns a variable's value, marked secret.
func envCtx() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": function.New(&function.Spec{
		Params: []function.Parameter{{Name: "name", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, ok := os.LookupEnv(args[0].AsString())
			if !ok {
				return cty.NilVal, function.NewArgErrorf(0, "environment variable %q is not set", args[0].AsString())
			}
			return cty.StringVal(v).Mark("secret"), nil
		},
	})}}
}

// decodeFile compiles every transform block of a pipeline file's text.
func decodeFile(t *testing.T, src string) ([]Step, hcl.Diagnostics) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "p.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse: %s", diags)
	}
	c, _, diags := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "transform", LabelNames: []string{"name"}}}})
	if diags.HasErrors() {
		t.Fatalf("content: %s", diags)
	}
	var steps []Step
	for _, b := range c.Blocks {
		s, d := Decode(b.Labels[0], b.Body, envCtx())
		diags = append(diags, d...)
		if s != nil {
			if s.Name() != b.Labels[0] {
				t.Errorf("Decode(%q).Name() = %q", b.Labels[0], s.Name())
			}
			steps = append(steps, s)
		}
	}
	return steps, diags
}

// step compiles one transform block, failing the test on any diagnostic.
func step(t *testing.T, src string) Step {
	t.Helper()
	steps, diags := decodeFile(t, src)
	if len(diags) > 0 || len(steps) != 1 {
		t.Fatalf("decode %s: %s", src, diags)
	}
	return steps[0]
}

// rec is a record with value v at position p@o.
func rec(v string, o int64) sdk.Record {
	return sdk.Record{Key: []byte(fmt.Sprint("k", o)), Value: []byte(v), Position: sdk.Position{Partition: "t/0", Offset: o, Index: int(o % 2)},
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Headers: []sdk.Header{{Key: "h", Value: []byte("v")}}}
}

// values lists the values of recs.
func values(recs []sdk.Record) []string {
	var vs []string
	for _, r := range recs {
		vs = append(vs, string(r.Value))
	}
	return vs
}

// reasons renders rejections as "index: reason".
func reasons(rs []sdk.Rejection) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d: %s", r.Index, r.Reason))
	}
	return out
}

// checkReasons fails unless the rejections are at the indexes of want, each
// reason containing the want's text.
func checkReasons(t *testing.T, got []sdk.Rejection, want map[int]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("rejections %q, want %d", reasons(got), len(want))
	}
	for _, r := range got {
		w, ok := want[r.Index]
		if !ok || !strings.Contains(r.Reason, w) {
			t.Errorf("rejection %d: %q, want it to contain %q", r.Index, r.Reason, w)
		}
	}
}

func TestBuiltin(t *testing.T) {
	for _, n := range []string{"filter", "set", "drop_fields", "rename", "mask"} {
		if !Builtin(n) {
			t.Errorf("Builtin(%q) = false", n)
		}
	}
	for _, n := range []string{"", "Filter", "uppercase", "drop"} {
		if Builtin(n) {
			t.Errorf("Builtin(%q) = true", n)
		}
	}
}

func TestFilter(t *testing.T) {
	f := step(t, `transform "filter" { where = "value.amount > 100 && headers.h == 'v'" }`)
	recs := []sdk.Record{
		rec(`{"amount":150}`, 0),
		rec(`{"amount":50}`, 1),
		rec(`{"amount":100.5}`, 2), // a double compares with an int
		rec(`not json`, 3),
		rec(`{"other":1}`, 4),
		rec(`[1,2]`, 5),
		rec(`{"amount":"150"}`, 6),
		rec(`{"amount":1} trailing`, 7),
		rec(`{"amount":1e400}`, 8),
	}
	out, rej := f.Apply(recs)
	if got, want := values(out), []string{`{"amount":150}`, `{"amount":100.5}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("out %q, want %q", got, want)
	}
	if out[0].Position != recs[0].Position || out[1].Position != recs[2].Position {
		t.Errorf("positions %v %v, want %v %v", out[0].Position, out[1].Position, recs[0].Position, recs[2].Position)
	}
	checkReasons(t, rej, map[int]string{
		3: "the value is not JSON",
		4: "no such key: amount",
		5: "where:",
		6: "no such overload",
		7: "the value is not JSON: more than one JSON value",
		8: "out of range",
	})

	// has() on a value that is not a JSON object would be false: a silent
	// drop. An expression that reads a field rejects such a record instead.
	f = step(t, `transform "filter" { where = "!has(value.a) || value == b'x'" }`)
	out, rej = f.Apply([]sdk.Record{rec(`x`, 0), rec(`"s"`, 1), rec(`12`, 2), rec(`{}`, 3), rec(`[{"a":1}]`, 4)})
	if len(out) != 1 || string(out[0].Value) != `{}` {
		t.Errorf("out %q, want only {}", values(out))
	}
	checkReasons(t, rej, map[int]string{
		0: "where: the value is not JSON",
		1: "where: the value is a string, not a JSON object",
		2: "where: the value is a number, not a JSON object",
		4: "where: ", // has() on a list: CEL's own error
	})
	f = step(t, `transform "filter" { where = "value[0].a == 1" }`)
	if out, rej = f.Apply([]sdk.Record{rec(`[{"a":1}]`, 0)}); len(out) != 1 {
		t.Errorf("value[0].a on an array: rejections %q, want the record kept", reasons(rej))
	}
}

// TestFilterRecordFields checks each variable an expression sees.
func TestFilterRecordFields(t *testing.T) {
	r := rec("plain text", 7)
	r.Headers = append(r.Headers, sdk.Header{Key: "h", Value: []byte("second")})
	for _, where := range []string{
		`key == b'k7'`,
		`string(key) == 'k7'`,
		`value == b'plain text'`,
		`headers.h == 'v'`, // the first header of a name wins
		`!('x' in headers)`,
		`timestamp == timestamp('2026-01-02T03:04:05Z')`,
		`timestamp.getFullYear() == 2026`,
		`position.partition == 't/0' && position.offset == 7 && position.index == 1`,
		`position == {'partition': 't/0', 'offset': 7, 'index': 1} && {'index': 1, 'offset': 7, 'partition': 't/0'} == position`,
		`size(position) == 3 && 'offset' in position && has(position.index) && !has(position.other)`,
		`position['offset'] == 7 && position.all(k, k in ['index', 'offset', 'partition'])`,
		`'a,b'.split(',').size() == 2`,   // the strings extension
		`base64.encode(b'hi') == 'aGk='`, // the encoders extension
	} {
		out, rej := step(t, fmt.Sprintf("transform \"filter\" {\n  where = %q\n}", where)).Apply([]sdk.Record{r})
		if len(out) != 1 || len(rej) != 0 {
			t.Errorf("where = %q: out %d, rejections %q; want the record kept", where, len(out), reasons(rej))
		}
	}
	// A JSON value is the decoded JSON, whatever its kind.
	for v, where := range map[string]string{
		`"text"`:              `value == 'text'`,
		`12`:                  `value == 12 && type(value) == int`,
		`1.5`:                 `value == 1.5`,
		`9223372036854775808`: `type(value) == double`,
		`[1,"a",{"b":null}]`:  `value[2].b == null && size(value) == 3`,
		`{"a":{"b":[true]}}`:  `value.a.b[0] && has(value.a) && !has(value.c)`,
		`null`:                `value == null`,
	} {
		out, rej := step(t, fmt.Sprintf("transform \"filter\" {\n  where = %q\n}", where)).Apply([]sdk.Record{rec(v, 0)})
		if len(out) != 1 || len(rej) != 0 {
			t.Errorf("value %s, where = %q: out %d, rejections %q; want the record kept", v, where, len(out), reasons(rej))
		}
	}
}

func TestSet(t *testing.T) {
	s := step(t, `
transform "set" {
  fields = {
    "total"         = "value.price * value.qty"
    "meta.source"   = "position.partition"
    "meta.copy"     = "value"
    "price"         = "value.price + 1"
    "at"            = "timestamp"
  }
  key     = "string(value.id)"
  headers = {
    "topic" = "value.price > 10 ? 'big' : 'small'"
    "h"     = "null"
  }
}`)
	in := rec(`{"id":7,"price":20,"qty":3,"note":"keep 1.50e2 as written","n":1.50e2}`, 3)
	in.Headers = append(in.Headers, sdk.Header{Key: "other", Value: []byte("o")})
	orig := in
	origValue := string(in.Value)
	out, rej := s.Apply([]sdk.Record{in})
	if len(rej) != 0 || len(out) != 1 {
		t.Fatalf("out %d, rejections %q", len(out), reasons(rej))
	}
	got := out[0]
	// Every expression saw the record as it came in: price+1 = 21, total = 20*3, meta.copy has the old price.
	// Fields keep their order and bytes; new ones follow in the order written;
	// an object a step builds or copies has sorted names.
	want := `{"id":7,"price":21,"qty":3,"note":"keep 1.50e2 as written","n":1.50e2,"total":60,"meta":{"copy":{"id":7,"n":150,"note":"keep 1.50e2 as written","price":20,"qty":3},"source":"t/0"},"at":"2026-01-02T03:04:05Z"}`
	if string(got.Value) != want {
		t.Errorf("value\n%s, want\n%s", got.Value, want)
	}
	if string(got.Key) != "7" {
		t.Errorf("key %q, want \"7\"", got.Key)
	}
	if want := []sdk.Header{{Key: "other", Value: []byte("o")}, {Key: "topic", Value: []byte("big")}}; !reflect.DeepEqual(got.Headers, want) {
		t.Errorf("headers %q, want %q (h removed by null, topic added)", got.Headers, want)
	}
	if got.Position != orig.Position || !got.Timestamp.Equal(orig.Timestamp) {
		t.Errorf("position %v timestamp %v changed", got.Position, got.Timestamp)
	}
	if string(in.Value) != origValue || len(in.Headers) != 2 || string(in.Key) != "k3" {
		t.Errorf("Apply changed its input: %q %q %q", in.Value, in.Headers, in.Key)
	}
	// Keys, header values and header lists of a batch share buffers: each is
	// capped, so appending to one never writes into the next record's.
	two, rej := s.Apply([]sdk.Record{in, in})
	if len(rej) > 0 || len(two) != 2 {
		t.Fatalf("two records: %q", reasons(rej))
	}
	_ = append(two[0].Key, "XX"...)
	_ = append(two[0].Headers[1].Value, "XX"...)
	_ = append(two[0].Headers, sdk.Header{Key: "XX"})
	if string(two[0].Headers[1].Value) != "big" || string(two[1].Key) != "7" || string(two[1].Headers[0].Key) != "other" || string(two[1].Headers[1].Value) != "big" {
		t.Errorf("an append changed another slice: record 0 headers %q, record 1 key %q headers %q", two[0].Headers, two[1].Key, two[1].Headers)
	}
	if cap(got.Value) != len(got.Value) {
		t.Errorf("value's capacity %d > its length %d: an append would write into the next value", cap(got.Value), len(got.Value))
	}
}

func TestSetRejects(t *testing.T) {
	s := step(t, `
transform "set" {
  fields = { "a.b" = "value.x * 2", "c" = "dyn(key)" }
}`)
	recs := []sdk.Record{
		rec(`{"x":2}`, 0),   // c = key gives bytes
		rec(`plain`, 1),     // not JSON
		rec(`{"y":2}`, 2),   // no x
		rec(`{"x":"s"}`, 3), // string * int
	}
	out, rej := s.Apply(recs)
	if len(out) != 0 {
		t.Errorf("out %q, want none", values(out))
	}
	checkReasons(t, rej, map[int]string{
		0: `fields "c": bytes have no JSON form`, // known at run time only: dyn
		1: `fields "a.b": the value is not JSON: invalid character 'p' at start of value`,
		2: `fields "a.b": no such key: x`,
		3: `fields "a.b": no such overload`,
	})

	s = step(t, `
transform "set" {
  fields = { "a.b" = "1" }
}`)
	out, rej = s.Apply([]sdk.Record{rec(`{"a":5}`, 0), rec(`[]`, 1), rec(`{"a":{"c":1}}`, 2), rec(`{"a":null}`, 3), rec(`x`, 4)})
	if got, want := values(out), []string{`{"a":{"b":1,"c":1}}`, `{"a":{"b":1}}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("out %q, want %q", got, want)
	}
	checkReasons(t, rej, map[int]string{
		0: `cannot set field "a.b": "a" is a number, not an object`,
		1: `the value is an array, not a JSON object`,
		4: `the value is not JSON`,
	})

	s = step(t, `
transform "set" {
  key     = "value.k"
  headers = { "t" = "value.t" }
}`)
	out, rej = s.Apply([]sdk.Record{rec(`{"k":1,"t":"x"}`, 0), rec(`{"k":"a","t":2}`, 1), rec(`{"k":null,"t":"x"}`, 2)})
	if len(out) != 1 || out[0].Key != nil || string(out[0].Header("t")) != "x" {
		t.Errorf("out %+v, want one record with no key and t: x", out)
	}
	checkReasons(t, rej, map[int]string{
		0: `key: got int, want a string, bytes or null`,
		1: `headers "t": got int, want a string, bytes or null`,
	})
}

// TestValueBytesKept checks that a step leaves the bytes of what it does not
// change as they were: whitespace, field order, escapes, number forms.
func TestValueBytesKept(t *testing.T) {
	in := `{ "b" : 1.0e0 , "a\u0041" : "x\ty" , "c": [ 1 , 2 ] }`
	for _, tc := range []struct{ src, want string }{
		{`transform "drop_fields" { fields = ["zz", "c.d"] }`, in},
		{`transform "rename" { fields = { "zz" = "y" } }`, in},
		{`transform "mask" {
  fields = ["zz"]
  key = "k"
}`, in},
		{`transform "set" { key = "'k'" }`, in},
		{`transform "set" { headers = { h = "value.aA" } }`, in},
		{`transform "drop_fields" { fields = ["c"] }`, `{"b":1.0e0,"a\u0041":"x\ty"}`},
		{`transform "set" { fields = { "aA" = "value.aA + '!'" } }`, `{"b":1.0e0,"a\u0041":"x\ty!","c":[ 1 , 2 ]}`},
		// Reading fields does not change their bytes.
		{`transform "set" { fields = { "d" = "value.aA + string(value.b) + string(value.c[0])" } }`, `{"b":1.0e0,"a\u0041":"x\ty","c":[ 1 , 2 ],"d":"x\ty11"}`},
	} {
		out, rej := step(t, tc.src).Apply([]sdk.Record{rec(in, 0)})
		if len(rej) > 0 || len(out) != 1 {
			t.Errorf("%s: rejections %q", tc.src, reasons(rej))
			continue
		}
		if string(out[0].Value) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.src, out[0].Value, tc.want)
		}
	}
}

// TestReadFieldsKept checks that fields an expression only reads keep
// their bytes (an escape, a number's form) when set changes another field.
func TestReadFieldsKept(t *testing.T) {
	s := step(t, `transform "set" { fields = { "d" = "value.s + string(value.n) + string(value.o.p)" } }`)
	out, rej := s.Apply([]sdk.Record{rec(`{"s":"\u00e9","n":1.50e2,"o":{"p":"\u0041"}}`, 0)})
	if want := `{"s":"\u00e9","n":1.50e2,"o":{"p":"\u0041"},"d":"é150A"}`; len(rej) > 0 || string(out[0].Value) != want {
		t.Errorf("got %s %q, want %s", values(out), reasons(rej), want)
	}
}

// TestNotJSON checks what is not JSON for a step.
func TestNotJSON(t *testing.T) {
	f := step(t, `transform "filter" { where = "has(value.a)" }`)
	d := step(t, `transform "drop_fields" { fields = ["a"] }`)
	for v, want := range map[string]string{
		`{"a":1,"a":2}`:    "duplicate object member name",
		`{"a":1} {}`:       "more than one JSON value",
		`{"a":1`:           "unexpected EOF after offset 6",
		"{\"a\":\"\xff\"}": "invalid UTF-8",
		``:                 "unexpected end of JSON input",
	} {
		for _, s := range []Step{f, d} {
			_, rej := s.Apply([]sdk.Record{rec(v, 0)})
			checkReasons(t, rej, map[int]string{0: "the value is not JSON"})
			checkReasons(t, rej, map[int]string{0: want})
		}
	}
}

func TestDropFields(t *testing.T) {
	s := step(t, `transform "drop_fields" { fields = ["a", "b.c", "missing", "x.y.z"] }`)
	out, rej := s.Apply([]sdk.Record{
		rec(`{"a":1,"b":{"c":2,"d":3},"e":4,"x":5}`, 0),
		rec(`{}`, 1),
		rec(`"a string"`, 2),
		rec(`{"a":`, 3),
	})
	if got, want := values(out), []string{`{"b":{"d":3},"e":4,"x":5}`, `{}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("out %q, want %q", got, want)
	}
	checkReasons(t, rej, map[int]string{2: "the value is a string, not a JSON object", 3: "the value is not JSON"})
}

func TestRename(t *testing.T) {
	s := step(t, `
transform "rename" {
  fields = {
    "old"   = "new"
    "a.b"   = "flat"
    "c"     = "d.e"
    "gone"  = "never"
  }
}`)
	out, rej := s.Apply([]sdk.Record{
		rec(`{"old":1,"a":{"b":2,"x":0},"c":[3]}`, 0),
		rec(`{"old":1,"new":2}`, 1),
		rec(`{"c":1,"d":"s"}`, 2),
		rec(`17`, 3),
	})
	if got, want := values(out), []string{`{"a":{"x":0},"new":1,"flat":2,"d":{"e":[3]}}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("out %q, want %q", got, want)
	}
	checkReasons(t, rej, map[int]string{
		1: `cannot rename "old" to "new": the value already has a field "new"`,
		2: `cannot set field "d.e": "d" is a string, not an object`,
		3: "the value is a number, not a JSON object",
	})
}

func TestMask(t *testing.T) {
	t.Setenv("MASK_KEY", "s3cr3t-k3y")
	s := step(t, `
transform "mask" {
  fields = ["card", "customer.email", "n", "missing"]
  key    = env("MASK_KEY")
}`)
	mac := func(in string) string {
		h := hmac.New(sha256.New, []byte("s3cr3t-k3y"))
		h.Write([]byte(in))
		return hex.EncodeToString(h.Sum(nil))
	}
	in := []sdk.Record{
		rec(`{"card":"4111 1111","customer":{"email":"a@b.c","name":"A"},"n":{"z":1,"a":[1.0]}}`, 0),
		rec(`{"card":"4111 1111"}`, 1),
		rec(`["card"]`, 2),
	}
	out, rej := s.Apply(in)
	want := []string{
		fmt.Sprintf(`{"card":%q,"customer":{"email":%q,"name":"A"},"n":%q}`, mac("4111 1111"), mac("a@b.c"), mac(`{"a":[1.0],"z":1}`)),
		fmt.Sprintf(`{"card":%q}`, mac("4111 1111")),
	}
	if got := values(out); !reflect.DeepEqual(got, want) {
		t.Errorf("out\n%q, want\n%q", got, want)
	}
	checkReasons(t, rej, map[int]string{2: "the value is an array, not a JSON object"})

	// Printing the step never shows the key.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if p := fmt.Sprintf(verb, s); strings.Contains(p, "s3cr3t") || !strings.Contains(p, "key hidden") {
			t.Errorf("%s of the step: %s", verb, p)
		}
	}

	// Another key gives other hashes.
	t.Setenv("MASK_KEY", "other")
	s2 := step(t, `transform "mask" {
  fields = ["card"]
  key    = env("MASK_KEY")
}`)
	out2, _ := s2.Apply(in[1:2])
	if string(out2[0].Value) == want[1] {
		t.Error("two keys gave the same hash")
	}
}

// TestDeterministic applies every built-in twice to the same records and
// wants the same output; and finds no clock or random function to call.
func TestDeterministic(t *testing.T) {
	t.Setenv("MASK_KEY", "k")
	steps, diags := decodeFile(t, `
transform "filter" { where = "has(value.a)" }
transform "set" {
  fields  = { "m.x" = "{'z': 1, 'a': [value.a, timestamp, duration('90s')]}" }
  key     = "string(value.a)"
  headers = { "topic" = "'t-' + string(position.offset)" }
}
transform "rename" { fields = { "a" = "b" } }
transform "mask" {
  fields = ["b"]
  key = env("MASK_KEY")
}
transform "drop_fields" { fields = ["c"] }
`)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	recs := []sdk.Record{rec(`{"a":1,"c":2}`, 0), rec(`{"c":3}`, 1), rec(`{"a":"x","d":{"q":1,"p":2}}`, 2)}
	run := func() []sdk.Record {
		rs := recs
		for _, s := range steps {
			var rej []sdk.Rejection
			rs, rej = s.Apply(rs)
			if len(rej) > 0 {
				t.Fatalf("%s: %q", s.Name(), reasons(rej))
			}
		}
		return rs
	}
	first, second := run(), run()
	if !reflect.DeepEqual(first, second) {
		t.Errorf("two runs differ:\n%+v\n%+v", first, second)
	}
	if len(first) != 2 || !strings.Contains(string(first[0].Value), `"m":{"x":{"a":[1,"2026-01-02T03:04:05Z","90s"],"z":1}}`) {
		t.Errorf("out %q", values(first))
	}

	// Lists made from the record's maps are in sorted key order, the same on
	// every run (Go's map order is random: 30 runs would catch it).
	ks := step(t, `transform "set" {
  fields = {
    "v" = "value.map(k, k)"
    "n" = "value.n.filter(k, k != 'x')"
    "h" = "headers.map(k, k + '=' + headers[k])"
    "p" = "position.map(k, k)"
  }
}`)
	r := rec(`{"c":1,"a":2,"b":3,"e":4,"d":5,"n":{"z":1,"y":2,"x":3,"w":4,"v":5,"u":6}}`, 0)
	r.Headers = []sdk.Header{{Key: "q", Value: []byte("1")}, {Key: "m", Value: []byte("2")}, {Key: "o", Value: []byte("3")}, {Key: "k", Value: []byte("4")}}
	want := `{"c":1,"a":2,"b":3,"e":4,"d":5,"n":["u","v","w","y","z"],"v":["a","b","c","d","e","n"],"h":["k=4","m=2","o=3","q=1"],"p":["index","offset","partition"]}`
	for i := 0; i < 30; i++ {
		out, rej := ks.Apply([]sdk.Record{r})
		if len(rej) > 0 || string(out[0].Value) != want {
			t.Fatalf("run %d: %s %q, want %s", i, out[0].Value, reasons(rej), want)
		}
	}
	// A map written in the expression iterates in random order: making a
	// list from it does not compile; a bool from it is fine.
	_, diags = decodeFile(t, "transform \"set\" {\n  fields = { \"l\" = \"1 < 2 && {'b': 1, 'a': 2}.map(k, k).size() > 0\" }\n}")
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, "in an order that changes from run to run") || diags[0].Subject.Start.Column != 50 {
		t.Errorf("list from a literal map: %v, want one error at column 50 (the call's parenthesis)", diags)
	}
	if _, diags = decodeFile(t, `transform "filter" { where = "{'b': 1, 'a': 2}.exists(k, k == 'a')" }`); len(diags) > 0 {
		t.Errorf("exists over a literal map: %v", diags)
	}

	for _, where := range []string{"now() > timestamp('2020-01-01T00:00:00Z')", "rand() > 0.5", "random() > 0.5", "uuid() != ''", "env('HOME') != ''"} {
		_, diags := decodeFile(t, fmt.Sprintf("transform \"filter\" {\n  where = %q\n}", where))
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "undeclared reference") {
			t.Errorf("where = %q: %v, want an undeclared reference", where, diags)
		}
	}
}
