package config

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
)

var (
	detProcessor = sdk.Spec{
		Name: "split", Version: "1.0.0", Kind: sdk.KindProcessor,
		Capabilities: []sdk.Capability{sdk.CapDeterministic},
		Params:       []sdk.Param{{Name: "field", Type: sdk.TypeString}},
	}
	randProcessor = sdk.Spec{Name: "shuffle", Version: "0.1.0", Kind: sdk.KindProcessor}
)

func stageLookup(kind sdk.Kind, name string) (sdk.Spec, error) {
	for _, s := range []sdk.Spec{detProcessor, randProcessor} {
		if s.Kind == kind && s.Name == name {
			return s, nil
		}
	}
	return fakeLookup(kind, name)
}

// errorsOf returns "line:column summary: detail" of every error diagnostic.
func errorsOf(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		at := ""
		if d.Subject != nil {
			at = fmt.Sprintf("%d:%d ", d.Subject.Start.Line, d.Subject.Start.Column)
		}
		out = append(out, at+d.Summary+": "+d.Detail)
	}
	return out
}

func TestTransformsInOrder(t *testing.T) {
	path := writeFile(t, `
pipeline "p" {
  delivery = "exactly-once"
  source "file" { paths = ["in/*"] }
  transform "filter" { where = "true" }
  transform "split" { field = "items" }
  sink "file" {
    dir  = "out"
    mode = "batch"
  }
  on_record_error = "dead_letter"
  dead_letter "file" {
    dir  = "rejected"
    mode = "batch"
  }
}
`)
	f, diags := Load(path, stageLookup)
	if diags.HasErrors() {
		t.Fatalf("diagnostics: %v", errorsOf(diags))
	}
	p := f.Pipelines[0]
	if len(p.Transforms) != 2 {
		t.Fatalf("transforms = %d, want 2", len(p.Transforms))
	}
	if tr := p.Transforms[0]; tr.Name != "filter" || tr.Step == nil || tr.Plugin != nil {
		t.Errorf("first transform = %+v, want the built-in filter", tr)
	}
	tr := p.Transforms[1]
	if tr.Name != "split" || tr.Step != nil || tr.Plugin == nil || tr.Plugin.Kind != sdk.KindProcessor || tr.Plugin.Values["field"] != "items" {
		t.Errorf("second transform = %+v, want processor split with field = items", tr)
	}
	if got := tr.Stage(2); got != `transform 2 "split"` {
		t.Errorf("Stage = %s", got)
	}
	if p.OnRecordError != OnErrorDeadLetter || p.DeadLetter == nil || p.DeadLetter.Name != "file" || p.DeadLetter.Values["dir"] != "rejected" {
		t.Errorf("on_record_error %q, dead letter %v", p.OnRecordError, p.DeadLetter)
	}
	if len(p.Processors()) != 1 || p.Processors()[0] != tr.Plugin {
		t.Errorf("Processors() = %v", p.Processors())
	}
}

func TestOnRecordErrorDefault(t *testing.T) {
	path := writeFile(t, `
pipeline "p" {
  delivery = "at-least-once"
  source "file" { paths = ["in/*"] }
  sink "file" { dir = "out" }
}
`)
	f, diags := Load(path, stageLookup)
	if diags.HasErrors() {
		t.Fatalf("diagnostics: %v", errorsOf(diags))
	}
	if p := f.Pipelines[0]; p.OnRecordError != OnErrorFail || p.DeadLetter != nil || len(p.Transforms) != 0 {
		t.Errorf("pipeline = %+v, want on_record_error fail, no dead letter, no transforms", p)
	}
}

