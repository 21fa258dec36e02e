//go:build unix

package plugin

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a unix socket can have everywhere (104
// bytes with the NUL on macOS and the BSDs, 108 on Linux).
const maxSocketPath = 103

// socketName is as long as the longest socket path a Go plugin makes in the
// directory, after it: "/" and go-plugin's os.CreateTemp("plugin") name.
const socketName = len("/plugin4294967295")

// socketBase returns where socket directories are made: the temporary
// directory, or /tmp when a socket path would be too long there (a long
// $TMPDIR: bind fails with "invalid argument").
func socketBase() string {
	base := os.TempDir()
	if len(base)+1+len(sockPrefix)+len("4294967295")+socketName > maxSocketPath {
		return "/tmp"
	}
	return base
}

// staleName is the name of a socket directory: sockPrefix and MkdirTemp's digits.
var staleName = regexp.MustCompile("^" + regexp.QuoteMeta(sockPrefix) + "[0-9]+$")

// sweep removes from tmp the socket directories that hosts killed by SIGKILL
// left: a directory is removed only when its name is a socket directory's,
// it belongs to this process's user, it has not changed since before, it
// holds nothing but unix sockets, and none of them accepts a connection. A
// live host's directory always has a plugin listening, or changed recently
// (a plugin starting or restarting). Errors are ignored: what cannot be
// removed stays, as harmless as before.
func sweep(tmp string, before time.Time) {
	es, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range es {
		if !e.IsDir() || !staleName.MatchString(e.Name()) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if stale(dir, before) {
			_ = os.RemoveAll(dir)
		}
	}
}

// stale reports whether dir is a dead host's socket directory (see sweep).
func stale(dir string, before time.Time) bool {
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() || !st.ModTime().Before(before) {
		return false
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Geteuid() {
		return false
	}
	es, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range es {
		if e.Type()&os.ModeSocket == 0 {
			return false
		}
		c, err := net.DialTimeout("unix", filepath.Join(dir, e.Name()), time.Second)
		if err == nil {
			_ = c.Close()
			return false
		}
	}
	return true
}
