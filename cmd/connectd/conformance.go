package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/connectd/connectd/conformance"
)

// cmdConformance runs the conformance suite (package conformance) against a
// source, a sink or a pair, and prints its report. Exit 0 iff every claimed
// guarantee and every contract held.
func cmdConformance(args []string, stdout, stderr io.Writer) int {
	f := newFlags("conformance", "conformance --source NAME|PATH --sink NAME|PATH --processor NAME|PATH [--config FILE.hcl] [--quick] [--json] [--junit FILE]", stderr)
	source := f.String("source", "", "the source under test: a bundled plugin's name or the path of a plugin executable")
	sink := f.String("sink", "", "the sink under test: a bundled plugin's name or the path of a plugin executable")
	processor := f.String("processor", "", "the processor under test: a bundled plugin's name or the path of a plugin executable")
	cfgPath := f.String("config", "", "HCL file with the plugins' settings: source, sink, processor and input blocks, transform and dead_letter blocks (docs/conformance.md)")
	quick := f.Bool("quick", false, "run the quick level (CI) instead of the full one (release)")
	asJSON := f.Bool("json", false, "print the report as one JSON object instead of a table")
	junit := f.String("junit", "", "also write the report as JUnit XML to this file")
	seed := f.Int64("seed", 0, "seed of the random SIGKILL soak (default: from the clock; the report prints it)")
	parallel := f.Int("parallel", 2, "pipelines run at once")
	points := f.String("points", "", "comma-separated fault points (and none, soak, contract, hang, recovery) to keep; default all")
	work := f.String("work", "", "directory for the pipelines' files, kept afterwards (default: a temporary one, removed)")
	if code, ok := f.parse(args, 0); !ok {
		return code
	}
	if *source == "" && *sink == "" && *processor == "" {
		fmt.Fprintln(stderr, "connectd conformance: give --source, --sink, --processor or several")
		f.Usage()
		return exitUsage
	}
	if !tlsEnvOK("conformance", stderr) {
		return exitUsage
	}
	o := conformance.Options{
		Source:    conformance.Plugin{Name: *source},
		Sink:      conformance.Plugin{Name: *sink},
		Processor: conformance.Plugin{Name: *processor},
		Level:     conformance.Full,
		Seed:      *seed,
		Parallel:  *parallel,
		WorkDir:   *work,
		Log:       stderr,
	}
	if *quick {
		o.Level = conformance.Quick
	}
	if *points != "" {
		o.Points = strings.Split(*points, ",")
	}
	if *cfgPath != "" {
		cfg, err := conformance.ReadConfig(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "connectd conformance: %v\n", err)
			return exitUsage
		}
		for _, b := range []struct {
			kind  string
			flag  string
			block *conformance.Plugin
			dst   *conformance.Plugin
		}{{"source", *source, cfg.Source, &o.Source}, {"sink", *sink, cfg.Sink, &o.Sink}, {"processor", *processor, cfg.Processor, &o.Processor}} {
			switch {
			case b.block == nil:
			case b.flag == "":
				fmt.Fprintf(stderr, "connectd conformance: %s has a %s block but no --%s names the %s under test\n", *cfgPath, b.kind, b.kind, b.kind)
				return exitUsage
			case !strings.ContainsRune(b.flag, '/') && b.block.Name != b.flag:
				fmt.Fprintf(stderr, "connectd conformance: %s has %s %q, but --%s is %q\n", *cfgPath, b.kind, b.block.Name, b.kind, b.flag)
				return exitUsage
			default:
				b.dst.HCL = b.block.HCL
			}
		}
		o.Transforms = cfg.Transforms
		if cfg.DeadLetter != nil {
			o.DeadLetter = *cfg.DeadLetter
		}
		if cfg.Input != nil {
			o.Input = *cfg.Input
			if o.Input.Name == o.Source.Name || cfg.Source != nil && o.Input.Name == cfg.Source.Name {
				o.Input.Name = o.Source.Name // the input sink of a source given by path
			}
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := conformance.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "connectd conformance: %v\n", err)
		var u *conformance.UsageError
		if errors.As(err, &u) {
			return exitUsage
		}
		return exitRuntime
	}
	if *junit != "" {
		out, err := os.Create(*junit)
		if err == nil {
			err = rep.WriteJUnit(out)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "connectd conformance: --junit: %v\n", err)
			return exitRuntime
		}
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil || !rep.Passed() {
		return exitRuntime
	}
	return exitOK
}
