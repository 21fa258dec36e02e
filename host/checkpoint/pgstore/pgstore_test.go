package pgstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/connectd/connectd/sdk"
)

// pgURL is the server every test uses: PG_URL, or one TestMain started.
var pgURL string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" { // a child of TestLockChildProcess: PG_URL is set
		pgURL = os.Getenv(pgtest.Env)
		os.Exit(m.Run())
	}
	os.Exit(pgtest.Main(m, &pgURL))
}

var ctx = context.Background()

func until(id int64) sdk.Offsets { return sdk.Offsets{"orders/0": id * 10, "orders/1": id} }

func entry(id int64) checkpoint.Entry {
	return checkpoint.Entry{Batch: id, From: until(id - 1), Until: until(id), Records: 11,
		Time: time.Date(2026, 1, 2, 3, 4, 5, int(id), time.UTC)}
}

func open(t testing.TB, schema string) *checkpoint.Store {
	t.Helper()
	s, err := Open(ctx, pgURL, schema, "demo")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func planCommit(t testing.TB, s *checkpoint.Store, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		if err := s.Plan(entry(id)); err != nil {
			t.Fatalf("plan %d: %v", id, err)
		}
		if err := s.Commit(id); err != nil {
			t.Fatalf("commit %d: %v", id, err)
		}
	}
}

func seq(a, b int64) []int64 {
	var out []int64
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}

