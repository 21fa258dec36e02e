package proc

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKillWithParent kills a process with SIGKILL and expects the child it
// started with KillWithParent to die with it, though the child does nothing
// to watch its parent.
func TestKillWithParent(t *testing.T) {
	if os.Getenv("CONNECTD_PROC_TEST_PARENT") == "1" {
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), "CONNECTD_PROC_TEST_SLEEP=1")
		KillWithParent(child)
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		fmt.Println(child.Process.Pid)
		time.Sleep(time.Minute) // until the test kills this process
		return
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestKillWithParent$")
	parent.Env = append(os.Environ(), "CONNECTD_PROC_TEST_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = parent.Process.Kill(); _ = parent.Wait() }()
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		t.Fatalf("reading the child's pid: %v", err)
	}
	defer func() { _ = Kill(pid) }() // should the test fail
	if !alive(pid) {
		t.Fatalf("child %d is not running", pid)
	}
	_ = parent.Process.Kill()
	_ = parent.Wait()
	for deadline := time.Now().Add(time.Second); alive(pid); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still alive 1s after its parent was killed", pid)
		}
	}
}

// alive reports whether process pid exists and has not exited (a zombie has).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}
