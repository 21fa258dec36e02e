package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
)

// Handmade specs: the fake lookup stands for the plugin host.
var (
	fileSource = sdk.Spec{
		Name: "file", Version: "1.0.0", Kind: sdk.KindSource,
		Capabilities: []sdk.Capability{sdk.CapReplayable},
		Params: []sdk.Param{
			{Name: "paths", Type: sdk.TypeStrings, Required: true, Doc: "Glob patterns of the files to read."},
			{Name: "poll", Type: sdk.TypeDuration, Default: "1s"},
		},
	}
	fooSource = sdk.Spec{
		Name: "foo", Version: "1.2.0", Kind: sdk.KindSource,
		Params: []sdk.Param{{Name: "topic", Type: sdk.TypeString}},
	}
	condSource = sdk.Spec{
		Name: "cond", Version: "0.1.0", Kind: sdk.KindSource,
		When:   []sdk.Conditional{{Capability: sdk.CapReplayable, Param: "from", Values: []string{"earliest"}}},
		Params: []sdk.Param{{Name: "from", Type: sdk.TypeString, Default: "latest"}},
	}
	fileSink = sdk.Spec{
		Name: "file", Version: "1.0.0", Kind: sdk.KindSink,
		When: []sdk.Conditional{{Capability: sdk.CapIdempotent, Param: "mode", Values: []string{"batch"}}},
		Params: []sdk.Param{
			{Name: "dir", Type: sdk.TypeString, Required: true},
			{Name: "mode", Type: sdk.TypeString, Default: "append"},
			{Name: "max", Type: sdk.TypeInt},
			{Name: "ratio", Type: sdk.TypeFloat},
			{Name: "sync", Type: sdk.TypeBool},
			{Name: "password", Type: sdk.TypeString, Secret: true},
			{Name: "user", Type: sdk.TypeString},
		},
	}
	txSink = sdk.Spec{
		Name: "tx", Version: "2.0.0", Kind: sdk.KindSink,
		Capabilities: []sdk.Capability{sdk.CapTransactional},
		Params:       []sdk.Param{{Name: "dsn", Type: sdk.TypeString, Required: true, Secret: true}},
	}
	logSink = sdk.Spec{Name: "log", Version: "0.9.0", Kind: sdk.KindSink}
	// ruleSink declares a rule of every kind.
	ruleSink = sdk.Spec{
		Name: "rules", Version: "1.0.0", Kind: sdk.KindSink,
		Params: []sdk.Param{
			{Name: "mode", Type: sdk.TypeString, Default: "batch", Enum: []string{"batch", "append", "transactional"}},
			{Name: "codecs", Type: sdk.TypeStrings, Default: []string{}, Enum: []string{"gzip", "zstd"}},
			{Name: "size", Type: sdk.TypeInt, Default: int64(10), Min: 1, Max: 64},
			{Name: "wait", Type: sdk.TypeDuration, Default: "1s", Min: "1ms"},
			{Name: "topic", Type: sdk.TypeString, Default: "t", Pattern: `[a-z]+`},
			{Name: "level", Type: sdk.TypeString, Default: "low", Enum: []string{"low", "high"}},
		},
	}
)

func fakeLookup(kind sdk.Kind, name string) (sdk.Spec, error) {
	for _, s := range []sdk.Spec{fileSource, fooSource, condSource, fileSink, txSink, logSink, ruleSink} {
		if s.Kind == kind && s.Name == name {
			return s, nil
		}
	}
	return sdk.Spec{}, fmt.Errorf("no %s plugin named %q is bundled or found in the plugin directory", kind, name)
}

// writeFile writes src to p.hcl in a fresh directory and returns its path.
func writeFile(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadValidSingle(t *testing.T) {
	path := writeFile(t, `
plugin_dir = "plugins"

pipeline "demo" {
  delivery = "exactly-once"
  source "file" { paths = ["in/*.txt", "more/*.txt"] }
  sink "file" {
    dir   = "out"
    mode  = "batch"
    max   = 5
    ratio = 0.5
    sync  = true
  }
  batch {
    max_records = 1000
    max_bytes   = 1048576
    max_wait    = "250ms"
    read_ahead  = true
  }
  checkpoint { dir = "state/demo" }
}
`)
	f, diags := Load(path, fakeLookup)
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", f.Format(diags))
	}
	if len(diags) != 0 {
		t.Errorf("unexpected warnings:\n%s", f.Format(diags))
	}
	if f.Path != path || f.PluginDir != "plugins" || len(f.Pipelines) != 1 {
		t.Fatalf("file = %+v", f)
	}
	p := f.Pipelines[0]
	if p.Name != "demo" || p.Delivery != ExactlyOnce {
		t.Errorf("name, delivery = %q, %q", p.Name, p.Delivery)
	}
	if p.Range.Start.Line != 4 || p.Range.Filename != path {
		t.Errorf("range = %v, want line 4 of %s", p.Range, path)
	}
	wantSource := map[string]any{"paths": []string{"in/*.txt", "more/*.txt"}}
	if p.Source.Kind != sdk.KindSource || p.Source.Name != "file" || !reflect.DeepEqual(p.Source.Values, wantSource) {
		t.Errorf("source = %#v values %v", p.Source, p.Source.Values)
	}
	wantSink := map[string]any{"dir": "out", "mode": "batch", "max": int64(5), "ratio": 0.5, "sync": true}
	if p.Sink.Kind != sdk.KindSink || !reflect.DeepEqual(p.Sink.Values, wantSink) {
		t.Errorf("sink values = %#v, want %#v", p.Sink.Values, wantSink)
	}
	if p.Sink.Spec.Name != "file" || p.Sink.Spec.Kind != sdk.KindSink || p.Sink.Range.Start.Line != 7 {
		t.Errorf("sink spec/range = %q %q %v", p.Sink.Spec.Name, p.Sink.Spec.Kind, p.Sink.Range)
	}
	if !p.Sink.Secret["password"] || p.Sink.Secret["dir"] {
		t.Errorf("sink secret = %v, want password only", p.Sink.Secret)
	}
	if want := (Batch{MaxRecords: 1000, MaxBytes: 1 << 20, MaxWait: 250 * time.Millisecond, ReadAhead: true}); p.Batch != want {
		t.Errorf("batch = %+v, want %+v", p.Batch, want)
	}
	if want := (Checkpoint{Store: "dir", Dir: "state/demo"}); p.Checkpoint != want {
		t.Errorf("checkpoint = %+v, want %+v", p.Checkpoint, want)
	}
	for _, pl := range []Plugin{p.Source, p.Sink} {
		if _, err := sdk.NewConfig(pl.Spec, p.Name, pl.Values); err != nil {
			t.Errorf("NewConfig(%s): %v", pl.Name, err)
		}
	}
}