// rows returns the lines of one log of pipeline "demo", in seq order.
func rows(t testing.TB, schema, log string) []string {
	t.Helper()
	c := pgtest.Conn(t, pgURL)
	r, err := c.Query(ctx, fmt.Sprintf("SELECT line FROM %q.%s WHERE pipeline = 'demo' AND log = $1 ORDER BY seq", schema, LogTable), log)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var l string
		if err := r.Scan(&l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func exec1(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := pgtest.Conn(t, pgURL).Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestSameFormatAsDir: the rows hold exactly the lines the directory store
// writes for the same entries, and both stores read back the same history.
func TestSameFormatAsDir(t *testing.T) {
	schema := pgtest.Schema(t, pgURL, "cp")
	dir := filepath.Join(t.TempDir(), "demo")
	ds, err := checkpoint.Open(dir, "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	ps := open(t, schema)
	for _, s := range []*checkpoint.Store{ds, ps} {
		planCommit(t, s, 1, 2, 3)
		if err := s.Plan(entry(4)); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(filepath.Join(dir, "offsets.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(rows(t, schema, checkpoint.OffsetLog), "\n")+"\n", string(file); got != want {
		t.Errorf("offsets rows differ from offsets.log:\nrows:\n%s\nfile:\n%s", got, want)
	}
	if n := len(rows(t, schema, checkpoint.CommitLog)); n != 3 {
		t.Errorf("%d commit rows, want 3", n)
	}
	for _, l := range rows(t, schema, checkpoint.CommitLog) {
		if !strings.HasPrefix(l, "v1 ") || !strings.Contains(l, `{"batch":`) {
			t.Errorf("commit row %q is not a v1 line", l)
		}
	}
	ps.Close()
	re := open(t, schema)
	p, ok, committed := re.Last()
	if !ok || p.Batch != 4 || committed != 3 || !p.Until.Equal(until(4)) {
		t.Errorf("reopened: last %d ok=%v committed %d until %s", p.Batch, ok, committed, p.Until)
	}
	if !re.Committed().Equal(until(3)) {
		t.Errorf("committed offsets %s, want %s", re.Committed(), until(3))
	}
	dh, ph := ds.History(), re.History()
	if len(dh) != len(ph) {
		t.Fatalf("history lengths %d and %d", len(dh), len(ph))
	}
	for i := range dh {
		if dh[i].Batch != ph[i].Batch || dh[i].Committed != ph[i].Committed || !dh[i].Until.Equal(ph[i].Until) || !dh[i].Time.Equal(ph[i].Time) {
			t.Errorf("history %d: dir %+v, postgres %+v", i, dh[i], ph[i])
		}
	}
	if w := re.Where(); !strings.Contains(w, schema) || !strings.Contains(w, `pipeline "demo"`) {
		t.Errorf("Where() = %q", w)
	}
	// The rules are the directory store's: a second plan of a committed batch is refused.
	if err := re.Plan(entry(3)); err == nil || !strings.Contains(err.Error(), "cannot plan batch 3") {
		t.Errorf("plan of committed batch 3: %v", err)
	}
	// The replay of batch 4 replaces its row's meaning (a re-plan) and commits.
	if err := re.Plan(entry(4)); err != nil {
		t.Fatalf("re-plan 4: %v", err)
	}
	if err := re.Commit(4); err != nil {
		t.Fatal(err)
	}
}

// TestTwoHostsRace opens one pipeline's checkpoint from many connections at
// once, on a database without the tables yet: exactly one wins; the others
// get ErrLocked naming the winner's session, and nothing is damaged.
func TestTwoHostsRace(t *testing.T) {
	schema := pgtest.Name("race") // Open creates the schema: that races too
	t.Cleanup(func() { exec1(t, fmt.Sprintf("DROP SCHEMA IF EXISTS %q CASCADE", schema)) })
	const n = 6
	var wg sync.WaitGroup
	var won atomic.Int32
	stores := make([]*checkpoint.Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = Open(ctx, pgURL, schema, "demo")
			if errs[i] == nil {
				won.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d of %d racing hosts opened the checkpoint, want 1; errors: %v", won.Load(), n, errs)
	}
	var winner *checkpoint.Store
	for i, err := range errs {
		if err == nil {
			winner = stores[i]
			continue
		}
		if !errors.Is(err, checkpoint.ErrLocked) {
			t.Errorf("loser %d: %v, want ErrLocked", i, err)
			continue
		}
		for _, w := range []string{"already running", `pipeline "demo"`, "connectd host pid " + fmt.Sprint(os.Getpid())} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("loser %d: error %q lacks %q", i, err, w)
			}
		}
	}
	planCommit(t, winner, 1, 2)
	// A different pipeline in the same schema is not locked.
	other, err := Open(ctx, pgURL, schema, "other")
	if err != nil {
		t.Fatalf("another pipeline: %v", err)
	}
	other.Close()
	if err := winner.Close(); err != nil {
		t.Fatal(err)
	}
	s := open(t, schema)
	if _, _, c := s.Last(); c != 2 {
		t.Errorf("after the race: committed %d, want 2", c)
	}
}

const helperEnv = "PGSTORE_TEST_HELPER"

// TestHelperProcess is not a test: TestLockChildProcess runs the test binary
// with helperEnv set to a schema; it opens the checkpoint, says "locked" and
// waits until its stdin closes or it is killed.
func TestHelperProcess(t *testing.T) {
	schema := os.Getenv(helperEnv)
	if schema == "" {
		t.Skip("helper process for TestLockChildProcess")
	}
	s, err := Open(ctx, pgURL, schema, "demo")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	os.Exit(0)
}

// TestLockChildProcess: a host in another process holds the lock until it
// closes the store or is killed with SIGKILL.
func TestLockChildProcess(t *testing.T) {
	for _, release := range []string{"close", "kill -9"} {
		t.Run(release, func(t *testing.T) {
			schema := pgtest.Schema(t, pgURL, "lock")
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), helperEnv+"="+schema, pgtest.Env+"="+pgURL)
			cmd.Stderr = os.Stderr
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
				t.Fatalf("child said %q", line)
			}
			_, err := Open(ctx, pgURL, schema, "demo")
			if !errors.Is(err, checkpoint.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
				t.Fatalf("Open while the child holds the lock: %v; want ErrLocked naming pid %d", err, cmd.Process.Pid)
			}
			if release == "close" {
				stdin.Close()
			} else {
				cmd.Process.Signal(syscall.SIGKILL)
			}
			cmd.Wait()
			// The server ends the dead session at once; allow it a moment.
			deadline := time.Now().Add(10 * time.Second)
			for {
				s, err := Open(ctx, pgURL, schema, "demo")
				if err == nil {
					s.Close()
					return
				}
				if !errors.Is(err, checkpoint.ErrLocked) || time.Now().After(deadline) {
					t.Fatalf("Open after the child released the lock (%s): %v", release, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// proxy forwards TCP connections to the server. Armed, it forwards the
// client's next request but drops the server's answer and cuts the
// connection: the request is carried out, its answer is lost.
type proxy struct {
	ln    net.Listener
	armed atomic.Bool
	lost  atomic.Int32 // answers dropped
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						if p.armed.CompareAndSwap(true, false) {
							p.lost.Add(1)
							c.Close()
							s.Close()
							return
						}
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return p
}

// viaProxy returns PG_URL with its host and port replaced by the proxy's.
func viaProxy(t *testing.T) (string, *proxy) {
	u, err := url.Parse(pgURL)
	if err != nil || u.Host == "" {
		t.Skipf("PG_URL is not a URL with a host (%v): the proxy test needs one", err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	p := newProxy(t, host)
	u.Host = p.ln.Addr().String()
	return u.String(), p
}

// TestLostCommitAnswer: the server stores a commit (or a plan) but its answer
// never reaches the host. The store refuses to go on; reopened, it holds the
// write exactly once and the pipeline continues from there.
func TestLostCommitAnswer(t *testing.T) {
	for _, what := range []string{"commit", "plan"} {
		t.Run(what, func(t *testing.T) {
			schema := pgtest.Schema(t, pgURL, "lost")
			u, p := viaProxy(t)
			s, err := Open(ctx, u, schema, "demo")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			planCommit(t, s, 1, 2)
			if what == "commit" {
				if err := s.Plan(entry(3)); err != nil {
					t.Fatal(err)
				}
			}
			p.armed.Store(true)
			if what == "commit" {
				err = s.Commit(3)
			} else {
				err = s.Plan(entry(3))
			}
			if err == nil || p.lost.Load() != 1 {
				t.Fatalf("%s with a lost answer: err %v, %d answers lost", what, err, p.lost.Load())
			}
			if err := s.Plan(entry(4)); err == nil || !strings.Contains(err.Error(), "an earlier write failed") {
				t.Errorf("plan after the failed %s: %v, want a refusal", what, err)
			}
			s.Close()

			re := open(t, schema) // directly: the lock died with the proxied session
			planned, ok, committed := re.Last()
			switch what {
			case "commit":
				if !ok || planned.Batch != 3 || committed != 3 {
					t.Errorf("reopened: planned %d, committed %d; want batch 3 committed (the server stored it)", planned.Batch, committed)
				}
				if err := re.Commit(3); err == nil {
					t.Errorf("batch 3 committed twice")
				}
			case "plan":
				if !ok || planned.Batch != 3 || committed != 2 {
					t.Errorf("reopened: planned %d, committed %d; want batch 3 planned, 2 committed", planned.Batch, committed)
				}
				planCommit(t, re, 3) // the host replays it
			}
			planCommit(t, re, 4)
			if got := rows(t, schema, checkpoint.CommitLog); len(got) != 4 {
				t.Errorf("%d commit rows, want 4 (one per batch):\n%s", len(got), strings.Join(got, "\n"))
			}
		})
	}
}

// crc renders a log line as the checkpoint writes it.
func crc(j string) string {
	return fmt.Sprintf("v1 %08x %s", crc32.Checksum([]byte(j), crc32.MakeTable(crc32.Castagnoli)), j)
}

// TestCorruptRow damages rows in different ways: Open fails with ErrCorrupt
// and a message that names the table, the row and the problem.
func TestCorruptRow(t *testing.T) {
	cases := []struct {
		name   string
		damage string // SQL run on the schema's tables; %s is the schema
		want   []string
	}{
		{"checksum", `UPDATE %[1]q.connectd_checkpoint_log SET line = replace(line, '"records":11', '"records":12') WHERE log = 'offsets' AND seq = 2`,
			[]string{`"connectd_checkpoint_log" row (pipeline "demo", log "offsets", seq 2)`, "checksum mismatch"}},
		{"version", `UPDATE %[1]q.connectd_checkpoint_log SET line = 'v9' || substr(line, 3) WHERE log = 'commits' AND seq = 3`,
			[]string{`log "commits", seq 3`, `unknown version prefix "v9"`}},
		{"missing row", `DELETE FROM %[1]q.connectd_checkpoint_log WHERE log = 'offsets' AND seq = 2`,
			[]string{`log "offsets", seq 3`, "skips ahead"}},
		{"not a line", `UPDATE %[1]q.connectd_checkpoint_log SET line = 'hello' WHERE log = 'offsets' AND seq = 1`,
			[]string{`seq 1)`, "malformed line"}},
		{"meta row missing", `DELETE FROM %[1]q.connectd_checkpoint`,
			[]string{`"connectd_checkpoint"`, `no row for pipeline "demo"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			schema := pgtest.Schema(t, pgURL, "bad")
			s := open(t, schema)
			planCommit(t, s, 1, 2, 3)
			s.Close()
			exec1(t, fmt.Sprintf(c.damage, schema))
			_, err := Open(ctx, pgURL, schema, "demo")
			if !errors.Is(err, checkpoint.ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			for _, w := range append(c.want, schema, "the checkpoint is corrupt") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
			if _, err := Inspect(ctx, pgURL, schema, "demo"); c.name != "meta row missing" && !errors.Is(err, checkpoint.ErrCorrupt) {
				t.Errorf("Inspect: %v, want ErrCorrupt", err)
			}
		})
	}
	t.Run("newer format", func(t *testing.T) {
		schema := pgtest.Schema(t, pgURL, "bad")
		open(t, schema).Close()
		exec1(t, fmt.Sprintf(`UPDATE %q.connectd_checkpoint SET format = 2`, schema))
		_, err := Open(ctx, pgURL, schema, "demo")
		if err == nil || !strings.Contains(err.Error(), "upgrade connectd") {
			t.Fatalf("Open of a format 2 checkpoint: %v", err)
		}
	})
}

// TestResetCutShort: a crash between the two appends of a Reset leaves a
// reset batch planned but not committed; Open finishes it.
func TestResetCutShort(t *testing.T) {
	schema := pgtest.Schema(t, pgURL, "reset")
	s := open(t, schema)
	planCommit(t, s, 1, 2)
	s.Close()
	line := crc(`{"batch":3,"time":"2026-01-02T03:04:05Z","from":{"orders":{"0":20,"1":2}},"until":{"orders":{"0":5,"1":0}},"records":0,"kind":"reset","note":"by hand"}`)
	exec1(t, fmt.Sprintf(`INSERT INTO %q.connectd_checkpoint_log VALUES ('demo', 'offsets', 3, $1)`, schema), line)
	re := open(t, schema)
	if _, _, c := re.Last(); c != 3 {
		t.Fatalf("committed %d after reopening a cut-short reset, want 3", c)
	}
	if want := (sdk.Offsets{"orders/0": 5, "orders/1": 0}); !re.Committed().Equal(want) {
		t.Errorf("committed offsets %s, want %s", re.Committed(), want)
	}
	e, err := re.Reset(sdk.Offsets{"orders/0": 1}, "again")
	if err != nil || e.Batch != 4 {
		t.Fatalf("Reset: batch %d, %v", e.Batch, err)
	}
}

// TestCompaction: past 1000 offset rows the logs are compacted in one
// transaction, and the store reads back the same recent history.
func TestCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	schema := pgtest.Schema(t, pgURL, "compact")
	s := open(t, schema)
	planCommit(t, s, seq(1, 1001)...)
	if n := len(rows(t, schema, checkpoint.OffsetLog)); n != 200 {
		t.Errorf("%d offset rows after compaction, want 200", n)
	}
	planCommit(t, s, 1002)
	s.Close()
	re := open(t, schema)
	h := re.History()
	if len(h) != 201 || h[0].Batch != 802 || h[200].Batch != 1002 || !h[200].Committed {
		t.Errorf("history after compaction: %d batches, %d..%d", len(h), h[0].Batch, h[len(h)-1].Batch)
	}
	offs := rows(t, schema, checkpoint.OffsetLog)
	if !strings.Contains(offs[0], `"batch":802,`) || !strings.Contains(offs[len(offs)-1], `"batch":1002,`) {
		t.Errorf("offset rows run from %q to %q", offs[0], offs[len(offs)-1])
	}
}

// TestInspect reads a checkpoint while its host holds the lock.
func TestInspect(t *testing.T) {
	schema := pgtest.Schema(t, pgURL, "insp")
	if _, err := Inspect(ctx, pgURL, schema, "demo"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Inspect before any run: %v, want ErrNotExist", err)
	}
	s := open(t, schema)
	planCommit(t, s, 1, 2)
	if err := s.Plan(entry(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(ctx, pgURL, schema, "nosuch"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Inspect of another pipeline: %v, want ErrNotExist", err)
	}
	in, err := Inspect(ctx, pgURL, schema, "demo")
	if err != nil {
		t.Fatalf("Inspect while locked: %v", err)
	}
	if p, _, c := in.Last(); p.Batch != 3 || c != 2 {
		t.Errorf("Inspect: planned %d committed %d", p.Batch, c)
	}
	if err := in.Commit(3); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Commit on an inspected store: %v", err)
	}
}

// TestPasswordNeverShown: errors about a server name it without the password.
func TestPasswordNeverShown(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	for _, u := range []string{
		"postgres://connectd:" + pw + "@127.0.0.1:1/connectd?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=connectd password=" + pw + " connect_timeout=2",
		"postgres://connectd:" + pw + "@127.0.0.1:notaport/db",
	} {
		_, err := Open(ctx, u, "public", "demo")
		if err == nil {
			t.Fatalf("Open of %q succeeded", u)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the password: %v", err)
		}
	}
	// A wrong password on the real server.
	if u, err := url.Parse(pgURL); err == nil && u.Host != "" {
		u.User = url.UserPassword(u.User.Username(), pw)
		if _, err := Open(ctx, u.String(), "public", "demo"); err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("Open with a wrong password: %v", err)
		}
	}
}
