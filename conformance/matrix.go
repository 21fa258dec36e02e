package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/proc"
	"github.com/connectd/connectd/sdk"
)

// cell is one pipeline the suite runs and judges.
type cell struct {
	point string // Result.FaultPoint
	// guarantees are judged from the cell's one pipeline, configured with
	// the first; for a contract check, the capability checked.
	guarantees []string
	faults     []string // CONNECTD_FAULT of each crash run, in order
	kind       string   // PointNone (a crash or clean run), PointSoak, PointContract or PointNetwork
	batch      int      // max_records of the pipeline; 0: the suite's
	// last is the batch of the first fault when it is the reference run's
	// last batch (full level): a run that the source cut into fewer batches
	// never reaches it, which the cell reports instead of failing.
	last int
}

// PointRecovery is the row of crashes during a recovery: the host dies with
// batch b written but not committed (with b planned, for a transactional
// sink, whose own commit would spare the replay), and the restarted host
// dies again, or its sink does, while it replays b; then a last run
// recovers, replaying b once more. Its rows are named
// "recovery:<first fault>+<second fault>", such as
// "recovery:host.write.after@2+host.write.after@2".
const PointRecovery = "recovery"

// groups returns the guarantees each pipeline of a row is judged for. The
// host runs at-least-once and exactly-once pipelines the same way (write,
// then commit, exact replay), so the quick level judges both from one
// exactly-once pipeline; the full level runs each guarantee's own.
func (s *suite) groups() [][]string {
	var out [][]string
	shared := s.o.Level == Quick && slices.Contains(s.probe.Claimed, ExactlyOnce)
	for _, g := range s.probe.Claimed {
		if shared && g == AtLeastOnce {
			out[0] = append(out[0], g)
			continue
		}
		out = append(out, []string{g})
	}
	return out
}

// matrix lists the cells of the run: a clean run and every applicable fault
// point per claimed guarantee, the crashes during a recovery (PointRecovery)
// per guarantee that replays, a soak per claimed guarantee, and the
// contract checks for the capabilities the plugins under test claim.
func (s *suite) matrix() []cell {
	batches := s.crashBatches()
	ks := []string{""}
	if s.o.Level == Full {
		ks = []string{"", ":1"}
	}
	var rows [][]string
	if s.applies(PointNone) {
		rows = append(rows, nil)
	}
	for _, p := range fault.Points {
		switch {
		case !s.applies(p.Name):
			continue
		case strings.HasPrefix(p.Name, "source.") && !s.src.underTest:
			continue
		case strings.HasPrefix(p.Name, "sink.") && !s.snk.underTest:
			continue
		case strings.HasPrefix(p.Name, "processor.") && s.prc == nil:
			continue
		case p.Name == fault.HostDeadLetter && s.dl == nil:
			continue // reached only by pipelines with a dead-letter sink
		case p.Name == fault.SinkWriteCommit && !s.probe.Sink.has(sdk.CapTransactional):
			continue // reached only inside a transactional sink's Write
		}
		for _, b := range batches {
			variants := []string{""}
			if strings.HasSuffix(p.Name, ".partial") {
				variants = ks
			}
			for _, k := range variants {
				spec := fmt.Sprintf("%s@%d%s", p.Name, b, k)
				if p.Name == fault.SourceReplay {
					// A replay happens only in a recovery: crash the host
					// with batch b planned and nothing written, then crash
					// the source when the restarted host replays it.
					rows = append(rows, []string{fmt.Sprintf("%s@%d", fault.HostPlanAfter, b), spec})
					continue
				}
				rows = append(rows, []string{spec})
			}
		}
	}
	rows = append(rows, s.errorRows(batches)...)
	var cells []cell
	for _, faults := range rows {
		point := PointNone
		if len(faults) > 0 {
			point = faults[len(faults)-1]
		}
		for _, g := range s.groups() {
			cells = append(cells, cell{point: point, guarantees: g, faults: faults, kind: PointNone, last: s.lastOf(faults)})
		}
	}
	if f := s.repeatedRow(); f != "" {
		for _, g := range s.groups() {
			cells = append(cells, cell{point: f, guarantees: g, faults: []string{f}, kind: PointNone, batch: max(1, s.batch/4)})
		}
	}
	for _, faults := range s.recoveryRows(batches) {
		for _, g := range s.groups() {
			if g[0] == AtMostOnce {
				continue // it commits before it writes: nothing is replayed
			}
			point := PointRecovery + ":" + strings.Join(faults, "+")
			cells = append(cells, cell{point: point, guarantees: g, faults: faults, kind: PointNone, last: s.lastOf(faults)})
		}
	}
	if s.applies(PointSoak) {
		for _, g := range s.groups() {
			cells = append(cells, cell{point: PointSoak, guarantees: g, kind: PointSoak})
		}
	}
	cells = append(cells, s.hangCells()...)
	if s.o.Network != nil && s.applies(PointNetwork) {
		for _, g := range s.groups() {
			cells = append(cells, cell{point: PointNetwork, guarantees: g, kind: PointNetwork})
		}
	}
	if s.applies(PointContract) {
		var caps []sdk.Capability
		if s.src.underTest && s.probe.Source.has(sdk.CapReplayable) {
			caps = append(caps, sdk.CapReplayable)
		}
		for _, c := range []sdk.Capability{sdk.CapIdempotent, sdk.CapTransactional} {
			if s.snk.underTest && s.probe.Sink.has(c) {
				caps = append(caps, c)
			}
		}
		if n := len(s.probe.Processors); s.prc != nil && n > 0 && s.probe.Processors[n-1].has(sdk.CapDeterministic) {
			caps = append(caps, sdk.CapDeterministic)
		}
		for _, c := range caps {
			cells = append(cells, cell{point: PointContract, guarantees: []string{string(c)}, kind: PointContract})
		}
	}
	return cells
}