func TestLoadValidMulti(t *testing.T) {
	path := writeFile(t, `
pipeline "a" {
  delivery = "at-least-once"
  source "foo" {}
  sink "log" {}
}
pipeline "b.2_x-y" {
  delivery = "at-most-once"
  source "file" {
    paths = ["x"]
    poll  = "2m"
  }
  sink "tx" { dsn = "postgres://localhost/db" }
}
`)
	calls := map[string]int{}
	lookup := func(kind sdk.Kind, name string) (sdk.Spec, error) {
		calls[string(kind)+"/"+name]++
		return fakeLookup(kind, name)
	}
	f, diags := Load(path, lookup)
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", f.Format(diags))
	}
	if len(f.Pipelines) != 2 || f.PluginDir != "" {
		t.Fatalf("pipelines = %d, plugin_dir = %q", len(f.Pipelines), f.PluginDir)
	}
	a, err := f.Pipeline("a")
	if err != nil || a.Delivery != AtLeastOnce || a.Source.Name != "foo" || a.Sink.Name != "log" {
		t.Errorf("Pipeline(a) = %+v, %v", a, err)
	}
	if want := (Batch{MaxRecords: 10000, MaxBytes: 0, MaxWait: time.Second}); a.Batch != want {
		t.Errorf("default batch = %+v, want %+v", a.Batch, want)
	}
	if want := (Checkpoint{Store: "dir", Dir: filepath.Join(".connectd", "a")}); a.Checkpoint != want {
		t.Errorf("default checkpoint = %+v, want %+v", a.Checkpoint, want)
	}
	b, err := f.Pipeline("b.2_x-y")
	if err != nil || b.Delivery != AtMostOnce || b.Source.Values["poll"] != "2m" {
		t.Errorf("Pipeline(b) = %+v, %v", b, err)
	}
	// A literal secret is accepted, with a warning, and still secret.
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || !strings.Contains(diags[0].Detail, `env("NAME")`) {
		t.Errorf("want one warning about the literal secret, got:\n%s", f.Format(diags))
	}
	if !b.Sink.Secret["dsn"] || b.Sink.Redacted()["dsn"] != "(secret)" {
		t.Errorf("dsn not secret: %v", b.Sink.Redacted())
	}
	if out := f.Format(diags); strings.Contains(out, "postgres://localhost/db") || !strings.Contains(out, `dsn = "***********************"`) {
		t.Errorf("literal secret not masked in snippet:\n%s", out)
	}
	_, err = f.Pipeline("c")
	if err == nil || !strings.Contains(err.Error(), `"a", "b.2_x-y"`) {
		t.Errorf("Pipeline(c) error = %v, want the names the file has", err)
	}
	for k, n := range calls {
		if n != 1 {
			t.Errorf("lookup(%s) called %d times, want once", k, n)
		}
	}
}

func TestParseNeedsNoLookup(t *testing.T) {
	path := writeFile(t, `
plugin_dir = "./bin/plugins"
pipeline "p" {
  delivery = "exactly-once"
  source "kafka" { brokers = ["localhost:9092"] }
  sink "elasticsearch" { url = env("UNSET_IS_FINE_IN_PARSE_X") }
}
`)
	f, diags := Parse(path)
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", f.Format(diags))
	}
	p := f.Pipelines[0]
	if f.PluginDir != "./bin/plugins" || p.Source.Name != "kafka" || p.Sink.Name != "elasticsearch" || p.Delivery != ExactlyOnce {
		t.Errorf("Parse = %+v %+v", f, p)
	}
	if p.Source.Values != nil || p.Sink.Spec.Name != "" {
		t.Errorf("Parse filled plugin values/spec: %v %v", p.Source.Values, p.Sink.Spec)
	}
	// Load on the same file reports the unknown plugins at their labels.
	f, diags = Load(path, fakeLookup)
	if f.Pipelines != nil {
		t.Errorf("Load returned pipelines despite errors")
	}
	if len(diags) != 2 || diags[0].Subject.Start.Line != 5 || diags[0].Subject.Start.Column != 10 ||
		!strings.Contains(diags[0].Detail, `no source plugin named "kafka"`) {
		t.Errorf("diags:\n%s", f.Format(diags))
	}
}

