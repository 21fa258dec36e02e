package config

import (
	"strings"
	"testing"
)

// The documented one-line form with several arguments separated by commas.
func TestOneLineBlocks(t *testing.T) {
	src := `pipeline "demo" {
  delivery = "exactly-once"          # or "at-least-once", "at-most-once"
  source "file" { paths = ["in/*.txt", "more/*.txt"] }   # a comma inside a list stays
  sink "file"   { dir = "out", mode = "batch" }
  batch         { max_records = 1000, max_wait = "2s" }
  checkpoint    { dir = "state/demo" }
}
`
	f, diags := Load(writeFile(t, src), fakeLookup)
	if diags.HasErrors() {
		t.Fatalf("load: %s", f.Format(diags))
	}
	p := f.Pipelines[0]
	if p.Sink.Values["dir"] != "out" || p.Sink.Values["mode"] != "batch" {
		t.Errorf("sink values %v", p.Sink.Values)
	}
	if got := p.Source.Values["paths"].([]string); len(got) != 2 {
		t.Errorf("paths %v, want 2 entries", got)
	}
	if p.Batch.MaxRecords != 1000 || p.Batch.MaxWait.String() != "2s" {
		t.Errorf("batch %+v", p.Batch)
	}

	// Positions of errors after the rewrite point at the file as written.
	bad := strings.Replace(src, `mode = "batch" }`, `mode = "batch", bogus = 1 }`, 1)
	f, diags = Load(writeFile(t, bad), fakeLookup)
	if !diags.HasErrors() {
		t.Fatal("want errors")
	}
	var found bool
	for _, d := range diags {
		if strings.Contains(d.Detail, "bogus") {
			found = true
			if d.Subject.Start.Line != 4 || d.Subject.Start.Column != 48 {
				t.Errorf("bogus reported at %d:%d, want 4:48", d.Subject.Start.Line, d.Subject.Start.Column)
			}
		}
	}
	if !found {
		t.Errorf("no diagnostic about bogus: %s", f.Format(diags))
	}
	if out := f.Format(diags); !strings.Contains(out, `     4:   sink "file"   { dir = "out", mode = "batch", bogus = 1 }`) {
		t.Errorf("snippet does not show the line as written:\n%s", out)
	}
}
