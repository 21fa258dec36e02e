package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
)

// splitSource can run as several tasks; splitWhen only when mode = "split".
var (
	splitSource = sdk.Spec{
		Name: "split", Version: "1.0.0", Kind: sdk.KindSource,
		Capabilities: []sdk.Capability{sdk.CapReplayable, sdk.CapSplittable},
		Params:       []sdk.Param{{Name: "topic", Type: sdk.TypeString}},
	}
	splitWhen = sdk.Spec{
		Name: "splitwhen", Version: "1.0.0", Kind: sdk.KindSource,
		Capabilities: []sdk.Capability{sdk.CapReplayable},
		When:         []sdk.Conditional{{Capability: sdk.CapSplittable, Param: "mode", Values: []string{"split"}}},
		Params:       []sdk.Param{{Name: "mode", Type: sdk.TypeString, Default: "whole"}},
	}
)

func taskLookup(kind sdk.Kind, name string) (sdk.Spec, error) {
	for _, s := range []sdk.Spec{splitSource, splitWhen} {
		if s.Kind == kind && s.Name == name {
			return s, nil
		}
	}
	return fakeLookup(kind, name)
}

func TestTasks(t *testing.T) {
	path := writeFile(t, `
pipeline "orders" {
  delivery    = "exactly-once"
  parallelism = 3
  source "split" { topic = "orders" }
  transform "filter" { where = "true" }
  sink "tx" { dsn = "x" }
}
pipeline "single" {
  delivery = "at-least-once"
  source "file" { paths = ["in"] }
  sink "file" { dir = "out" }
}
pipeline "pg" {
  delivery    = "at-least-once"
  parallelism = 2
  source "splitwhen" { mode = "split" }
  sink "file" { dir = "out2" }
  checkpoint {
    store = "postgres"
    url   = "postgres://localhost/x"
  }
}
`)
	f, diags := Load(path, taskLookup)
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", f.Format(diags))
	}
	if p := f.Pipelines[0]; p.Parallelism != 3 || f.Pipelines[1].Parallelism != 1 {
		t.Fatalf("parallelism %d and %d, want 3 and 1", p.Parallelism, f.Pipelines[1].Parallelism)
	}
	us := Tasks(f.Pipelines)
	var got []string
	for _, u := range us {
		got = append(got, fmt.Sprintf("%s:%s:%d/%d:%s", u.Name, u.Group, u.Task, u.Tasks, u.Checkpoint.Dir))
	}
	want := []string{
		"orders-0:orders:0/3:" + filepath.Join(".connectd", "orders", "orders-0"),
		"orders-1:orders:1/3:" + filepath.Join(".connectd", "orders", "orders-1"),
		"orders-2:orders:2/3:" + filepath.Join(".connectd", "orders", "orders-2"),
		"single:single:0/1:" + filepath.Join(".connectd", "single"),
		"pg-0:pg:0/2:", "pg-1:pg:1/2:",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Tasks:\n got %v\nwant %v", got, want)
	}
	if us[3] != f.Pipelines[1] {
		t.Errorf("a pipeline of parallelism 1 is not returned as it is")
	}
	// Each task has Steps of its own (a Step is for one goroutine).
	if us[0].Transforms[0].Step == us[1].Transforms[0].Step || us[0].Transforms[0].Step == nil {
		t.Errorf("tasks share their built-in transform's Step")
	}
	if f.Pipelines[0].Name != "orders" || f.Pipelines[0].Transforms[0].Step == nil {
		t.Errorf("Tasks changed the pipeline it split")
	}
	// Again: the same units.
	if again := Tasks(f.Pipelines); len(again) != len(us) || again[2].Name != "orders-2" {
		t.Errorf("Tasks a second time: %d units", len(again))
	}
}

func TestParallelismErrors(t *testing.T) {
	const body = `  delivery = "at-least-once"
  source "split" {}
  sink "file" { dir = "out" }
`
	tests := []struct {
		name      string
		src       string
		line, col int
		want      []string
	}{
		{"zero", "pipeline \"a\" {\n  parallelism = 0\n" + body + "}\n", 2, 17, []string{"parallelism must be >= 1", "got number 0"}},
		{"negative", "pipeline \"a\" {\n  parallelism = -2\n" + body + "}\n", 2, 17, []string{"parallelism must be >= 1"}},
		{"fraction", "pipeline \"a\" {\n  parallelism = 1.5\n" + body + "}\n", 2, 17, []string{"parallelism takes", "1.5"}},
		{"string", "pipeline \"a\" {\n  parallelism = \"three\"\n" + body + "}\n", 2, 17, []string{"parallelism takes"}},
		{"too many", "pipeline \"a\" {\n  parallelism = 100000\n" + body + "}\n", 2, 17, []string{"parallelism must be <= 1024", "100000"}},
		{"source cannot split", "pipeline \"a\" {\n  parallelism = 2\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" { dir = \"out\" }\n}\n",
			2, 17, []string{"Parallelism not possible", `source "file"`, `"splittable"`, "parallelism = 2"}},
		{"source cannot split with these values", "pipeline \"a\" {\n  parallelism = 2\n  delivery = \"at-least-once\"\n  source \"splitwhen\" {}\n  sink \"file\" { dir = \"out\" }\n}\n",
			2, 17, []string{"Parallelism not possible", `"splittable"`}},
		{"task name is a pipeline", "pipeline \"a\" {\n  parallelism = 2\n" + body + "}\npipeline \"a-1\" {\n" + body + "}\n",
			2, 17, []string{"Task name collides", `"a-1"`, `pipeline "a-1" at`}},
		{"pipeline declared first", "pipeline \"a-0\" {\n" + body + "}\npipeline \"a\" {\n  parallelism = 2\n" + body + "}\n",
			7, 17, []string{"Task name collides", `"a-0"`, `pipeline "a-0" at`}},
		{"a pipeline that runs as tasks", "pipeline \"a-1\" {\n  parallelism = 2\n" + body + "}\npipeline \"a\" {\n  parallelism = 12\n" + body + "}\n",
			8, 17, []string{"Task name collides", `tasks "a-0" to "a-11"`, `pipeline "a-1" at`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.src)
			f, diags := Load(path, taskLookup)
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
			}
			text := f.Format(diags)
			d := errs[0]
			if d.Subject == nil || d.Subject.Filename != path || d.Subject.Start.Line != tc.line || d.Subject.Start.Column != tc.col {
				t.Errorf("first error at %v, want %d:%d:\n%s", d.Subject, tc.line, tc.col, text)
			}
			msg := d.Summary + ": " + d.Detail
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("first error %q\ndoes not contain %q", msg, w)
				}
			}
		})
	}
}