func TestStageErrors(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       []string // substrings of the errors, each "line:column summary…"
	}{
		{"bad policy", `
  on_record_error = "dead-letter"
  sink "file" { dir = "out" }`, []string{`6:21 Invalid value for on_record_error: on_record_error must be one of "fail", "skip", "dead_letter"; got "dead-letter". Did you mean "dead_letter"?`}},
		{"dead letter without its block", `
  on_record_error = "dead_letter"
  sink "file" { dir = "out" }`, []string{`6:21 Missing dead_letter block`}},
		{"block without dead letter", `
  sink "file" { dir = "out" }
  dead_letter "file" { dir = "bad" }`, []string{`7:3 Unused dead_letter block: Pipeline "p" has a dead_letter block, but on_record_error is "fail"`}},
		{"two dead letters", `
  on_record_error = "dead_letter"
  sink "file" { dir = "out" }
  dead_letter "file" { dir = "bad" }
  dead_letter "file" { dir = "bad2" }`, []string{`9:3 Duplicate dead_letter block`}},
		{"unknown processor", `
  transform "splt" {}
  sink "file" { dir = "out" }`, []string{`6:13 Unknown processor plugin "splt"`}},
		{"processor parameter", `
  transform "split" { fild = "x" }
  sink "file" { dir = "out" }`, []string{`6:23 Unsupported parameter: processor "split" has no parameter "fild". Did you mean "field"?`}},
		{"dead letter parameter", `
  on_record_error = "dead_letter"
  sink "file" { dir = "out" }
  dead_letter "file" { dri = "bad" }`, []string{`8:24 Unsupported parameter: sink "file" has no parameter "dri"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, `
pipeline "p" {
  delivery = "at-least-once"
  source "file" { paths = ["in/*"] }
`+c.body+`
}
`)
			_, diags := Load(path, stageLookup)
			got := strings.Join(errorsOf(diags), "\n")
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors:\n%s\nwant one containing:\n%s", got, w)
				}
			}
			if !diags.HasErrors() {
				t.Errorf("no error")
			}
		})
	}
}

func TestExactlyOnceStages(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
	}{
		{"non-deterministic processor", `
  transform "shuffle" {}
  sink "file" {
    dir  = "out"
    mode = "batch"
  }`, `needs deterministic transforms (a replayed batch must become the same records), but processor "shuffle" (version 0.1.0) does not declare capability "deterministic"`},
		{"appending dead letter", `
  sink "file" {
    dir  = "out"
    mode = "batch"
  }
  on_record_error = "dead_letter"
  dead_letter "file" { dir = "bad" }`, `needs an idempotent or transactional dead-letter sink (a replayed batch writes its dead letters again), but dead_letter "file" with mode = "append" (the default) is neither (it is idempotent with mode = "batch")`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, `
pipeline "p" {
  delivery = "exactly-once"
  source "file" { paths = ["in/*"] }
`+c.body+`
}
`)
			_, diags := Load(path, stageLookup)
			got := strings.Join(errorsOf(diags), "\n")
			if !strings.Contains(got, "3:14 Delivery guarantee not possible with these plugins") || !strings.Contains(got, c.want) {
				t.Errorf("errors:\n%s\nwant the delivery error at 3:14 containing:\n%s", got, c.want)
			}
			// The same pipeline at-least-once is fine.
			path = writeFile(t, strings.Replace(mustRead(t, path), "exactly-once", "at-least-once", 1))
			if _, diags := Load(path, stageLookup); diags.HasErrors() {
				t.Errorf("at-least-once: %v", errorsOf(diags))
			}
		})
	}
}

func TestCheckPipelineUsesRunningSpecs(t *testing.T) {
	path := writeFile(t, `
pipeline "p" {
  delivery = "exactly-once"
  source "file" { paths = ["in/*"] }
  transform "split" {}
  sink "file" {
    dir  = "out"
    mode = "batch"
  }
}
`)
	f, diags := Load(path, stageLookup)
	if diags.HasErrors() {
		t.Fatalf("diagnostics: %v", errorsOf(diags))
	}
	p := f.Pipelines[0]
	if err := CheckPipeline(p, fileSource, fileSink, []sdk.Spec{detProcessor}, sdk.Spec{}); err != nil {
		t.Errorf("CheckPipeline with the loaded specs: %v", err)
	}
	// The processor was replaced by one that is no longer deterministic.
	changed := detProcessor
	changed.Capabilities = nil
	if err := CheckPipeline(p, fileSource, fileSink, []sdk.Spec{changed}, sdk.Spec{}); err == nil || !strings.Contains(err.Error(), `processor "split"`) {
		t.Errorf("CheckPipeline with a non-deterministic processor = %v", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMaskKeyLiteral: mask's key written in the file is a warning, and the
// key never shows in a formatted diagnostic's snippet.
func TestMaskKeyLiteral(t *testing.T) {
	path := writeFile(t, `
pipeline "p" {
  delivery = "at-least-once"
  source "file" { paths = ["in/*"] }
  transform "mask" {
    fields = ["card"]
    key    = "hunter2-secret"
  }
  sink "file" { dir = "out" }
  bogus = 1
}
`)
	f, diags := Load(path, stageLookup)
	text := f.Format(diags)
	if !strings.Contains(text, "Secret written in the pipeline file") {
		t.Errorf("no warning about the literal key:\n%s", text)
	}
	if strings.Contains(text, "hunter2-secret") {
		t.Errorf("the key shows in the diagnostics:\n%s", text)
	}
}
