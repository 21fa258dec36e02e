package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/pipeline"
	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/protocol"
	"github.com/connectd/connectd/plugins/discard"
	"github.com/connectd/connectd/plugins/file"
	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/sdk"
)

// The suite's child processes. The suite re-executes an executable (the
// running one, or Options.Exe) with childEnv set and one of the modes below
// as its first argument; Child recognises it, does the job and exits, before
// the program does anything else. Plugin processes that a child host starts
// inherit childEnv, so Child also serves the executable's bundled plugins
// (`__plugin NAME`, as the connectd binary does).
const childEnv = "CONNECTD_CONFORMANCE_CHILD"

const (
	modeProbe    = "__conformance-probe"    // FILE [INPUT]: specs, capabilities, claims as JSON
	modeRun      = "__conformance-run"      // FILE [list]: drain the pipeline (fault points armed), then list the sink
	modeList     = "__conformance-list"     // FILE: the ids the sink holds, as JSON
	modeContract = "__conformance-contract" // CHECK FILE: one contract check, as JSON
	modeBundled  = "__conformance-bundled"  // the names of the bundled plugins, as JSON
)

// bundled is what this executable's children serve and host by name: the
// plugins given to Child; nil until Child is called.
var bundled map[string]sdk.Plugin

// helpers returns the plugins the suite itself uses, which a test binary's
// children serve: the generator (the input), the file sink (the default sink
// and the file source's input) and discard. It imports no client of an
// external system, so an author's test links only these and the sdk.
func helpers() map[string]sdk.Plugin {
	return map[string]sdk.Plugin{
		generatorName: generator.Plugin,
		"file":        file.Plugin,
		"discard":     discard.Plugin,
	}
}

// A test binary is made a possible child here, before TestMain and the
// tests run, with the suite's helper plugins: an author's test needs no
// call of Child and no connectd binary.
func init() {
	if testing.Testing() {
		Child(helpers())
	}
}

// Child makes this process serve the suite when the suite re-executed it as
// one of its children, and exits; otherwise it records plugins and returns.
// plugins are those this executable serves and hosts by name: the suite's
// pipelines name any other plugin by its path.
//
// A test binary needs no call: this package's init calls Child(helpers()).
// Any other program that runs the suite with itself as the host (Options.Exe
// empty), or that another program's suite runs as its Options.Exe, calls
// Child first in main with every plugin it bundles: the connectd binary does,
// with all of its bundled plugins, so that `connectd conformance --sink kafka`
// and a test with Options.Exe set to a connectd binary reach them.
func Child(plugins map[string]sdk.Plugin) {
	bundled = plugins
	if os.Getenv(childEnv) != "1" || len(os.Args) < 2 {
		return
	}
	args := os.Args[2:]
	names := make([]string, 0, len(bundled))
	for n := range bundled {
		names = append(names, n)
	}
	slices.Sort(names)
	switch os.Args[1] {
	case plugin.ServeArg:
		if len(args) == 1 {
			if p, ok := bundled[args[0]]; ok {
				sdk.Serve(p)
			}
		}
		fmt.Fprintf(os.Stderr, "conformance: no bundled plugin %q in %s (it bundles %s)\n", args, os.Args[0], strings.Join(names, ", "))
		os.Exit(2)
	case modeBundled:
		writeJSON(names)
		os.Exit(0)
	case modeProbe, modeRun, modeList, modeContract:
		os.Exit(child(os.Args[1], args))
	}
}

