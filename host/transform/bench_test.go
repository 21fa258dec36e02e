package transform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// The benchmarks here chose the expression library (docs/transforms.md,
// "Why CEL") and measure the built-ins on the generator plugin's records:
// 100-byte JSON object values such as
//
//	{"id":"0-17","partition":0,"offset":17,"pad":"xxxxxxxx…"}
//
// Run them with
//
//	go test -run '^$' -bench . -benchmem ./host/transform/
//
// BenchmarkChain is what the host pays per record for filter + set;
// BenchmarkLib* compare cel-go and expr-lang/expr on the same work, with the
// same JSON decoding (encoding/json), and *EvalOnly without the decoding.

// chainHCL is the filter + set chain BenchmarkChain runs: it keeps half the
// records, sets a nested field, the key and a header from the value.
const chainHCL = `
transform "filter" {
  where = "value.offset % 2 == 0"
}
transform "set" {
  fields  = { "meta.doubled" = "value.offset * 2" }
  key     = "value.id"
  headers = { "topic" = "'orders-' + string(value.partition)" }
}
`

// reportCPU reports cpu-ns/op, the process's CPU time per op since start:
// on a shared machine it moves less than ns/op, which is wall time. Where
// the process's CPU time is not known (cpuTime is 0), it reports nothing.
func reportCPU(b *testing.B, start time.Duration) {
	if end := cpuTime(b); end > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// hostChainHCL is the chain of cmd/connectd's BenchmarkEndToEndTransforms:
// a filter that keeps every record and a set that adds a top-level field.
const hostChainHCL = `
transform "filter" { where = "value.offset >= 0" }
transform "set" {
  fields = { "source" = "position.partition" }
}
`

// BenchmarkChain runs filter then set on batches of 1024 generator records;
// ns/op and allocs/op are per input record.
func BenchmarkChain(b *testing.B) { benchChain(b, chainHCL) }

// BenchmarkChainHost is BenchmarkChain on the chain the host's end-to-end
// benchmark runs (hostChainHCL).
func BenchmarkChainHost(b *testing.B) { benchChain(b, hostChainHCL) }

func benchChain(b *testing.B, hcl string) {
	steps := decodeChain(b, hcl)
	recs := genRecords(1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(recs[0].Value)))
	b.ResetTimer()
	defer reportCPU(b, cpuTime(b))
	for n := 0; n < b.N; n += len(recs) {
		batch := recs
		if rest := b.N - n; rest < len(batch) {
			batch = batch[:rest]
		}
		for _, s := range steps {
			var rej []sdk.Rejection
			batch, rej = s.Apply(batch)
			if len(rej) > 0 {
				b.Fatal(rej[0].Reason)
			}
		}
	}
}

// BenchmarkFilter runs the filter alone, as BenchmarkChain does.
func BenchmarkFilter(b *testing.B) {
	steps := decodeChain(b, chainHCL)[:1]
	recs := genRecords(1024)
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, cpuTime(b))
	for n := 0; n < b.N; n += len(recs) {
		batch := recs
		if rest := b.N - n; rest < len(batch) {
			batch = batch[:rest]
		}
		if _, rej := steps[0].Apply(batch); len(rej) > 0 {
			b.Fatal(rej[0].Reason)
		}
	}
}

// BenchmarkSet runs the set alone, on every record.
func BenchmarkSet(b *testing.B) {
	steps := decodeChain(b, chainHCL)[1:]
	recs := genRecords(1024)
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, cpuTime(b))
	for n := 0; n < b.N; n += len(recs) {
		batch := recs
		if rest := b.N - n; rest < len(batch) {
			batch = batch[:rest]
		}
		if _, rej := steps[0].Apply(batch); len(rej) > 0 {
			b.Fatal(rej[0].Reason)
		}
	}
}

// decodeChain compiles the transform blocks of src.
func decodeChain(tb testing.TB, src string) []Step {
	f, diags := hclsyntax.ParseConfig([]byte(src), "bench.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		tb.Fatal(diags)
	}
	c, diags := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "transform", LabelNames: []string{"name"}}}})
	if diags.HasErrors() {
		tb.Fatal(diags)
	}
	var steps []Step
	for _, blk := range c.Blocks {
		s, diags := Decode(blk.Labels[0], blk.Body, nil)
		if diags.HasErrors() {
			tb.Fatal(diags)
		}
		steps = append(steps, s)
	}
	return steps
}

// genRecords returns n generator records of partition 0.
func genRecords(n int) []sdk.Record {
	recs := make([]sdk.Record, n)
	for i := range recs {
		v := genValue(i)
		recs[i] = sdk.Record{Key: v[7 : bytes.IndexByte(v[7:], '"')+7], Value: v, Position: sdk.Position{Partition: "gen/0", Offset: int64(i)}}
	}
	return recs
}

