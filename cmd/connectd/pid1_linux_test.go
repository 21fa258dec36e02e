package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/connectd/connectd/internal/e2e"
)

// A host that is pid 1 (a container's entrypoint, here a new pid namespace)
// must be able to run plugins: to a plugin, a parent pid of 1 also means "my
// host died and init adopted me", and before the host said its pid
// (CONNECTD_HOST_PID) every plugin killed itself at start.
func TestHostAsPID1(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare(1) to start connectd as pid 1 of a new pid namespace")
	}
	ns := []string{"--pid", "--fork", "--mount-proc"}
	if out, err := exec.Command(unshare, append(ns, "true")...).CombinedOutput(); err != nil {
		t.Skipf("cannot make a pid namespace here: %v %s", err, out)
	}
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 500, 2, 100, ""))
	r := e2e.Run(t, unshare, dir, nil, append(ns, bin, "run", "--drain", cfg)...)
	if r.Code != 0 {
		t.Fatalf("connectd as pid 1: exit %d\n%s", r.Code, r.Stderr)
	}
	seen := ids(t, dir)
	if len(seen) != 500 {
		t.Fatalf("%d distinct records delivered, want 500", len(seen))
	}
}
