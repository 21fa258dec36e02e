package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/tally"
)

// These tests start the real connectd binary, which starts real plugin
// processes, and crash them.

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "connectd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "connectd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building connectd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// connectd runs the binary in dir with extra environment.
func connectd(t testing.TB, dir string, env []string, args ...string) e2e.Result {
	t.Helper()
	return e2e.Run(t, bin, dir, env, args...)
}

// write creates a file under dir.
func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ids reads every record the file sink wrote under dir/out and returns how
// many times each id appears. A record is a generator JSON value with an "id"
// or a plain line (its own id). A torn record (no newline) fails the test.
func ids(t *testing.T, dir string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*"))
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s ends with a torn record: %q", f, tailOf(b))
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			line := sc.Bytes()
			var v struct{ ID string }
			if json.Unmarshal(line, &v) == nil && v.ID != "" {
				seen[v.ID]++
			} else {
				seen[string(line)]++
			}
		}
	}
	return seen
}

func tailOf(b []byte) []byte {
	if len(b) > 40 {
		return b[len(b)-40:]
	}
	return b
}

// checkDelivery asserts what a delivery guarantee promises about what the sink holds.
func checkDelivery(t *testing.T, delivery string, want []string, seen map[string]int) (lost, dup int) {
	t.Helper()
	lost, dup, extra := tally.Tally(want, seen)
	if len(extra) > 0 {
		t.Errorf("sink holds %d records that were never produced, e.g. %q", len(extra), extra[0])
	}
	switch delivery {
	case "exactly-once":
		if lost != 0 || dup != 0 {
			t.Errorf("exactly-once broken: %d lost, %d duplicated", lost, dup)
		}
	case "at-least-once":
		if lost != 0 {
			t.Errorf("at-least-once broken: %d lost (%d duplicated)", lost, dup)
		}
	case "at-most-once":
		if dup != 0 {
			t.Errorf("at-most-once broken: %d duplicated (%d lost)", dup, lost)
		}
	}
	return lost, dup
}

// genPipeline is a generator → file pipeline in dir.
func genPipeline(delivery, mode string, count, parts, maxRecords int, extra string) string {
	return fmt.Sprintf(`
pipeline "p" {
  delivery = %q
  source "generator" {
    count      = %d
    partitions = %d
    size       = 80
    %s
  }
  sink "file" {
    dir  = "out"
    mode = %q
  }
  batch {
    max_records = %d
    max_wait    = "100ms"
  }
  checkpoint { dir = "state/p" }
}
`, delivery, count, parts, extra, mode, maxRecords)
}

// withReadAhead turns read_ahead on in a pipeline made by genPipeline.
func withReadAhead(t *testing.T, pipeline string) string {
	t.Helper()
	const at = `max_wait    = "100ms"`
	if !strings.Contains(pipeline, at) {
		t.Fatalf("no batch block to add read_ahead to in:\n%s", pipeline)
	}
	return strings.Replace(pipeline, at, at+"\n    read_ahead  = true", 1)
}

// idsQuiet lists the batch files the file sink finished under dir/out, for polling.
func idsQuiet(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "out", "batch-*"))
	return files
}
