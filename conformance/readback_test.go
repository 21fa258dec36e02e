package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/fault"
)

// fileReader reads back what a file sink (or a liar built on it) stored in
// the pipeline's directory sub: every line of every finished file, without
// the sink's List.
func fileReader(sub string) Reader {
	return func(_ context.Context, p Pipeline) ([][]byte, error) {
		dir := filepath.Join(p.Dir, sub)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var out [][]byte
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue // the file sink's offsets and unfinished files
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
				if len(line) > 0 {
					out = append(out, line)
				}
			}
		}
		return out, nil
	}
}

// TestCatchesListThatHidesDuplicates: a sink that appends a replayed batch
// (so stores it twice) but whose List returns every value once passes the
// whole matrix when the suite trusts List; with a Reader of its files, the
// quick level catches it.
func TestCatchesListThatHidesDuplicates(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Sink = Plugin{Name: liars["hider"], Config: map[string]any{"dir": "out"}}

	trusting := o
	trusting.Points = []string{PointNone, fault.HostWriteAfter, fault.SinkWriteAfter, PointContract}
	if rep := run(t, trusting); !rep.Passed() {
		t.Fatalf("without a Reader the suite must be fooled by the hiding List (else this test proves nothing): %+v", rep.Failed())
	}

	o.Level = Quick
	o.Reader = fileReader("out")
	rep := run(t, o)
	if !rep.ReadBack {
		t.Error("the report does not say the output was read back")
	}
	if rep.Passed() {
		t.Fatal("the suite passed a sink whose List hides duplicates, with a Reader of its files")
	}
	passes(t, rep, PointNone, ExactlyOnce)
	for _, p := range []string{"host.write.after@2", "sink.write.after@2"} {
		for _, g := range []string{ExactlyOnce, AtLeastOnce} {
			r, _ := rep.Find(p, g)
			if r.Pass || !strings.HasPrefix(r.Error, ReadBackPrefix) || !strings.Contains(r.Error, "List disagrees") || r.Duplicated == 0 {
				t.Errorf("%s / %s: %+v; want a read-back failure that counts the duplicates the Reader found", p, g, r)
			}
		}
	}
	if r, _ := rep.Find(PointContract, "idempotent"); r.Pass || !strings.Contains(r.Error, ReadBackPrefix) {
		t.Errorf("idempotence contract: %+v; want a read-back failure", r)
	}
}

// TestHonestSinksPassReadBack: the file sink's List and a Reader of its
// files agree, in batch mode (exactly-once) and in append mode, where the
// duplicates are real and List reports them.
func TestHonestSinksPassReadBack(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"batch", "append"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			o := options(t)
			o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": mode}}
			o.Points = []string{PointNone, fault.HostWriteAfter, fault.SinkWriteAfter, PointSoak, PointContract}
			o.Reader = fileReader("out")
			rep := run(t, o)
			if !rep.Passed() {
				t.Errorf("failed: %+v", rep.Failed())
			}
			if r, _ := rep.Find("host.write.after@2", AtLeastOnce); mode == "append" && r.Duplicated == 0 {
				t.Errorf("append mode: host.write.after@2 counted no duplicate: %+v", r)
			}
		})
	}
}

// TestReaderFailureFailsTheCell: a Reader that cannot read fails the cell,
// saying so, rather than falling back to List.
func TestReaderFailureFailsTheCell(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "batch"}}
	o.Points = []string{PointNone}
	o.Reader = func(context.Context, Pipeline) ([][]byte, error) { return nil, fmt.Errorf("no route to the system") }
	rep := run(t, o)
	for _, r := range rep.Results {
		if r.Pass || !strings.HasPrefix(r.Error, ReadBackPrefix+"the Reader failed: no route") {
			t.Errorf("%s / %s: %+v; want a failure naming the Reader", r.FaultPoint, r.Guarantee, r)
		}
	}
}
