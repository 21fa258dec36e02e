package sdktest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

func TestSourceGenerator(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		from   sdk.Offsets
		limits sdk.Limits
		want   int         // records ReadAll returns
		end    sdk.Offsets // offsets after the last one
	}{
		{"one partition", map[string]any{"count": 10}, nil, sdk.Limits{MaxRecords: 3}, 10,
			sdk.Offsets{"generator/0": 10}},
		{"three partitions, JSON-shaped values", map[string]any{"count": float64(10), "partitions": float64(3)}, nil,
			sdk.Limits{MaxRecords: 4}, 10, sdk.Offsets{"generator/0": 4, "generator/1": 3, "generator/2": 3}},
		{"batch larger than the data", map[string]any{"count": 5, "partitions": 2}, sdk.Offsets{},
			sdk.Limits{MaxRecords: 1000}, 5, sdk.Offsets{"generator/0": 3, "generator/1": 2}},
		{"from the middle", map[string]any{"count": 10, "partitions": 2}, sdk.Offsets{"generator/0": 3, "generator/1": -2},
			sdk.Limits{MaxRecords: 2}, 7, sdk.Offsets{"generator/0": 5, "generator/1": 5}},
		{"from latest", map[string]any{"count": 10, "partitions": 2}, sdk.Offsets{"generator/0": -1, "generator/1": -1},
			sdk.Limits{MaxRecords: 2}, 0, sdk.Offsets{"generator/0": -1, "generator/1": -1}},
		{"drain up to stop", map[string]any{"count": 100, "partitions": 2}, nil,
			sdk.Limits{MaxRecords: 7, Stop: sdk.Offsets{"generator/0": 4, "generator/1": 2}}, 6,
			sdk.Offsets{"generator/0": 4, "generator/1": 2}},
		{"max bytes", map[string]any{"count": 6, "size": 100}, nil,
			sdk.Limits{MaxRecords: 100, MaxBytes: 250}, 6, sdk.Offsets{"generator/0": 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := sdktest.Source(t, generator.Plugin, "demo", tt.values)
			from := tt.from.Clone()
			got, end := sdktest.ReadAll(t, src, tt.from, tt.limits)
			if !tt.from.Equal(from) {
				t.Errorf("ReadAll changed its from: %v, was %v", tt.from, from)
			}
			if len(got) != tt.want {
				t.Fatalf("ReadAll returned %d records, want %d", len(got), tt.want)
			}
			if !end.Equal(tt.end) {
				t.Errorf("ReadAll ended at %s, want %s", end, tt.end)
			}
			seen := map[string]bool{}
			last := map[string]int64{}
			for i, r := range got {
				_, part := sdk.SplitPartition(r.Position.Partition)
				if want := fmt.Sprintf("%s-%d", part, r.Position.Offset); string(r.Key) != want {
					t.Errorf("record %d: key %q, want %q", i, r.Key, want)
				}
				if seen[string(r.Key)] {
					t.Errorf("record %d: id %q twice", i, r.Key)
				}
				seen[string(r.Key)] = true
				if l, ok := last[r.Position.Partition]; ok && r.Position.Offset != l+1 {
					t.Errorf("record %d: %s does not follow offset %d", i, r.Position, l)
				}
				last[r.Position.Partition] = r.Position.Offset
				if u := end[r.Position.Partition]; r.Position.Offset >= u {
					t.Errorf("record %d: %s is at or past the end %d", i, r.Position, u)
				}
			}

			// Replay through the plugin's own source returns the same records.
			rp, ok := sdktest.Unwrap(src).(sdk.Replayer)
			if !ok {
				t.Fatalf("Unwrap(%T) is not a Replayer", src)
			}
			if tt.want == 0 {
				return
			}
			start := sdk.Offsets{}
			for _, r := range got {
				if _, ok := start[r.Position.Partition]; !ok {
					start[r.Position.Partition] = r.Position.Offset
				}
			}
			until := sdk.Offsets{}
			for p := range start {
				until[p] = end[p]
			}
			again, err := rp.Replay(context.Background(), start, until)
			if err != nil {
				t.Fatalf("Replay(%s, %s): %v", start, until, err)
			}
			if len(again) != len(got) {
				t.Fatalf("Replay returned %d records, want %d", len(again), len(got))
			}
			for i := range got {
				if again[i].Position != got[i].Position || string(again[i].Value) != string(got[i].Value) {
					t.Fatalf("replayed record %d = %s, read %s", i, again[i].Position, got[i].Position)
				}
			}
		})
	}
}