// child runs one child mode and returns the process's exit code: 0 done,
// 1 failed, 2 bad configuration. Results go to stdout as one JSON object,
// diagnostics and logs to stderr.
func child(mode string, args []string) int {
	want := 1
	if mode == modeContract {
		want = 2
	}
	if (mode == modeProbe || mode == modeRun) && len(args) == 2 {
		want = 2
	}
	if len(args) != want || mode == modeRun && want == 2 && args[1] != "list" {
		fmt.Fprintf(os.Stderr, "conformance %s: bad arguments %q\n", mode, args)
		return 2
	}
	ctx := context.Background()
	path := args[len(args)-1]
	if mode == modeProbe || mode == modeRun {
		path = args[0]
	}
	file, loader, code := loadChild(path)
	if code != 0 {
		return code
	}
	p := file.Pipelines[0]
	var out any
	var err error
	switch mode {
	case modeRun:
		if err := fault.Init(); err != nil {
			fmt.Fprintf(os.Stderr, "conformance: %v\n", err)
			return 2
		}
		st, err := runChild(ctx, p, loader)
		if err == nil && len(args) == 2 {
			var l listed
			if l, err = listChild(ctx, p, loader); err == nil {
				st.Listed = &l
			}
		}
		writeJSON(st)
		if err != nil {
			fmt.Fprintf(os.Stderr, "connectd: %v\n", err)
			return 1
		}
		return 0
	case modeList:
		out, err = listChild(ctx, p, loader)
	case modeProbe:
		if len(args) == 2 {
			if _, _, code := loadChild(args[1]); code != 0 {
				return code
			}
		}
		out, err = probeChild(ctx, p, loader)
	case modeContract:
		out = contractChild(ctx, args[0], p, loader)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "conformance: %v\n", err)
		return 1
	}
	writeJSON(out)
	return 0
}

func writeJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(os.Stdout, "%s\n", b)
}

// loadChild reads and validates a pipeline file as `connectd run` does.
func loadChild(path string) (*config.File, *plugin.Loader, int) {
	f, diags := config.Parse(path)
	if diags.HasErrors() {
		fmt.Fprintln(os.Stderr, f.Format(diags))
		return nil, nil, 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "conformance: %v\n", err)
		return nil, nil, 1
	}
	l := &plugin.Loader{Exe: exe, Dir: f.PluginDir, Bundled: bundled, Stderr: os.Stderr}
	f, diags = config.Load(path, l.Spec)
	if diags.HasErrors() {
		fmt.Fprintln(os.Stderr, f.Format(diags))
		return nil, nil, 2
	}
	return f, l, 0
}

// runStatus is what a run child prints when it ends by itself.
type runStatus struct {
	Batches  int64 `json:"batches"`
	Replays  int64 `json:"replays"`
	Warnings int64 `json:"warnings"`
	// Listed is what the sink holds after the drain, when it was asked for.
	Listed *listed `json:"listed,omitempty"`
}

// runChild drains the pipeline as `connectd run --drain` does.
func runChild(ctx context.Context, p *config.Pipeline, l *plugin.Loader) (runStatus, error) {
	var warnings atomic.Int64
	log := slog.New(&countHandler{Handler: slog.NewTextHandler(os.Stderr, nil), n: &warnings})
	prog := &counter{}
	err := pipeline.Run(ctx, pipeline.Options{Pipeline: p, Loader: l, Drain: true, Progress: prog, Log: log, Grace: 10 * time.Second})
	return runStatus{Batches: prog.batches.Load(), Replays: prog.replays.Load(), Warnings: warnings.Load()}, err
}

// countHandler counts log records at warning level or above: a host logs
// one whenever a plugin failed and was restarted.
type countHandler struct {
	slog.Handler
	n *atomic.Int64
}

func (h *countHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countHandler{Handler: h.Handler.WithAttrs(as), n: h.n}
}

func (h *countHandler) WithGroup(name string) slog.Handler {
	return &countHandler{Handler: h.Handler.WithGroup(name), n: h.n}
}

// counter is a pipeline.Progress that counts batches and replays.
type counter struct{ batches, replays atomic.Int64 }

func (c *counter) Batch(r pipeline.Report) {
	c.batches.Add(1)
	if r.Replay {
		c.replays.Add(1)
	}
}

