//go:build unix

package plugin

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

// A Loader starting its first plugin removes the socket directories that
// killed hosts left (old, this user's, only sockets nothing listens on), and
// nothing else: not a directory where a plugin still listens, not one that
// changed recently, not one holding another file, not another name.
func TestSweepStale(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	old := time.Now().Add(-staleAfter - time.Minute)
	mk := func(name string, entries func(dir string), mtime time.Time) string {
		t.Helper()
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		entries(dir)
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dead := func(dir string) { // a socket whose listener is gone, as after SIGKILL
		l, err := net.Listen("unix", filepath.Join(dir, "plugin1"))
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		_ = l.Close()
	}
	var live net.Listener
	listening := func(dir string) {
		var err error
		live, err = net.Listen("unix", filepath.Join(dir, "plugin2"))
		if err != nil {
			t.Fatal(err)
		}
	}
	file := func(dir string) {
		dead(dir)
		if err := os.WriteFile(filepath.Join(dir, "notes"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gone := []string{
		mk(sockPrefix+"111", dead, old),
		mk(sockPrefix+"112", func(string) {}, old), // killed before its first plugin listened
	}
	kept := []string{
		mk(sockPrefix+"221", func(dir string) { dead(dir); listening(dir) }, old),
		mk(sockPrefix+"222", dead, time.Now()),
		mk(sockPrefix+"223", file, old),
		mk("connectd-other-224", dead, old),
		mk(sockPrefix+"x225", dead, old),
	}
	defer live.Close()

	l := &Loader{Exe: os.Args[0], Bundled: testPlugins}
	p, err := l.Start(context.Background(), sdk.KindSink, "env", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	for _, d := range gone {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want it removed", filepath.Base(d), err)
		}
	}
	for _, d := range kept {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v, want it kept", filepath.Base(d), err)
		}
	}
	if filepath.Dir(l.SocketDir()) != tmp {
		t.Errorf("SocketDir() = %q, want one in %s", l.SocketDir(), tmp)
	}
}

// A socket directory removed under a Loader (by hand, or by a sweep while
// none of its plugins listened) is made again for the next plugin.
func TestSocketDirRemovedUnder(t *testing.T) {
	l := &Loader{Exe: os.Args[0], Bundled: testPlugins}
	ctx := context.Background()
	a, err := l.Start(ctx, sdk.KindSink, "env", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	first := l.SocketDir()
	if err := os.RemoveAll(first); err != nil {
		t.Fatal(err)
	}
	b, err := l.Start(ctx, sdk.KindSink, "env", os.Environ())
	if err != nil {
		t.Fatalf("start after the socket directory was removed: %v", err)
	}
	now := l.SocketDir()
	if now == first {
		t.Fatalf("SocketDir() = %q, the removed directory", now)
	}
	a.Kill()
	b.Kill()
	if _, err := os.Stat(now); !os.IsNotExist(err) {
		t.Errorf("socket directory after the last plugin stopped: %v, want it removed", err)
	}
}

// With a $TMPDIR so long that a socket path in it would not fit (bind fails
// with "invalid argument"), the socket directory is made in /tmp.
func TestSocketDirLongTMPDIR(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 90))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	l := &Loader{Exe: os.Args[0], Bundled: testPlugins}
	p, err := l.Start(context.Background(), sdk.KindSink, "env", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if filepath.Dir(l.SocketDir()) != "/tmp" {
		t.Errorf("SocketDir() = %q, want one in /tmp", l.SocketDir())
	}
	checkPrivate(t, l.SocketDir())
}
