//go:build unix || windows

package sdk

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parentTestEnv makes the test binary play a part in
// TestParentWatchSeesHostKilled: "host" starts a "plugin" and waits; "plugin"
// watches its parent with watchHost and writes the file "died" when the watch
// fires.
const parentTestEnv = "CONNECTD_SDK_PARENT_TEST"

// TestParentWatchSeesHostKilled kills a host process (SIGKILL on Unix,
// TerminateProcess on Windows) and expects its child, watching its parent with
// watchHost, to notice within a second. On Linux this tests the parent-pid
// watch alone, as macOS and the BSDs (no parent-death signal) run it.
func TestParentWatchSeesHostKilled(t *testing.T) {
	dir := os.Getenv("CONNECTD_SDK_PARENT_DIR")
	switch os.Getenv(parentTestEnv) {
	case "host":
		plugin := exec.Command(os.Args[0], "-test.run=^TestParentWatchSeesHostKilled$")
		plugin.Env = append(os.Environ(), parentTestEnv+"=plugin")
		plugin.Stderr = os.Stderr
		if err := plugin.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // until the test kills this process
		t.Fatal("the test did not kill this host process within a minute")
	case "plugin":
		died := filepath.Join(dir, "died")
		watchHost(func() {
			_ = os.WriteFile(died, nil, 0o600)
			os.Exit(0)
		})
		if err := os.WriteFile(filepath.Join(dir, "watching"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		t.Fatal("the watch did not fire within a minute") // the test has failed by then
	}

	dir = t.TempDir()
	host := exec.Command(os.Args[0], "-test.run=^TestParentWatchSeesHostKilled$")
	host.Env = append(os.Environ(), parentTestEnv+"=host", "CONNECTD_SDK_PARENT_DIR="+dir)
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = host.Process.Kill(); _ = host.Wait() }()
	var pid int
	for deadline := time.Now().Add(30 * time.Second); pid == 0; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(dir, "watching")); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatal("the plugin process did not start watching within 30s")
		}
	}
	defer func() { // a plugin the watch missed must not outlive the test
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}()

	time.Sleep(3 * parentPoll) // a few checks with the host alive
	if _, err := os.Stat(filepath.Join(dir, "died")); err == nil {
		t.Fatal("the watch fired while the host was alive")
	}
	_ = host.Process.Kill()
	_ = host.Wait()
	killed := time.Now()
	for time.Since(killed) < time.Second {
		if _, err := os.Stat(filepath.Join(dir, "died")); err == nil {
			t.Logf("the plugin saw its host killed after %v", time.Since(killed).Round(time.Millisecond))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the plugin did not notice within 1s that its host was killed")
}