func (c *counter) Done(string, int64, int64, time.Duration) {}

// listed is what a list child prints: the ids the sink holds, and those
// the dead-letter sink holds when the pipeline has one.
type listed struct {
	Records     int            `json:"records"`
	IDs         map[string]int `json:"ids"`
	DeadRecords int            `json:"dead_records,omitempty"`
	Dead        map[string]int `json:"dead,omitempty"`
}

// listChild reads back the ids the pipeline's sink holds, through sdk.Lister.
func listChild(ctx context.Context, p *config.Pipeline, l *plugin.Loader) (listed, error) {
	snk, err := open(ctx, l, p, sdk.KindSink)
	if err != nil {
		return listed{}, err
	}
	defer stop(ctx, snk)
	vals, err := list(ctx, snk, p)
	if err != nil {
		return listed{}, err
	}
	out := listed{Records: len(vals), IDs: Count(vals)}
	if p.DeadLetter == nil {
		return out, nil
	}
	dl, err := startSink(ctx, l, p, p.DeadLetter)
	if err != nil {
		return listed{}, err
	}
	defer stop(ctx, dl)
	if !dl.Has(protocol.FeatureLister) {
		return listed{}, fmt.Errorf("dead-letter sink %q does not implement sdk.Lister: the conformance suite reads back what it holds through it (docs/plugin-authors.md)", p.DeadLetter.Name)
	}
	if vals, err = dl.Sink.List(ctx); err != nil {
		return listed{}, fmt.Errorf("dead-letter sink %q: %w", p.DeadLetter.Name, err)
	}
	out.DeadRecords, out.Dead = len(vals), Count(vals)
	return out, nil
}

func list(ctx context.Context, snk *plugin.Process, p *config.Pipeline) ([][]byte, error) {
	if !snk.Has(protocol.FeatureLister) {
		return nil, fmt.Errorf("sink %q does not implement sdk.Lister: the conformance suite reads back what a sink holds through it (docs/plugin-authors.md)", p.Sink.Name)
	}
	return snk.Sink.List(ctx)
}

// startSink starts a sink process for the plugin block pl (the pipeline's
// sink or its dead-letter sink) and opens it with its settings.
func startSink(ctx context.Context, l *plugin.Loader, p *config.Pipeline, pl *config.Plugin) (*plugin.Process, error) {
	proc, err := l.Start(ctx, sdk.KindSink, pl.Name, plugin.Env(true))
	if err == nil {
		err = proc.Sink.Open(ctx, p.Name, pl.Values)
	}
	if err != nil {
		if proc != nil {
			proc.Kill()
		}
		return nil, err
	}
	return proc, nil
}

// startProcessor starts a processor process for the plugin block pl and
// opens it with its settings.
func startProcessor(ctx context.Context, l *plugin.Loader, p *config.Pipeline, pl *config.Plugin) (*plugin.Process, error) {
	proc, err := l.Start(ctx, sdk.KindProcessor, pl.Name, plugin.Env(true))
	if err == nil {
		err = proc.Processor.Open(ctx, p.Name, pl.Values)
	}
	if err != nil {
		if proc != nil {
			proc.Kill()
		}
		return nil, err
	}
	return proc, nil
}

// open starts the pipeline's source or sink process and opens it with the
// pipeline's settings.
func open(ctx context.Context, l *plugin.Loader, p *config.Pipeline, kind sdk.Kind) (*plugin.Process, error) {
	pl := &p.Source
	if kind == sdk.KindSink {
		pl = &p.Sink
	}
	proc, err := l.Start(ctx, kind, pl.Name, plugin.Env(true))
	if err == nil && kind == sdk.KindSource {
		err = proc.Source.Open(ctx, p.Name, pl.Values)
	} else if err == nil {
		err = proc.Sink.Open(ctx, p.Name, pl.Values)
	}
	if err != nil {
		if proc != nil {
			proc.Kill()
		}
		return nil, err
	}
	return proc, nil
}

