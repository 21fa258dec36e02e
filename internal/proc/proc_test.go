package proc

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// sleeper starts this test binary as a process that sleeps a minute.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CONNECTD_PROC_TEST_SLEEP=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestMain makes the test binary sleep a minute instead of testing when it
// runs as a sleeper.
func TestMain(m *testing.M) {
	if os.Getenv("CONNECTD_PROC_TEST_SLEEP") == "1" {
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestKill(t *testing.T) {
	cmd := sleeper(t)
	start := time.Now()
	if err := Kill(cmd.Process.Pid); err != nil {
		t.Fatalf("Kill(%d): %v", cmd.Process.Pid, err)
	}
	err := cmd.Wait()
	if cmd.ProcessState.Success() || time.Since(start) > 10*time.Second {
		t.Fatalf("the process ended with %v after %v, want killed at once", err, time.Since(start))
	}
	if runtime.GOOS == "windows" {
		return // no promise for a process that has ended
	}
	if err := Kill(cmd.Process.Pid); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Kill of an ended process: %v, want os.ErrProcessDone", err)
	}
}