// fakeSource returns the records and until it is given, whatever it is asked.
type fakeSource struct {
	rd     sdk.Read
	fail   error // Open's error
	opened sdk.Config
	open   bool // Open was called
	closed bool
}

func (f *fakeSource) Open(_ context.Context, cfg sdk.Config) error {
	f.opened, f.open = cfg, true
	return f.fail
}
func (f *fakeSource) Read(context.Context, sdk.Offsets, sdk.Limits) (sdk.Read, error) {
	return f.rd, nil
}
func (f *fakeSource) Ack(context.Context, sdk.Offsets) error { return nil }
func (f *fakeSource) Close(context.Context) error            { f.closed = true; return nil }

var fakeSpec = sdk.Spec{
	Name: "fake", Version: "0", Kind: sdk.KindSource,
	Params: []sdk.Param{
		{Name: "n", Type: sdk.TypeInt, Default: int64(1)},
		{Name: "mode", Type: sdk.TypeString, Default: "a", Enum: []string{"a", "bb"}},
	},
}

func fakePlugin(f *fakeSource) sdk.Plugin {
	return sdk.Plugin{Source: &sdk.SourcePlugin{Spec: fakeSpec, New: func() sdk.Source { return f }}}
}

func rec(p string, off int64) sdk.Record {
	return sdk.Record{Value: []byte("v"), Position: sdk.Position{Partition: p, Offset: off}}
}

func TestCheckedSource(t *testing.T) {
	tests := []struct {
		name    string
		rd      sdk.Read
		from    sdk.Offsets
		limits  sdk.Limits
		wantErr string
	}{
		{"keeps the contract", sdk.Read{Records: []sdk.Record{rec("t/0", 0), rec("t/0", 1)}, Until: sdk.Offsets{"t/0": 2}},
			sdk.Offsets{"t/0": 0}, sdk.Limits{MaxRecords: 10}, ""},
		{"record past until", sdk.Read{Records: []sdk.Record{rec("t/0", 0), rec("t/0", 5)}, Until: sdk.Offsets{"t/0": 2}},
			sdk.Offsets{"t/0": 0}, sdk.Limits{MaxRecords: 10}, "record 1 (t/0@5) is at or past until 2"},
		{"partition missing from until", sdk.Read{Records: []sdk.Record{rec("t/1", 0)}, Until: sdk.Offsets{"t/0": 2}},
			sdk.Offsets{"t/0": 0}, sdk.Limits{MaxRecords: 10}, "missing from until"},
		{"more than max records", sdk.Read{Records: []sdk.Record{rec("t/0", 0), rec("t/0", 1)}, Until: sdk.Offsets{"t/0": 2}},
			sdk.Offsets{"t/0": 0}, sdk.Limits{MaxRecords: 1}, "more than max_records 1"},
		{"past stop", sdk.Read{Records: []sdk.Record{rec("t/0", 0), rec("t/0", 1)}, Until: sdk.Offsets{"t/0": 2}},
			sdk.Offsets{"t/0": 0}, sdk.Limits{MaxRecords: 10, Stop: sdk.Offsets{"t/0": 1}}, "past stop offset 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSource{rd: tt.rd}
			src := sdktest.Source(t, fakePlugin(f), "pipe", map[string]any{"n": 3})
			if f.opened.Pipeline != "pipe" || f.opened.Int("n") != 3 {
				t.Errorf("opened with pipeline %q, n=%d", f.opened.Pipeline, f.opened.Int("n"))
			}
			if sdktest.Unwrap(src) != sdk.Source(f) {
				t.Errorf("Unwrap(%T) is not the plugin's source", src)
			}
			rd, err := src.Read(context.Background(), tt.from, tt.limits)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if len(rd.Records) != len(tt.rd.Records) {
					t.Errorf("Read returned %d records, want %d", len(rd.Records), len(tt.rd.Records))
				}
				return
			}
			if err == nil {
				t.Fatalf("Read of a contract-breaking source returned no error")
			}
			if !strings.Contains(err.Error(), "sdktest: source broke the Read contract") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Read error %q, want the contract error %q", err, tt.wantErr)
			}
		})
	}
}

