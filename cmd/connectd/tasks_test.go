package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/tally"
)

// taskPipeline is a generator → file pipeline "p" that runs as tasks tasks.
func taskPipeline(delivery, mode string, count, parts, tasks int, extra string) string {
	return strings.Replace(genPipeline(delivery, mode, count, parts, 30, extra),
		`delivery = `, "parallelism = "+strconv.Itoa(tasks)+"\n  delivery = ", 1)
}

// taskIDs reads what the tasks of pipeline p wrote (the file sink puts task
// k's files in out/p-<k>/) and counts every generator id.
func taskIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "p-*", "batch-*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var v struct{ ID string }
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil || v.ID == "" {
				t.Fatalf("%s holds %q, not a generator record", f, sc.Text())
			}
			seen[v.ID]++
		}
	}
	return seen
}

// taskState is what offsets show --json says of one task.
type taskState struct {
	Pipeline string `json:"pipeline"`
	Task     *struct {
		Group string `json:"group"`
		Index int    `json:"index"`
		Count int    `json:"count"`
	} `json:"task"`
	Committed map[string]map[string]int64 `json:"committed"`
	LastBatch int64                       `json:"last_committed_batch"`
}

// TestParallelismKilled: a generator → file pipeline with parallelism = 3,
// exactly-once, killed with kill -9 mid-run twice and restarted, then
// drained: every record is in the output exactly once, each task has its
// own checkpoint holding only its partitions, and offsets show and reset
// work on all the tasks (or one).
func TestParallelismKilled(t *testing.T) {
	dir := t.TempDir()
	const count, parts, tasks = 6000, 7, 3
	cfg := write(t, dir, "p.hcl", taskPipeline("exactly-once", "transactional", count, parts, tasks, "rate = 3000"))
	if r := connectd(t, dir, nil, "validate", cfg); r.Code != 0 || !strings.Contains(r.Stdout, `parallelism 3 (tasks "p-0" to "p-2")`) {
		t.Fatalf("validate: exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	for round := range 2 {
		cmd := exec.Command(bin, "run", cfg)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 300; i++ { // until a batch of this round is written
			if n := len(taskIDs(t, dir)); n > round*count/4 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		n := len(taskIDs(t, dir))
		t.Logf("round %d: killed the host with %d of %d records written", round, n, count)
		if n >= count {
			t.Fatalf("the run finished before the kill; give it more records")
		}
	}
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code != 0 {
		t.Fatalf("drain after kills: exit %d:\n%s", r.Code, r.Stderr)
	}
	checkDelivery(t, "exactly-once", e2e.GenIDs(count, parts), taskIDs(t, dir))

	// Every task has its own checkpoint, with only its partitions.
	r = connectd(t, dir, nil, "offsets", "show", cfg, "--json")
	var states []taskState
	if err := json.Unmarshal([]byte(r.Stdout), &states); r.Code != 0 || err != nil || len(states) != tasks {
		t.Fatalf("offsets show --json: exit %d, %v, %d states:\n%s%s", r.Code, err, len(states), r.Stdout, r.Stderr)
	}
	var total int64
	for k, st := range states {
		if st.Pipeline != "p-"+strconv.Itoa(k) || st.Task == nil || st.Task.Group != "p" || st.Task.Index != k || st.Task.Count != tasks || st.LastBatch == 0 {
			t.Errorf("state %d: %+v", k, st)
		}
		if _, err := os.Stat(filepath.Join(dir, "state", "p", "p-"+strconv.Itoa(k), "offsets.log")); err != nil {
			t.Errorf("task %d has no checkpoint of its own: %v", k, err)
		}
		for part, off := range st.Committed["generator"] {
			if n, _ := strconv.Atoi(part); n%tasks != k {
				t.Errorf("task %d's checkpoint holds partition generator/%s", k, part)
			}
			total += off
		}
	}
	if total != count {
		t.Errorf("the tasks' committed offsets add up to %d, want %d", total, count)
	}
	if text := connectd(t, dir, nil, "offsets", "show", cfg, "--pipeline", "p-1"); !strings.Contains(text.Stdout, `pipeline "p", task 1 of 3: "p-1"`) || strings.Contains(text.Stdout, `"p-0"`) {
		t.Errorf("offsets show --pipeline p-1:\n%s%s", text.Stdout, text.Stderr)
	}

	// Reset: batch ids are per task; JSON goes to the task that knows the
	// partition; earliest moves every task.
	if r := connectd(t, dir, nil, "offsets", "reset", cfg, "--pipeline", "p", "--to", "batch:1"); r.Code != 2 || !strings.Contains(r.Stderr, "--task K") {
		t.Errorf("reset of all tasks to batch:1: exit %d, want 2 asking for --task:\n%s", r.Code, r.Stderr)
	}
	r = connectd(t, dir, nil, "offsets", "reset", cfg, "--pipeline", "p", "--to", `{"generator":{"4":100}}`)
	if r.Code != 0 || !strings.Contains(r.Stdout, `pipeline "p-1": reset`) || !strings.Contains(r.Stdout, `pipeline "p-0": unchanged`) || !strings.Contains(r.Stdout, "generator/4: 857 → 100") {
		t.Errorf("reset of generator/4: exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := connectd(t, dir, nil, "offsets", "reset", cfg, "--pipeline", "p", "--task", "2", "--to", "batch:1"); r.Code != 0 || !strings.Contains(r.Stdout, `pipeline "p-2": reset`) || strings.Contains(r.Stdout, `"p-0"`) {
		t.Errorf("reset of task 2 to batch:1: exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := connectd(t, dir, nil, "offsets", "reset", cfg, "--pipeline", "p", "--to", "earliest"); r.Code != 0 || strings.Count(r.Stdout, ": reset (batch") != tasks {
		t.Errorf("reset of all tasks to earliest: exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 0 {
		t.Fatalf("drain after the reset: exit %d:\n%s", r.Code, r.Stderr)
	}
	if lost, dup, _ := tally.Tally(e2e.GenIDs(count, parts), taskIDs(t, dir)); lost != 0 || dup != count {
		t.Errorf("after resetting every task to earliest: %d lost, %d delivered twice; want 0 and %d", lost, dup, count)
	}

	// A changed parallelism is refused before anything runs.
	write(t, dir, "p.hcl", taskPipeline("exactly-once", "transactional", count, parts, 2, ""))
	if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 2 || !strings.Contains(r.Stderr, "ran with a larger parallelism") {
		t.Errorf("run with parallelism 2 after 3: exit %d, want 2:\n%s", r.Code, r.Stderr)
	}
	write(t, dir, "p.hcl", taskPipeline("exactly-once", "transactional", count, parts, 1, ""))
	if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 2 || !strings.Contains(r.Stderr, "ran with parallelism > 1") {
		t.Errorf("run with parallelism 1 after 3: exit %d, want 2:\n%s", r.Code, r.Stderr)
	}
}

// TestParallelismServed: the HTTP API and /metrics name each task of a
// pipeline with parallelism = 2, and `run --pipeline p-1` runs that task
// only.
func TestParallelismServed(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", taskPipeline("exactly-once", "batch", 0, 4, 2, "rate = 2000"))
	h := serve(t, dir, nil, cfg)
	for _, name := range []string{"p-0", "p-1"} {
		h.waitFor(t, name+" commits a batch", func() bool { return h.status(t, name).Batches > 0 })
	}
	if code, b := call(t, "GET", h.URL+"/v1/pipelines/p", ""); code != http.StatusNotFound {
		t.Errorf("GET /v1/pipelines/p (the block, not a task): %d %s", code, b)
	}
	m := scrape(t, h.URL)
	for _, name := range []string{"p-0", "p-1"} {
		if m[`connectd_batches_total{outcome="committed",pipeline="`+name+`"}`] == 0 {
			t.Errorf("/metrics has no committed batches of task %s", name)
		}
	}
	_ = h.Cmd.Process.Kill()
	<-h.Done

	one := serve(t, dir, nil, "--pipeline", "p-1", cfg)
	one.waitFor(t, "p-1 runs", func() bool { return one.status(t, "p-1").Batches > 0 })
	if code, _ := call(t, "GET", one.URL+"/v1/pipelines/p-0", ""); code != http.StatusNotFound {
		t.Errorf("run --pipeline p-1 also serves p-0: %d", code)
	}
}
