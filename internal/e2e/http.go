package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Host is a `connectd run --http 127.0.0.1:0` process started by Serve.
type Host struct {
	Cmd  *exec.Cmd
	URL  string        // http://127.0.0.1:port, as the host printed it
	Done chan struct{} // closed when the process has exited

	stderr Buffer
}

// Write collects the host's stderr.
func (h *Host) Write(p []byte) (int, error) { return h.stderr.Write(p) }

// Log returns the host's stderr so far.
func (h *Host) Log() string { return h.stderr.String() }

var servingLine = regexp.MustCompile(`serving http://(\S+?)/ `)

// Serve starts `bin run --http 127.0.0.1:0 args...` in dir, with the test's
// environment plus env, and returns once it prints the URL it serves (at
// most 30s, else the test fails). The process is killed when the test ends.
func Serve(t testing.TB, bin, dir string, env []string, args ...string) *Host {
	t.Helper()
	h := &Host{Done: make(chan struct{})}
	h.Cmd = exec.Command(bin, append([]string{"run", "--http", "127.0.0.1:0"}, args...)...)
	h.Cmd.Dir = dir
	h.Cmd.Env = append(h.Cmd.Environ(), env...)
	h.Cmd.Stderr = h
	if err := h.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = h.Cmd.Wait(); close(h.Done) }()
	t.Cleanup(func() {
		_ = h.Cmd.Process.Kill()
		<-h.Done
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingLine.FindStringSubmatch(h.Log()); m != nil {
			h.URL = "http://" + strings.Replace(m[1], "[::]", "127.0.0.1", 1)
			return h
		}
		select {
		case <-h.Done:
			t.Fatalf("connectd exited before serving HTTP:\n%s", h.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("connectd printed no URL in 30s:\n%s", h.Log())
	return nil
}

// WaitFor polls cond every 50ms for up to a minute; the test fails when the
// minute passes or the host exits first.
func (h *Host) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s; log:\n%s", what, h.Log())
		}
		select {
		case <-h.Done:
			t.Fatalf("connectd exited while waiting for %s:\n%s", what, h.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
