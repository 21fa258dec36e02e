package conformance

import (
	"context"
	"io"
	"os"
	"time"
)

// Guarantee names, as pipelines spell them.
const (
	AtMostOnce  = "at-most-once"
	AtLeastOnce = "at-least-once"
	ExactlyOnce = "exactly-once"
)

// Guarantees lists the three delivery guarantees in the order reports show them.
var Guarantees = []string{ExactlyOnce, AtLeastOnce, AtMostOnce}

// Level is how much of the matrix a run covers.
type Level string

// The levels.
const (
	// Quick crashes once per fault point (in batch 2) and during the
	// recovery of batch 2, runs one short random SIGKILL soak per
	// guarantee, and checks the contracts: for CI.
	Quick Level = "quick"
	// Full crashes in the first, a middle and the last batch (as a
	// faultless reference run counted them), adds partial points that stop
	// after a single record, crashes during recoveries in each of those
	// batches, and soaks with more kills: for releases.
	Full Level = "full"
)

// FullEnv is the environment variable that makes Test run the full level:
// CONNECTD_CONFORMANCE_FULL=1.
const FullEnv = "CONNECTD_CONFORMANCE_FULL"

// LevelFromEnv returns Full when FullEnv is "1", else Quick.
func LevelFromEnv() Level {
	if os.Getenv(FullEnv) == "1" {
		return Full
	}
	return Quick
}

// Plugin names one plugin role and its settings.
type Plugin struct {
	// Name is a bundled plugin's name ("file"), or the path of a plugin
	// executable (any name with a slash, such as "./connectd-plugin-jsonl").
	Name string
	// Config holds the plugin's parameters. Values may be string, bool, int,
	// int64, float64, time.Duration or []string.
	Config map[string]any
	// HCL is the body of the plugin's block in HCL, used instead of Config
	// when not empty: `dir = "out"`. It may use env("NAME"); the variable
	// CONNECTD_CONFORMANCE_CELL (see CellEnv) is set for every pipeline the
	// suite runs, so external resources can be named per run.
	HCL string
}

// CellEnv is set in the environment of every process the suite starts to a
// name unique to the pipeline (it is also the pipeline's name): plugins of
// external systems use it in their settings, with env(), to get a fresh
// topic, index or table per pipeline.
const CellEnv = "CONNECTD_CONFORMANCE_CELL"

// Options configure Run. At least one of Source and Sink names the plugin
// under test; the other side defaults to a bundled plugin that is not under
// test (its fault points are left out of the matrix).
type Options struct {
	// Source is the source under test. When Name is empty the suite's input,
	// the bundled generator, is used. When Name is "generator" the generator
	// is under test (its settings are the suite's and Config is ignored).
	// Any other source needs its input from Input or InputFunc.
	Source Plugin
	// Sink is the sink under test. It must implement sdk.Lister: that is how
	// the suite reads back the ids it holds (checked against Reader when one
	// is given). When Name is empty, the bundled
	// file sink in batch mode, in directory "conformance-out", is used.
	Sink Plugin
	// Input is a sink that puts records into the source under test, such as
	// a sink of the same system (the file sink for the file source). Before
	// every pipeline the suite runs the generator into it, once, without faults.
	Input Plugin
	// InputFunc puts records into the source under test instead of Input:
	// it is called before every pipeline with the pipeline's working
	// directory (plugins run there, so relative paths in their settings are
	// relative to it) and the values to store, each a JSON object with a
	// unique "id" field.
	InputFunc func(dir string, values [][]byte) error

	// Transforms are `transform` blocks put, in order, between the source
	// and the sink of every pipeline the suite runs (docs/transforms.md).
	// Name is a built-in ("filter", "set", …), a bundled processor's name,
	// or the path of a processor executable, as for the other roles; Config
	// or HCL is the block's body. They are not under test: their own fault
	// points are not rows of the matrix. With transforms (or a Processor, or
	// a DeadLetter sink) the expected output is no longer the input: see
	// docs/conformance.md, "Through transforms".
	Transforms []Plugin
	// Processor is the processor plugin under test, put after Transforms as
	// the chain's last block. Its fault points (processor.process.before,
	// processor.process.after) join the matrix, and when it declares
	// capability "deterministic" the contract check of that name runs: the
	// same batch, processed again (after another batch, and after a restart
	// of the process), must give the same records and rejections. Without
	// that capability the suite does not claim exactly-once, and the report
	// says why (Report.NotClaimed).
	Processor Plugin
	// DeadLetter is the dead-letter sink of every pipeline the suite runs,
	// which then sets on_record_error = "dead_letter". It must implement
	// sdk.Lister: the suite counts the ids it holds as it counts the sink's.
	// When Name is empty and the run has Transforms or a Processor, the
	// bundled file sink in batch mode, in directory "conformance-dead", is
	// used; without them no dead-letter sink is used unless one is named.
	DeadLetter Plugin

	// Reader, when not nil, reads back the output of every pipeline without
	// the sink under test: the suite compares what it finds with the sink's
	// List, judges the cell by what the Reader found, and fails the cell
	// (Error starting with ReadBackPrefix) when the two disagree or the
	// Reader fails. It also runs after the sink's contract checks. A List
	// that hides duplicates or invents records passes no cell with a Reader.
	Reader Reader

	// Network, when not nil, adds the row "network" (PointNetwork): each
	// claimed guarantee's pipeline is drained once, without crashes, while
	// Network runs next to it, injecting faults into the connections
	// between the plugins and their system, typically through a TCP proxy
	// that the plugins' settings point at (package conformance/netfault
	// is one, on toxiproxy). Network is called once per pipeline with a ctx
	// that is cancelled when the pipeline has drained; it returns what it
	// injected, for the report. A run that fails under the faults is
	// started again, up to 10 times, as a supervisor would; then the output
	// is judged as in every other row. The row runs after all the others,
	// so that no other pipeline goes through the faults; when the generator
	// is the source, its 600 records come at 50 a second, so the row lasts
	// about 12 s. Nil: no network row.
	Network func(ctx context.Context, p Pipeline) (string, error)

	// Level is Quick when empty.
	Level Level
	// Seed makes the random SIGKILL soak reproducible; 0 picks one from the
	// clock. The report says which seed was used.
	Seed int64
	// Points, when not empty, keeps only the rows whose fault point name (such
	// as "host.write.after", without "@batch"), or "none", "soak", "contract",
	// "network", "hang", "recovery", is listed.
	Points []string
	// Parallel is how many pipelines run at once; 0 means 2.
	Parallel int
	// Exe is the executable re-executed as host and bundled-plugin server;
	// empty means the running one (os.Executable). It must be a test binary
	// that imports this package, whose children serve and host the generator,
	// file and discard plugins, or a program that calls Child first in main,
	// whose children serve the plugins it gave Child: the connectd binary,
	// with every bundled plugin. A plugin that Exe does not bundle is named
	// by its path.
	Exe string
	// WorkDir is where every pipeline gets its directory. Empty means a
	// temporary directory that is removed afterwards; a given one is kept.
	WorkDir string
	// Timeout bounds each process run (a crash run, a recovery, a read-back);
	// 0 means two minutes.
	Timeout time.Duration
	// Log, when not nil, gets a line per finished row as the suite goes.
	Log io.Writer
}
