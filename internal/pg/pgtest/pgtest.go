// Package pgtest gives a test binary a PostgreSQL server: the one PG_URL
// names, or else a throwaway one that scripts/testenv-postgres starts for the
// binary alone (installing Debian's postgresql when missing) and removes
// afterwards. Tests written with it run unchanged against any server.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/proc"
	"github.com/jackc/pgx/v5"
)

// Env is the environment variable that names a server to test against.
const Env = "PG_URL"

// Main runs the tests of a package that needs PostgreSQL: it sets *url to
// PG_URL or to a server it starts (and then sets PG_URL in the environment,
// for the processes the tests start), runs m, stops what it started and
// returns the exit code. Use it as os.Exit(pgtest.Main(m, &url)).
func Main(m *testing.M, url *string) int {
	if u := os.Getenv(Env); u != "" {
		*url = u
		return m.Run()
	}
	u, stop, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n(set %s to test against a running server)\n", err, Env)
		return 1
	}
	defer stop()
	*url = u
	os.Setenv(Env, u)
	return m.Run()
}

// Start starts a throwaway server with scripts/testenv-postgres and returns
// its URL and a function that stops and removes it.
func Start() (url string, stop func(), err error) {
	root, err := Root()
	if err != nil {
		return "", nil, err
	}
	state, err := os.MkdirTemp("", "connectd-pgtest")
	if err != nil {
		return "", nil, err
	}
	script := filepath.Join(root, "scripts", "testenv-postgres")
	run := func(arg string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, script, arg)
		cmd.Env = append(os.Environ(), "TESTENV_DIR="+state)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	// A watchdog stops the server if this process dies without stopping it
	// (a test binary killed by its timeout), so no cluster is left running.
	watch := exec.Command("sh", "-c", `while kill -0 "$1" 2>/dev/null; do sleep 1; done; TESTENV_DIR="$2" "$3" stop >/dev/null 2>&1; rm -rf "$2"`,
		"pgtest-watchdog", strconv.Itoa(os.Getpid()), state, script)
	proc.OwnSession(watch)
	if err := watch.Start(); err != nil {
		os.RemoveAll(state)
		return "", nil, err
	}
	go watch.Wait()
	stop = func() {
		_, _ = run("stop")
		os.RemoveAll(state)
		_ = watch.Process.Kill()
	}
	out, err := run("start")
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("%s start: %v\n%s", script, err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	u, ok := strings.CutPrefix(last, "PG_URL=")
	if !ok {
		stop()
		return "", nil, fmt.Errorf("%s start: last line is not PG_URL=...:\n%s", script, out)
	}
	return u, stop, nil
}

// Root returns the repository root: the nearest directory above the working
// directory that holds go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Name returns a fresh identifier for a table or schema that no other test
// run uses: prefix, an underscore and 8 random hex digits, in lower case.
func Name(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strings.ToLower(prefix) + "_" + hex.EncodeToString(b)
}

// Conn connects to url for the test and closes the connection at its end.
func Conn(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to the test server: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Schema creates a fresh schema for the test and drops it, with everything
// in it, at the test's end.
func Schema(t testing.TB, url, prefix string) string {
	t.Helper()
	c := Conn(t, url)
	name := Name(prefix)
	if _, err := c.Exec(context.Background(), "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	})
	return name
}