func TestSourceClosedAtCleanup(t *testing.T) {
	f := &fakeSource{}
	t.Run("inner", func(t *testing.T) {
		sdktest.Source(t, fakePlugin(f), "p", nil)
		if f.closed {
			t.Fatal("closed before the test ended")
		}
	})
	if !f.closed {
		t.Fatal("source not closed when its test ended")
	}
	if s := sdk.Source(f); sdktest.Unwrap(s) != s {
		t.Error("Unwrap of an unwrapped source is not itself")
	}
}

// fatalTB records Fatalf and stops its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestSourceFatal(t *testing.T) {
	tests := []struct {
		name   string
		p      sdk.Plugin
		values map[string]any
		want   string
	}{
		{"no source role", sdk.Plugin{}, nil, "has no source"},
		{"unknown parameter", generator.Plugin, map[string]any{"cnt": 1}, `config of source "generator": parameter "cnt": not a parameter`},
		{"mistyped parameter", generator.Plugin, map[string]any{"count": "ten"}, `parameter "count": got string, want int`},
		{"out of range", generator.Plugin, map[string]any{"partitions": 0}, `parameter "partitions": 0 is outside the range 1 to 1048576`},
		{"open fails", fakePlugin(&fakeSource{fail: sdk.Configf("n is odd")}), nil, `open source "fake": n is odd`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := &fatalTB{TB: t}
			done := make(chan bool)
			go func() {
				defer close(done)
				sdktest.Source(tb, tt.p, "p", tt.values)
				done <- true
			}()
			if returned := <-done; returned {
				t.Fatal("Source returned instead of failing the test")
			}
			tb.mu.Lock()
			defer tb.mu.Unlock()
			if !strings.Contains(tb.msg, tt.want) {
				t.Errorf("Fatalf(%q), want it to contain %q", tb.msg, tt.want)
			}
		})
	}
}

// TestBadEnum: Source and Sink refuse a value outside its parameter's enum,
// as the host does, and never call Open with it.
func TestBadEnum(t *testing.T) {
	run := func(f func(tb testing.TB)) string {
		tb := &fatalTB{TB: t}
		done := make(chan bool)
		go func() {
			defer close(done)
			f(tb)
			done <- true
		}()
		if returned := <-done; returned {
			t.Fatal("returned instead of failing the test")
		}
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return tb.msg
	}
	src := &fakeSource{}
	msg := run(func(tb testing.TB) { sdktest.Source(tb, fakePlugin(src), "p", map[string]any{"mode": "bbb"}) })
	if want := `config of source "fake": parameter "mode": "bbb" is not one of "a", "bb"; did you mean "bb"?`; msg != want {
		t.Errorf("Source: Fatalf(%q), want %q", msg, want)
	}
	if src.open {
		t.Error("Source called Open with a bad enum value")
	}
	sk := &fakeSink{}
	msg = run(func(tb testing.TB) { sdktest.Sink(tb, fakeSinkPlugin(sk), "p", map[string]any{"mode": "c"}) })
	if want := `config of sink "fakesink": parameter "mode": "c" is not one of "a", "bb"`; msg != want {
		t.Errorf("Sink: Fatalf(%q), want %q", msg, want)
	}
	if sk.open {
		t.Error("Sink called Open with a bad enum value")
	}
	sdktest.Sink(t, fakeSinkPlugin(sk), "p", map[string]any{"mode": "bb"})
	if !sk.open {
		t.Error("Sink did not open with a good value")
	}
}

type fakeSink struct{ open bool }

func (f *fakeSink) Open(context.Context, sdk.Config) error { f.open = true; return nil }
func (f *fakeSink) Write(context.Context, sdk.Batch) error { return nil }
func (f *fakeSink) Close(context.Context) error            { return nil }

func fakeSinkPlugin(f *fakeSink) sdk.Plugin {
	spec := fakeSpec
	spec.Name, spec.Kind = "fakesink", sdk.KindSink
	return sdk.Plugin{Sink: &sdk.SinkPlugin{Spec: spec, New: func() sdk.Sink { return f }}}
}
