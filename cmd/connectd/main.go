// Command connectd runs stream pipelines from HCL files, serves its bundled
// plugins, and shows and moves pipeline offsets. It reads flags, wires the
// host's packages together and forwards signals; the logic lives in host/.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/offsets"
	"github.com/connectd/connectd/host/pipeline"
	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/plugins"
	"github.com/connectd/connectd/sdk"
)

// Version is connectd's version, set at build time with -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
	// exitInterrupted is a `run --drain` stopped by SIGINT or SIGTERM before
	// it finished, 128+SIGINT as shells report Ctrl-C.
	exitInterrupted = 130
)

const usage = `connectd moves records from a source plugin to a sink plugin in numbered
micro-batches and keeps each pipeline's delivery promise (at-most-once,
at-least-once, exactly-once) across crashes of any process.

Usage:
  connectd run [--drain] [--pipeline NAME] [--progress text|json] [--http ADDR]
               [--log-format text|json] [--log-level debug|info|warn|error] [--plugin-dir DIR] FILE
  connectd worker [--id ID] [--lease-ttl DURATION] [--progress text|json] [--log-format text|json]
                  [--log-level LEVEL] [--plugin-dir DIR] FILE
  connectd validate [--plugin-dir DIR] FILE
  connectd plugins [--json] [--plugin-dir DIR]
  connectd offsets show FILE [--pipeline NAME] [--json]
  connectd offsets reset FILE --pipeline NAME --to earliest|latest|<json>|batch:<id>
  connectd status [--addr ADDR] [--json]
  connectd conformance --source NAME|PATH --sink NAME|PATH --processor NAME|PATH [--config FILE.hcl] [--quick] [--json] [--junit FILE]
  connectd version

Run 'connectd COMMAND --help' for a command's flags. Exit status: 0 success,
1 runtime failure, 2 bad usage or configuration, 130 a drain interrupted by a
signal before it finished. Docs: docs/README.md.
`

func main() {
	// A child process of the conformance suite (under connectd conformance,
	// or a test whose conformance.Options.Exe is this binary) does its job
	// here, with every bundled plugin, and exits.
	conformance.Child(plugins.Bundled())
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case plugin.ServeArg:
		return servePlugin(rest, stderr)
	case "run":
		return cmdRun(rest, stdout, stderr)
	case "worker":
		return cmdWorker(rest, stdout, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "plugins":
		return cmdPlugins(rest, stdout, stderr)
	case "offsets":
		return cmdOffsets(rest, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "conformance":
		return cmdConformance(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "connectd %s (protocol connector.v1, checkpoint format v1)\n", Version)
		return exitOK
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "connectd: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// servePlugin is the child side of a bundled plugin: connectd re-executed by
// its own host.
func servePlugin(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "connectd %s: want one plugin name\n", plugin.ServeArg)
		return exitUsage
	}
	p, ok := plugins.Bundled()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "connectd %s: no bundled plugin %q\n", plugin.ServeArg, args[0])
		return exitUsage
	}
	sdk.Serve(p)
	return exitOK
}

// flags is a flag set that accepts flags before and after positional arguments.
type flags struct {
	*flag.FlagSet
	pos []string
}

func newFlags(name, synopsis string, stderr io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: connectd %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return &flags{FlagSet: fs}
}

// parse parses args; it returns an exit code and false when the command must stop.
func (f *flags) parse(args []string, npos int) (int, bool) {
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK, false
			}
			return exitUsage, false
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		f.pos = append(f.pos, args[0])
		args = args[1:]
	}
	if len(f.pos) != npos {
		fmt.Fprintf(f.Output(), "connectd %s: want %d argument(s), got %d: %q\n", f.Name(), npos, len(f.pos), f.pos)
		f.Usage()
		return exitUsage, false
	}
	return 0, true
}

