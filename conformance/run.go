package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/connectd/connectd/host/transform"
	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/proc"
	"github.com/connectd/connectd/sdk"
)

// Names of the files the suite writes in a pipeline's directory.
const (
	pipelineFile  = "pipeline.hcl"
	inputFile     = "input.hcl"
	defaultOut    = "conformance-out"
	generatorName = "generator"
)

// UsageError is what Run returns when its options or the plugins' settings
// are wrong: nothing was tested. The CLI exits 2 for it.
type UsageError struct{ Msg string }

// Error returns what is wrong, with the plugins' diagnostics when they gave any.
func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// side is one role of the pipelines the suite runs.
type side struct {
	plugin    Plugin
	label     string // the block label in generated files
	underTest bool
}

// suite is one Run.
type suite struct {
	o        Options
	exe      string
	work     string
	plugins  string // directory of links to plugin executables ("" when none)
	runID    string
	src, snk side
	inp      *side  // the input sink, when the source needs one
	trs      []side // the transform chain, the processor under test last
	prc      *side  // the processor under test, also the last of trs
	dl       *side  // the dead-letter sink
	// expect holds, for a run through transforms or with a dead-letter
	// sink, what a faultless reference run of each input left in the sink
	// and the dead-letter sink: every other pipeline is judged by it.
	expect map[input]*listed
	probe  probed
	batch  int // max_records of matrix pipelines
	// last is how many batches the faultless reference run of the crash
	// input made at the full level (its last batch), 0 at the quick level.
	last    int
	crash   input
	soak    input
	rate    int // generator rate in the soak
	network input
	// networkRate is the generator's rate in the network row.
	networkRate int
	mu          sync.Mutex
	done        int
	total       int
}

// Run runs the conformance suite and returns its report. An error means the
// suite could not run at all (bad options, a plugin that cannot be started
// or configured, a sink without sdk.Lister); a guarantee that does not hold
// is a failed Result, never an error. Cancelling ctx stops the run.
func Run(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	s, err := newSuite(o)
	if err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		defer func() { os.RemoveAll(s.work) }() // s.work is made by setup
	}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	cells := s.matrix()
	if len(cells) == 0 {
		return nil, usagef("conformance: no cell to run (Points %q matches nothing)", o.Points)
	}
	rep := &Report{
		Source:     s.describe(s.src, s.probe.Source, sdk.KindSource),
		Sink:       s.describe(s.snk, s.probe.Sink, sdk.KindSink),
		Claimed:    s.probe.Claimed,
		NotClaimed: s.probe.NotClaimed,
		Level:      s.o.Level,
		Seed:       s.o.Seed,
		ReadBack:   o.Reader != nil,
	}
	rep.Transforms, rep.DeadLetter = s.describeChain()
	results := make([][]Result, len(cells))
	var order []int // the soaks, the longest, first: the pool ends together
	for i, c := range cells {
		s.total += len(c.guarantees)
		if c.kind == PointSoak {
			order = append(order, i)
		}
	}
	for i, c := range cells {
		if c.kind != PointSoak && c.kind != PointNetwork {
			order = append(order, i)
		}
	}
	s.logf("conformance: %s → %s, %s level, %d cells in %d pipelines, claimed %s, soak seed %d\n", rep.Source, rep.Sink, s.o.Level, s.total, len(cells), strings.Join(rep.Claimed, ", "), s.o.Seed)
	s.pool(ctx, cells, order, s.o.Parallel, nil, results)
	// The network row runs alone, after the others: its faults hit every
	// connection through the proxy, so no other row may share it.
	var network []int
	for i, c := range cells {
		if c.kind == PointNetwork {
			network = append(network, i)
		}
	}
	if len(network) > 0 && ctx.Err() == nil {
		// Every network cell's input is put in place first, without faults:
		// input written under them could itself be lost or doubled.
		prepared := make(map[int]error, len(network))
		for _, i := range network {
			prepared[i] = s.prepare(ctx, i, cells[i])
		}
		s.pool(ctx, cells, network, len(network), prepared, results)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, rs := range results {
		rep.Results = append(rep.Results, rs...)
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// pool runs the cells listed in order, workers at a time, and stores each
// one's results in results. prepared holds the outcome of preparing the
// cells that were prepared beforehand (network cells).
func (s *suite) pool(ctx context.Context, cells []cell, order []int, workers int, prepared map[int]error, results [][]Result) {
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				t := time.Now()
				rs := s.runCell(ctx, i, cells[i], prepared[i])
				for j := range rs {
					rs[j].Seconds = time.Since(t).Seconds()
					s.progress(rs[j])
				}
				results[i] = rs
			}
		}()
	}
	for _, i := range order {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
}