// crashBatches returns the batches the crash rows crash in: batch 2 of
// three at the quick level; at the full level the first batch (a recovery
// with nothing committed), a middle one and the last one (a recovery with
// nothing left to read), counted by the reference run (s.last) rather than
// worked out from the input's size, since a source need not fill its batches.
func (s *suite) crashBatches() []int {
	if s.o.Level != Full {
		return []int{2}
	}
	out := []int{1}
	if s.last >= 3 {
		out = append(out, (s.last+1)/2)
	}
	if s.last >= 2 {
		out = append(out, s.last)
	}
	return out
}

// lastOf returns the batch of the first of faults when it is the reference
// run's last batch at the full level, else 0 (see cell.last).
func (s *suite) lastOf(faults []string) int {
	if s.o.Level != Full || s.last == 0 || len(faults) == 0 {
		return 0
	}
	f := faults[0]
	i := strings.IndexByte(f, '@')
	if i < 0 {
		return 0
	}
	f = f[i+1:]
	if j := strings.IndexAny(f, ":/"); j >= 0 {
		f = f[:j]
	}
	if b, err := strconv.Atoi(f); err == nil && b == s.last {
		return b
	}
	return 0
}

// recoveryRows returns the fault lists of the PointRecovery rows: in each,
// the first fault makes the next run replay batch b and the second fires
// in that replay. The quick level crashes the host again after the replay
// of batch 2 was written (so the last run replays it a second time, from a
// source and into a sink that have both been through one replay already),
// and kills the sink under test half-way through that replay (so the same
// run sends b a third time). The full level crashes the host again in the
// first, a middle and the last batch, and in the middle one also kills the
// host half-way through sending the replay.
func (s *suite) recoveryRows(batches []int) [][]string {
	if !s.applies(PointRecovery) {
		return nil
	}
	first := fault.HostWriteAfter
	if s.probe.Sink.has(sdk.CapTransactional) {
		// A transactional sink's commit holds batch b once it is written: the
		// restarted host asks it and does not replay b. With b only planned,
		// it must.
		first = fault.HostPlanAfter
	}
	mid := batches[len(batches)/2]
	row := func(second string, b int) []string {
		return []string{fmt.Sprintf("%s@%d", first, b), fmt.Sprintf("%s@%d", second, b)}
	}
	var rows [][]string
	for _, b := range batches {
		rows = append(rows, row(fault.HostWriteAfter, b))
	}
	if s.o.Level == Full {
		rows = append(rows, row(fault.HostWritePartial, mid))
	}
	if s.snk.underTest {
		rows = append(rows, row(fault.SinkWritePartial, mid))
	}
	return rows
}

