package postgres

// End-to-end tests: the real connectd binary (built by TestMain) runs
// generator → postgres pipelines in insert mode, on a table without any
// unique constraint, and is crashed at every fault point and by random
// SIGKILLs. Exactly-once then rests on the sink's transaction alone.

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/connectd/connectd/internal/proc"
)

// connectd runs the binary in dir with PG_URL and env set.
func connectd(t testing.TB, dir string, env []string, args ...string) e2e.Result {
	t.Helper()
	return e2e.Run(t, bin, dir, append([]string{pgtest.Env + "=" + pgURL}, env...), args...)
}

// background starts the binary and returns it running; it is killed when
// the test ends.
func background(t testing.TB, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), pgtest.Env+"="+pgURL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// setup is one pipeline's directory, schema and events table (no key, no
// unique index: nothing but the transaction prevents duplicates).
type setup struct {
	dir, schema, table string
}

func newSetup(t *testing.T) setup {
	t.Helper()
	s := setup{dir: t.TempDir(), schema: pgtest.Schema(t, pgURL, "e2e")}
	s.table = s.schema + ".events"
	sqlExec(t, "CREATE TABLE "+s.table+` (id text, partition int, "offset" bigint, pad text)`)
	return s
}

// config writes a generator → postgres pipeline in insert mode; store is
// "dir" or "postgres" (the checkpoint store).
func (s setup) config(t *testing.T, store string, count, parts, maxRecords int, extra string) string {
	t.Helper()
	cp := `checkpoint { dir = "state/p" }`
	if store == "postgres" {
		cp = fmt.Sprintf(`checkpoint {
    store  = "postgres"
    url    = env("PG_URL")
    schema = %q
  }`, s.schema)
	}
	hcl := fmt.Sprintf(`
pipeline "p" {
  delivery = "exactly-once"
  source "generator" {
    count      = %d
    partitions = %d
    size       = 80
    %s
  }
  sink "postgres" {
    url   = env("PG_URL")
    table = %q
    mode  = "insert"
  }
  batch {
    max_records = %d
    max_wait    = "100ms"
  }
  %s
}
`, count, parts, extra, s.table, maxRecords, cp)
	path := filepath.Join(s.dir, "p.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// check asserts exactly-once: every generated id is in the table once.
func (s setup) check(t *testing.T, count, parts int) {
	t.Helper()
	var rows, distinct, wrong int
	c := pgtest.Conn(t, pgURL)
	err := c.QueryRow(ctx, `SELECT count(*), count(DISTINCT id),
	count(*) FILTER (WHERE id <> partition || '-' || "offset" OR "offset" * $1 + partition >= $2) FROM `+s.table, parts, count).Scan(&rows, &distinct, &wrong)
	if err != nil {
		t.Fatal(err)
	}
	if rows != count || distinct != count || wrong != 0 {
		t.Errorf("exactly-once broken: %d rows, %d distinct ids, %d never generated; want %d rows of %d distinct ids (%d lost, %d duplicated)",
			rows, distinct, wrong, count, count, count-distinct, rows-distinct)
	}
	var unique int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass AND indisunique", s.table).Scan(&unique); err != nil || unique != 0 {
		t.Fatalf("the events table has %d unique indexes (%v); the test needs none", unique, err)
	}
}

// TestFaultPoints crashes generator → postgres (insert mode, exactly-once) at
// every fault point, in batch 3, with the checkpoint in PostgreSQL too,
// restarts it in drain mode, and counts rows and distinct ids. (With the
// checkpoint in a directory, TestConformance crashes it at every point in
// batch 2.)
func TestFaultPoints(t *testing.T) {
	const count, parts = 300, 2
	const store = "postgres"
	var cases []subtest
	for _, p := range fault.Points {
		if strings.HasPrefix(p.Name, "processor.") {
			continue // the pipeline has no processor to crash
		}
		cases = append(cases, subtest{store + "/" + p.Name, func(t *testing.T) {
			s := newSetup(t)
			cfg := s.config(t, store, count, parts, 50, "")
			if p.Name == fault.SourceReplay {
				// Batch 3 is replayed only after a crash: plan it, die, then
				// make the source die on its replay.
				if r := connectd(t, s.dir, []string{fault.Env + "=" + fault.HostPlanAfter + "@3"}, "run", "--drain", cfg); !r.Killed {
					t.Fatalf("host.plan.after@3 did not kill the host (exit %d):\n%s", r.Code, r.Stderr)
				}
			}
			first := connectd(t, s.dir, []string{fault.Env + "=" + p.Name + "@3"}, "run", "--drain", cfg)
			host := strings.HasPrefix(p.Name, "host.")
			switch {
			case host && !first.Killed:
				t.Fatalf("host fault point %s did not kill the host (exit %d):\n%s", p.Name, first.Code, first.Stderr)
			case !host && first.Code != 0:
				t.Fatalf("plugin fault point %s: exit %d, want 0 after restarting the plugin:\n%s", p.Name, first.Code, first.Stderr)
			case !host && !strings.Contains(first.Stderr, "plugin failed; restarting"):
				t.Fatalf("plugin fault point %s was not reached (no plugin restart):\n%s", p.Name, first.Stderr)
			}
			second := connectd(t, s.dir, nil, "run", "--drain", cfg)
			if second.Code != 0 {
				t.Fatalf("recovery run: exit %d:\n%s", second.Code, second.Stderr)
			}
			s.check(t, count, parts)
		}})
	}
	runAll(t, 4, cases)
}

// subtest is a named subtest for runAll.
type subtest struct {
	name string
	f    func(*testing.T)
}

// runAll runs the subtests n at a time. They spend their time waiting for
// processes and the server, so more than GOMAXPROCS (t.Parallel's limit) run
// well at once.
func runAll(t *testing.T, n int, cases []subtest) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			t.Run(c.name, c.f)
		}()
	}
	wg.Wait()
}

