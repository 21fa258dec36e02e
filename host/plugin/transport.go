package plugin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
)

// The plugin channel (docs/protocol.md, "Transport"): a unix socket in a
// directory only the host's user can enter, without TLS, since whoever can
// reach the socket (that user and root) can already read either process's
// memory. mTLS is on when TLSEnv asks for it (a user shared between tenants)
// and whenever a plugin is reached over TCP.

// TLSEnv names the environment variable that turns on go-plugin's automatic
// mTLS for every plugin process, even over a unix socket: "1" or "true" on,
// "0", "false" or unset off (over TCP it is always on). Loader reads it when
// it starts a plugin; cmd/connectd checks it first (TLSFromEnv) and refuses
// another value with exit status 2.
const TLSEnv = "CONNECTD_PLUGIN_TLS"

// TLSFromEnv returns whether TLSEnv turns mTLS on. A value other than "",
// "0", "1", "false" and "true" is an error that names the variable and the
// values it takes.
func TLSFromEnv() (bool, error) {
	switch v := os.Getenv(TLSEnv); v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: want 1 or true (mTLS on every plugin channel), 0 or false (mTLS only over TCP; the default)", TLSEnv, v)
	}
}

// overTCP reports whether go-plugin's Go servers listen on TCP here rather
// than on a unix socket (on Windows they always do).
var overTCP = runtime.GOOS == "windows"

// errTCPWithoutTLS is the start-up failure of a plugin that answered the
// handshake with a TCP address when the host had offered no TLS: connect
// starts it again with mTLS.
var errTCPWithoutTLS = errors.New("the plugin listens on TCP, and the host had not offered TLS")

// inherited lists the go-plugin variables the host never passes on from its
// own environment (a host started by another go-plugin host has them): the
// plugin must see only what this host sets for it.
var inherited = []string{"PLUGIN_CLIENT_CERT=", goplugin.EnvUnixSocketDir + "=", goplugin.EnvUnixSocketGroup + "="}

// pluginEnv returns env without the go-plugin variables in inherited.
func pluginEnv(env []string) []string {
	out := make([]string, 0, len(env)+2)
next:
	for _, e := range env {
		for _, p := range inherited {
			if strings.HasPrefix(e, p) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

// sockPrefix starts the name of every plugin socket directory, followed by
// os.MkdirTemp's random digits.
const sockPrefix = "connectd-"

// staleAfter is how long a socket directory must have been left unchanged
// before another host removes it as stale (and only when nothing listens on
// its sockets): longer than a plugin's start (30 s at most) and a restart's
// backoff (10 s at most).
const staleAfter = 2 * time.Minute

// acquireDir returns the directory in which plugin processes put their
// sockets, made (mode 0700, in socketBase) when the first
// process starts and removed when the last one is stopped or by Close. The
// caller calls releaseDir once for each successful acquireDir. The first time
// it makes one, it removes the directories that hosts killed by SIGKILL left
// (see sweep).
func (l *Loader) acquireDir() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sockDir != "" {
		if _, err := os.Stat(l.sockDir); err != nil {
			// Removed under us (by hand, or by another host's sweep
			// while none of ours listened): start a new one.
			l.sockDir, l.sockUsers = "", 0
		}
	}
	if l.sockDir == "" {
		base := socketBase()
		if !l.swept {
			l.swept = true
			sweep(base, time.Now().Add(-staleAfter))
		}
		dir, err := os.MkdirTemp(base, sockPrefix)
		if err != nil {
			return "", fmt.Errorf("make the plugin socket directory: %w", err)
		}
		// MkdirTemp makes it 0700 whatever the umask; say so once more, so
		// that the promise does not rest on a library's detail.
		if err := os.Chmod(dir, 0o700); err != nil {
			_ = os.Remove(dir)
			return "", fmt.Errorf("make the plugin socket directory: %w", err)
		}
		l.sockDir = dir
	}
	l.sockUsers++
	return l.sockDir, nil
}

// releaseDir gives back what acquireDir returned, removing socket, a dead
// process's socket file in it, if it is not "" (a process killed by SIGKILL
// leaves its socket behind); the directory goes with its last user.
func (l *Loader) releaseDir(dir, socket string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if socket != "" && filepath.Dir(socket) == dir {
		_ = os.Remove(socket) // gone already when the plugin closed its listener
	}
	if dir != l.sockDir {
		return // removed by Close
	}
	l.sockUsers--
	if l.sockUsers == 0 {
		_ = os.RemoveAll(dir)
		l.sockDir = ""
	}
}

// SocketDir returns the directory in which the running plugin processes have
// their unix sockets, "" when none runs. It is for tests and diagnostics.
func (l *Loader) SocketDir() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sockDir
}

// Close removes the plugin socket directory even while plugin processes run
// (their connections stay up; a plugin started afterwards gets a new
// directory). Stopping every process removes it too; Close is for a host that
// exits without stopping them. A host killed with SIGKILL leaves the
// directory, named connectd-*, in the temporary directory: mode 0700,
// holding at most the socket files of plugins that died with it, which nothing
// listens on; the next Loader of the same user to start a plugin removes it
// once it is staleAfter old.
func (l *Loader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sockDir == "" {
		return nil
	}
	err := os.RemoveAll(l.sockDir)
	l.sockDir, l.sockUsers = "", 0
	return err
}

// startClient runs client.Start, which shakes hands with the plugin, and
// returns the address the plugin listens on. go-plugin panics on a
// certificate the host did not ask for (a sixth handshake field when
// PLUGIN_CLIENT_CERT was not set): that is an error here.
func startClient(client *goplugin.Client, tls bool) (addr net.Addr, err error) {
	defer func() {
		if r := recover(); r != nil {
			addr, err = nil, fmt.Errorf("the plugin's handshake line has a server certificate, but the host asked for no TLS (it did not set PLUGIN_CLIENT_CERT): leave the 6th field empty (go-plugin: %v)", r)
		}
	}()
	addr, err = client.Start()
	if err != nil {
		return nil, err
	}
	if addr.Network() == "tcp" && !tls {
		return addr, errTCPWithoutTLS
	}
	return addr, nil
}
