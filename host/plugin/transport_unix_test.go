//go:build unix

package plugin

import (
	"os"
	"syscall"
	"testing"
)

// checkPrivate fails t unless dir is a directory of mode 0700 owned by this
// process's user.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("socket directory %s has mode %v, want a directory of mode 0700", dir, st.Mode())
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Getuid() {
		t.Errorf("socket directory %s is owned by uid %d, want %d", dir, uid, os.Getuid())
	}
}