// logLevels are the values of run's --log-level, by name.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// logger returns the log on stderr in format (text: log/slog's key=value
// lines, json: one object per line) at level and above; an unknown format or
// level is an error naming the allowed values.
func logger(stderr io.Writer, format, level string) (*slog.Logger, error) {
	lv, ok := logLevels[level]
	if !ok {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// newLoader returns the Loader of a command that starts plugins. The caller
// has checked the plugin TLS setting with tlsEnvOK; the caller closes it
// (removing the plugin socket directory).
func newLoader(dir string, stderr io.Writer) (*plugin.Loader, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the connectd executable to serve bundled plugins: %w", err)
	}
	return &plugin.Loader{Exe: exe, Dir: dir, Bundled: plugins.Bundled(), Stderr: stderr}, nil
}

// tlsEnvOK reports whether plugin.TLSEnv holds a value connectd takes; when
// it does not, it says why on stderr for command cmd (exit status 2 follows).
func tlsEnvOK(cmd string, stderr io.Writer) bool {
	if _, err := plugin.TLSFromEnv(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", strings.TrimSpace("connectd "+cmd), err)
		return false
	}
	return true
}

// started is what run and worker share before their first pipeline starts:
// the checked --progress, the logger, the armed fault points, the file and the
// Loader (which the caller closes).
type started struct {
	log    *slog.Logger
	file   *config.File
	loader *plugin.Loader
}

// start checks the flags run and worker share and loads the pipeline file at
// path; code is exitOK or what the command exits with (the reason on stderr).
func start(cmd, progress, logFormat, logLevel, path, pluginDir string, stderr io.Writer) (s started, code int) {
	if progress != "text" && progress != "json" {
		fmt.Fprintf(stderr, "connectd %s: --progress %q: want text or json\n", cmd, progress)
		return s, exitUsage
	}
	log, err := logger(stderr, logFormat, logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "connectd %s: %v\n", cmd, err)
		return s, exitUsage
	}
	if err := fault.Init(); err != nil {
		fmt.Fprintf(stderr, "connectd %s: %v\n", cmd, err)
		return s, exitUsage
	}
	file, loader, code := load(path, pluginDir, stderr)
	return started{log: log, file: file, loader: loader}, code
}

