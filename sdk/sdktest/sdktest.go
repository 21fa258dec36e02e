// Package sdktest runs a plugin in-process in a Go test, no process spawned:
// configuration is validated against the plugin's spec as the host does, and
// every Read (every Process) is checked against the Source (Processor)
// contract as the sdk's server does.
package sdktest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/connectd/connectd/sdk"
)

// Source builds, configures and opens the source role of p with values, and
// closes it when the test ends. Values are checked with sdk.NewConfig, as the
// host and the sdk's server check them: an unknown, missing or mistyped
// parameter, or a value that breaks its Param's rules (Enum, Min, Max,
// Pattern), fails the test before Open. The result checks every Read it returns with
// sdk.CheckRead and turns a broken contract into an error.
func Source(t testing.TB, p sdk.Plugin, pipeline string, values map[string]any) sdk.Source {
	t.Helper()
	if p.Source == nil {
		t.Fatalf("plugin %q has no source", p.Name())
	}
	cfg, err := sdk.NewConfig(p.Source.Spec, pipeline, values)
	if err != nil {
		t.Fatalf("config of source %q: %v", p.Name(), err)
	}
	src := p.Source.New()
	if err := src.Open(context.Background(), cfg); err != nil {
		t.Fatalf("open source %q: %v", p.Name(), err)
	}
	t.Cleanup(func() {
		if err := src.Close(context.Background()); err != nil {
			t.Errorf("close source %q: %v", p.Name(), err)
		}
	})
	return checked{src}
}

// Sink builds, configures and opens the sink role of p with values, and closes
// it when the test ends. Values are checked as Source checks them.
//
// The result's Write lends the sink a copy of the batch in memory of its
// own and overwrites that memory as soon as the sink's Write returns (a
// batch's records are valid until then, see sdk.Batch): a sink that keeps
// references to them writes out "connectd poison: …" instead of its
// records, and the result's List fails naming such a value. The result is an
// sdk.Lister or an sdk.Transactional exactly when the sink is; UnwrapSink
// returns the sink itself.
func Sink(t testing.TB, p sdk.Plugin, pipeline string, values map[string]any) sdk.Sink {
	t.Helper()
	if p.Sink == nil {
		t.Fatalf("plugin %q has no sink", p.Name())
	}
	cfg, err := sdk.NewConfig(p.Sink.Spec, pipeline, values)
	if err != nil {
		t.Fatalf("config of sink %q: %v", p.Name(), err)
	}
	sk := p.Sink.New()
	if err := sk.Open(context.Background(), cfg); err != nil {
		t.Fatalf("open sink %q: %v", p.Name(), err)
	}
	t.Cleanup(func() {
		if err := sk.Close(context.Background()); err != nil {
			t.Errorf("close sink %q: %v", p.Name(), err)
		}
	})
	return poisonSink(sk)
}

// Processor builds, configures and opens the processor role of p with
// values, and closes it when the test ends. Values are checked as Source
// checks them. The result checks every Process it returns as the sdk's server
// does before the host sees it: a rejection of a record the batch does not
// have (or twice), or a record at the position of no input record, is an
// error. The records it returns carry the Position.Index the processor gave
// them; a host numbers them itself. As Sink's Write, it lends the processor
// a copy of the batch and overwrites it once Process returns (b.Records are
// valid until then); the records Process returned are copied out first.
func Processor(t testing.TB, p sdk.Plugin, pipeline string, values map[string]any) sdk.Processor {
	t.Helper()
	if p.Processor == nil {
		t.Fatalf("plugin %q has no processor", p.Name())
	}
	cfg, err := sdk.NewConfig(p.Processor.Spec, pipeline, values)
	if err != nil {
		t.Fatalf("config of processor %q: %v", p.Name(), err)
	}
	pr := p.Processor.New()
	if err := pr.Open(context.Background(), cfg); err != nil {
		t.Fatalf("open processor %q: %v", p.Name(), err)
	}
	t.Cleanup(func() {
		if err := pr.Close(context.Background()); err != nil {
			t.Errorf("close processor %q: %v", p.Name(), err)
		}
	})
	return checkedProcessor{pr}
}

// checkedProcessor wraps a processor so every Process is checked.
type checkedProcessor struct{ sdk.Processor }

func (c checkedProcessor) Process(ctx context.Context, b sdk.Batch) ([]sdk.Record, error) {
	l := lend(b.Records)
	b.Records = l.recs
	out, err := c.Processor.Process(ctx, b)
	out = own(out)
	defer l.release() // after the checks, which read b.Records
	var rej *sdk.Rejected
	if err != nil && !errors.As(err, &rej) {
		return out, err
	}
	if rej != nil {
		if cerr := sdk.CheckRejections(len(b.Records), rej.Records); cerr != nil {
			return out, fmt.Errorf("sdktest: processor broke the Process contract: %w", cerr)
		}
	}
	if cerr := sdk.CheckProcess(b.Records, out); cerr != nil {
		return out, fmt.Errorf("sdktest: processor broke the Process contract: %w", cerr)
	}
	return out, err
}

// checked wraps a source so every Read is checked. Optional interfaces stay
// reachable through Unwrap.
type checked struct{ sdk.Source }

func (c checked) Read(ctx context.Context, from sdk.Offsets, lim sdk.Limits) (sdk.Read, error) {
	rd, err := c.Source.Read(ctx, from, lim)
	if err != nil {
		return rd, err
	}
	if err := sdk.CheckRead(from, lim, rd); err != nil {
		return rd, fmt.Errorf("sdktest: source broke the Read contract: %w", err)
	}
	return rd, nil
}

// Unwrap returns the plugin's own source, for its optional interfaces
// (sdk.Replayer, sdk.Ender).
func Unwrap(s sdk.Source) sdk.Source {
	if c, ok := s.(checked); ok {
		return c.Source
	}
	return s
}

// ReadAll reads batches from from within lim until a Read comes back empty,
// and returns every record and the offsets after the last one.
func ReadAll(t testing.TB, src sdk.Source, from sdk.Offsets, lim sdk.Limits) ([]sdk.Record, sdk.Offsets) {
	t.Helper()
	var all []sdk.Record
	pos := from.Clone()
	if pos == nil {
		pos = sdk.Offsets{}
	}
	for {
		rd, err := src.Read(context.Background(), pos, lim)
		if err != nil {
			t.Fatalf("read from %s: %v", pos, err)
		}
		if len(rd.Records) == 0 {
			return all, pos
		}
		all = append(all, rd.Records...)
		pos = pos.Merge(rd.Until)
	}
}