// errorRows returns the rows whose plugin call fails with an error (the
// /error items of internal/fault) instead of its process dying: the host
// keeps the plugin and retries, so these reach a plugin's retry path in one
// process. The quick level fails a sink's Write after it stored half of
// batch 2, and a source's Read of batch 2 before it does anything; the full
// level fails every plugin-side point, in the first of its batches.
func (s *suite) errorRows(batches []int) [][]string {
	var rows [][]string
	add := func(point string, b int) {
		switch {
		case !s.applies(point):
		case strings.HasPrefix(point, "source.") && !s.src.underTest:
		case strings.HasPrefix(point, "sink.") && !s.snk.underTest:
		case strings.HasPrefix(point, "processor.") && s.prc == nil:
		case point == fault.SinkWriteCommit && !s.probe.Sink.has(sdk.CapTransactional):
		case point == fault.SourceReplay:
			rows = append(rows, []string{fmt.Sprintf("%s@%d", fault.HostPlanAfter, b), fmt.Sprintf("%s@%d%s", point, b, fault.ErrorSuffix)})
		default:
			rows = append(rows, []string{fmt.Sprintf("%s@%d%s", point, b, fault.ErrorSuffix)})
		}
	}
	if s.o.Level != Full {
		add(fault.SinkWritePartial, 2)
		add(fault.SourceReadBefore, 2)
		return rows
	}
	for _, p := range fault.Points {
		if !strings.HasPrefix(p.Name, "host.") {
			add(p.Name, batches[0])
		}
	}
	return rows
}

// repeatedRow returns the CONNECTD_FAULT of the row of rare, repeated
// failures, or "": every Nth Write of the sink process stores half its batch
// and fails, N drawn from the seed, over a pipeline of small batches, so
// that a sink's second and later retries in one process are reached too.
func (s *suite) repeatedRow() string {
	if !s.snk.underTest || !s.applies(fault.SinkWritePartial) {
		return ""
	}
	rng := rand.New(rand.NewSource(s.o.Seed ^ 0x5eed))
	return fmt.Sprintf("%s%%%d%s", fault.SinkWritePartial, 3+rng.Intn(3), fault.ErrorSuffix)
}

// cellSetup returns the pipeline name, directory, input and generator rate
// of cell i.
func (s *suite) cellSetup(i int, c cell) (name, dir string, in input, rate int) {
	name = fmt.Sprintf("conformance-%s-%03d", s.runID, i)
	safe := strings.NewReplacer("@", "_", ":", "_", "/", "_").Replace(c.point)
	dir = filepath.Join(s.work, fmt.Sprintf("%03d-%s-%s", i, safe, c.guarantees[0]))
	in = s.crash
	switch c.kind {
	case PointSoak:
		in = s.soak
		if s.src.plugin.Name == generatorName {
			rate = s.rate
		}
	case PointHang:
		in, rate = s.hangInput()
	case PointNetwork:
		in = s.network
		if s.src.plugin.Name == generatorName {
			rate = s.networkRate
		}
	}
	return name, dir, in, rate
}

// prepare writes cell i's files and puts its input in place.
func (s *suite) prepare(ctx context.Context, i int, c cell) error {
	name, dir, in, rate := s.cellSetup(i, c)
	delivery := c.guarantees[0]
	if c.kind == PointContract {
		delivery = AtLeastOnce
	}
	batch := s.batch
	if c.batch > 0 {
		batch = c.batch
	}
	if c.kind == PointNetwork {
		// Small batches: a source whose input is all in place drains in
		// many calls, which the faults can reach.
		batch = networkBatch
	}
	err := s.writeFiles(dir, name, delivery, in, rate, batch)
	if err == nil {
		err = s.putInput(ctx, dir, name, in)
	}
	return err
}

