package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/protocol"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/sdk"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

func init() {
	testPlugins["shape"] = sdk.Plugin{Processor: &sdk.ProcessorPlugin{
		Spec: sdk.Spec{Name: "shape", Version: "1.0.0", Kind: sdk.KindProcessor, Summary: "Test processor.", Capabilities: []sdk.Capability{sdk.CapDeterministic}},
		New:  func() sdk.Processor { return shape{} },
	}}
	testPlugins["pass"] = sdk.Plugin{Processor: &sdk.ProcessorPlugin{
		Spec: sdk.Spec{Name: "pass", Version: "1.0.0", Kind: sdk.KindProcessor, Summary: "Test processor: returns its input."},
		New:  func() sdk.Processor { return pass{} },
	}}
	testPlugins["picky"] = sdk.Plugin{Sink: &sdk.SinkPlugin{
		Spec: sdk.Spec{Name: "picky", Version: "1.0.0", Kind: sdk.KindSink, Summary: "Test sink."},
		New:  func() sdk.Sink { return picky{} },
	}}
}

// shape turns records by value: "drop" is dropped, "bad" rejected, "twice"
// made two records, anything else upper-cased.
type shape struct{}

func (shape) Open(context.Context, sdk.Config) error { return nil }
func (shape) Close(context.Context) error            { return nil }
func (shape) Process(_ context.Context, b sdk.Batch) ([]sdk.Record, error) {
	var out []sdk.Record
	var rej []sdk.Rejection
	for i, r := range b.Records {
		switch string(r.Value) {
		case "drop":
		case "bad":
			rej = append(rej, sdk.Rejection{Index: i, Reason: fmt.Sprintf("bad in batch %d (replay %t)", b.ID, b.Replay)})
		case "twice":
			r.Position.Index = 9 // the host numbers indexes, whatever the processor says
			out = append(out, r, r)
		default:
			r.Value = bytes.ToUpper(r.Value)
			out = append(out, r)
		}
	}
	if rej != nil {
		return out, sdk.Reject(rej...)
	}
	return out, nil
}

// pass is a processor that returns its input.
type pass struct{}

func (pass) Open(context.Context, sdk.Config) error { return nil }
func (pass) Close(context.Context) error            { return nil }
func (pass) Process(_ context.Context, b sdk.Batch) ([]sdk.Record, error) {
	return b.Records, nil
}

// BenchmarkProcessRoundTrip: what a processor plugin costs a batch of 10000
// records of 100 bytes (as the generator's default): encode, stream to the
// process, decode and check there, and back again, with a processor that
// does nothing.
func BenchmarkProcessRoundTrip(b *testing.B) {
	l := &Loader{Exe: os.Args[0], Bundled: testPlugins}
	ctx := context.Background()
	p, err := l.Start(ctx, sdk.KindProcessor, "pass", os.Environ())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Kill()
	if err := p.Processor.Open(ctx, "bench", nil); err != nil {
		b.Fatal(err)
	}
	values := make([]string, 10000)
	for i := range values {
		values[i] = strings.Repeat("v", 100)
	}
	in := records(values...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, _, err := p.Processor.Process(ctx, int64(i+1), in, false)
		if err != nil || len(out) != len(in) {
			b.Fatalf("Process = %d records, %v", len(out), err)
		}
	}
	b.ReportMetric(float64(b.N*len(in))/b.Elapsed().Seconds(), "records/s")
}

// picky is a sink that rejects the records whose value is "bad".
type picky struct{}

func (picky) Open(context.Context, sdk.Config) error { return nil }
func (picky) Close(context.Context) error            { return nil }
func (picky) Write(_ context.Context, b sdk.Batch) error {
	var rej []sdk.Rejection
	for i, r := range b.Records {
		if string(r.Value) == "bad" {
			rej = append(rej, sdk.Rejection{Index: i, Reason: "bad at " + r.Position.String()})
		}
	}
	if rej != nil {
		return sdk.Reject(rej...)
	}
	return nil
}