// TestCommitAnswerLost: batch 3 is committed by the sink but the answer never
// reaches the host's checkpoint (the sink dies before replying, or the host
// dies before writing commits/3). Recovery asks the sink, follows it, and
// does not write batch 3 again.
func TestCommitAnswerLost(t *testing.T) {
	const count, parts = 200, 2
	for _, point := range []string{fault.SinkWriteAfter, fault.HostWriteAfter} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			cfg := s.config(t, "postgres", count, parts, 20, "")
			first := connectd(t, s.dir, []string{fault.Env + "=" + point + "@3"}, "run", "--drain", cfg)
			second := connectd(t, s.dir, nil, "run", "--drain", cfg)
			if second.Code != 0 {
				t.Fatalf("recovery: exit %d:\n%s", second.Code, second.Stderr)
			}
			const follows = "the transactional sink committed the batch; the checkpoint follows it"
			if !strings.Contains(first.Stderr+second.Stderr, follows) || !strings.Contains(first.Stderr+second.Stderr, "batch=3") {
				t.Errorf("no run followed the sink's commit of batch 3:\n%s\n---\n%s", first.Stderr, second.Stderr)
			}
			s.check(t, count, parts)
		})
	}
}

// TestRandomKills kills the host or a plugin with SIGKILL at random moments,
// four times per seed, then drains and counts; the checkpoint is in
// PostgreSQL for seeds 2 and 3. (TestConformance soaks with a directory.)
func TestRandomKills(t *testing.T) {
	var cases []subtest
	for _, seed := range []int64{1, 2, 3} {
		store := "postgres"
		if seed == 1 {
			store = "dir"
		}
		cases = append(cases, subtest{fmt.Sprintf("seed%d/%s", seed, store), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			s := newSetup(t)
			const count, parts = 4000, 3
			cfg := s.config(t, store, count, parts, 40, "rate = 8000")
			for round := 0; round < 4; round++ {
				cmd := exec.Command(bin, "run", cfg)
				cmd.Dir = s.dir
				cmd.Env = append(os.Environ(), pgtest.Env+"="+pgURL)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(200+rng.Intn(300)) * time.Millisecond)
				victim, what := cmd.Process.Pid, "host"
				if kids := e2e.Children(victim); len(kids) > 0 && rng.Intn(2) == 0 {
					victim, what = kids[rng.Intn(len(kids))], "plugin"
				}
				_ = proc.Kill(victim)
				if what == "plugin" {
					time.Sleep(time.Duration(100+rng.Intn(300)) * time.Millisecond)
					_ = cmd.Process.Kill()
				}
				_ = cmd.Wait()
				t.Logf("seed %d round %d: killed the %s", seed, round, what)
			}
			r := connectd(t, s.dir, nil, "run", "--drain", cfg)
			if r.Code != 0 {
				t.Fatalf("drain after kills: exit %d:\n%s", r.Code, r.Stderr)
			}
			s.check(t, count, parts)
		}})
	}
	runAll(t, 3, cases)
}

