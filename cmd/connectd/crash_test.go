package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/proc"
)

// TestDrainDeliversEverything runs generator → file once, with no crash.
func TestDrainDeliversEverything(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 1000, 3, 64, ""))
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	checkDelivery(t, "exactly-once", e2e.GenIDs(1000, 3), ids(t, dir))
	if !strings.Contains(r.Stderr, "stopped after") {
		t.Errorf("no final progress summary in stderr:\n%s", r.Stderr)
	}
}

// TestReadAhead runs generator → file with and without read_ahead and reads
// the JSON progress: with it, every batch after the first was read while the
// one before it was written, and still everything arrives exactly once.
func TestReadAhead(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("read_ahead=%t", on), func(t *testing.T) {
			dir := t.TempDir()
			pipeline := genPipeline("exactly-once", "batch", 1000, 3, 64, "")
			if on {
				pipeline = withReadAhead(t, pipeline)
			}
			cfg := write(t, dir, "p.hcl", pipeline)
			r := connectd(t, dir, nil, "run", "--drain", "--progress", "json", cfg)
			if r.Code != 0 {
				t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
			}
			checkDelivery(t, "exactly-once", e2e.GenIDs(1000, 3), ids(t, dir))
			batches, ahead := 0, 0
			for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
				var p struct {
					BatchID   int64 `json:"batchId"`
					ReadAhead bool  `json:"readAhead"`
				}
				if err := json.Unmarshal([]byte(line), &p); err != nil {
					t.Fatalf("progress line %q: %v", line, err)
				}
				batches++
				if p.ReadAhead {
					ahead++
				}
				if p.ReadAhead && p.BatchID == 1 {
					t.Errorf("batch 1 says it was read ahead")
				}
			}
			want := 0
			if on {
				want = batches - 1
			}
			if batches < 10 || ahead != want {
				t.Errorf("%d batches, %d read ahead; want %d read ahead", batches, ahead, want)
			}
		})
	}
}

// TestFaultPoints crashes a pipeline at every fault point for every delivery
// guarantee, restarts it in drain mode, and counts every record id.
func TestFaultPoints(t *testing.T) {
	cases := []struct {
		delivery, mode string
		readAhead      bool
	}{
		{"exactly-once", "batch", false},
		{"exactly-once", "transactional", false},
		{"at-least-once", "append", false},
		{"at-most-once", "append", false},
		// Batch N+1 is read while batch N is written, so every fault point
		// also finds a read in flight.
		{"exactly-once", "batch", true},
		{"at-least-once", "append", true},
	}
	const count, parts = 300, 2
	for _, c := range cases {
		for _, p := range fault.Points {
			if strings.HasPrefix(p.Name, "processor.") {
				continue // no processor here; the conformance suite crashes processors (TestSplitProcessor)
			}
			if p.Name == fault.SinkWriteCommit && c.mode != "transactional" {
				continue // only a transactional sink has a commit to crash before
			}
			name := c.delivery + "/" + c.mode + "/" + p.Name
			if c.readAhead {
				name = c.delivery + "/" + c.mode + "+read-ahead/" + p.Name
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				pipeline := genPipeline(c.delivery, c.mode, count, parts, 50, "")
				if c.readAhead {
					pipeline = withReadAhead(t, pipeline)
				}
				cfg := write(t, dir, "p.hcl", pipeline)
				if p.Name == fault.SourceReplay {
					// A replay happens only in a recovery: crash the host with
					// batch 3 planned, so that the next run replays it.
					if r := connectd(t, dir, []string{fault.Env + "=" + fault.HostPlanAfter + "@3"}, "run", "--drain", cfg); !r.Killed {
						t.Fatalf("%s did not kill the host (exit %d):\n%s", fault.HostPlanAfter, r.Code, r.Stderr)
					}
				}
				e2e.CrashAndDrain(t, bin, dir, cfg, p.Name, nil)
				lost, dup := checkDelivery(t, c.delivery, e2e.GenIDs(count, parts), ids(t, dir))
				t.Logf("%s %s at %s: %d lost, %d duplicated", c.delivery, c.mode, p.Name, lost, dup)
			})
		}
	}
}