func newSuite(o Options) (*suite, error) {
	s := &suite{o: o}
	if o.Source.Name == "" && o.Sink.Name == "" && o.Processor.Name == "" {
		return nil, usagef("conformance: name a source, a sink or a processor to test (Options.Source, Options.Sink, Options.Processor; --source, --sink, --processor)")
	}
	switch {
	case o.Level == "":
		s.o.Level = Quick
	case o.Level != Quick && o.Level != Full:
		return nil, usagef("conformance: level %q is neither %q nor %q", o.Level, Quick, Full)
	}
	if s.o.Parallel <= 0 {
		s.o.Parallel = 2
	}
	if s.o.Timeout <= 0 {
		s.o.Timeout = 2 * time.Minute
	}
	if s.o.Seed == 0 {
		s.o.Seed = time.Now().UnixNano()%1_000_000 + 1
	}
	s.runID = fmt.Sprintf("%04x", uint16(time.Now().UnixNano()^int64(os.Getpid())<<8))
	for _, p := range o.Points {
		if !fault.Known(p) && p != PointNone && p != PointSoak && p != PointContract && p != PointNetwork && p != PointHang && p != PointRecovery {
			return nil, usagef("conformance: unknown point %q: want a fault point (docs/fault-points.md) or %q, %q, %q, %q, %q, %q", p, PointNone, PointSoak, PointContract, PointNetwork, PointHang, PointRecovery)
		}
	}

	s.exe = o.Exe
	if s.exe == "" {
		if bundled == nil {
			return nil, usagef("conformance: this program cannot be re-executed as the suite's host: call conformance.Child first in its main, or set Options.Exe to a connectd binary")
		}
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("conformance: cannot find the running executable to re-execute as the host: %w", err)
		}
		s.exe = exe
	}
	names, err := s.bundledNames()
	if err != nil {
		return nil, err
	}
	for i, p := range append([]Plugin{o.Source, o.Sink, o.Input, o.Processor, o.DeadLetter}, o.Transforms...) {
		builtin := transform.Builtin(p.Name) && (i == 3 || i >= 5) // a transform, or a processor that chain refuses
		if p.Name != "" && !strings.ContainsRune(p.Name, '/') && !names[p.Name] && !builtin {
			return nil, usagef("conformance: plugin %q is not bundled in %s (it bundles %s): give the path of its executable, or set Options.Exe to a connectd binary", p.Name, s.exe, strings.Join(slices.Sorted(maps.Keys(names)), ", "))
		}
	}
	s.src = side{plugin: o.Source, underTest: o.Source.Name != ""}
	if s.src.plugin.Name == "" || s.src.plugin.Name == generatorName {
		s.src.plugin = Plugin{Name: generatorName}
	}
	s.snk = side{plugin: o.Sink, underTest: o.Sink.Name != ""}
	if !s.snk.underTest {
		s.snk.plugin = Plugin{Name: "file", Config: map[string]any{"dir": defaultOut}}
	}
	for _, sd := range []*side{&s.src, &s.snk} {
		sd.label = pluginLabel(sd.plugin.Name, names)
	}
	if err := s.chain(names); err != nil {
		return nil, err
	}
	switch {
	case s.src.plugin.Name == generatorName && (o.Input.Name != "" || o.InputFunc != nil):
		return nil, usagef("conformance: the generator makes its own input; Input and InputFunc are for other sources")
	case s.src.plugin.Name != generatorName && o.Input.Name != "" && o.InputFunc != nil:
		return nil, usagef("conformance: give Input or InputFunc, not both")
	case s.src.plugin.Name != generatorName && o.Input.Name == "" && o.InputFunc == nil:
		return nil, usagef("conformance: source %q needs known input: an input sink that writes into it (an input block in the configuration, Options.Input) or Options.InputFunc", o.Source.Name)
	case o.Input.Name != "":
		s.inp = &side{plugin: o.Input, label: pluginLabel(o.Input.Name, names)}
		if o.Input.Name == o.Source.Name {
			s.inp.label = s.src.label
		} else if o.Input.Name == o.Sink.Name {
			s.inp.label = s.snk.label
		}
	}

	s.batch = 40
	s.crash = input{count: 120, partitions: 2, size: 64}
	if s.o.Level == Full {
		s.batch = 50
		s.crash = input{count: 300, partitions: 3, size: 64}
	}
	s.soak = input{count: 1500, partitions: 3, size: 64}
	s.rate = 3000
	s.network = input{count: 600, partitions: 3, size: 64}
	s.networkRate = 50 // 12 s of input: long enough for every fault
	return s, nil
}