// load reads and validates the pipeline file; on failure it prints the
// diagnostics and returns exitUsage.
func load(path, pluginDir string, stderr io.Writer) (*config.File, *plugin.Loader, int) {
	f, diags := config.Parse(path)
	if diags.HasErrors() {
		fmt.Fprintln(stderr, f.Format(diags))
		return nil, nil, exitUsage
	}
	if pluginDir == "" {
		pluginDir = f.PluginDir
	}
	if !tlsEnvOK("", stderr) {
		return nil, nil, exitUsage
	}
	l, err := newLoader(pluginDir, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "connectd: %v\n", err)
		return nil, nil, exitRuntime
	}
	f, diags = config.Load(path, l.Spec)
	if len(diags) > 0 {
		fmt.Fprintln(stderr, f.Format(diags)) // warnings too
	}
	if diags.HasErrors() {
		_ = l.Close()
		return nil, nil, exitUsage
	}
	return f, l, exitOK
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	f := newFlags("validate", "validate [--plugin-dir DIR] FILE", stderr)
	dir := f.String("plugin-dir", "", "directory of third-party plugins (connectd-plugin-<name>); overrides plugin_dir in FILE")
	if code, ok := f.parse(args, 1); !ok {
		return code
	}
	file, l, code := load(f.pos[0], *dir, stderr)
	if code != exitOK {
		return code
	}
	defer l.Close()
	if code := checkHTTP(file, stderr); code != exitOK {
		return code
	}
	for _, p := range file.Pipelines {
		tasks := ""
		if p.Parallelism > 1 {
			tasks = fmt.Sprintf(", parallelism %d (tasks %q to %q)", p.Parallelism, config.TaskName(p.Name, 0), config.TaskName(p.Name, p.Parallelism-1))
		}
		fmt.Fprintf(stdout, "pipeline %q: %s, source %q → sink %q%s, checkpoint %s: ok\n", p.Name, p.Delivery, p.Source.Name, p.Sink.Name, tasks, p.Checkpoint.Where())
	}
	return exitOK
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	f := newFlags("run", "run [--drain] [--pipeline NAME] [--progress text|json] [--http ADDR] [--log-format text|json] [--log-level LEVEL] [--plugin-dir DIR] FILE", stderr)
	drain := f.Bool("drain", false, "process what the sources hold at start, then exit 0 (130 when a signal stops it before the end)")
	only := f.String("pipeline", "", "run only this pipeline of FILE, all its tasks (or only the task of this name) (default: all of them)")
	progress := f.String("progress", "text", "progress output: text (a line per batch or per second, on stderr) or json (one object per batch, on stdout)")
	dir := f.String("plugin-dir", "", "directory of third-party plugins (connectd-plugin-<name>); overrides plugin_dir in FILE")
	logFormat := f.String("log-format", "text", "log format on stderr: text (key=value lines) or json (one object per line)")
	logLevel := f.String("log-level", "info", "least severe log level shown: debug, info, warn or error")
	grace := f.Duration("grace", 30*time.Second, "on SIGINT/SIGTERM, how long to let the batch in flight finish before abandoning it (it is replayed at the next start)")
	httpAddr := f.String("http", "", "serve the status page /, /metrics, /healthz, /readyz and the API /v1/ at host:port (overrides the file's http block); an address other than loopback needs a token ("+tokenEnv+" or the http block's token)")
	if code, ok := f.parse(args, 1); !ok {
		return code
	}
	st, code := start("run", *progress, *logFormat, *logLevel, f.pos[0], *dir, stderr)
	if code != exitOK {
		return code
	}
	log, file, loader := st.log, st.file, st.loader
	defer loader.Close()
	pipes, err := units(file, *only)
	if err != nil {
		fmt.Fprintf(stderr, "connectd run: %v\n", err)
		return exitUsage
	}
	for _, p := range pipes {
		if err := checkParallelism(p); err != nil {
			fmt.Fprintf(stderr, "connectd run: %v\n", err)
			return exitUsage
		}
	}
	var prog pipeline.Progress = &pipeline.Text{W: stderr, Every: time.Second}
	if *progress == "json" {
		prog = &pipeline.JSON{W: stdout}
	}
	srv, code := serveHTTP(file, pipes, *httpAddr, nil, stderr)
	if srv == nil {
		return code
	}
	defer srv.stop()
	prog = pipeline.Tee(prog, srv.progress)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		log.Info("stopping: finishing the batch in flight (signal again to exit at once)", "signal", s.String())
		cancel()
		<-sigs
		fmt.Fprintln(stderr, "connectd: second signal, exiting at once; the batch in flight is replayed at the next start")
		_ = loader.Close() // os.Exit runs no deferred call; the plugins die with the host
		if *drain {
			os.Exit(exitInterrupted) // the drain did not finish
		}
		os.Exit(exitRuntime)
	}()

	var wg sync.WaitGroup
	errs := make([]error, len(pipes))
	for i, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("starting pipeline", "pipeline", p.Name, "task", p.Task, "tasks", p.Tasks, "delivery", string(p.Delivery), "source", p.Source.Name, "sink", p.Sink.Name, "checkpoint", p.Checkpoint.Where(), "drain", *drain)
			errs[i] = pipeline.Run(ctx, pipeline.Options{Pipeline: p, Loader: loader, Drain: *drain, Progress: prog, Log: log, Grace: *grace, Checkpoint: openCheckpoint, Control: srv.controls[p.Name]})
			var stopped *pipeline.Interrupted
			if errs[i] != nil && !errors.As(errs[i], &stopped) {
				cancel() // one pipeline failing stops the others cleanly
			}
		}()
	}
	wg.Wait()
	code = exitOK
	interrupted := false
	for _, err := range errs {
		if err == nil {
			continue
		}
		fmt.Fprintf(stderr, "connectd: %v\n", err)
		var stopped *pipeline.Interrupted
		if errors.As(err, &stopped) {
			interrupted = true // a drain stopped by a signal, or by another pipeline's failure
			continue
		}
		code = max(code, exitCode(err))
	}
	if code == exitOK && interrupted {
		return exitInterrupted
	}
	return code
}

// exitCode is the exit status for a pipeline's error: exitUsage for a
// configuration a plugin refused (when it opened or later), exitRuntime
// otherwise.
func exitCode(err error) int {
	var cerr *pipeline.ConfigError
	if errors.As(err, &cerr) {
		return exitUsage
	}
	return exitRuntime
}

