package fault

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestDieEndsTheProcessAtOnce runs Die in a child process: the child must end
// as kill -9 ends it (SIGKILL on Unix, exit status DieExitCode on Windows),
// with no deferred function run and without Die returning.
func TestDieEndsTheProcessAtOnce(t *testing.T) {
	if os.Getenv("CONNECTD_FAULT_TEST_DIE") == "1" {
		defer os.Stdout.WriteString("a deferred function ran\n")
		os.Stdout.WriteString("dying\n")
		Die()
		os.Stdout.WriteString("Die returned\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDieEndsTheProcessAtOnce$")
	cmd.Env = append(os.Environ(), "CONNECTD_FAULT_TEST_DIE=1")
	out, err := cmd.Output()
	if !strings.Contains(string(out), "dying") {
		t.Fatalf("the child did not reach Die: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "returned") || strings.Contains(string(out), "deferred") {
		t.Fatalf("the child went on after Die:\n%s", out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the child ended with %v, want killed", err)
	}
	ws := exit.Sys().(syscall.WaitStatus)
	if runtime.GOOS == "windows" {
		if ws.ExitStatus() != DieExitCode {
			t.Fatalf("the child exited with status %d, want %d", ws.ExitStatus(), DieExitCode)
		}
	} else if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended with %v, want killed by SIGKILL", err)
	}
}
