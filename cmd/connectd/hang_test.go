//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/proc"
)

// TestHungPlugin stops the source or the sink plugin with SIGSTOP in the
// middle of a drain whose calls have 1s deadlines: the host must kill the
// stopped process when a call's deadline passes, restart it, replay, finish
// with exit 0 and every record exactly once, and say in its log which call
// did not answer. Without deadlines the drain never ends (e2e.Run fails it
// after its limit).
func TestHungPlugin(t *testing.T) {
	for _, victim := range []string{"generator", "file"} {
		t.Run(victim, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const count, parts = 4000, 2
			pipeline := genPipeline("exactly-once", "batch", count, parts, 40, "rate = 4000")
			pipeline = strings.Replace(pipeline, `checkpoint { dir = "state/p" }`, `checkpoint { dir = "state/p" }
  timeouts {
    open  = "1s"
    read  = "1s"
    write = "1s"
    ack   = "1s"
    end   = "1s"
    close = "1s"
  }`, 1)
			cfg := write(t, dir, "p.hcl", pipeline)
			start := time.Now()
			cmd, stderr := startDelivering(t, dir, "run", "--drain", cfg)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			pid := pluginPid(t, cmd.Process.Pid, victim)
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			defer func() { _ = proc.Kill(pid) }() // never leave a stopped process behind
			for e2e.Alive(pid) && time.Since(stopped) < e2e.Limit {
				time.Sleep(10 * time.Millisecond)
			}
			stall := time.Since(stopped)
			if e2e.Alive(pid) {
				t.Fatalf("the stopped %s plugin still lives %s later", victim, stall)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("drain with a stopped %s: %v, want exit 0:\n%s", victim, err, stderr.String())
				}
			case <-time.After(e2e.Limit):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("drain did not finish in %s after the %s plugin was stopped:\n%s", e2e.Limit, victim, stderr.String())
			}
			t.Logf("stopped %s plugin killed %s after SIGSTOP; drain took %s", victim, stall.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			role := map[string]string{"generator": `source "generator"`, "file": `sink "file"`}[victim]
			// The log is slog's text: quotes in a value are escaped.
			if log := strings.ReplaceAll(stderr.String(), `\"`, `"`); !strings.Contains(log, role+" did not answer") || !strings.Contains(log, "within 1s; killed and restarted") {
				t.Errorf("the log does not say that %s did not answer within 1s:\n%s", role, log)
			}
			if stall > 5*time.Second {
				t.Errorf("the stopped plugin lived %s past SIGSTOP; want about its 1s deadline", stall)
			}
			checkDelivery(t, "exactly-once", e2e.GenIDs(count, parts), ids(t, dir))
		})
	}
}

// pluginPid finds the child of host serving the bundled plugin name.
func pluginPid(t *testing.T, host int, name string) int {
	t.Helper()
	for _, k := range e2e.Children(host) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", k))
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 3 && args[1] == plugin.ServeArg && args[2] == name {
			return k
		}
	}
	t.Fatalf("no %s plugin process under the host (pid %d)", name, host)
	return 0
}