// unmarshalNumber is encoding/json's decoding with json.Number leaves.
func unmarshalNumber(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// BenchmarkJSONStd decodes a generator value with encoding/json.
func BenchmarkJSONStd(b *testing.B) {
	v := genValue(12345)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var m map[string]any
		if err := unmarshalNumber(v, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONText decodes a generator value as the transforms do.
func BenchmarkJSONText(b *testing.B) {
	v := genValue(12345)
	var c jsonCodec
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := c.decode(v); err != nil {
			b.Fatal(err)
		}
	}
}

// genValue is a generator plugin value of about 100 bytes.
func genValue(o int) []byte {
	v := fmt.Sprintf(`{"id":"0-%d","partition":0,"offset":%d,"pad":"`, o, o)
	for len(v) < 98 {
		v += "x"
	}
	return []byte(v + `"}`)
}

// celAdapter is adapter's core, kept apart so the comparison stands alone.
type celAdapter struct{}

// NativeToValue implements types.Adapter.
func (celAdapter) NativeToValue(v any) ref.Val {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return types.Int(i)
		}
		f, _ := x.Float64()
		return types.Double(f)
	case map[string]any:
		return types.NewStringInterfaceMap(celAdapter{}, x)
	case []any:
		return types.NewDynamicList(celAdapter{}, x)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// libFilter and libSet are the expressions both libraries run, written in
// the syntax both accept; numbers are float64 in both (json.Unmarshal).
const (
	libFilter = `value.offset >= 3.0 && value.id != ""`
	libSet    = `value.offset * 2.0`
)

// BenchmarkLibCEL decodes, filters, sets and encodes with cel-go.
func BenchmarkLibCEL(b *testing.B) {
	env, err := cel.NewEnv(cel.Variable("value", cel.DynType), cel.CustomTypeAdapter(celAdapter{}))
	if err != nil {
		b.Fatal(err)
	}
	prog := func(src string) cel.Program {
		ast, iss := env.Compile(src)
		if iss.Err() != nil {
			b.Fatal(iss.Err())
		}
		p, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	filter := prog(libFilter)
	set := prog(libSet)
	vals := make([][]byte, 1024)
	for i := range vals {
		vals[i] = genValue(i)
	}
	act := map[string]any{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var m map[string]any
		if err := json.Unmarshal(vals[i%len(vals)], &m); err != nil {
			b.Fatal(err)
		}
		act["value"] = m
		out, _, err := filter.Eval(act)
		if err != nil {
			b.Fatal(err)
		}
		if out != types.True {
			continue
		}
		out, _, err = set.Eval(act)
		if err != nil {
			b.Fatal(err)
		}
		m["doubled"] = float64(out.(types.Double))
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLibExpr decodes, filters, sets and encodes with expr-lang/expr.
func BenchmarkLibExpr(b *testing.B) {
	envDecl := map[string]any{"value": map[string]any{}}
	prog := func(src string, opts ...expr.Option) *vm.Program {
		p, err := expr.Compile(src, append(opts, expr.Env(envDecl))...)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	filter := prog(libFilter, expr.AsBool())
	set := prog(libSet)
	vals := make([][]byte, 1024)
	for i := range vals {
		vals[i] = genValue(i)
	}
	var machine vm.VM
	env := map[string]any{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var m map[string]any
		if err := json.Unmarshal(vals[i%len(vals)], &m); err != nil {
			b.Fatal(err)
		}
		env["value"] = m
		out, err := machine.Run(filter, env)
		if err != nil {
			b.Fatal(err)
		}
		if out != true {
			continue
		}
		out, err = machine.Run(set, env)
		if err != nil {
			b.Fatal(err)
		}
		m["doubled"] = out
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLibCELEvalOnly is BenchmarkLibCEL on values decoded beforehand.
func BenchmarkLibCELEvalOnly(b *testing.B) {
	env, err := cel.NewEnv(cel.Variable("value", cel.DynType), cel.CustomTypeAdapter(celAdapter{}))
	if err != nil {
		b.Fatal(err)
	}
	prog := func(src string) cel.Program {
		ast, iss := env.Compile(src)
		if iss.Err() != nil {
			b.Fatal(iss.Err())
		}
		p, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	filter := prog(libFilter)
	set := prog(libSet)
	vals := make([][]byte, 1024)
	for i := range vals {
		vals[i] = genValue(i)
	}
	act := map[string]any{}
	decoded := make([]map[string]any, len(vals))
	for i := range vals {
		if err := json.Unmarshal(vals[i], &decoded[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := decoded[i%len(decoded)]
		act["value"] = m
		out, _, err := filter.Eval(act)
		if err != nil {
			b.Fatal(err)
		}
		if out != types.True {
			continue
		}
		out, _, err = set.Eval(act)
		if err != nil {
			b.Fatal(err)
		}
		m["doubled"] = float64(out.(types.Double))
	}
}

// BenchmarkLibExprEvalOnly is BenchmarkLibExpr on values decoded beforehand.
func BenchmarkLibExprEvalOnly(b *testing.B) {
	envDecl := map[string]any{"value": map[string]any{}}
	prog := func(src string, opts ...expr.Option) *vm.Program {
		p, err := expr.Compile(src, append(opts, expr.Env(envDecl))...)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	filter := prog(libFilter, expr.AsBool())
	set := prog(libSet)
	vals := make([][]byte, 1024)
	for i := range vals {
		vals[i] = genValue(i)
	}
	var machine vm.VM
	env := map[string]any{}
	decoded := make([]map[string]any, len(vals))
	for i := range vals {
		if err := json.Unmarshal(vals[i], &decoded[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := decoded[i%len(decoded)]
		env["value"] = m
		out, err := machine.Run(filter, env)
		if err != nil {
			b.Fatal(err)
		}
		if out != true {
			continue
		}
		out, err = machine.Run(set, env)
		if err != nil {
			b.Fatal(err)
		}
		m["doubled"] = out
	}
}

// BenchmarkJSONObject reads a generator value one level deep, as filter
// and set do.
func BenchmarkJSONObject(b *testing.B) {
	v := genValue(12345)
	var c jsonCodec
	o := object{codec: &c}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := o.parse(v); err != nil {
			b.Fatal(err)
		}
	}
}
