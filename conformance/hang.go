package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/internal/proc"
)

// PointHang is the row of hung plugins: the suite stops the source or the
// sink under test with SIGSTOP while its pipeline drains, with the
// pipeline's deadlines for plugin calls set to hangDeadline; the host must
// kill the stopped process when a call's deadline passes, restart it, replay
// and keep the guarantee. Its rows are "hang:source" and "hang:sink"
// (Linux only: the suite finds the plugin processes in /proc).
const PointHang = "hang"

// hangDeadline is the deadline of every call of a batch in the hang row's
// pipelines (read, write, ack, last_committed, process, end); Open gets
// hangOpen, which a system's connection may need.
const (
	hangDeadline = 3 * time.Second
	hangOpen     = 10 * time.Second
	// hangGrace is how long past hangDeadline the suite waits for the host
	// to kill the stopped plugin before it calls the row failed.
	hangGrace = 30 * time.Second
)

// hangCells returns the hang row's cells: one per plugin under test (source,
// sink) per group of guarantees.
func (s *suite) hangCells() []cell {
	if runtime.GOOS != "linux" || !s.applies(PointHang) {
		return nil
	}
	var cells []cell
	for _, v := range []struct {
		role string
		on   bool
	}{{"source", s.src.underTest}, {"sink", s.snk.underTest}} {
		if !v.on {
			continue
		}
		for _, g := range s.groups() {
			cells = append(cells, cell{point: PointHang + ":" + v.role, guarantees: g, kind: PointHang})
		}
	}
	return cells
}

// hangInput returns the input and generator rate of a hang cell: the
// soak's input (a reference run exists for it when the soak runs), at half
// the soak's rate so that the drain lasts about a second.
func (s *suite) hangInput() (input, int) {
	if s.shaped() && !s.applies(PointSoak) {
		return s.crash, 0
	}
	rate := 0
	if s.src.plugin.Name == generatorName {
		rate = s.rate / 2
	}
	return s.soak, rate
}

// withDeadlines adds the hang row's timeouts block to the pipeline file the
// suite wrote in dir.
func withDeadlines(dir string) error {
	path := filepath.Join(dir, pipelineFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	text := strings.TrimRight(string(b), "\n")
	if !strings.HasSuffix(text, "}") {
		return fmt.Errorf("conformance: %s does not end with its pipeline's }", path)
	}
	d := hangDeadline.String()
	block := fmt.Sprintf("  timeouts {\n    open = %q\n    read = %q\n    write = %q\n    ack = %q\n    last_committed = %q\n    process = %q\n    end = %q\n  }\n}\n", hangOpen.String(), d, d, d, d, d, d)
	return os.WriteFile(path, []byte(strings.TrimSuffix(text, "}")+block), 0o644)
}

// hangRuns drains the pipeline, stops the plugin of role ("source" or
// "sink") with SIGSTOP once the first batch is committed, waits for the host to kill
// it, and returns what the sink holds when the drain has finished.
func (s *suite) hangRuns(ctx context.Context, dir, name, role string) (*listed, string, error) {
	var steps []string
	ret := func(l *listed, err error) (*listed, string, error) { return l, strings.Join(steps, "; "), err }
	if err := withDeadlines(dir); err != nil {
		return ret(nil, err)
	}
	cmd, out, errb := s.command(dir, name, nil, modeRun, pipelineFile, "list")
	if err := cmd.Start(); err != nil {
		return ret(nil, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	ended := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	// The plugins are open and serving once the first batch is committed
	// (the checkpoint's commit log, in the pipeline's default checkpoint
	// directory, is no longer empty). They started in the order source,
	// processors, sink, dead-letter sink.
	commits := filepath.Join(dir, ".connectd", name, "commits.log")
	var kids []int
	for {
		if ended() {
			return ret(nil, fmt.Errorf("the pipeline drained before its %s could be stopped; the hang row needs a longer input", role))
		}
		if ctx.Err() != nil {
			return ret(nil, ctx.Err())
		}
		if fi, err := os.Stat(commits); err == nil && fi.Size() > 0 {
			if kids = children(cmd.Process.Pid); len(kids) >= 2 {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	byStart(kids)
	victim := kids[0]
	if role == "sink" {
		victim = kids[len(kids)-1]
		if s.dl != nil && len(kids) > 2 {
			victim = kids[len(kids)-2]
		}
	}
	if err := sigstop(victim); err != nil {
		return ret(nil, fmt.Errorf("stopping the %s (pid %d): %w", role, victim, err))
	}
	stopped := time.Now()
	defer func() { _ = proc.Kill(victim) }() // never leave a stopped process behind
	for running(victim) && time.Since(stopped) < hangDeadline+hangGrace && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	stall := time.Since(stopped)
	if running(victim) {
		if ctx.Err() != nil {
			return ret(nil, ctx.Err())
		}
		return ret(nil, fmt.Errorf("the host did not kill the %s stopped with SIGSTOP: it still hung %s later, with deadlines of %s", role, stall.Round(time.Second), hangDeadline))
	}
	steps = append(steps, fmt.Sprintf("%s stopped (SIGSTOP); the host killed it %.1fs later", role, stall.Seconds()))
	select {
	case <-done:
	case <-ctx.Done():
		return ret(nil, ctx.Err())
	case <-time.After(s.o.Timeout):
		return ret(nil, fmt.Errorf("the drain did not finish within %s after the %s was killed", s.o.Timeout, role))
	}
	r := finish(cmd, out, errb)
	if r.killed || r.code != 0 {
		return ret(nil, fmt.Errorf("the host did not recover from the hung %s (exit %d): %s", role, r.code, r.tail()))
	}
	if !strings.Contains(r.stderr, "did not answer") {
		return ret(nil, fmt.Errorf("the %s stopped with SIGSTOP died, but the host did not say that a call passed its deadline: %s", role, r.tail()))
	}
	if r.status.Listed == nil {
		return ret(nil, fmt.Errorf("the run did not read the sink back: %s", r.tail()))
	}
	steps = append(steps, fmt.Sprintf("restarted it and drained (%d batches, %d replayed)", r.status.Batches, r.status.Replays))
	return ret(r.status.Listed, nil)
}

// byStart sorts pids by their start time (Linux /proc), then by pid.
func byStart(pids []int) {
	start := map[int]int64{}
	for _, p := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 19 {
				start[p], _ = strconv.ParseInt(f[19], 10, 64) // field 22: starttime
			}
		}
	}
	sort.Slice(pids, func(i, j int) bool {
		if start[pids[i]] != start[pids[j]] {
			return start[pids[i]] < start[pids[j]]
		}
		return pids[i] < pids[j]
	})
}

// running reports whether process pid exists and has not exited (Linux
// /proc; a zombie has exited).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}
