package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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

// result is what one connectd invocation did.
type result struct {
	code   int
	killed bool // died of SIGKILL (a fault point or the test)
	stdout string
	stderr string
}

// connectd runs the binary in dir with extra environment and waits up to a minute.
func connectd(t testing.TB, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("connectd %v did not finish in 90s; stderr:\n%s", args, errb.String())
	}
	r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		r.killed = true
	}
	return r
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

// genIDs lists the ids the generator makes for count records in p partitions.
func genIDs(count, parts int) []string {
	out := make([]string, 0, count)
	for i := 0; i < count; i++ {
		out = append(out, strconv.Itoa(i%parts)+"-"+strconv.Itoa(i/parts))
	}
	return out
}

// tally counts lost and duplicated ids against want.
func tally(want []string, seen map[string]int) (lost, dup int, extra []string) {
	w := map[string]bool{}
	for _, id := range want {
		w[id] = true
		switch n := seen[id]; {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	for id := range seen {
		if !w[id] {
			extra = append(extra, id)
		}
	}
	sort.Strings(extra)
	return lost, dup, extra
}

// checkDelivery asserts what a delivery guarantee promises about what the sink holds.
func checkDelivery(t *testing.T, delivery string, want []string, seen map[string]int) (lost, dup int) {
	t.Helper()
	lost, dup, extra := tally(want, seen)
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

// children returns the pids of the direct children of pid.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie (state Z) has exited.
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// idsQuiet lists the batch files the file sink finished under dir/out, for polling.
func idsQuiet(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "out", "batch-*"))
	return files
}