// runCell runs one cell in its own directory and judges it, one result per
// guarantee of the cell. A network cell was prepared before (prepared holds
// how that went), since its input must be in place before any network fault.
func (s *suite) runCell(ctx context.Context, i int, c cell, prepared error) []Result {
	name, dir, in, _ := s.cellSetup(i, c)
	var got *listed
	var detail string
	ran, unreached := false, false
	err := prepared
	if c.kind != PointNetwork {
		err = s.prepare(ctx, i, c)
	}
	if err == nil {
		ran = true
		switch c.kind {
		case PointContract:
			res := s.contract(ctx, dir, name, c)
			if s.o.Reader != nil && c.guarantees[0] != string(sdk.CapReplayable) && c.guarantees[0] != string(sdk.CapDeterministic) {
				s.readBackContract(ctx, dir, name, &res)
			}
			return []Result{res}
		case PointSoak:
			got, detail, unreached, err = s.soakRuns(ctx, dir, name, c.guarantees[0])
		case PointNetwork:
			got, detail, err = s.networkRuns(ctx, dir, name)
		case PointHang:
			got, detail, err = s.hangRuns(ctx, dir, name, strings.TrimPrefix(c.point, PointHang+":"))
		default:
			got, detail, unreached, err = s.crashRuns(ctx, dir, name, c)
		}
	}
	if ctx.Err() != nil {
		err, ran = ctx.Err(), false
	}
	if got == nil && ran {
		// Read back even after a failed recovery: the counts say what the
		// failure cost.
		l, lerr := s.list(ctx, dir, name)
		if lerr == nil {
			got = l
		} else if err == nil {
			err = lerr
		}
	}
	if got != nil && s.o.Reader != nil && ctx.Err() == nil {
		read, rerr := s.readBack(ctx, dir, name, got)
		got = read
		if err == nil {
			err = rerr
		}
	}
	want, werr := in.ids()
	if werr != nil && err == nil {
		err = werr
	}
	var out []Result
	for _, g := range c.guarantees {
		res := Result{FaultPoint: c.point, Guarantee: g, Detail: detail, NotReached: unreached}
		if got != nil && s.shaped() {
			lost, dup, unexpected, how := judge(s.expect[in], got)
			res.Lost, res.Duplicated, res.Unexpected, res.DeadLetters = lost, dup, len(unexpected), got.DeadRecords
			res.Pass, res.Informational = verdict(g, lost, dup, len(unexpected))
			res.Detail = strings.TrimSpace(res.Detail + "\n" + how)
			if len(unexpected) > 0 {
				res.Detail = strings.TrimSpace(fmt.Sprintf("%s\nthe sinks hold %d ids the reference run did not hold there, such as %q", res.Detail, len(unexpected), unexpected[0]))
			}
		} else if got != nil {
			lost, dup, unexpected := Tally(want, got.IDs)
			res.Lost, res.Duplicated, res.Unexpected = lost, dup, len(unexpected)
			res.Pass, res.Informational = verdict(g, lost, dup, len(unexpected))
			if len(unexpected) > 0 {
				res.Detail = strings.TrimSpace(fmt.Sprintf("%s\nthe sink holds %d ids that were never input, such as %q", res.Detail, len(unexpected), unexpected[0]))
			}
		}
		if len(c.guarantees) > 1 {
			res.Detail = strings.TrimSpace(fmt.Sprintf("%s\njudged from the %s pipeline", res.Detail, c.guarantees[0]))
		}
		if err != nil {
			res.Error, res.Pass, res.Informational = err.Error(), false, false
		}
		out = append(out, res)
	}
	return out
}