// bundledNames returns the names of the plugins the host executable bundles,
// which name them in the pipeline files: this process's when it is the host,
// else the host's own answer. A plugin given by path gets a label that is none
// of them.
func (s *suite) bundledNames() (map[string]bool, error) {
	names := map[string]bool{}
	if s.o.Exe == "" {
		for n := range bundled {
			names[n] = true
		}
		return names, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.exe, modeBundled)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var list []string
	if err == nil {
		err = json.Unmarshal(out, &list)
	}
	if err != nil {
		return nil, usagef("conformance: Options.Exe %s cannot host the suite's pipelines (it must be a connectd binary, or a test binary that imports package conformance): %v %s", s.exe, err, strings.TrimSpace(stderr.String()))
	}
	for _, n := range list {
		names[n] = true
	}
	return names, nil
}

// setup makes the working directory and the plugin links, and probes the
// plugins: their specs, settings and the guarantees they claim.
func (s *suite) setup(ctx context.Context) error {
	var err error
	if s.o.WorkDir != "" {
		err = os.MkdirAll(s.o.WorkDir, 0o755)
		s.work = s.o.WorkDir
	} else {
		s.work, err = os.MkdirTemp("", "connectd-conformance-")
	}
	if err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	if s.work, err = filepath.Abs(s.work); err != nil {
		return err
	}
	sides := []*side{&s.src, &s.snk, s.inp, s.dl}
	for i := range s.trs {
		sides = append(sides, &s.trs[i])
	}
	for _, sd := range sides {
		if sd == nil || !strings.ContainsRune(sd.plugin.Name, '/') {
			continue
		}
		path, err := filepath.Abs(sd.plugin.Name)
		if err != nil {
			return err
		}
		if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return usagef("conformance: plugin %s is not an executable file", sd.plugin.Name)
		}
		if s.plugins == "" {
			s.plugins = filepath.Join(s.work, "plugins")
			_ = os.RemoveAll(s.plugins) // a kept WorkDir's last run
			if err := os.MkdirAll(s.plugins, 0o755); err != nil {
				return err
			}
		}
		base := sd.label
		for n := 2; ; n++ {
			link := filepath.Join(s.plugins, "connectd-plugin-"+sd.label)
			target, err := os.Readlink(link)
			if err == nil && target == path {
				break // the same executable in another role
			}
			if err == nil {
				sd.label = fmt.Sprintf("%s-%d", base, n) // another executable of the same name
				continue
			}
			if err := os.Symlink(path, link); err != nil {
				return fmt.Errorf("conformance: %w", err)
			}
			break
		}
	}
	dir := filepath.Join(s.work, "probe")
	name := "conformance-" + s.runID + "-probe"
	if err := s.writeFiles(dir, name, AtLeastOnce, s.crash, 0, s.batch); err != nil {
		return err
	}
	if err := s.putInput(ctx, dir, name, s.crash); err != nil {
		var u *UsageError
		if errors.As(err, &u) {
			return usagef("conformance: %s", u.Msg)
		}
		return fmt.Errorf("conformance: %w", err)
	}
	args := []string{modeProbe, pipelineFile}
	if s.inp != nil {
		args = append(args, inputFile)
	}
	r, err := s.child(ctx, dir, name, nil, args...)
	if err != nil {
		return err
	}
	if err := r.failed("conformance: the plugins' settings are wrong", "conformance: the plugins cannot run with these settings"); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(r.stdout), &s.probe); err != nil {
		return fmt.Errorf("conformance: probe: %w (output %q)", err, r.stdout)
	}
	return s.reference(ctx)
}