func TestErrors(t *testing.T) {
	t.Setenv("CFGTEST_EMPTY", "")
	os.Unsetenv("CFGTEST_UNSET")
	const ok = `  delivery = "at-least-once"
  source "file" { paths = ["in"] }
  sink "file" { dir = "out" }
`
	tests := []struct {
		name      string
		src       string
		line, col int      // of the first diagnostic
		want      []string // in the first diagnostic's summary + detail
		n         int      // number of errors, 0: don't check
	}{
		{"syntax", "pipeline \"a\" {\n  delivery = \"exactly-once\"\n  source \"file\" { paths = [\"a\" }\n}\n",
			3, 32, []string{"Missing item separator"}, 0},
		{"unclosed block", "pipeline \"a\" {\n  delivery = \"at-most-once\"\n", 1, 14, []string{"Unclosed configuration block"}, 0},
		{"empty file", "", 1, 1, []string{"No pipeline"}, 1},
		{"only an http block", "http { addr = \"127.0.0.1:8083\" }\n", 1, 1, []string{"No pipeline"}, 1},
		{"http addr without port", "http { addr = \"127.0.0.1\" }\npipeline \"a\" {\n" + ok + "}\n", 1, 15,
			[]string{"addr takes host:port", `got "127.0.0.1"`}, 1},
		{"http without addr", "http { token = \"x\" }\npipeline \"a\" {\n" + ok + "}\n", 1, 8,
			[]string{`The argument "addr" is required`}, 1},
		{"two http blocks", "http { addr = \":1\" }\nhttp { addr = \":2\" }\npipeline \"a\" {\n" + ok + "}\n", 2, 1,
			[]string{"Duplicate http block", "already has an http block at"}, 1},
		{"unknown http attribute", "http {\n  addr = \":1\"\n  tokn = \"x\"\n}\npipeline \"a\" {\n" + ok + "}\n", 3, 3,
			[]string{"Unsupported argument", `Did you mean "token"?`, "Valid here: addr, token"}, 1},
		{"unknown top level", "pipelines \"a\" {\n" + ok + "}\n", 1, 1,
			[]string{"Unsupported block type", `Did you mean "pipeline"?`, `plugin_dir, pipeline "<name>" { }, http { }`}, 0},
		{"unknown pipeline attribute", "pipeline \"a\" {\n" + ok + "  deliver = \"x\"\n}\n", 5, 3,
			[]string{"Unsupported argument", `"deliver"`, `Valid here: delivery, on_record_error, parallelism, source "<name>" { }, transform "<name>" { }, sink "<name>" { }, dead_letter "<sink>" { }, batch { }, checkpoint { }`}, 1},
		{"unknown pipeline block", "pipeline \"a\" {\n" + ok + "  batches { max_records = 1 }\n}\n", 5, 3,
			[]string{"Unsupported block type", `Did you mean "batches"`[:14], `"batch"`}, 1},
		{"unknown batch attribute", "pipeline \"a\" {\n" + ok + "  batch { max_record = 5 }\n}\n", 5, 11,
			[]string{"Unsupported argument", `Did you mean "max_records"?`, "Valid here: max_records, max_bytes, max_wait, read_ahead"}, 1},
		{"unknown checkpoint attribute", "pipeline \"a\" {\n" + ok + "  checkpoint {\n    directory = \"x\"\n  }\n}\n", 6, 5,
			[]string{"Unsupported argument", `"directory"`, "Valid here: store, dir"}, 1},
		{"unknown checkpoint store", "pipeline \"a\" {\n" + ok + "  checkpoint { store = \"postgress\" }\n}\n", 5, 24,
			[]string{"Unknown checkpoint store \"postgress\"", `known stores: "dir", "postgres"`, `Did you mean "postgres"?`}, 1},
		{"unknown plugin parameter", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { pathz = [\"in\"] }\n  sink \"file\" { dir = \"out\" }\n}\n", 3, 19,
			[]string{"Unsupported parameter", `source "file" has no parameter "pathz".`, `Did you mean "paths"?`, "Valid parameters: paths, poll."}, 1},
		{"parameter of a plugin without parameters", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"log\" { x = 1 }\n}\n", 4, 16,
			[]string{`sink "log" has no parameter "x".`, "It takes no parameters."}, 1},
		{"block in plugin body", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" {\n    paths { x = 1 }\n  }\n  sink \"log\" {}\n}\n", 4, 5,
			[]string{`Unexpected "paths" block`, "Did you mean paths = ...?"}, 1},
		{"unknown plugin", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"nosuch\" {}\n  sink \"log\" {}\n}\n", 3, 10,
			[]string{`Unknown source plugin "nosuch"`, `no source plugin named "nosuch"`}, 1},
		{"wrong type: string for list", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = \"in\" }\n  sink \"log\" {}\n}\n", 3, 27,
			[]string{`Invalid value for parameter "paths"`, `takes a list of strings`, `got string "in"`}, 1},
		{"wrong type: fraction for int", "pipeline \"a\" {\n" + "  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" {\n    dir = \"o\"\n    max = 1.5\n  }\n}\n", 6, 11,
			[]string{`takes an int (a whole number); got number 1.5, which is not a whole number`}, 1},
		{"wrong type: text for int", "pipeline \"a\" {\n" + "  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" {\n    dir = \"o\"\n    max = \"many\"\n  }\n}\n", 6, 11,
			[]string{`takes an int`, `got string "many"`}, 1},
		{"wrong type: bool", "pipeline \"a\" {\n" + "  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" {\n    dir = \"o\"\n    sync = \"maybe\"\n  }\n}\n", 6, 12,
			[]string{`takes a bool (true or false)`}, 1},
		{"wrong type: float", "pipeline \"a\" {\n" + "  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" {\n    dir = \"o\"\n    ratio = [1]\n  }\n}\n", 6, 13,
			[]string{`takes a number; got a tuple`}, 1},
		{"wrong type: string", "pipeline \"a\" {\n" + "  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" { dir = [\"o\"] }\n}\n", 4, 23,
			[]string{`Parameter "dir" of sink "file" takes a string; got a tuple`}, 1},
		{"wrong type: duration", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" {\n    paths = [\"in\"]\n    poll = \"fast\"\n  }\n  sink \"log\" {}\n}\n", 5, 12,
			[]string{`takes a duration`, `got string "fast", which is not a duration`}, 1},
		{"missing required", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" {}\n  sink \"log\" {}\n}\n", 3, 3,
			[]string{`Missing required parameter "paths"`, `source "file" needs parameter "paths" (a list of strings`, "Glob patterns"}, 1},
		{"missing required next to a wrong value", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" { max = \"x\" }\n}\n", 4, 3,
			[]string{`Missing required parameter "dir"`}, 2},
		{"null is unset", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" { dir = null }\n}\n", 4, 3,
			[]string{`Missing required parameter "dir"`}, 1},
		{"missing delivery", "pipeline \"a\" {\n  source \"file\" { paths = [\"in\"] }\n  sink \"log\" {}\n}\n", 1, 1,
			[]string{"Missing delivery", `"exactly-once", "at-least-once", "at-most-once"`}, 1},
		{"bad delivery", "pipeline \"a\" {\n  delivery = \"exactly_once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"log\" {}\n}\n", 2, 14,
			[]string{"Invalid delivery", `got "exactly_once"`, `Did you mean "exactly-once"?`}, 1},
		{"delivery not a string", "pipeline \"a\" {\n  delivery = 1\n  source \"file\" { paths = [\"in\"] }\n  sink \"log\" {}\n}\n", 2, 14,
			[]string{"delivery takes a string; got number 1"}, 1},
		{"two sources", "pipeline \"a\" {\n" + ok + "  source \"foo\" {}\n}\n", 5, 3,
			[]string{"Duplicate source block", "already has a source block at", "p.hcl:3:3", "exactly one"}, 1},
		{"two batch blocks", "pipeline \"a\" {\n" + ok + "  batch {}\n  batch {}\n}\n", 6, 3,
			[]string{"Duplicate batch block", "at most one"}, 1},
		{"missing sink", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n}\n", 1, 1,
			[]string{"Missing sink block", "exactly one sink block"}, 1},
		{"duplicate pipeline name", "pipeline \"a\" {\n" + ok + "}\npipeline \"a\" {\n" + ok + "}\n", 6, 10,
			[]string{"Duplicate pipeline name", `"a" is already defined at`, "p.hcl:1:1"}, 1},
		{"pipeline name not a directory name", "pipeline \"a/b\" {\n" + ok + "}\n", 1, 10,
			[]string{"Invalid pipeline name", `"a/b"`}, 1},
		{"pipeline name dot-dot", "pipeline \"..\" {\n" + ok + "}\n", 1, 10, []string{"Invalid pipeline name"}, 1},
		{"pipeline without name", "pipeline {\n" + ok + "}\n", 1, 10, []string{"Missing name for pipeline"}, 0},
		{"max_records zero", "pipeline \"a\" {\n" + ok + "  batch { max_records = 0 }\n}\n", 5, 25,
			[]string{"Invalid value for max_records", "max_records must be >= 1; got number 0"}, 1},
		{"max_bytes negative", "pipeline \"a\" {\n" + ok + "  batch { max_bytes = -1 }\n}\n", 5, 23,
			[]string{"max_bytes must be >= 0"}, 1},
		{"max_wait not a duration", "pipeline \"a\" {\n" + ok + "  batch { max_wait = \"soon\" }\n}\n", 5, 22,
			[]string{`max_wait takes a duration`, `got string "soon", which is not a duration`}, 1},
		{"max_wait zero", "pipeline \"a\" {\n" + ok + "  batch { max_wait = \"0s\" }\n}\n", 5, 22,
			[]string{`max_wait must be > 0`}, 1},
		{"timeout not a duration", "pipeline \"a\" {\n" + ok + "  timeouts { write = \"soon\" }\n}\n", 5, 22,
			[]string{`write takes a duration`, `got string "soon", which is not a duration`}, 1},
		{"timeout zero", "pipeline \"a\" {\n" + ok + "  timeouts { read = \"0s\" }\n}\n", 5, 21,
			[]string{`read must be > 0`, `kills and restarts the plugin`}, 1},
		{"unknown timeout", "pipeline \"a\" {\n" + ok + "  timeouts { writ = \"1s\" }\n}\n", 5, 14,
			[]string{"Unsupported argument", `Did you mean "write"?`, "Valid here: open, read, write, ack, last_committed, process, end, close"}, 1},
		{"two timeouts blocks", "pipeline \"a\" {\n" + ok + "  timeouts { read = \"1s\" }\n  timeouts { write = \"1s\" }\n}\n", 6, 3,
			[]string{"Duplicate timeouts block"}, 1},
		{"restart attempts zero", "pipeline \"a\" {\n" + ok + "  restart { attempts = 0 }\n}\n", 5, 24,
			[]string{"attempts must be >= 1"}, 1},
		{"restart max_backoff below backoff", "pipeline \"a\" {\n" + ok + "  restart {\n    backoff = \"2s\"\n    max_backoff = \"1s\"\n  }\n}\n", 7, 19,
			[]string{"max_backoff (1s) must be at least backoff (2s)"}, 1},
		{"restart backoff not a duration", "pipeline \"a\" {\n" + ok + "  restart { backoff = 3 }\n}\n", 5, 23,
			[]string{"backoff takes a duration"}, 1},
		{"read_ahead not a bool", "pipeline \"a\" {\n" + ok + "  batch { read_ahead = \"no\" }\n}\n", 5, 24,
			[]string{`read_ahead takes`}, 1},
		{"env unset", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [env(\"CFGTEST_UNSET\")] }\n  sink \"log\" {}\n}\n", 3, 33,
			[]string{`environment variable "CFGTEST_UNSET" is not set`}, 1},
		{"env unset in checkpoint dir", "pipeline \"a\" {\n" + ok + "  checkpoint { dir = env(\"CFGTEST_UNSET\") }\n}\n", 5, 27,
			[]string{`environment variable "CFGTEST_UNSET" is not set`}, 1},
		{"env empty checkpoint dir", "pipeline \"a\" {\n" + ok + "  checkpoint { dir = env(\"CFGTEST_EMPTY\") }\n}\n", 5, 22,
			[]string{"dir must not be empty"}, 1},
		{"unknown function", "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [file(\"x\")] }\n  sink \"log\" {}\n}\n", 3, 28,
			[]string{`Call to unknown function`}, 1},
		{"variables not allowed", "pipeline \"a\" {\n  delivery = var.d\n  source \"file\" { paths = [\"x\"] }\n  sink \"log\" {}\n}\n", 2, 14,
			[]string{`Variables not allowed`}, 1},
		{"exactly-once with append sink", "pipeline \"a\" {\n  delivery = \"exactly-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" {\n    dir = \"o\"\n    mode = \"append\"\n  }\n}\n", 2, 14,
			[]string{"Delivery guarantee not possible", `delivery "exactly-once" needs an idempotent or transactional sink, but sink "file" (version 1.0.0) with mode = "append" is neither (it is at-least-once only; it is idempotent with mode = "batch")`}, 1},
		{"exactly-once with non-replayable source", "pipeline \"a\" {\n  delivery = \"exactly-once\"\n  source \"foo\" {}\n  sink \"tx\" { dsn = env(\"CFGTEST_EMPTY\") }\n}\n", 2, 14,
			[]string{`needs a replayable source, but source "foo" (version 1.2.0) does not declare capability "replayable"`}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.src)
			f, diags := Load(path, fakeLookup)
			if f == nil {
				t.Fatal("Load returned a nil File")
			}
			if !diags.HasErrors() {
				t.Fatalf("no error; diags:\n%s", f.Format(diags))
			}
			if f.Pipelines != nil {
				t.Errorf("Load returned pipelines with errors")
			}
			var errs hcl.Diagnostics
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs = append(errs, d)
				}
				if d.Subject == nil || d.Subject.Filename != path {
					t.Errorf("diagnostic without a position in %s: %v", path, d)
				}
			}
			text := f.Format(diags)
			if tc.n > 0 && len(errs) != tc.n {
				t.Errorf("%d errors, want %d:\n%s", len(errs), tc.n, text)
			}
			d := errs[0]
			if d.Subject.Start.Line != tc.line || d.Subject.Start.Column != tc.col {
				t.Errorf("first error at %d:%d, want %d:%d:\n%s", d.Subject.Start.Line, d.Subject.Start.Column, tc.line, tc.col, text)
			}
			msg := d.Summary + ": " + d.Detail
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("first error %q\ndoes not contain %q", msg, w)
				}
			}
			if want := fmt.Sprintf("on %s:%d:%d", path, tc.line, tc.col); !strings.Contains(text, want) {
				t.Errorf("Format output lacks %q:\n%s", want, text)
			}
			// Parse agrees on structural errors (those it can see).
			if _, pd := Parse(path); pd.HasErrors() && pd[0].Subject != nil && errs[0].Subject != nil && *pd[0].Subject != *errs[0].Subject {
				t.Errorf("Parse's first error %v differs from Load's %v", pd[0].Subject, errs[0].Subject)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	f, diags := Load(filepath.Join(t.TempDir(), "nope.hcl"), fakeLookup)
	if f == nil || !diags.HasErrors() || f.Pipelines != nil {
		t.Fatalf("Load of a missing file = %+v, %v", f, diags)
	}
	if d := diags[0]; d.Subject == nil || d.Subject.Filename != f.Path || d.Subject.Start.Line != 1 {
		t.Errorf("diagnostic without the file's position: %v", d)
	}
	if out := f.Format(diags); !strings.Contains(out, "nope.hcl:1:1") {
		t.Errorf("Format = %q, want the file name", out)
	}
}

func TestEnv(t *testing.T) {
	const secret = "s3cr3t-Value!"
	t.Setenv("CFGTEST_PASSWORD", secret)
	t.Setenv("CFGTEST_USER", "alice")
	t.Setenv("CFGTEST_EMPTY", "")
	t.Setenv("CFGTEST_DIR", "state/x")
	path := writeFile(t, `
pipeline "a" {
  delivery = "exactly-once"
  source "file" {
    paths = [env("CFGTEST_EMPTY"), "in/${env("CFGTEST_USER")}/*.txt"]
  }
  sink "file" {
    dir      = "out"
    mode     = "batch"
    password = env("CFGTEST_PASSWORD")
    user     = env("CFGTEST_USER")
  }
  checkpoint { dir = env("CFGTEST_DIR") }
}
`)
	f, diags := Load(path, fakeLookup)
	if len(diags) != 0 {
		t.Fatalf("diagnostics:\n%s", f.Format(diags))
	}
	p := f.Pipelines[0]
	if got := p.Sink.Values["password"]; got != secret {
		t.Errorf("password = %q", got)
	}
	if got := p.Source.Values["paths"]; !reflect.DeepEqual(got, []string{"", "in/alice/*.txt"}) {
		t.Errorf("paths = %q (empty-but-set must be \"\")", got)
	}
	if p.Checkpoint.Dir != "state/x" {
		t.Errorf("checkpoint dir = %q", p.Checkpoint.Dir)
	}
	wantSecret := map[string]bool{"password": true, "user": true}
	if !reflect.DeepEqual(p.Sink.Secret, wantSecret) {
		t.Errorf("sink secret = %v, want %v", p.Sink.Secret, wantSecret)
	}
	if !p.Source.Secret["paths"] {
		t.Errorf("paths uses env() but is not secret: %v", p.Source.Secret)
	}
	wantRedacted := map[string]any{"dir": "out", "mode": "batch", "password": "(secret)", "user": "(secret)"}
	if got := p.Sink.Redacted(); !reflect.DeepEqual(got, wantRedacted) {
		t.Errorf("Redacted = %v, want %v", got, wantRedacted)
	}
	if p.Sink.Values["password"] != secret {
		t.Error("Redacted modified Values")
	}
	for _, s := range []string{p.Sink.String(), fmt.Sprint(p.Sink), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p.Sink), fmt.Sprintf("%v", *p)} {
		if strings.Contains(s, secret) || strings.Contains(s, "alice") {
			t.Errorf("secret in printed output: %s", s)
		}
	}
	if want := `sink "file" { dir = "out", mode = "batch", password = "(secret)", user = "(secret)" }`; p.Sink.String() != want {
		t.Errorf("String = %s\nwant     %s", p.Sink.String(), want)
	}
}

// TestSecretNeverInErrors puts secret values where they cause errors and checks
// no diagnostic, rendering or error text shows them.
func TestSecretNeverInErrors(t *testing.T) {
	const secret = "hunter2-XYZ"
	t.Setenv("CFGTEST_SECRET", secret)
	tests := []struct {
		name, sink string
		want       string
	}{
		{"env value of the wrong type", `max = env("CFGTEST_SECRET")`, `got a string (value hidden: it is secret)`},
		{"env value in a template", `max = "${env("CFGTEST_SECRET")}-1"`, `value hidden`},
		{"env value not a bool", `sync = env("CFGTEST_SECRET")`, `value hidden`},
		{"literal secret of the wrong type", `password = ["hunter2-XYZ"]`, `got a tuple (value hidden: it is secret)`},
		{"literal secret next to an error", `password = "hunter2-XYZ", max = "x"`, `got string "x"`},
		{"env value in a delivery condition", `mode = env("CFGTEST_SECRET")`, `with mode = "(secret)" is neither`},
		{"secret in a delivery condition", `password = env("CFGTEST_SECRET"), mode = "append"`, `mode = "append"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := strings.ReplaceAll(tc.sink, ", ", "\n    ")
			src := "pipeline \"a\" {\n  delivery = \"exactly-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" {\n    dir = \"o\"\n    " + sink + "\n  }\n}\n"
			path := writeFile(t, src)
			f, diags := Load(path, fakeLookup)
			if !diags.HasErrors() {
				t.Fatalf("no error")
			}
			texts := []string{f.Format(diags), f.Err(diags).Error(), diags.Error(), Format(diags, f.Files())}
			for _, d := range diags {
				texts = append(texts, d.Summary, d.Detail)
			}
			all := strings.Join(texts, "\n")
			if strings.Contains(all, secret) || strings.Contains(all, "hunter2") {
				t.Errorf("secret leaked:\n%s", all)
			}
			if !strings.Contains(all, tc.want) {
				t.Errorf("errors lack %q:\n%s", tc.want, all)
			}
		})
	}
}

func TestCheckDelivery(t *testing.T) {
	tests := []struct {
		name         string
		d            Delivery
		source, sink sdk.Spec
		sv, kv       map[string]any
		want         []string // substrings; nil: no error
	}{
		{"at-most-once accepts anything", AtMostOnce, fooSource, logSink, nil, nil, nil},
		{"at-least-once accepts anything", AtLeastOnce, fooSource, fileSink, nil, map[string]any{"mode": "append"}, nil},
		{"exactly-once replayable + idempotent", ExactlyOnce, fileSource, fileSink, nil, map[string]any{"mode": "batch"}, nil},
		{"exactly-once replayable + transactional", ExactlyOnce, fileSource, txSink, nil, nil, nil},
		{"exactly-once source not replayable", ExactlyOnce, fooSource, txSink, nil, nil,
			[]string{`delivery "exactly-once" needs a replayable source, but source "foo" (version 1.2.0) does not declare capability "replayable"`}},
		{"exactly-once sink neither", ExactlyOnce, fileSource, logSink, nil, nil,
			[]string{`delivery "exactly-once" needs an idempotent or transactional sink, but sink "log" (version 0.9.0) declares neither capability "idempotent" nor "transactional" (it is at-least-once only)`}},
		{"conditional sink capability off", ExactlyOnce, fileSource, fileSink, nil, map[string]any{"mode": "append"},
			[]string{`needs an idempotent or transactional sink, but sink "file" (version 1.0.0) with mode = "append" is neither (it is at-least-once only; it is idempotent with mode = "batch")`}},
		{"conditional sink capability off by default", ExactlyOnce, fileSource, fileSink, nil, map[string]any{"dir": "o"},
			[]string{`with mode = "append" (the default) is neither`}},
		{"conditional source capability on", ExactlyOnce, condSource, txSink, map[string]any{"from": "earliest"}, nil, nil},
		{"conditional source capability off", ExactlyOnce, condSource, txSink, nil, nil,
			[]string{`needs a replayable source, but source "cond" (version 0.1.0) with from = "latest" (the default) is not replayable (it is replayable with from = "earliest")`}},
		{"both fall short", ExactlyOnce, fooSource, logSink, nil, nil,
			[]string{`source "foo"`, "\n", `sink "log"`}},
		{"unknown delivery", Delivery("twice"), fileSource, txSink, nil, nil, []string{`unknown delivery "twice"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDelivery(tc.d, tc.source, tc.sink, tc.sv, tc.kv)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestFormatAndErr(t *testing.T) {
	path := writeFile(t, "pipeline \"a\" {\n  delivery = \"at-least-once\"\n\tdeliver = 1\n  source \"file\" { paths = [\"in\"] }\n  sink \"log\" {}\n}\n")
	f, diags := Load(path, fakeLookup)
	out := f.Format(diags)
	want := "Error: Unsupported argument\n\n" +
		"  on " + path + ":3:2, in pipeline \"a\":\n" +
		"     3: \tdeliver = 1\n" +
		"        \t^^^^^^^\n\n" +
		"An argument named \"deliver\" is not expected here."
	if !strings.HasPrefix(out, want) {
		t.Errorf("Format =\n%s\nwant prefix\n%s", out, want)
	}
	err := f.Err(diags)
	var e *Error
	if !errors.As(err, &e) || len(e.Diags) != 1 || !strings.HasPrefix(err.Error(), want) || strings.HasSuffix(err.Error(), "\n") {
		t.Errorf("Err = %#v", err)
	}
	if f.Err(nil) != nil {
		t.Error("Err(nil) != nil")
	}
}

// TestRuleDiagnostics: a value that breaks its parameter's rules is an error
// at the attribute's value, with "did you mean" for an enum.
func TestRuleDiagnostics(t *testing.T) {
	t.Setenv("CFGTEST_LEVEL", "hgh")
	const head = "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"rules\" {\n"
	tests := []struct {
		name  string
		body  string     // the sink's attributes, from line 5
		at    [][2]int   // line:column of every error
		want  [][]string // in each error's summary + detail
		never string     // in no error
	}{
		{"enum with a suggestion", `    mode = "apend"`, [][2]int{{5, 12}},
			[][]string{{`Invalid value for parameter "mode"`, `Parameter "mode" of sink "rules": "apend" is not one of "batch", "append", "transactional".`, `Did you mean "append"?`}}, ""},
		{"enum without a near value", `    mode = "sideways"`, [][2]int{{5, 12}},
			[][]string{{`"sideways" is not one of "batch", "append", "transactional".`}}, "Did you mean"},
		{"list element outside its enum", `    codecs = ["zstd", "gz1p"]`, [][2]int{{5, 14}},
			[][]string{{`element 1: "gz1p" is not one of "gzip", "zstd"`, `Did you mean "gzip"?`}}, ""},
		{"int out of range", `    size = 0`, [][2]int{{5, 12}},
			[][]string{{`Parameter "size" of sink "rules": 0 is outside the range 1 to 64.`}}, ""},
		{"duration below min", `    wait = "0s"`, [][2]int{{5, 12}},
			[][]string{{`0s is less than the minimum 1ms`}}, ""},
		{"pattern", `    topic = "Orders"`, [][2]int{{5, 13}},
			[][]string{{"\"Orders\" does not match the pattern `[a-z]+`."}}, ""},
		{"every violation reported", "    size = 100\n    mode = \"Batch\"", [][2]int{{5, 12}, {6, 12}},
			[][]string{{`100 is outside the range`}, {`"Batch" is not one of`, `Did you mean "batch"?`}}, ""},
		{"next to a type error", "    size = \"x\"\n    mode = \"bach\"", [][2]int{{5, 12}, {6, 12}},
			[][]string{{`takes an int`}, {`"bach" is not one of`}}, ""},
		{"secret value: no value, no suggestion", `    level = env("CFGTEST_LEVEL")`, [][2]int{{5, 13}},
			[][]string{{`Invalid value for parameter "level"`, `the value is not one of "low", "high".`}}, "hgh"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, head+tc.body+"\n  }\n}\n")
			f, diags := Load(path, fakeLookup)
			var errs hcl.Diagnostics
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs = append(errs, d)
				}
			}
			text := f.Format(diags)
			if len(errs) != len(tc.at) {
				t.Fatalf("%d errors, want %d:\n%s", len(errs), len(tc.at), text)
			}
			for i, d := range errs {
				if d.Subject.Start.Line != tc.at[i][0] || d.Subject.Start.Column != tc.at[i][1] {
					t.Errorf("error %d at %d:%d, want %d:%d:\n%s", i, d.Subject.Start.Line, d.Subject.Start.Column, tc.at[i][0], tc.at[i][1], text)
				}
				if want := fmt.Sprintf("on %s:%d:%d", path, tc.at[i][0], tc.at[i][1]); !strings.Contains(text, want) {
					t.Errorf("Format output lacks %q:\n%s", want, text)
				}
				msg := d.Summary + ": " + d.Detail
				for _, w := range tc.want[i] {
					if !strings.Contains(msg, w) {
						t.Errorf("error %d %q\ndoes not contain %q", i, msg, w)
					}
				}
				if tc.never != "" && strings.Contains(msg, tc.never) {
					t.Errorf("error %d %q contains %q", i, msg, tc.never)
				}
			}
			if strings.Contains(tc.body, "env(") && strings.Contains(text, "Did you mean") {
				t.Errorf("Format output suggests a value for a secret:\n%s", text)
			}
			if tc.never != "" && strings.Contains(text, tc.never) {
				t.Errorf("Format output contains %q:\n%s", tc.never, text)
			}
		})
	}
}

func TestHTTPBlock(t *testing.T) {
	t.Setenv("CFGTEST_TOKEN", "s3cret")
	path := writeFile(t, `
http {
  addr  = "0.0.0.0:8083"
  token = env("CFGTEST_TOKEN")
}
pipeline "a" {
  delivery = "at-least-once"
  source "file" { paths = ["in"] }
  sink "file" { dir = "out" }
}
`)
	f, diags := Load(path, fakeLookup)
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", f.Format(diags))
	}
	if f.HTTP == nil || f.HTTP.Addr != "0.0.0.0:8083" || f.HTTP.Token != "s3cret" || f.HTTP.Range.Start.Line != 2 {
		t.Fatalf("http = %+v", f.HTTP)
	}
	g, diags := Load(writeFile(t, "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" { dir = \"out\" }\n}\n"), fakeLookup)
	if diags.HasErrors() || g.HTTP != nil {
		t.Fatalf("a file without an http block: http = %+v, diags %v", g.HTTP, diags)
	}
}

// TestTimeouts reads a timeouts block and checks every phase's deadline:
// the block's where it names the phase, else the default (read: max_wait +
// 30s).
func TestTimeouts(t *testing.T) {
	path := writeFile(t, `
pipeline "a" {
  delivery = "at-least-once"
  source "file" { paths = ["in"] }
  sink "file" { dir = "out" }
  batch { max_wait = "5s" }
  timeouts {
    write   = "2m"
    process = "1500ms"
  }
}
pipeline "b" {
  delivery = "at-least-once"
  source "file" { paths = ["in"] }
  sink "file" { dir = "out" }
}
`)
	f, diags := Load(path, fakeLookup)
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", f.Format(diags))
	}
	want := map[string]map[Phase]time.Duration{
		"a": {PhaseOpen: 30 * time.Second, PhaseRead: 35 * time.Second, PhaseWrite: 2 * time.Minute, PhaseAck: 30 * time.Second,
			PhaseLastCommitted: 30 * time.Second, PhaseProcess: 1500 * time.Millisecond, PhaseEnd: 30 * time.Second, PhaseClose: 30 * time.Second},
		"b": {PhaseOpen: 30 * time.Second, PhaseRead: 31 * time.Second, PhaseWrite: time.Minute, PhaseAck: 30 * time.Second,
			PhaseLastCommitted: 30 * time.Second, PhaseProcess: 30 * time.Second, PhaseEnd: 30 * time.Second, PhaseClose: 30 * time.Second},
	}
	for _, p := range f.Pipelines {
		for _, ph := range Phases {
			if got := p.Timeout(ph); got != want[p.Name][ph] {
				t.Errorf("pipeline %q: Timeout(%s) = %s, want %s", p.Name, ph, got, want[p.Name][ph])
			}
		}
	}
	if len(want["a"]) != len(Phases) {
		t.Errorf("the test covers %d phases of %d", len(want["a"]), len(Phases))
	}
}

// TestRestart reads a restart block, and the defaults without one.
func TestRestart(t *testing.T) {
	path := writeFile(t, `
pipeline "a" {
  delivery = "at-least-once"
  source "file" { paths = ["in"] }
  sink "file" { dir = "out" }
  restart {
    attempts = 20
    backoff  = "1s"
  }
}
pipeline "b" {
  delivery = "at-least-once"
  source "file" { paths = ["in"] }
  sink "file" { dir = "out" }
}
`)
	f, diags := Load(path, fakeLookup)
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", f.Format(diags))
	}
	want := map[string]Restart{
		"a": {Attempts: 20, Backoff: time.Second, MaxBackoff: 10 * time.Second},
		"b": {Attempts: 5, Backoff: 200 * time.Millisecond, MaxBackoff: 10 * time.Second},
	}
	for _, p := range f.Pipelines {
		if p.Restart != want[p.Name] {
			t.Errorf("pipeline %q: restart = %+v, want %+v", p.Name, p.Restart, want[p.Name])
		}
	}
}