// list reads back the ids the pipeline's sink holds.
func (s *suite) list(ctx context.Context, dir, name string) (*listed, error) {
	r, err := s.child(ctx, dir, name, nil, modeList, pipelineFile)
	if err != nil {
		return nil, err
	}
	var got listed
	if r.code != 0 || json.Unmarshal([]byte(lastLine(r.stdout)), &got) != nil {
		return nil, fmt.Errorf("reading the sink back failed (exit %d): %s", r.code, r.tail())
	}
	return &got, nil
}

// contract runs one contract check.
func (s *suite) contract(ctx context.Context, dir, name string, c cell) Result {
	res := Result{FaultPoint: c.point, Guarantee: c.guarantees[0]}
	r, err := s.child(ctx, dir, name, nil, modeContract, c.guarantees[0], pipelineFile)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	var out checked
	if r.code != 0 || json.Unmarshal([]byte(lastLine(r.stdout)), &out) != nil {
		res.Error = fmt.Sprintf("the contract check did not run (exit %d): %s", r.code, r.tail())
		return res
	}
	res.Pass, res.Lost, res.Duplicated, res.Error, res.Detail = out.Pass, out.Lost, out.Duplicated, out.Error, out.Detail
	return res
}

// crashRuns runs the pipeline with each of c's faults in turn, then recovers
// it, and returns what the sink holds at the end. unreached is true when c's
// first fault is in the reference run's last batch (c.last) and this run
// drained in fewer batches, so that the batch never came: the source batched
// the input differently this time. The rest of c's faults are then skipped,
// the drain is judged as a run without a crash, and the detail says so.
func (s *suite) crashRuns(ctx context.Context, dir, name string, c cell) (got *listed, detail string, unreached bool, err error) {
	var steps []string
	ret := func(l *listed, err error) (*listed, string, bool, error) {
		return l, strings.Join(steps, "; "), unreached, err
	}
	var last ran
	recovered := false
	for i, f := range c.faults {
		r, err := s.child(ctx, dir, name, []string{fault.Env + "=" + f}, modeRun, pipelineFile, "list")
		if err != nil {
			return ret(nil, err)
		}
		host := strings.HasPrefix(f, "host.")
		failed := "crashed at " + f + ", host restarted it"
		if strings.HasSuffix(f, fault.ErrorSuffix) {
			failed = "call failed at " + f + ", host recovered"
		}
		if i > 0 && strings.HasPrefix(c.point, PointRecovery+":") {
			failed = "crashed at " + f + " while the host replayed the batch, host restarted it"
		}
		missed := r.code == 0 && !r.killed && (host || r.status.Warnings == 0)
		switch {
		case missed && i == 0 && c.last > 0 && r.status.Batches < int64(c.last):
			steps = append(steps, fmt.Sprintf("fault point %s was not reached: this run drained in %d batches, the reference run in %d (the source batched the input differently); judged as a run without a crash", f, r.status.Batches, c.last))
			unreached, recovered, last = true, true, r
		case host && r.killed && i > 0:
			steps = append(steps, "host killed again at "+f+", while it replayed the batch")
			recovered = false
		case host && r.killed:
			steps = append(steps, "host killed at "+f)
			recovered = false
		case host && r.code == 0:
			return ret(nil, fmt.Errorf("fault point %s was not reached: the pipeline finished without it (%d batches)", f, r.status.Batches))
		case host:
			return ret(nil, fmt.Errorf("the run meant to crash at %s failed first (exit %d): %s", f, r.code, r.tail()))
		case r.killed || r.code != 0:
			return ret(nil, fmt.Errorf("the host did not recover from the %s crash at %s (exit %d): %s", strings.SplitN(f, ".", 2)[0], f, r.code, r.tail()))
		case r.status.Warnings == 0:
			return ret(nil, fmt.Errorf("fault point %s was not reached: no plugin failed in the run (%d batches)", f, r.status.Batches))
		default:
			steps = append(steps, fmt.Sprintf("%s %s and drained (%d batches, %d replayed, %d plugin failures)", strings.SplitN(f, ".", 2)[0], failed, r.status.Batches, r.status.Replays, r.status.Warnings))
			recovered, last = true, r
		}
		if unreached {
			break
		}
	}
	if !recovered {
		r, err := s.child(ctx, dir, name, nil, modeRun, pipelineFile, "list")
		if err != nil {
			return ret(nil, err)
		}
		if r.code != 0 {
			return ret(nil, fmt.Errorf("recovery run failed (exit %d): %s", r.code, r.tail()))
		}
		if len(c.faults) > 0 {
			steps = append(steps, fmt.Sprintf("recovery drained %d batches (%d replayed)", r.status.Batches, r.status.Replays))
		}
		last = r
	}
	if last.status.Listed == nil {
		return ret(nil, fmt.Errorf("the run did not read the sink back: %s", last.tail()))
	}
	return ret(last.status.Listed, nil)
}

