// Package e2e runs the connectd binary in end-to-end tests: one invocation
// with a time limit, a crash at a fault point followed by a recovery run, and
// the plugin processes of a running host. It is imported only by tests.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/fault"
)

// Limit is how long Run lets one connectd invocation take before failing the test.
const Limit = 2 * time.Minute

// Result is what one connectd invocation did.
type Result struct {
	Code   int
	Killed bool // died of SIGKILL: a fault point or the test
	Stdout string
	Stderr string
}

// Run runs bin with args in dir, with the test's environment plus env, and
// waits for it (at most Limit, then the test fails).
func Run(t testing.TB, bin, dir string, env []string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(Limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("connectd %v did not finish in %s; stderr:\n%s", args, Limit, errb.String())
	}
	r := Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errb.String()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		r.Killed = true
	}
	return r
}

// CrashAndDrain runs `connectd run --drain cfg` with the fault point armed
// for batch 3 and checks that it fired: a host point kills the host; after a
// plugin point the host restarts the plugin and finishes. Then it drains the
// pipeline again without faults and fails the test unless that exits 0.
func CrashAndDrain(t testing.TB, bin, dir, cfg, point string, env []string) {
	t.Helper()
	first := Run(t, bin, dir, append([]string{fault.Env + "=" + point + "@3"}, env...), "run", "--drain", cfg)
	host := strings.HasPrefix(point, "host.")
	switch {
	case host && !first.Killed:
		t.Fatalf("fault point %s did not kill the host (exit %d):\n%s", point, first.Code, first.Stderr)
	case !host && first.Code != 0:
		t.Fatalf("fault point %s: exit %d, want 0 after the host restarted the plugin:\n%s", point, first.Code, first.Stderr)
	case !host && !strings.Contains(first.Stderr, "restart"):
		t.Fatalf("fault point %s did not fire (no plugin restart in the log):\n%s", point, first.Stderr)
	}
	// The process that dies says which point fired, host or plugin (a
	// plugin's stderr reaches the host's).
	if said := fmt.Sprintf("connectd: fault point %q fired in batch 3", point); !strings.Contains(first.Stderr, said) {
		t.Fatalf("fault point %s fired without saying so (want %q on stderr):\n%s", point, said, first.Stderr)
	}
	if second := Run(t, bin, dir, env, "run", "--drain", cfg); second.Code != 0 {
		t.Fatalf("recovery run: exit %d:\n%s", second.Code, second.Stderr)
	}
}

// Children returns the pids of the direct children of pid (Linux).
func Children(pid int) []int {
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

// Alive reports whether process pid exists and has not exited (a zombie has).
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// GenIDs lists the ids the generator gives count records in parts partitions.
func GenIDs(count, parts int) []string {
	out := make([]string, 0, count)
	for i := 0; i < count; i++ {
		out = append(out, strconv.Itoa(i%parts)+"-"+strconv.Itoa(i/parts))
	}
	return out
}
