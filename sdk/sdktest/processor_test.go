package sdktest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// scripted is a processor that returns what the test sets, and counts its
// Open and Close calls.
type scripted struct {
	out          []sdk.Record
	err          error
	open, closed bool
}

func (s *scripted) Open(context.Context, sdk.Config) error { s.open = true; return nil }
func (s *scripted) Close(context.Context) error            { s.closed = true; return nil }
func (s *scripted) Process(context.Context, sdk.Batch) ([]sdk.Record, error) {
	return s.out, s.err
}

func scriptedPlugin(s *scripted) sdk.Plugin {
	return sdk.Plugin{Processor: &sdk.ProcessorPlugin{
		Spec: sdk.Spec{Name: "scripted", Version: "1", Kind: sdk.KindProcessor,
			Params: []sdk.Param{{Name: "n", Type: sdk.TypeInt, Default: int64(1)}}},
		New: func() sdk.Processor { return s },
	}}
}

// Processor opens the processor (after checking values), closes it when the
// test ends, and turns a broken Process contract into an error while a kept
// one comes back as the processor returned it.
func TestProcessorChecked(t *testing.T) {
	in := sdk.Batch{ID: 1, Records: []sdk.Record{
		{Value: []byte("a"), Position: sdk.Position{Partition: "p", Offset: 3}},
		{Value: []byte("b"), Position: sdk.Position{Partition: "p", Offset: 4}},
	}}
	at := func(off int64) sdk.Record { return sdk.Record{Position: sdk.Position{Partition: "p", Offset: off}} }
	for _, c := range []struct {
		name string
		out  []sdk.Record
		err  error
		want string // "" when Process must return err as is
	}{
		{"kept", []sdk.Record{at(4), at(3), at(3)}, nil, ""},
		{"rejected", []sdk.Record{at(3)}, sdk.Reject(sdk.Rejection{Index: 1, Reason: "no"}), ""},
		{"failed", nil, errors.New("down"), ""},
		{"made-up position", []sdk.Record{at(3), at(5)}, nil, "sdktest: processor broke the Process contract: output record 1 is at p@5"},
		{"rejection outside the batch", nil, sdk.Reject(sdk.Rejection{Index: 2}), "rejection of record 2: the batch has 2 records"},
		{"rejected twice", nil, sdk.Reject(sdk.Rejection{Index: 0}, sdk.Rejection{Index: 0}), "record 0 is rejected twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &scripted{out: c.out, err: c.err}
			var p sdk.Processor
			t.Run("open", func(t *testing.T) {
				p = sdktest.Processor(t, scriptedPlugin(s), "p", map[string]any{"n": 2})
				if !s.open {
					t.Error("Processor did not open the processor")
				}
				out, err := p.Process(context.Background(), in)
				if c.want == "" && (err != c.err || len(out) != len(c.out)) {
					t.Errorf("Process = %d records, %v; want %d, %v", len(out), err, len(c.out), c.err)
				}
				if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
					t.Errorf("Process error %v, want it to contain %q", err, c.want)
				}
			})
			if !s.closed {
				t.Error("processor not closed when its test ended")
			}
		})
	}
}

func TestProcessorFatal(t *testing.T) {
	for _, c := range []struct {
		name   string
		p      sdk.Plugin
		values map[string]any
		want   string
	}{
		{"no processor role", sdk.Plugin{}, nil, "has no processor"},
		{"mistyped parameter", scriptedPlugin(&scripted{}), map[string]any{"n": "two"}, `config of processor "scripted": parameter "n": got string, want int`},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := &fatalTB{TB: t}
			done := make(chan bool)
			go func() {
				defer close(done)
				sdktest.Processor(tb, c.p, "p", c.values)
				done <- true
			}()
			if returned := <-done; returned {
				t.Fatal("Processor returned instead of failing the test")
			}
			tb.mu.Lock()
			defer tb.mu.Unlock()
			if !strings.Contains(tb.msg, c.want) {
				t.Errorf("Fatalf(%q), want it to contain %q", tb.msg, c.want)
			}
		})
	}
}