func records(values ...string) []sdk.Record {
	var out []sdk.Record
	for i, v := range values {
		out = append(out, sdk.Record{Key: []byte{'k', byte('a' + i)}, Value: []byte(v), Position: sdk.Position{Partition: fmt.Sprintf("t/%d", i%2), Offset: int64(i / 2)}})
	}
	return out
}

func show(recs []sdk.Record) string {
	var s []string
	for _, r := range recs {
		s = append(s, fmt.Sprintf("%s=%s@%s", r.Key, r.Value, r.Position))
	}
	return strings.Join(s, " ")
}

// A processor child process started by the Loader: it is listed as a
// processor, refuses the other roles, and Process returns the records a batch
// became (dropped, changed, added, numbered by the host) and its rejections,
// for a batch of a few records and for one of several chunks.
func TestProcessorProcess(t *testing.T) {
	l := &Loader{Exe: os.Args[0], Bundled: testPlugins}
	if specs, err := l.Specs("shape"); err != nil || len(specs) != 1 || specs[0].Kind != sdk.KindProcessor || !specs[0].Has(sdk.CapDeterministic) {
		t.Fatalf("Specs = %+v, %v", specs, err)
	}
	found := false
	for _, s := range l.BundledSpecs() {
		found = found || (s.Name == "shape" && s.Kind == sdk.KindProcessor)
	}
	if !found {
		t.Error("BundledSpecs does not list the processor")
	}
	ctx := context.Background()
	if _, err := l.Start(ctx, sdk.KindSink, "shape", os.Environ()); !errors.Is(err, ErrNoRole) {
		t.Errorf("Start(sink) of a processor: %v, want ErrNoRole", err)
	}
	p, err := l.Start(ctx, sdk.KindProcessor, "shape", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if p.Processor == nil || p.Source != nil || p.Sink != nil || p.Spec.Name != "shape" {
		t.Fatalf("Start(processor) = %+v", p)
	}
	if err := p.Processor.Open(ctx, "demo", nil); err != nil {
		t.Fatal(err)
	}
	in := records("a", "twice", "drop", "bad", "b", "twice")
	out, rej, err := p.Processor.Process(ctx, 5, in, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "ka=A@t/0@0 kb=twice@t/1@0 kb=twice@t/1@0#1 ke=B@t/0@2 kf=twice@t/1@2 kf=twice@t/1@2#1"
	if got := show(out); got != want {
		t.Errorf("Process:\n got %s\nwant %s", got, want)
	}
	if len(rej) != 1 || rej[0].Index != 3 || rej[0].Reason != "bad in batch 5 (replay true)" {
		t.Errorf("rejections = %+v, want record 3's, with the batch id and replay flag", rej)
	}
	if string(in[0].Value) != "a" {
		t.Error("Process changed its input records")
	}

	many := make([]string, 30000) // about 3 MiB: several chunks each way
	for i := range many {
		many[i] = strings.Repeat("x", 100)
	}
	many[29999] = "twice"
	out, rej, err = p.Processor.Process(ctx, 6, records(many...), false)
	if err != nil || len(rej) != 0 || len(out) != 30001 {
		t.Fatalf("Process of 30000 records = %d records, %d rejections, %v", len(out), len(rej), err)
	}
	if string(out[0].Value) != strings.Repeat("X", 100) || out[30000].Position.Index != 1 || out[29999].Position.Index != 0 {
		t.Errorf("Process of 30000 records: first %q, last two at %s and %s", out[0].Value, out[29999].Position, out[30000].Position)
	}
	if out, rej, err := p.Processor.Process(ctx, 7, nil, false); err != nil || len(out) != 0 || len(rej) != 0 {
		t.Errorf("Process of an empty batch = %d, %d, %v", len(out), len(rej), err)
	}
	if err := p.Processor.Close(ctx); err != nil {
		t.Error(err)
	}
	if _, _, err := p.Processor.Process(ctx, 8, in, false); err == nil || !strings.Contains(err.Error(), "not open") {
		t.Errorf("Process after Close: %v", err)
	}
}

// A sink child process's rejections reach the host's Write.
func TestSinkWriteRejected(t *testing.T) {
	l := &Loader{Exe: os.Args[0], Bundled: testPlugins}
	ctx := context.Background()
	p, err := l.Start(ctx, sdk.KindSink, "picky", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if err := p.Sink.Open(ctx, "demo", nil); err != nil {
		t.Fatal(err)
	}
	rej, err := p.Sink.Write(ctx, 1, data(t, "a", "bad", "b", "bad"), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 2 || rej[0] != (sdk.Rejection{Index: 1, Reason: "bad at t/1@0"}) || rej[1] != (sdk.Rejection{Index: 3, Reason: "bad at t/1@1"}) {
		t.Errorf("Write rejections = %+v", rej)
	}
	if rej, err := p.Sink.Write(ctx, 2, data(t, "a"), false); err != nil || rej != nil {
		t.Errorf("Write without rejections = %+v, %v", rej, err)
	}
}

func data(t *testing.T, values ...string) *Data {
	t.Helper()
	recs := records(values...)
	chunks, size, err := sdk.EncodeChunks(recs)
	if err != nil {
		t.Fatal(err)
	}
	return &Data{Chunks: chunks, Records: int64(len(recs)), Bytes: size, From: sdk.Offsets{"t/0": 0, "t/1": 0}, Until: sdk.Offsets{"t/0": 9, "t/1": 9}}
}

// liar is a plugin written without the sdk, as in another language: its
// processor and sink answer what the batch id asks for, so that the host's
// own checks of a reply are tested.
type liar struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (liar) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterProcessorServer(s, liarProcessor{})
	pb.RegisterSinkServer(s, liarSink{})
	return nil
}

func (liar) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("server only")
}

func serveLiar() {
	goplugin.Serve(&goplugin.ServeConfig{HandshakeConfig: protocol.Handshake, Plugins: goplugin.PluginSet{"liar": liar{}}, GRPCServer: goplugin.DefaultGRPCServer})
}

type liarProcessor struct {
	pb.UnimplementedProcessorServer
}

func (liarProcessor) Spec(context.Context, *pb.Empty) (*pb.PluginSpec, error) {
	return &pb.PluginSpec{Name: "liar", Version: "1", Kind: "processor"}, nil
}

func (liarProcessor) Open(context.Context, *pb.OpenRequest) (*pb.Empty, error) {
	return &pb.Empty{}, nil
}

// Process answers batch 1 with the records moved to made-up offsets, batch
// 2 with a rejection of a record the batch does not have, batch 3 with a
// record rejected twice, and any other batch with the records unchanged,
// each index set to 7.
func (liarProcessor) Process(st pb.Processor_ProcessServer) error {
	var batch int64
	reply := &pb.ProcessReply{}
	for n := 0; ; n++ {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n == 0 {
			batch = m.Batch
		}
		if m.Chunk != nil {
			if reply.Chunk == nil {
				reply.Chunk = &pb.Chunk{}
			}
			reply.Chunk.Partitions = m.Chunk.Partitions // the test sends one chunk
			reply.Chunk.Records = append(reply.Chunk.Records, m.Chunk.Records...)
		}
	}
	for _, r := range reply.Chunk.GetRecords() {
		r.Index = 7
		if batch == 1 {
			r.Offset += 1000
		}
	}
	switch batch {
	case 2:
		reply.Rejected = []*pb.Rejection{{Index: 99, Reason: "?"}}
	case 3:
		reply.Rejected = []*pb.Rejection{{Index: 0}, {Index: 0}}
	}
	return st.Send(reply)
}

type liarSink struct{ pb.UnimplementedSinkServer }

func (liarSink) Spec(context.Context, *pb.Empty) (*pb.PluginSpec, error) {
	return &pb.PluginSpec{Name: "liar", Version: "1", Kind: "sink"}, nil
}

func (liarSink) Open(context.Context, *pb.OpenRequest) (*pb.Empty, error) { return &pb.Empty{}, nil }

// Write rejects a record the batch does not have.
func (liarSink) Write(st pb.Sink_WriteServer) error {
	for {
		if _, err := st.Recv(); err == io.EOF {
			return st.SendAndClose(&pb.WriteReply{Rejected: []*pb.Rejection{{Index: 4}}})
		} else if err != nil {
			return err
		}
	}
}

// The host checks a reply itself, whatever language the plugin is in: an
// output record at a position of no input record, a rejection outside the
// batch or twice, are permanent errors that name the processor (the sink);
// and the host numbers indexes whatever the plugin sent.
func TestProcessorBrokenContract(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(serveEnv, "liar")
	l := &Loader{}
	ctx := context.Background()
	p, err := l.Start(ctx, sdk.KindProcessor, exe, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	in := records("a", "b", "c", "d")
	for batch, want := range map[int64]string{
		1: `processor "` + exe + `": process: processor broke the Process contract: batch 1: output record 0 is at t/0@1000, the position of no input record (a record the processor adds takes the position of the input record it came from)`,
		2: `processor "` + exe + `": process: processor broke the Process contract: batch 2: rejection of record 99: the batch has 4 records (0…3)`,
		3: `processor "` + exe + `": process: processor broke the Process contract: batch 3: record 0 is rejected twice`,
	} {
		_, _, err := p.Processor.Process(ctx, batch, in, false)
		var perr *Error
		if !errors.As(err, &perr) || !perr.Permanent() || err.Error() != want {
			t.Errorf("batch %d: error %v\nwant permanent %s", batch, err, want)
		}
	}
	out, _, err := p.Processor.Process(ctx, 4, in, false)
	if err != nil || show(out) != show(in) {
		t.Errorf("Process = %s, %v; want the input, indexes 0", show(out), err)
	}

	s, err := l.Start(ctx, sdk.KindSink, exe, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Kill()
	_, err = s.Sink.Write(ctx, 1, data(t, "a", "b"), false)
	var perr *Error
	want := `sink "` + exe + `": write: sink broke the Write contract: batch 1: rejection of record 4: the batch has 2 records (0…1)`
	if !errors.As(err, &perr) || !perr.Permanent() || err.Error() != want {
		t.Errorf("Write: error %v\nwant permanent %s", err, want)
	}
}

// pyjsonlEnv names the executable of examples/python's plugin, which
// examples/python/test builds (stubs, a wrapper) and passes to
// TestProcessorInPython.
const pyjsonlEnv = "CONNECTD_TEST_PYJSONL"

// A processor written in Python from connector.proto alone: the host's
// Processor handle sends it a batch and gets back every JSON object copied
// twice (the copies numbered by the host) and the other record rejected, the
// same for the same batch.
func TestProcessorInPython(t *testing.T) {
	exe := os.Getenv(pyjsonlEnv)
	if exe == "" {
		t.Skipf("%s is not set: examples/python/test sets it to the Python plugin it builds", pyjsonlEnv)
	}
	l := &Loader{}
	ctx := context.Background()
	p, err := l.Start(ctx, sdk.KindProcessor, exe, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if !p.Spec.Has(sdk.CapDeterministic) {
		t.Errorf("spec %+v does not declare deterministic", p.Spec)
	}
	if err := p.Processor.Open(ctx, "demo", map[string]any{"copies": 2}); err != nil {
		t.Fatal(err)
	}
	in := records(`{"id":"a"}`, `not json`, `{"id":"b"}`)
	for range 2 { // the same batch twice: the same output
		out, rej, err := p.Processor.Process(ctx, 1, in, false)
		if err != nil {
			t.Fatal(err)
		}
		want := `ka={"id":"a","copy":0}@t/0@0 ka={"id":"a","copy":1}@t/0@0#1 kc={"id":"b","copy":0}@t/0@1 kc={"id":"b","copy":1}@t/0@1#1`
		if got := show(out); got != want {
			t.Errorf("Process:\n got %s\nwant %s", got, want)
		}
		if len(rej) != 1 || rej[0] != (sdk.Rejection{Index: 1, Reason: "value is not a JSON object"}) {
			t.Errorf("rejections = %+v", rej)
		}
	}
	if err := p.Processor.Close(ctx); err != nil {
		t.Error(err)
	}
}