// waitCommitted waits until the sink committed at least batch n.
func (s setup) waitCommitted(t *testing.T, n int64) {
	t.Helper()
	c := pgtest.Conn(t, pgURL)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var b int64
		if c.QueryRow(ctx, "SELECT batch FROM "+s.schema+".connectd_offsets WHERE pipeline = 'p'").Scan(&b) == nil && b >= n {
			return
		}
	}
	t.Fatalf("the pipeline did not commit batch %d within 30s", n)
}

// TestTwoHosts starts a second host on a pipeline whose checkpoint is in
// PostgreSQL while the first runs: it is refused, and the first goes on.
func TestTwoHosts(t *testing.T) {
	s := newSetup(t)
	cfg := s.config(t, "postgres", 100000, 1, 10, "rate = 200")
	first := background(t, s.dir, "run", cfg)
	s.waitCommitted(t, 2)
	other := t.TempDir() // another machine: nothing local in common
	second := connectd(t, other, nil, "run", cfg)
	if second.Code != 1 || !strings.Contains(second.Stderr, "already running") || !strings.Contains(second.Stderr, fmt.Sprintf("pid %d", first.Process.Pid)) {
		t.Fatalf("second host: exit %d, want 1 and 'already running' naming pid %d:\n%s", second.Code, first.Process.Pid, second.Stderr)
	}
	if strings.Contains(second.Stderr, passwordOf(pgURL)) {
		t.Errorf("the error shows the database password:\n%s", second.Stderr)
	}
	var before int64
	pgtest.Conn(t, pgURL).QueryRow(ctx, "SELECT batch FROM "+s.schema+".connectd_offsets").Scan(&before)
	s.waitCommitted(t, before+2)
}

// passwordOf returns the password in a URL, or a string no output holds.
func passwordOf(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "\x00no password"
	}
	userinfo, _, ok := strings.Cut(rest, "@")
	_, pw, hasPW := strings.Cut(userinfo, ":")
	if !ok || !hasPW || pw == "" {
		return "\x00no password"
	}
	return pw
}

