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

// TestHTTPDeadLetterCounts: a set transform rejects every record whose
// offset is a multiple of 10 (a division by zero); with on_record_error =
// "dead_letter" they go to a file dead-letter sink, and /metrics and the
// status API count them: rejected = dead letters = what the dead-letter sink
// holds, written = the rest.
func TestHTTPDeadLetterCounts(t *testing.T) {
	dir := t.TempDir()
	const count, parts = 1000, 2
	p := strings.Replace(genPipeline("exactly-once", "batch", count, parts, 100, ""), `  sink "file" {`, `  transform "set" { fields = { "tenth" = "100 / (value.offset % 10)" } }
  on_record_error = "dead_letter"
  dead_letter "file" {
    dir  = "rejected"
    mode = "batch"
  }
  sink "file" {`, 1)
	cfg := write(t, dir, "p.hcl", p)
	s := serve(t, dir, nil, cfg)
	rejected := 0
	for i := 0; i < count; i++ {
		if (i/parts)%10 == 0 {
			rejected++
		}
	}
	var m map[string]float64
	s.waitFor(t, "every record written or rejected", func() bool {
		m = scrape(t, s.URL)
		return m[`connectd_records_written_total{pipeline="p"}`]+m[`connectd_dead_letters_total{pipeline="p"}`] >= count
	})
	for k, v := range map[string]float64{
		`connectd_records_written_total{pipeline="p"}`:  count - float64(rejected),
		`connectd_records_rejected_total{pipeline="p"}`: float64(rejected),
		`connectd_dead_letters_total{pipeline="p"}`:     float64(rejected),
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	code, b := call(t, "GET", s.URL+"/v1/pipelines/p", "")
	var st struct {
		Rejected    int64 `json:"recordsRejected"`
		DeadLetters int64 `json:"deadLetters"`
	}
	if err := json.Unmarshal(b, &st); err != nil || code != 200 || st.Rejected != int64(rejected) || st.DeadLetters != int64(rejected) {
		t.Errorf("GET /v1/pipelines/p: %d %v %+v, want %d rejected and dead letters: %s", code, err, st, rejected, b)
	}
	letters := 0
	files, _ := filepath.Glob(filepath.Join(dir, "rejected", "batch-*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		letters += strings.Count(string(b), "\n")
	}
	if letters != rejected {
		t.Errorf("the dead-letter sink holds %d records, want %d", letters, rejected)
	}
}

// TestOnRecordErrorFailAndSkip: with the default on_record_error ("fail") a
// record a transform rejects stops the run (exit 1) before its batch is
// written, naming the record, the stage and the reason; with "skip" the run
// drains and the sink holds every other record.
func TestOnRecordErrorFailAndSkip(t *testing.T) {
	const count, parts = 200, 2
	set := `  transform "set" { fields = { "tenth" = "100 / (value.offset % 10)" } }
  sink "file" {`
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", strings.Replace(genPipeline("exactly-once", "batch", count, parts, 50, ""), `  sink "file" {`, set, 1))
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code != 1 || !strings.Contains(r.Stderr, `rejected by transform 1 "set"`) || !strings.Contains(r.Stderr, `on_record_error = "fail"`) || !strings.Contains(r.Stderr, "generator/0@0") {
		t.Fatalf("fail: exit %d, want 1 naming the record, the stage and the policy:\n%s", r.Code, r.Stderr)
	}
	if got := ids(t, dir); len(got) != 0 {
		t.Errorf("fail: the sink holds %d records, want none (the first batch stopped before its write)", len(got))
	}

	dir = t.TempDir()
	cfg = write(t, dir, "p.hcl", strings.Replace(genPipeline("exactly-once", "batch", count, parts, 50, ""), `  sink "file" {`, `  on_record_error = "skip"
`+set, 1))
	if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 0 || !strings.Contains(r.Stderr, "records rejected and skipped") {
		t.Fatalf("skip: exit %d, want 0 and the skipped records logged:\n%s", r.Code, r.Stderr)
	}
	if got, want := len(ids(t, dir)), count-count/10; got != want {
		t.Errorf("skip: the sink holds %d records, want %d", got, want)
	}
}