func (s *suite) describe(sd side, r role, kind sdk.Kind) string {
	d := fmt.Sprintf("%s %q %s", kind, r.Name, r.Version)
	if strings.ContainsRune(sd.plugin.Name, '/') {
		d += " (" + sd.plugin.Name + ")"
	}
	if sd.underTest {
		d += " under test"
	}
	return d
}

func (s *suite) logf(format string, args ...any) {
	if s.o.Log != nil {
		s.mu.Lock()
		fmt.Fprintf(s.o.Log, format, args...)
		s.mu.Unlock()
	}
}

func (s *suite) progress(r Result) {
	s.mu.Lock()
	s.done++
	n := s.done
	s.mu.Unlock()
	s.logf("[%d/%d] %s %s: %s (%.1fs)\n", n, s.total, r.FaultPoint, r.Guarantee, r.Cell(), r.Seconds)
}

// writeFiles makes dir afresh and writes a pipeline's files into it: the pipeline under test
// with delivery, input in and batches of at most batch records, and the input pipeline when
// the source needs one.
func (s *suite) writeFiles(dir, name, delivery string, in input, rate, batch int) error {
	_ = os.RemoveAll(dir) // a kept WorkDir's last run
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	var src string
	var err error
	if s.src.plugin.Name == generatorName {
		settings := in.settings()
		if rate > 0 {
			settings["rate"] = rate
		}
		src, err = block("source", generatorName, Plugin{Name: generatorName, Config: settings})
	} else {
		src, err = block("source", s.src.label, s.src.plugin)
	}
	if err != nil {
		return usagef("conformance: %v", err)
	}
	snk, err := block("sink", s.snk.label, s.snk.plugin)
	if err != nil {
		return usagef("conformance: %v", err)
	}
	shape, err := s.shapeBlocks()
	if err != nil {
		return err
	}
	if err := s.writePipeline(filepath.Join(dir, pipelineFile), name, delivery, src, shape+snk, batch); err != nil {
		return err
	}
	if s.inp == nil {
		return nil
	}
	gen, err := block("source", generatorName, Plugin{Name: generatorName, Config: in.settings()})
	if err != nil {
		return err
	}
	inp, err := block("sink", s.inp.label, s.inp.plugin)
	if err != nil {
		return usagef("conformance: input: %v", err)
	}
	return s.writePipeline(filepath.Join(dir, inputFile), name+"-input", AtLeastOnce, gen, inp, (in.count+2)/3)
}

func (s *suite) writePipeline(path, name, delivery, src, snk string, batch int) error {
	var b strings.Builder
	b.WriteString("# Written by the connectd conformance suite.\n")
	if s.plugins != "" {
		fmt.Fprintf(&b, "plugin_dir = %s\n", quote(s.plugins))
	}
	fmt.Fprintf(&b, "\npipeline %s {\n  delivery = %s\n\n", quote(name), quote(delivery))
	b.WriteString(src + "\n\n" + snk + "\n\n")
	fmt.Fprintf(&b, "  batch {\n    max_records = %d\n    max_wait    = \"100ms\"\n  }\n}\n", batch)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	return nil
}

