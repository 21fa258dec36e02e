package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/host/transform"
	"github.com/connectd/connectd/sdk"
)

// TestShapeWorkers: built-ins run over parts of a batch on several
// goroutines give exactly what one goroutine gives — the same records in
// the same order and the same rejections, stage by stage in record order —
// so a batch replayed on a machine with another number of cores is written
// as the same records (exactly-once through transforms needs it).
func TestShapeWorkers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(path, []byte(`
pipeline "p" {
  delivery        = "at-least-once"
  on_record_error = "skip"
  source "gen" {}
  transform "filter" { where = "value.n % 11 == 4 ? value.missing : value.n % 5 != 0" }
  transform "set" { fields = { "half" = "100 / (value.n % 7)" } }
  transform "filter" { where = "value.n % 3 != 0" }
  sink "out" {}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	lookup := func(kind sdk.Kind, name string) (sdk.Spec, error) {
		return sdk.Spec{Name: name, Version: "1", Kind: kind}, nil
	}
	f, diags := config.Load(path, lookup)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p := f.Pipelines[0]
	var recs []sdk.Record
	for i := 0; i < 10000; i++ {
		recs = append(recs, sdk.Record{Value: fmt.Appendf(nil, `{"n":%d}`, i), Position: sdk.Position{Partition: fmt.Sprintf("t/%d", i%3), Offset: int64(i / 3)}})
	}
	chunks, size, err := sdk.EncodeChunks(recs)
	if err != nil {
		t.Fatal(err)
	}
	data := &plugin.Data{Chunks: chunks, Records: int64(len(recs)), Bytes: size}
	shape := func(workers int) ([]sdk.Record, []letter) {
		d := &driver{Options: Options{Log: slog.Default()}, p: p}
		for w := 0; w < workers; w++ {
			steps := make([]transform.Step, len(p.Transforms))
			for i, tr := range p.Transforms {
				s, err := tr.NewStep()
				if err != nil {
					t.Fatal(err)
				}
				steps[i] = s
			}
			d.steps = append(d.steps, steps)
		}
		o, err := d.shape(context.Background(), 1, data, false, d.workers())
		if err != nil {
			t.Fatal(err)
		}
		out, err := sdk.DecodeChunks(nil, o.data.Chunks)
		if err != nil {
			t.Fatal(err)
		}
		return out, o.letters
	}
	out1, letters1 := shape(1)
	// n % 11 == 4 rejected (no field "missing"); n % 5 == 0 filtered;
	// n % 7 == 0 rejected (division by zero); n % 3 == 0 filtered after.
	wantOut, wantRej := 0, 0
	for n := 0; n < 10000; n++ {
		switch {
		case n%11 == 4:
			wantRej++
		case n%5 == 0:
		case n%7 == 0:
			wantRej++
		case n%3 == 0:
		default:
			wantOut++
		}
	}
	if len(out1) != wantOut || len(letters1) != wantRej {
		t.Fatalf("one worker: %d records out, %d rejected; want %d and %d", len(out1), len(letters1), wantOut, wantRej)
	}
	for _, w := range []int{2, 3, 8} {
		out, letters := shape(w)
		if !reflect.DeepEqual(out, out1) {
			t.Errorf("%d workers: the records differ from one worker's", w)
		}
		if !reflect.DeepEqual(letters, letters1) {
			t.Errorf("%d workers: the rejections differ from one worker's", w)
		}
	}
}
