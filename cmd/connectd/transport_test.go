//go:build unix

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/fault"
)

// TestPluginSocketDir: connectd's plugins listen in a directory of the
// temporary directory ($TMPDIR here) that a run removes when it ends, also
// after a plugin crashed and was restarted; a host killed by SIGKILL leaves
// it, mode 0700, holding only sockets nothing listens on; exactly-once holds
// through both crashes, without TLS and with CONNECTD_PLUGIN_TLS=1.
func TestPluginSocketDir(t *testing.T) {
	for _, tls := range []string{"0", "1"} {
		t.Run("tls="+tls, func(t *testing.T) { // short: the socket path must fit 104 bytes
			t.Parallel()
			dir := t.TempDir()
			tmp := filepath.Join(dir, "tmp")
			if err := os.Mkdir(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			env := []string{"TMPDIR=" + tmp, plugin.TLSEnv + "=" + tls}
			const count, parts = 400, 2
			cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", count, parts, 50, ""))

			// The sink dies in batch 2 and is restarted; the host dies in batch 4.
			r := connectd(t, dir, append(env, fault.Env+"="+fault.SinkWriteAfter+"@2,"+fault.HostWriteAfter+"@4"), "run", "--drain", cfg)
			if !r.Killed {
				t.Fatalf("the host was not killed at %s (exit %d):\n%s", fault.HostWriteAfter, r.Code, r.Stderr)
			}
			if !strings.Contains(r.Stderr, "plugin failed; restarting") {
				t.Errorf("the sink was not restarted after %s:\n%s", fault.SinkWriteAfter, r.Stderr)
			}
			left := socketDirs(t, tmp)
			if len(left) != 1 {
				t.Fatalf("after the host's SIGKILL %s holds %q, want one connectd-* directory", tmp, left)
			}
			checkLeftover(t, left[0])

			if r := connectd(t, dir, env, "run", "--drain", cfg); r.Code != 0 {
				t.Fatalf("drain: exit %d:\n%s", r.Code, r.Stderr)
			}
			if now := socketDirs(t, tmp); len(now) != 1 || now[0] != left[0] {
				t.Errorf("after a clean run %s holds %q, want only the killed host's %q", tmp, now, left[0])
			}
			checkDelivery(t, "exactly-once", e2e.GenIDs(count, parts), ids(t, dir))
		})
	}
}

// socketDirs lists the entries of tmp.
func socketDirs(t *testing.T, tmp string) []string {
	t.Helper()
	es, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), "connectd-") {
			t.Errorf("%s holds %s, which connectd did not make for its plugins", tmp, e.Name())
		}
		out = append(out, filepath.Join(tmp, e.Name()))
	}
	return out
}

// checkLeftover fails t unless d is a directory of mode 0700 of this user
// holding only unix sockets that refuse connections (their plugins died with
// the host: within a second or two on a loaded machine).
func checkLeftover(t *testing.T, d string) {
	t.Helper()
	st, err := os.Stat(d)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() || st.Mode().Perm() != 0o700 || int(st.Sys().(*syscall.Stat_t).Uid) != os.Getuid() {
		t.Errorf("%s: mode %v, uid %d; want a directory of mode 0700 owned by uid %d", d, st.Mode(), st.Sys().(*syscall.Stat_t).Uid, os.Getuid())
	}
	es, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		p := filepath.Join(d, e.Name())
		if e.Type()&os.ModeSocket == 0 {
			t.Errorf("%s is not a socket (%v)", p, e.Type())
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.Dial("unix", p)
			if err != nil {
				break
			}
			_ = c.Close()
			if time.Now().After(deadline) {
				t.Errorf("a process still listens on %s 5 s after its host's SIGKILL", p)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestPluginTLSEnvInvalid: a CONNECTD_PLUGIN_TLS connectd does not take is
// bad usage (exit 2) with a message naming it, before any plugin starts.
func TestPluginTLSEnvInvalid(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 10, 1, 5, ""))
	for _, args := range [][]string{{"run", "--drain", cfg}, {"validate", cfg}, {"plugins"}, {"conformance", "--quick", "--source", "generator"}} {
		r := connectd(t, dir, []string{plugin.TLSEnv + "=yes"}, args...)
		if r.Code != exitUsage || !strings.Contains(r.Stderr, plugin.TLSEnv+`="yes"`) {
			t.Errorf("connectd %s with %s=yes: exit %d, stderr:\n%s\nwant exit 2 naming the variable", args[0], plugin.TLSEnv, r.Code, r.Stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("the run wrote output: %v", err)
	}
}