// stop closes a plugin and ends its process.
func stop(ctx context.Context, proc *plugin.Process) {
	if proc == nil {
		return
	}
	if !proc.Exited() {
		switch {
		case proc.Source != nil:
			_ = proc.Source.Close(ctx)
		case proc.Sink != nil:
			_ = proc.Sink.Close(ctx)
		case proc.Processor != nil:
			_ = proc.Processor.Close(ctx)
		}
	}
	proc.Kill()
}

// role is what the probe learns about one plugin role.
type role struct {
	Name         string             `json:"name"`
	Version      string             `json:"version"`
	Capabilities []string           `json:"capabilities"`
	Features     []protocol.Feature `json:"features"`
}

func (r role) has(c sdk.Capability) bool {
	for _, x := range r.Capabilities {
		if x == string(c) {
			return true
		}
	}
	return false
}

// probed is what a probe child prints.
type probed struct {
	Source role `json:"source"`
	Sink   role `json:"sink"`
	// Processors are the chain's processors, in order; DeadLetter the
	// dead-letter sink, when the pipeline has them.
	Processors []role   `json:"processors,omitempty"`
	DeadLetter *role    `json:"dead_letter,omitempty"`
	Claimed    []string `json:"claimed"`
	NotClaimed string   `json:"not_claimed,omitempty"`
}

// probeChild starts and opens both plugins once, and works out which
// guarantees they claim with their settings.
func probeChild(ctx context.Context, p *config.Pipeline, l *plugin.Loader) (probed, error) {
	var out probed
	src, err := open(ctx, l, p, sdk.KindSource)
	if err != nil {
		return out, err
	}
	stop(ctx, src)
	snk, err := open(ctx, l, p, sdk.KindSink)
	if err != nil {
		return out, err
	}
	stop(ctx, snk)
	describe := func(proc *plugin.Process, pl config.Plugin) role {
		r := role{Name: proc.Spec.Name, Version: proc.Spec.Version, Features: proc.Features}
		for _, c := range proc.Spec.CapabilitiesFor(pl.Values) {
			r.Capabilities = append(r.Capabilities, string(c))
		}
		return r
	}
	out.Source, out.Sink = describe(src, p.Source), describe(snk, p.Sink)
	if !snk.Has(protocol.FeatureLister) {
		return out, fmt.Errorf("sink %q does not implement sdk.Lister: the conformance suite reads back what a sink holds through it (docs/plugin-authors.md)", p.Sink.Name)
	}
	var procSpecs []sdk.Spec
	for _, pl := range p.Processors() {
		pr, err := startProcessor(ctx, l, p, pl)
		if err != nil {
			return out, err
		}
		stop(ctx, pr)
		out.Processors = append(out.Processors, describe(pr, *pl))
		procSpecs = append(procSpecs, pr.Spec)
	}
	var dlSpec sdk.Spec
	if p.DeadLetter != nil {
		dl, err := startSink(ctx, l, p, p.DeadLetter)
		if err != nil {
			return out, err
		}
		stop(ctx, dl)
		r := describe(dl, *p.DeadLetter)
		out.DeadLetter, dlSpec = &r, dl.Spec
		if !dl.Has(protocol.FeatureLister) {
			return out, fmt.Errorf("dead-letter sink %q does not implement sdk.Lister: the conformance suite reads back what it holds through it (docs/plugin-authors.md)", p.DeadLetter.Name)
		}
	}
	exactly := *p
	exactly.Delivery = config.ExactlyOnce
	if err := config.CheckPipeline(&exactly, src.Spec, snk.Spec, procSpecs, dlSpec); err != nil {
		out.NotClaimed = err.Error()
	} else {
		out.Claimed = append(out.Claimed, ExactlyOnce)
	}
	out.Claimed = append(out.Claimed, AtLeastOnce, AtMostOnce)
	return out, nil
}