func cmdPlugins(args []string, stdout, stderr io.Writer) int {
	f := newFlags("plugins", "plugins [--json] [--plugin-dir DIR]", stderr)
	asJSON := f.Bool("json", false, "print the specs as JSON")
	dir := f.String("plugin-dir", "", "also list third-party plugins found in this directory")
	if code, ok := f.parse(args, 0); !ok {
		return code
	}
	if !tlsEnvOK("plugins", stderr) {
		return exitUsage
	}
	l, err := newLoader(*dir, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "connectd plugins: %v\n", err)
		return exitRuntime
	}
	defer l.Close()
	specs := l.BundledSpecs()
	code := exitOK
	for _, path := range l.ThirdParty() {
		s, err := l.Specs(path)
		if err != nil {
			fmt.Fprintf(stderr, "connectd plugins: %v\n", err)
			code = exitRuntime
			continue
		}
		specs = append(specs, s...)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(specsJSON(specs)); err != nil {
			return exitRuntime
		}
		return code
	}
	writeSpecs(stdout, specs)
	return code
}

func cmdOffsets(args []string, stdout, stderr io.Writer) int {
	const offsetsUsage = "Usage:\n  connectd offsets show FILE [--pipeline NAME] [--json] [--last N]\n  connectd offsets reset FILE --pipeline NAME [--task K] --to earliest|latest|<json>|batch:<id>\n\nRun 'connectd offsets show --help' or 'connectd offsets reset --help' for their flags.\n"
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help" || args[0] == "help") {
		fmt.Fprint(stdout, offsetsUsage)
		return exitOK
	}
	if len(args) == 0 || (args[0] != "show" && args[0] != "reset") {
		fmt.Fprint(stderr, offsetsUsage)
		return exitUsage
	}
	if args[0] == "show" {
		f := newFlags("offsets show", "offsets show FILE [--pipeline NAME] [--json] [--last N]", stderr)
		only := f.String("pipeline", "", "show only this pipeline (all its tasks), or the task of this name")
		asJSON := f.Bool("json", false, "print JSON")
		last := f.Int("last", 10, "how many recent batches to show")
		if code, ok := f.parse(args[1:], 1); !ok {
			return code
		}
		file, diags := config.Parse(f.pos[0])
		if diags.HasErrors() {
			fmt.Fprintln(stderr, file.Format(diags))
			return exitUsage
		}
		pipes, err := units(file, *only)
		if err != nil {
			fmt.Fprintf(stderr, "connectd offsets show: %v\n", err)
			return exitUsage
		}
		var states []offsets.State
		for _, p := range pipes {
			cp, err := inspectCheckpoint(context.Background(), p)
			if err != nil {
				fmt.Fprintf(stderr, "connectd offsets show: pipeline %q: %v\n", p.Name, err)
				return exitRuntime
			}
			st := offsets.Show(cp, p.Name, *last)
			st.Task = taskOf(p)
			cp.Close()
			if st.Owner, err = owner(context.Background(), p); err != nil {
				fmt.Fprintf(stderr, "connectd offsets show: pipeline %q: %v\n", p.Name, err)
				return exitRuntime
			}
			states = append(states, st)
		}
		if *asJSON {
			if err := offsets.WriteJSON(stdout, states); err != nil {
				return exitRuntime
			}
			return exitOK
		}
		offsets.WriteText(stdout, states)
		return exitOK
	}
	f := newFlags("offsets reset", "offsets reset FILE --pipeline NAME [--task K] --to earliest|latest|<json>|batch:<id>", stderr)
	only := f.String("pipeline", "", "the pipeline to reset, all its tasks (required); or the task of this name")
	task := f.String("task", "", "reset only task K (0, 1, …) of a pipeline with parallelism > 1")
	to := f.String("to", "", `where the pipeline continues: earliest, latest, Spark JSON such as '{"orders":{"0":23}}', or batch:<id> (the start of that batch)`)
	if code, ok := f.parse(args[1:], 1); !ok {
		return code
	}
	if *only == "" || *to == "" {
		fmt.Fprintln(stderr, "connectd offsets reset: --pipeline and --to are required")
		f.Usage()
		return exitUsage
	}
	file, diags := config.Parse(f.pos[0])
	if diags.HasErrors() {
		fmt.Fprintln(stderr, file.Format(diags))
		return exitUsage
	}
	us, err := units(file, *only)
	if err == nil {
		us, err = selectTask(us, *task)
	}
	if err != nil {
		fmt.Fprintf(stderr, "connectd offsets reset: %v\n", err)
		return exitUsage
	}
	return resetUnits(us, *to, stdout, stderr)
}