// putInput puts the input records into the source of the pipeline in dir.
func (s *suite) putInput(ctx context.Context, dir, name string, in input) error {
	switch {
	case s.o.InputFunc != nil:
		vals, err := in.values()
		if err != nil {
			return err
		}
		if err := s.o.InputFunc(dir, vals); err != nil {
			return fmt.Errorf("InputFunc: %w", err)
		}
	case s.inp != nil:
		r, err := s.child(ctx, dir, name, nil, modeRun, inputFile)
		if err != nil {
			return err
		}
		if err := r.failed("the input sink's settings are wrong", fmt.Sprintf("putting the input in place through sink %q failed", s.inp.plugin.Name)); err != nil {
			return err
		}
	}
	return nil
}

// ran is how a child process ended.
type ran struct {
	code   int
	killed bool // died of SIGKILL
	stdout string
	stderr string
	status runStatus
}

// failed returns nil for a child that exited 0, a *UsageError saying
// usage for one that exited 2 (its stderr holds the configuration's
// diagnostics, with the lines of the pipeline file the suite wrote around
// the settings), and an error saying runtime for any other end.
func (r ran) failed(usage, runtime string) error {
	switch r.code {
	case 0:
		return nil
	case 2:
		return usagef("%s:\n%s", usage, strings.TrimSpace(r.stderr))
	}
	return fmt.Errorf("%s (exit %d):\n%s", runtime, r.code, r.tail())
}

// tail is the end of the child's stderr, for error messages.
func (r ran) tail() string {
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) > 12 {
		lines = lines[len(lines)-12:]
	}
	return strings.Join(lines, "\n")
}

// env is the environment of a child process for the pipeline name.
func (s *suite) env(name string, extra []string) []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, fault.Env+"=") || strings.HasPrefix(e, childEnv+"=") || strings.HasPrefix(e, CellEnv+"=") {
			continue
		}
		env = append(env, e)
	}
	env = append(env, childEnv+"=1", CellEnv+"="+name)
	env = append(env, sdk.PoisonEnv+"=1") // plugins inherit it: their batches are poisoned after Write (sdk.Batch)
	return append(env, extra...)
}

// command prepares a child process in dir.
func (s *suite) command(dir, name string, extra []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(s.exe, args...)
	proc.KillWithParent(cmd) // no host outlives the suite (on Linux)
	cmd.Dir = dir
	cmd.Env = s.env(name, extra)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return cmd, &out, &errb
}

// finish turns an ended command into a ran.
func finish(cmd *exec.Cmd, out, errb *bytes.Buffer) ran {
	r := ran{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		r.killed = true
	}
	if r.code == 0 && r.stdout != "" {
		_ = json.Unmarshal([]byte(lastLine(r.stdout)), &r.status)
	}
	return r
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// child runs a child process to its end (at most Options.Timeout).
func (s *suite) child(ctx context.Context, dir, name string, extra []string, args ...string) (ran, error) {
	cmd, out, errb := s.command(dir, name, extra, args...)
	if err := cmd.Start(); err != nil {
		return ran{}, fmt.Errorf("conformance: starting %s: %w", s.exe, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(s.o.Timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ran{}, ctx.Err()
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done
		return ran{}, fmt.Errorf("%s did not finish within %s; its stderr ends with:\n%s", strings.Join(args, " "), s.o.Timeout, finish(cmd, out, errb).tail())
	}
	return finish(cmd, out, errb), nil
}

// applies reports whether a row is kept by Options.Points.
func (s *suite) applies(point string) bool {
	if len(s.o.Points) == 0 {
		return true
	}
	if i := strings.IndexAny(point, "@:"); i >= 0 {
		point = point[:i]
	}
	return slices.Contains(s.o.Points, point)
}
