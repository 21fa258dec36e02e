//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/jackc/pgx/v5"
)

// The workers' end-to-end tests: real connectd worker processes on loopback
// share pipelines through the PostgreSQL test server (PG_URL, or one started
// here) and are killed, stopped and resumed.

// pgForTest returns PG_URL, or starts a throwaway server for the test.
func pgForTest(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(pgtest.Env); u != "" {
		return u
	}
	u, stop, err := pgtest.Start()
	if err != nil {
		t.Skipf("no PostgreSQL: %v (set %s)", err, pgtest.Env)
	}
	t.Cleanup(stop)
	return u
}

// workerProc is one `connectd worker` process that a test kills, stops and
// restarts.
type workerProc struct {
	t        testing.TB
	id       string
	args     []string
	env      []string
	dir      string
	cmd      *exec.Cmd
	log      *e2e.Buffer // every incarnation's stderr
	done     chan struct{}
	exitCode int
}

func startWorker(t testing.TB, dir, id string, env []string, args ...string) *workerProc {
	w := &workerProc{t: t, id: id, args: args, env: env, dir: dir, log: &e2e.Buffer{}}
	w.start()
	t.Cleanup(func() {
		if w.running() {
			_ = w.cmd.Process.Signal(syscall.SIGCONT)
			_ = w.cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

func (w *workerProc) start() {
	w.t.Helper()
	// A new id per incarnation, as a restarted process gets by default.
	w.cmd = exec.Command(bin, append([]string{"worker", "--id", fmt.Sprintf("%s.%d", w.id, time.Now().UnixNano()%1e6)}, w.args...)...)
	w.cmd.Dir = w.dir
	w.cmd.Env = append(os.Environ(), w.env...)
	w.cmd.Stderr = w.log
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan struct{})
	w.done = done
	go func(cmd *exec.Cmd) {
		_ = cmd.Wait()
		w.exitCode = cmd.ProcessState.ExitCode()
		close(done)
	}(w.cmd)
}

func (w *workerProc) running() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// workerID is the id the current incarnation passed to --id.
func (w *workerProc) workerID() string { return w.cmd.Args[3] }

func (w *workerProc) kill() {
	_ = w.cmd.Process.Kill()
	<-w.done
}

// stop sends SIGTERM and returns the exit status.
func (w *workerProc) stop() int {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(60 * time.Second):
		w.t.Errorf("worker %s did not stop within 60s of SIGTERM:\n%s", w.id, w.log)
		w.kill()
	}
	return w.exitCode
}

// leases returns unit → holder from the lease table, holders "" when free.
func leases(t testing.TB, c *pgx.Conn, schema string) map[string]string {
	t.Helper()
	rows, err := c.Query(context.Background(), fmt.Sprintf("SELECT name, worker FROM %q.connectd_lease WHERE expires > now()", schema))
	if err != nil {
		return nil // not created yet
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, w string
		if err := rows.Scan(&n, &w); err != nil {
			t.Fatal(err)
		}
		out[n] = w
	}
	return out
}

// waitLeases polls until cond holds on the lease table and returns how long
// it took, failing the test after limit.
func waitLeases(t testing.TB, c *pgx.Conn, schema, what string, limit time.Duration, cond func(map[string]string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		l := leases(t, c, schema)
		if cond(l) {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %s; leases %v", what, limit, l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOnce asserts that table holds each id of want exactly once.
func checkOnce(t testing.TB, c *pgx.Conn, table string, want int) {
	t.Helper()
	var rows, distinct int
	if err := c.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT id) FROM "+table).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != want || distinct != want {
		t.Errorf("%s: %d rows, %d distinct ids; want %d ids exactly once (%d lost, %d duplicated)", table, rows, distinct, want, want-distinct, rows-distinct)
	}
}

// waitRows waits until table holds at least n rows.
func waitRows(t testing.TB, c *pgx.Conn, table string, n int, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		var got int
		if err := c.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: %d rows after %s, want %d", table, got, limit, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const eventsDDL = `CREATE TABLE %s (id text, partition int, "offset" bigint, pad text)` // no unique index: only the transactions prevent duplicates

// pgCheckpoint is the checkpoint block of the workers' pipelines.
func pgCheckpoint(schema string) string {
	return fmt.Sprintf(`checkpoint {
    store  = "postgres"
    url    = env("PG_URL")
    schema = %q
  }`, schema)
}

// TestWorkersChaos: 3 workers share 4 kafka → postgres pipelines, one of
// them running as two tasks (parallelism = 2: 5 leases), (exactly-once,
// insert mode, tables without a unique index) while the
// topics fill at a steady rate; every few seconds one worker is killed
// with kill -9 and restarted, and once one is stopped (SIGSTOP) for longer
// than its lease, then resumed. Every id is in its table exactly once at the
// end, and the leases of a killed or stopped worker moved within the bound
// the docs give (a killed one's at the next tick, a stopped one's after the
// TTL). It logs the takeover times it measured.
func TestWorkersChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const units, perTopic, rate = 4, 6000, 250 // about 24 s of input
	// move0 runs as two tasks (parallelism = 2, one partition each), each
	// with its own lease, checkpoint and offsets row in the sink's table.
	const leased = units + 1
	const ttl = 2 * time.Second
	pgURL := pgForTest(t)
	root, err := pgtest.Root()
	if err != nil {
		t.Fatal(err)
	}
	brokers := e2e.KafkaBrokers(t, root)
	brokersHCL := `["` + strings.Join(brokers, `", "`) + `"]`
	c := pgtest.Conn(t, pgURL)
	schema := pgtest.Schema(t, pgURL, "workers")
	dir := t.TempDir()
	env := []string{pgtest.Env + "=" + pgURL}
	var producers, consumers strings.Builder
	topicBase := pgtest.Name("cl")
	for i := range units {
		topic := fmt.Sprintf("%s-%d", topicBase, i)
		table := fmt.Sprintf("%s.events%d", schema, i)
		if _, err := c.Exec(context.Background(), fmt.Sprintf(eventsDDL, table)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&producers, `
pipeline "fill%d" {
  delivery = "at-least-once" # nothing crashes it: each record once
  source "generator" {
    count      = %d
    partitions = 2
    size       = 64
    rate       = %d
  }
  sink "kafka" {
    brokers          = %s
    topic            = %q
    create_topics    = true
    topic_partitions = 2
  }
  batch {
    max_records = 100
    max_wait    = "100ms"
  }
  checkpoint { dir = "state/fill%d" }
}
`, i, perTopic, rate, brokersHCL, topic, i)
		fmt.Fprintf(&consumers, `
pipeline "move%d" {
  delivery = "exactly-once"
  source "kafka" {
    brokers          = %s
    topics           = [%q]
    starting_offsets = "earliest"
  }
  sink "postgres" {
    url   = env("PG_URL")
    table = %q
    mode  = "insert"
  }
  batch {
    max_records = 200
    max_wait    = "100ms"
  }
  parallelism = %d
  %s
}
`, i, brokersHCL, topic, table, map[bool]int{true: 2, false: 1}[i == 0], pgCheckpoint(schema))
	}
	fill := write(t, dir, "fill.hcl", producers.String())
	move := write(t, dir, "move.hcl", consumers.String())
	producer := exec.Command(bin, "run", "--drain", fill)
	producer.Dir = dir
	plog := &e2e.Buffer{}
	producer.Stderr = plog
	if err := producer.Start(); err != nil {
		t.Fatal(err)
	}
	produced := make(chan error, 1)
	go func() { produced <- producer.Wait() }()
	t.Cleanup(func() { _ = producer.Process.Kill() })
	// The topics exist before the workers start (starting_offsets earliest).
	waitFor(t, "the producer's first batches", 30*time.Second, func() bool {
		for i := range units {
			if !strings.Contains(plog.String(), fmt.Sprintf("pipeline %q: batch", fmt.Sprintf("fill%d", i))) {
				return false
			}
		}
		return true
	})

	args := []string{"--lease-ttl", ttl.String(), "--progress", "json", move}
	var ws []*workerProc
	for i := range 3 {
		ws = append(ws, startWorker(t, dir, fmt.Sprintf("w%d", i), env, args...))
	}
	all := func(l map[string]string) bool {
		n := 0
		for _, w := range l {
			if w != "" {
				n++
			}
		}
		return n == leased
	}
	waitLeases(t, c, schema, "every unit leased", 30*time.Second, all)

	// moved waits until no lease is held by id, and every unit is leased.
	moved := func(what, id string, limit time.Duration) time.Duration {
		return waitLeases(t, c, schema, what, limit, func(l map[string]string) bool {
			for _, w := range l {
				if w == id {
					return false
				}
			}
			return all(l)
		})
	}
	holds := func(id string) bool {
		for _, w := range leases(t, c, schema) {
			if w == id {
				return true
			}
		}
		return false
	}
	rng := rand.New(rand.NewSource(1))
	var kills []time.Duration
	var stoppedFor time.Duration
	deadline := time.Now().Add(40 * time.Second)
	for round := 0; time.Now().Before(deadline); round++ {
		time.Sleep(time.Duration(2000+rng.Intn(2000)) * time.Millisecond)
		w := ws[rng.Intn(len(ws))]
		if round == 3 {
			// Stop one that holds a lease for 2 TTLs, then resume it: its
			// units move after the TTL, its late writes are fenced.
			for _, cand := range ws {
				if holds(cand.workerID()) {
					w = cand
					break
				}
			}
			_ = w.cmd.Process.Signal(syscall.SIGSTOP)
			stoppedFor = moved("the stopped worker's units taken over", w.workerID(), 4*ttl)
			time.Sleep(2*ttl - stoppedFor)
			_ = w.cmd.Process.Signal(syscall.SIGCONT)
			t.Logf("SIGSTOP %s: its units moved after %s (lease TTL %s); resumed after %s", w.workerID(), stoppedFor.Round(time.Millisecond), ttl, 2*ttl)
			continue
		}
		id := w.workerID()
		had := holds(id)
		w.kill()
		if had {
			d := moved("a killed worker's units taken over", id, ttl+2*time.Second)
			kills = append(kills, d)
		}
		w.start()
	}
	t.Logf("kill -9 of a lease holder: its units taken over in %v (lease TTL %s, tick %s)", roundAll(kills), ttl, ttl/4)
	if stoppedFor < ttl-ttl/4 {
		t.Errorf("a stopped worker's units moved after %s, before its lease (%s) could have expired", stoppedFor, ttl)
	}
	if len(kills) < 3 {
		t.Errorf("only %d kills hit a lease holder; the test proves little", len(kills))
	}
	select {
	case err := <-produced:
		if err != nil {
			t.Fatalf("the producer failed: %v\n%s", err, plog)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the producer did not finish:\n%s", plog)
	}
	for i := range units {
		waitRows(t, c, fmt.Sprintf("%s.events%d", schema, i), perTopic, 60*time.Second)
	}
	time.Sleep(time.Second) // a duplicate committed late would show now
	for _, w := range ws {
		if code := w.stop(); code != 0 {
			t.Errorf("worker %s: exit %d after SIGTERM:\n%s", w.id, code, tail(w.log.String(), 40))
		}
	}
	for i := range units {
		checkOnce(t, c, fmt.Sprintf("%s.events%d", schema, i), perTopic)
	}
	if t.Failed() {
		for _, w := range ws {
			t.Logf("worker %s log:\n%s", w.id, tail(w.log.String(), 60))
		}
	}
}

func roundAll(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond).String()
	}
	return out
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestWorkerZombie: worker A is stopped (SIGSTOP) while its sink is inside
// batch N's transaction, held there by a table lock; worker B takes the
// pipeline over after the lease TTL and replays batch N. Once A is resumed,
// its sink's transaction commits (the batch is the same either way) but A's
// commit of batch N to the checkpoint is refused with an error that says it
// was fenced; A drops the pipeline and goes on. Every id is in the table once.
func TestWorkerZombie(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const count = 3000
	const ttl = 2 * time.Second
	pgURL := pgForTest(t)
	c := pgtest.Conn(t, pgURL)
	schema := pgtest.Schema(t, pgURL, "zombie")
	table := schema + ".events"
	if _, err := c.Exec(context.Background(), fmt.Sprintf(eventsDDL, table)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := []string{pgtest.Env + "=" + pgURL}
	cfg := write(t, dir, "z.hcl", fmt.Sprintf(`
pipeline "z" {
  delivery = "exactly-once"
  source "generator" {
    count      = %d
    partitions = 2
    size       = 64
    rate       = 500
  }
  sink "postgres" {
    url   = env("PG_URL")
    table = %q
    mode  = "insert"
  }
  batch {
    max_records = 100
    max_wait    = "100ms"
  }
  %s
}
`, count, table, pgCheckpoint(schema)))
	args := []string{"--lease-ttl", ttl.String(), cfg}
	a := startWorker(t, dir, "a", env, args...)
	var b *workerProc
	defer func() {
		if t.Failed() {
			t.Logf("A's log:\n%s", tail(a.log.String(), 60))
			if b != nil {
				t.Logf("B's log:\n%s", tail(b.log.String(), 60))
			}
		}
	}()
	waitRows(t, c, table, 200, 30*time.Second)

	// Hold A's next batch inside the sink's transaction.
	lock, err := c.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(context.Background())
	if _, err := lock.Exec(context.Background(), "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	watch := pgtest.Conn(t, pgURL)
	waitFor(t, "A's sink waiting for the table lock", 10*time.Second, func() bool {
		var n int
		_ = watch.QueryRow(context.Background(), "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass", table).Scan(&n)
		return n > 0
	})
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	aID := a.workerID()
	b = startWorker(t, dir, "b", env, append([]string{"--http", "127.0.0.1:0"}, args...)...)
	took := waitLeases(t, watch, schema, "B takes the pipeline over", 4*ttl, func(l map[string]string) bool {
		return l["z"] == b.workerID()
	})
	t.Logf("B took the pipeline over %s after A was stopped (lease TTL %s)", took.Round(time.Millisecond), ttl)
	time.Sleep(500 * time.Millisecond) // B's recovery reaches the sink
	if err := lock.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A says it was fenced", 15*time.Second, func() bool {
		log := strings.ReplaceAll(a.log.String(), `\"`, `"`) // slog's text quotes the error
		// Whichever refuses first: A's checkpoint commit, or A's sink when
		// B's replay of the batch committed there before A's write did.
		return strings.Contains(log, "append to the commits log: fenced: pipeline \"z\": this worker's lease (epoch 1) was taken over by worker "+fmt.Sprintf("%q", b.workerID())+" (epoch 2)") ||
			(strings.Contains(log, "unit fenced") && strings.Contains(log, "lease epoch 1 is older than epoch 2"))
	})
	if !a.running() {
		t.Errorf("A exited (%d) after being fenced; it should drop the pipeline and go on:\n%s", a.exitCode, a.log)
	}
	t.Logf("A, resumed: %s", grepLine(a.log.String(), "fenced:"))
	// offsets show says who runs the pipeline, since when, under which epoch.
	r := connectd(t, dir, env, "offsets", "show", "--json", cfg)
	var st struct {
		Owner struct {
			Worker string
			Epoch  int64
			Since  time.Time
			Live   bool
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil || r.Code != 0 {
		t.Fatalf("offsets show --json: exit %d, %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	if o := st.Owner; o.Worker != b.workerID() || o.Epoch != 2 || !o.Live || time.Since(o.Since) > time.Minute {
		t.Errorf("offsets show: owner %+v, want worker %s, epoch 2, live, since a moment ago", o, b.workerID())
	}
	if r := connectd(t, dir, env, "offsets", "show", cfg); !strings.Contains(r.Stdout, fmt.Sprintf("owner: worker %q since ", b.workerID())) || !strings.Contains(r.Stdout, "(lease epoch 2)") {
		t.Errorf("offsets show does not name the owner:\n%s", r.Stdout)
	}
	// So does B's status API.
	var url string
	waitFor(t, "B serving HTTP", 10*time.Second, func() bool {
		m := regexp.MustCompile(`serving http://(\S+?)/ `).FindStringSubmatch(b.log.String())
		if m != nil {
			url = "http://" + m[1]
		}
		return m != nil
	})
	resp, err := http.Get(url + "/v1/pipelines/z")
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		State string
		Owner struct {
			Worker string
			Epoch  int64
			Here   bool
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	if err != nil || api.Owner.Worker != b.workerID() || api.Owner.Epoch != 2 || !api.Owner.Here || api.State != "running" {
		t.Errorf("B's GET /v1/pipelines/z: %+v (%v), want running, owner %s, epoch 2, here", api, err, b.workerID())
	}
	waitRows(t, c, table, count, 60*time.Second)
	for _, w := range []*workerProc{a, b} {
		if code := w.stop(); code != 0 {
			t.Errorf("worker %s (%s): exit %d after SIGTERM:\n%s", w.id, aID, code, tail(w.log.String(), 40))
		}
	}
	checkOnce(t, c, table, count)
}

// waitFor polls cond every 50ms, failing the test after limit.
func waitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// grepLine returns the first line of s that contains sub.
func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