// TestRandomKills kills the host and the plugins with SIGKILL at random
// moments, several times per seed, then drains and counts.
func TestRandomKills(t *testing.T) {
	seeds := []int64{1, 2, 3}
	cases := []struct {
		delivery, mode string
		readAhead      bool
	}{
		{"exactly-once", "batch", false},
		{"exactly-once", "transactional", false},
		{"at-least-once", "append", false},
		{"at-most-once", "append", false},
		{"exactly-once", "transactional", true},
	}
	for _, c := range cases {
		for _, seed := range seeds {
			name := c.delivery + "/" + c.mode + "/seed" + itoa(seed)
			if c.readAhead {
				name = c.delivery + "/" + c.mode + "+read-ahead/seed" + itoa(seed)
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewSource(seed))
				dir := t.TempDir()
				const count, parts = 4000, 3
				pipeline := genPipeline(c.delivery, c.mode, count, parts, 40, "rate = 8000")
				if c.readAhead {
					pipeline = withReadAhead(t, pipeline)
				}
				cfg := write(t, dir, "p.hcl", pipeline)
				for round := 0; round < 4; round++ {
					cmd := exec.Command(bin, "run", cfg)
					cmd.Dir = dir
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Duration(150+rng.Intn(250)) * time.Millisecond)
					victim := cmd.Process.Pid
					what := "host"
					if kids := e2e.Children(victim); len(kids) > 0 && rng.Intn(2) == 0 {
						victim, what = kids[rng.Intn(len(kids))], "plugin"
					}
					_ = proc.Kill(victim)
					if what == "plugin" {
						// The host restarts the plugin and goes on; then kill the host too.
						time.Sleep(time.Duration(100+rng.Intn(300)) * time.Millisecond)
						_ = cmd.Process.Kill()
					}
					_ = cmd.Wait()
					t.Logf("seed %d round %d: killed the %s", seed, round, what)
				}
				r := connectd(t, dir, nil, "run", "--drain", cfg)
				if r.Code != 0 {
					t.Fatalf("drain after kills: exit %d:\n%s", r.Code, r.Stderr)
				}
				lost, dup := checkDelivery(t, c.delivery, e2e.GenIDs(count, parts), ids(t, dir))
				t.Logf("seed %d: %d lost, %d duplicated", seed, lost, dup)
			})
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestGracefulStop sends SIGTERM mid-run: the host finishes or abandons the
// batch in flight, exits 0, and a drain afterwards delivers exactly once.
func TestGracefulStop(t *testing.T) {
	dir := t.TempDir()
	const count = 3000
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", count, 2, 50, "rate = 5000"))
	cmd, stderr := startDelivering(t, dir, "run", cfg)
	kids := e2e.Children(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v, want exit 0:\n%s", err, stderr.String())
	}
	for _, k := range kids {
		if e2e.Alive(k) {
			t.Errorf("plugin process %d outlived its host's clean stop", k)
		}
	}
	if got := len(ids(t, dir)); got == 0 || got >= count {
		t.Fatalf("stopped after %d of %d records; want a stop in the middle", got, count)
	}
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code != 0 {
		t.Fatalf("drain: exit %d:\n%s", r.Code, r.Stderr)
	}
	checkDelivery(t, "exactly-once", e2e.GenIDs(count, 2), ids(t, dir))
}

// TestNoOrphans kills the host with SIGKILL and expects its plugin processes
// to exit within a second.
func TestNoOrphans(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 0, 1, 10, "rate = 100"))
	cmd := exec.Command(bin, "run", cfg)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var kids []int
	for i := 0; i < 50 && len(kids) < 2; i++ {
		time.Sleep(100 * time.Millisecond)
		kids = e2e.Children(cmd.Process.Pid)
	}
	if len(kids) < 2 {
		t.Fatalf("want 2 plugin processes, found %v", kids)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(1500 * time.Millisecond)
	for _, k := range kids {
		for e2e.Alive(k) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if e2e.Alive(k) {
			t.Errorf("plugin %d still alive 1.5s after its host was killed", k)
			_ = proc.Kill(k)
		}
	}
}

// TestFileToFile moves lines from files to a file sink, crashing once.
func TestFileToFile(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for f := 0; f < 3; f++ {
		var b strings.Builder
		for i := 0; i < 200; i++ {
			id := "f" + itoa(int64(f)) + "-line" + itoa(int64(i))
			want = append(want, id)
			b.WriteString(id + "\n")
		}
		write(t, dir, filepath.Join("in", "part"+itoa(int64(f))+".txt"), b.String())
	}
	cfg := write(t, dir, "p.hcl", `
pipeline "files" {
  delivery = "exactly-once"
  source "file" { paths = ["in/*.txt"] }
  sink "file"   { dir = "out", mode = "batch" }
  batch         { max_records = 70 }
  checkpoint    { dir = "state/files" }
}
`)
	first := connectd(t, dir, []string{fault.Env + "=" + fault.HostWriteAfter + "@4"}, "run", "--drain", cfg)
	if !first.Killed {
		t.Fatalf("fault did not fire: exit %d\n%s", first.Code, first.Stderr)
	}
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	checkDelivery(t, "exactly-once", want, ids(t, dir))
	if _, err := os.Stat(filepath.Join(dir, "state", "files", "offsets.log")); err != nil {
		t.Errorf("checkpoint not where the config put it: %v", err)
	}
}

// TestDrainInterrupted: `run --drain` stopped by a signal before the end
// exits 130 and says what is left; running it again finishes the drain.
func TestDrainInterrupted(t *testing.T) {
	dir := t.TempDir()
	const count = 3000
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", count, 2, 50, "rate = 5000"))
	cmd, stderr := startDelivering(t, dir, "run", "--drain", cfg)
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("drain stopped by SIGINT: exit %d, want 130:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `pipeline "p": interrupted before the drain finished: `) || !strings.Contains(stderr.String(), "records left by offsets") {
		t.Errorf("stderr does not say the drain was interrupted and what is left:\n%s", stderr.String())
	}
	if got := len(ids(t, dir)); got == 0 || got >= count {
		t.Fatalf("stopped after %d of %d records; want a stop in the middle", got, count)
	}
	if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 0 {
		t.Fatalf("drain again: exit %d:\n%s", r.Code, r.Stderr)
	}
	checkDelivery(t, "exactly-once", e2e.GenIDs(count, 2), ids(t, dir))
}

// startDelivering starts connectd with args in dir and returns once the file
// sink under dir/out holds a first batch (at most 30 s: start-up is slow on a
// loaded machine), with the process's stderr collected (read it after Wait).
func startDelivering(t *testing.T, dir string, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300 && len(idsQuiet(dir)) == 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	return cmd, stderr
}