// TestOffsetsCommands: `connectd offsets show` and `reset` work on a
// checkpoint in PostgreSQL as on a directory.
func TestOffsetsCommands(t *testing.T) {
	s := newSetup(t)
	cfg := s.config(t, "postgres", 100, 2, 10, "")
	if r := connectd(t, s.dir, nil, "run", "--drain", cfg); r.Code != 0 {
		t.Fatalf("run: exit %d:\n%s", r.Code, r.Stderr)
	}
	r := connectd(t, s.dir, nil, "offsets", "show", cfg, "--json")
	if r.Code != 0 {
		t.Fatalf("show: exit %d:\n%s", r.Code, r.Stderr)
	}
	var st struct {
		Checkpoint string                      `json:"checkpoint"`
		Committed  map[string]map[string]int64 `json:"committed"`
		LastBatch  int64                       `json:"last_committed_batch"`
		Batches    []struct{ Batch int64 }     `json:"batches"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("show --json: %v\n%s", err, r.Stdout)
	}
	if st.Committed["generator"]["0"] != 50 || st.Committed["generator"]["1"] != 50 || st.LastBatch != 10 || len(st.Batches) != 10 {
		t.Errorf("show: committed %v at batch %d with %d batches; want 50/50 at batch 10", st.Committed, st.LastBatch, len(st.Batches))
	}
	if !strings.Contains(st.Checkpoint, "postgres://") || !strings.Contains(st.Checkpoint, s.schema) {
		t.Errorf("show names the checkpoint %q", st.Checkpoint)
	}
	if text := connectd(t, s.dir, nil, "offsets", "show", cfg); !strings.Contains(text.Stdout, `{"generator":{"0":50,"1":50}}`) || strings.Contains(text.Stdout, passwordOf(pgURL)) {
		t.Errorf("text show:\n%s", text.Stdout)
	}

	// Refused while the pipeline runs, from anywhere.
	slow := newSetup(t)
	slowCfg := slow.config(t, "postgres", 100000, 1, 10, "rate = 100")
	background(t, slow.dir, "run", slowCfg)
	slow.waitCommitted(t, 1)
	if r := connectd(t, t.TempDir(), nil, "offsets", "reset", slowCfg, "--pipeline", "p", "--to", "earliest"); r.Code != 1 || !strings.Contains(r.Stderr, "already running") {
		t.Errorf("reset while running: exit %d, want 1 and 'already running':\n%s", r.Code, r.Stderr)
	}
	if r := connectd(t, t.TempDir(), nil, "offsets", "show", slowCfg); r.Code != 0 || !strings.Contains(r.Stdout, "last committed batch") {
		t.Errorf("show while running: exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// Rewind to batch 6: batches 6..10 (50 records) run again. A reset does
	// not undo what the sink holds, so they are in the table twice.
	if r := connectd(t, s.dir, nil, "offsets", "reset", cfg, "--pipeline", "p", "--to", "batch:6"); r.Code != 0 {
		t.Fatalf("reset: exit %d:\n%s", r.Code, r.Stderr)
	}
	if r := connectd(t, s.dir, nil, "run", "--drain", cfg); r.Code != 0 {
		t.Fatalf("run after reset: exit %d:\n%s", r.Code, r.Stderr)
	}
	var rows, distinct int
	if err := pgtest.Conn(t, pgURL).QueryRow(ctx, "SELECT count(*), count(DISTINCT id) FROM "+s.table).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != 150 || distinct != 100 {
		t.Errorf("after reset to batch:6: %d rows, %d distinct; want 150 rows, 100 distinct", rows, distinct)
	}
	r = connectd(t, s.dir, nil, "offsets", "show", cfg, "--json", "--last", "20")
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil || st.LastBatch != 16 {
		t.Errorf("show after reset and rerun: last batch %d (%v), want 16 (reset 11, batches 12-16)", st.LastBatch, err)
	}
}

// TestConfigValidates: `connectd validate` accepts a postgres checkpoint and
// names it without the password.
func TestConfigValidates(t *testing.T) {
	s := setup{dir: t.TempDir(), schema: "cp", table: "public.events"}
	cfg := s.config(t, "postgres", 10, 1, 10, "")
	r := connectd(t, s.dir, nil, "validate", cfg)
	if r.Code != 0 || !strings.Contains(r.Stdout, `checkpoint postgres://`) || !strings.Contains(r.Stdout, `schema "cp"`) {
		t.Fatalf("validate: exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if strings.Contains(r.Stdout+r.Stderr, passwordOf(pgURL)) {
		t.Errorf("validate shows the password:\n%s", r.Stdout)
	}
}
