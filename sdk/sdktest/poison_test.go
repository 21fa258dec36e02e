package sdktest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// memorySink holds the values it is given for List: as they are (keeping
// references past Write, which a sink must not) or copied.
type memorySink struct {
	copy bool
	held [][]byte
}

func (s *memorySink) Open(context.Context, sdk.Config) error { return nil }
func (s *memorySink) Close(context.Context) error            { return nil }
func (s *memorySink) Write(_ context.Context, b sdk.Batch) error {
	for _, r := range b.Records {
		v := r.Value
		if s.copy {
			v = bytes.Clone(v)
		}
		s.held = append(s.held, v)
	}
	return nil
}
func (s *memorySink) List(context.Context) ([][]byte, error) { return s.held, nil }

// txSink is memorySink made transactional.
type txSink struct{ memorySink }

func (s *txSink) LastCommitted(context.Context) (sdk.Committed, error) {
	return sdk.Committed{Batch: 9}, nil
}

func memoryPlugin(s sdk.Sink) sdk.Plugin {
	spec := sdk.Spec{Name: "memory", Version: "1", Kind: sdk.KindSink}
	return sdk.Plugin{Sink: &sdk.SinkPlugin{Spec: spec, New: func() sdk.Sink { return s }}}
}

func batchOf(values ...string) sdk.Batch {
	b := sdk.Batch{ID: 1, From: sdk.Offsets{"t/0": 0}, Until: sdk.Offsets{"t/0": int64(len(values))}}
	for i, v := range values {
		b.Records = append(b.Records, sdk.Record{Value: []byte(v), Position: sdk.Position{Partition: "t/0", Offset: int64(i)}})
	}
	return b
}

// A sink that keeps references to a batch's records past Write holds poison
// once Write returns, and List fails saying so; one that copies them passes.
// The caller's batch is never touched.
func TestSinkPoisonsAfterWrite(t *testing.T) {
	ctx := context.Background()
	keeper := &memorySink{}
	sk := sdktest.Sink(t, memoryPlugin(keeper), "p", nil)
	b := batchOf(`{"id":"a"}`, `{"id":"b"}`)
	if err := sk.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if string(b.Records[0].Value) != `{"id":"a"}` {
		t.Errorf("the caller's batch changed: %q", b.Records[0].Value)
	}
	if got := string(keeper.held[0]); got != `connectd p` {
		t.Errorf("a value kept past Write reads %q, want it poisoned", got)
	}
	_, err := sk.(sdk.Lister).List(ctx)
	for _, want := range []string{"kept a reference to a batch's records past Write", "value 0", "copies what it keeps"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("List of a sink that keeps references: %v, want an error saying %q", err, want)
		}
	}

	copier := &memorySink{copy: true}
	sk = sdktest.Sink(t, memoryPlugin(copier), "p", nil)
	if err := sk.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, err := sk.(sdk.Lister).List(ctx); err != nil || len(got) != 2 || string(got[1]) != `{"id":"b"}` {
		t.Errorf("List of a sink that copies = %q, %v", got, err)
	}
	if sdktest.UnwrapSink(sk) != sdk.Sink(copier) {
		t.Error("UnwrapSink does not return the plugin's sink")
	}
}

// Sink's result keeps the sink's optional interfaces, and only those.
func TestSinkKeepsInterfaces(t *testing.T) {
	tx := sdktest.Sink(t, memoryPlugin(&txSink{}), "p", nil)
	if _, ok := tx.(sdk.Lister); !ok {
		t.Error("a transactional lister lost sdk.Lister")
	}
	if c, err := tx.(sdk.Transactional).LastCommitted(context.Background()); err != nil || c.Batch != 9 {
		t.Errorf("LastCommitted = %v, %v", c, err)
	}
	plain := sdktest.Sink(t, memoryPlugin(&struct{ sdk.Sink }{&memorySink{}}), "p", nil)
	if _, ok := plain.(sdk.Lister); ok {
		t.Error("a sink without List became an sdk.Lister")
	}
	if _, ok := plain.(sdk.Transactional); ok {
		t.Error("a sink without LastCommitted became an sdk.Transactional")
	}
}

// keepingProcessor passes records through and keeps the last batch's.
type keepingProcessor struct{ kept []sdk.Record }

func (p *keepingProcessor) Open(context.Context, sdk.Config) error { return nil }
func (p *keepingProcessor) Close(context.Context) error            { return nil }
func (p *keepingProcessor) Process(_ context.Context, b sdk.Batch) ([]sdk.Record, error) {
	p.kept = b.Records
	return b.Records, nil
}

// A processor's batch is poisoned when Process returns; the records it
// returned, which point into it, reach the caller intact.
func TestProcessorPoisonsAfterProcess(t *testing.T) {
	kp := &keepingProcessor{}
	spec := sdk.Spec{Name: "keep", Version: "1", Kind: sdk.KindProcessor}
	p := sdktest.Processor(t, sdk.Plugin{Processor: &sdk.ProcessorPlugin{Spec: spec, New: func() sdk.Processor { return kp }}}, "p", nil)
	out, err := p.Process(context.Background(), batchOf("first value", "second value"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || string(out[1].Value) != "second value" {
		t.Errorf("Process returned %v, want the records it was given", out)
	}
	if got := string(kp.kept[1].Value); !strings.HasPrefix(got, "connectd poi") || kp.kept[1].Position.Offset != -1 {
		t.Errorf("a record kept past Process reads %q at %s, want poison", got, kp.kept[1].Position)
	}
}

// fieldSink keeps copies of every record's fields but the bytes' memory.
type fieldSink struct{ got []sdk.Record }

func (s *fieldSink) Open(context.Context, sdk.Config) error { return nil }
func (s *fieldSink) Close(context.Context) error            { return nil }
func (s *fieldSink) Write(_ context.Context, b sdk.Batch) error {
	for _, r := range b.Records {
		r.Key, r.Value, r.Headers = bytes.Clone(r.Key), bytes.Clone(r.Value), nil
		s.got = append(s.got, r)
	}
	return nil
}

// The batch sdktest lends a sink holds every field of the caller's records,
// not only the bytes it copies: a tombstone stays a tombstone, a timestamp
// and a position stay (a lent copy that dropped the flag made every
// tombstone test of a sink fail).
func TestSinkLendsEveryField(t *testing.T) {
	s := &fieldSink{}
	sk := sdktest.Sink(t, memoryPlugin(s), "p", nil)
	b := batchOf(`{"id":"a"}`, "")
	b.Records[1].Value, b.Records[1].Tombstone, b.Records[1].Key = nil, true, []byte("k")
	b.Records[1].Position.Index = 2
	if err := sk.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(s.got) != 2 || s.got[0].Tombstone || !s.got[1].Tombstone || s.got[1].Value != nil || string(s.got[1].Key) != "k" || s.got[1].Position != b.Records[1].Position {
		t.Errorf("the sink got %+v, want the records as sent: %+v", s.got, b.Records)
	}
}