// soakRuns starts the pipeline again and again and kills the host or one of
// its plugin processes with SIGKILL at moments drawn from the seed, then
// drains it and returns what the sink holds. The kills depend only on the
// seed and the guarantee; where they land depends on timing too. When the
// pipeline drains before the first kill lands (a fast plugin, a short input)
// no kill is left to judge: the cell is judged on the drained run as a run
// without a crash and reported not reached (unreached), as a crash point
// beyond the last batch is, not failed.
func (s *suite) soakRuns(ctx context.Context, dir, name, guarantee string) (got *listed, detail string, unreached bool, err error) {
	h := fnv.New64a()
	h.Write([]byte(guarantee))
	rng := rand.New(rand.NewSource(s.o.Seed ^ int64(h.Sum64()>>1)))
	rounds := 3
	if s.o.Level == Full {
		rounds = 8
	}
	var steps []string
	kills := 0
	ret := func(l *listed, err error) (*listed, string, bool, error) {
		return l, strings.Join(steps, "; "), kills == 0 && err == nil, err
	}
	for round := 1; round <= rounds && ctx.Err() == nil; round++ {
		cmd, out, errb := s.command(dir, name, nil, modeRun, pipelineFile)
		if err := cmd.Start(); err != nil {
			return ret(nil, err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		wait := func(d time.Duration) bool { // true: the run ended first
			select {
			case <-done:
				return true
			case <-time.After(d):
				return false
			}
		}
		if wait(time.Duration(40+rng.Intn(400)) * time.Millisecond) {
			r := finish(cmd, out, errb)
			if r.code != 0 {
				return ret(nil, fmt.Errorf("round %d: the run failed (exit %d): %s", round, r.code, r.tail()))
			}
			steps = append(steps, fmt.Sprintf("round %d: the pipeline drained before the kill", round))
			break
		}
		victim, what := cmd.Process.Pid, "host"
		kids := children(victim)
		if len(kids) > 0 && rng.Intn(2) == 0 {
			victim, what = kids[rng.Intn(len(kids))], "a plugin"
		}
		_ = proc.Kill(victim)
		kills++
		if what != "host" && !wait(time.Duration(50+rng.Intn(250))*time.Millisecond) {
			_ = cmd.Process.Kill()
			kills++
			what += ", then the host"
		}
		<-done
		steps = append(steps, fmt.Sprintf("round %d: killed %s", round, what))
	}
	if kills == 0 {
		steps = append(steps, "no kill landed: the pipeline drained within the first kill's delay (a longer input would let the soak kill it)")
	}
	r, err := s.child(ctx, dir, name, nil, modeRun, pipelineFile, "list")
	if err != nil {
		return ret(nil, err)
	}
	if r.code != 0 {
		return ret(nil, fmt.Errorf("final drain failed (exit %d): %s", r.code, r.tail()))
	}
	steps = append(steps, fmt.Sprintf("drained (%d batches, %d replayed)", r.status.Batches, r.status.Replays))
	return ret(r.status.Listed, nil)
}

// children returns the pids of the direct children of pid (Linux; elsewhere
// none, and the soak kills only hosts).
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(field); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}
