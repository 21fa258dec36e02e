package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTransformsReadAhead: generator → filter + set → file (batch mode),
// exactly-once, with and without read_ahead (which transforms the next
// batch while the current one is written): both write the same records,
// every kept id once, reshaped, none of the dropped ones.
func TestTransformsReadAhead(t *testing.T) {
	const count = 5000
	outputs := map[bool]map[string]string{}
	for _, ahead := range []bool{false, true} {
		dir := t.TempDir()
		cfg := write(t, dir, "p.hcl", fmt.Sprintf(`
pipeline "shape" {
  delivery = "exactly-once"
  source "generator" {
    count      = %d
    partitions = 3
  }
  transform "filter" { where = "value.offset %% 4 != 1" }
  transform "set" {
    fields = { "tag" = "'p' + position.partition" }
  }
  sink "file" {
    dir  = "out"
    mode = "batch"
  }
  batch {
    max_records = 300
    read_ahead  = %t
  }
  checkpoint { dir = "state" }
}
`, count, ahead))
		if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 0 {
			t.Fatalf("read_ahead = %t: exit %d:\n%s", ahead, r.Code, r.Stderr)
		}
		got := map[string]string{}
		files, _ := filepath.Glob(filepath.Join(dir, "out", "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if line == "" {
					continue
				}
				var v struct {
					ID     string
					Offset int
					Tag    string
				}
				if err := json.Unmarshal([]byte(line), &v); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if v.Offset%4 == 1 || v.Tag != "pgenerator/"+strings.Split(v.ID, "-")[0] {
					t.Errorf("read_ahead = %t: line %q should have been dropped or tagged %q", ahead, line, "pgenerator/"+strings.Split(v.ID, "-")[0])
				}
				if _, dup := got[v.ID]; dup {
					t.Errorf("read_ahead = %t: id %s twice", ahead, v.ID)
				}
				got[v.ID] = line
			}
		}
		outputs[ahead] = got
	}
	want := 0
	for i := 0; i < count; i++ {
		if (i/3)%4 != 1 {
			want++
		}
	}
	if len(outputs[false]) != want {
		t.Errorf("without read ahead: %d records, want %d", len(outputs[false]), want)
	}
	for id, line := range outputs[false] {
		if outputs[true][id] != line {
			t.Errorf("id %s: %q with read ahead, %q without", id, outputs[true][id], line)
			break
		}
	}
	if len(outputs[true]) != len(outputs[false]) {
		t.Errorf("read ahead wrote %d records, without %d", len(outputs[true]), len(outputs[false]))
	}
}
