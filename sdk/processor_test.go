package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/protocol"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// EncodeChunks writes Position.Index as Record.index (field 7), which the
// generated code reads, and DecodeChunks reads it back; a batch larger than
// a chunk comes back whole and in order.
func TestEncodeChunksIndexRoundTrip(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	recs := []Record{
		{Key: []byte("k"), Value: []byte("v0"), Timestamp: ts, Position: Position{Partition: "t/0", Offset: 5}},
		{Value: []byte("v1"), Headers: []Header{{Key: "h", Value: []byte("x")}}, Position: Position{Partition: "t/0", Offset: 5, Index: 1}},
		{Value: []byte("v2"), Position: Position{Partition: "t/1", Offset: 0, Index: 70000}},
	}
	chunks, size, err := EncodeChunks(recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 1 || size != int64(recs[0].Size()+recs[1].Size()+recs[2].Size()) {
		t.Fatalf("EncodeChunks = %d chunks, %d bytes", len(chunks), size)
	}
	var c pb.Chunk
	if err := proto.Unmarshal(chunks[0], &c); err != nil {
		t.Fatalf("the chunk does not parse as connector.v1 Chunk: %v", err)
	}
	for i, want := range []uint32{0, 1, 70000} {
		if got := c.Records[i].Index; got != want {
			t.Errorf("generated code reads record %d's index as %d, want %d", i, got, want)
		}
	}
	got, err := DecodeChunks(nil, chunks)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("decoded %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if err := sameRecord(got[i], recs[i]); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	}
	// The generated code's encoding of an index decodes too.
	c.Records[0].Index = 3
	b, _ := proto.Marshal(&c)
	got, err = DecodeChunks(nil, [][]byte{b})
	if err != nil || got[0].Position.Index != 3 {
		t.Fatalf("DecodeChunks of proto.Marshal's index = %+v, %v", got[0].Position, err)
	}

	many := benchRecords(30000) // several chunks
	many[29999].Position.Index = 2
	chunks, _, err = EncodeChunks(many)
	if err != nil || len(chunks) < 2 {
		t.Fatalf("EncodeChunks of %d records = %d chunks, %v; want several", len(many), len(chunks), err)
	}
	back, err := DecodeChunks(nil, chunks)
	if err != nil || len(back) != len(many) {
		t.Fatalf("DecodeChunks = %d records, %v", len(back), err)
	}
	for i := range many {
		if err := sameRecord(back[i], many[i]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if chunks, n, err := EncodeChunks(nil); chunks != nil || n != 0 || err != nil {
		t.Errorf("EncodeChunks(nil) = %d chunks, %d, %v; want nothing", len(chunks), n, err)
	}
	if _, _, err := EncodeChunks([]Record{{Position: Position{Partition: "p", Index: -1}}}); err == nil || !strings.Contains(err.Error(), "index -1") {
		t.Errorf("EncodeChunks of a negative index: %v, want an error naming it", err)
	}
}

// testProcessor turns each record by its value: "drop" is dropped, "bad" is
// rejected, "twice" becomes two records, "stray" becomes a record at a
// position of no input record; any other value is upper-cased.
type testProcessor struct{ open bool }

func (p *testProcessor) Open(context.Context, Config) error { p.open = true; return nil }
func (p *testProcessor) Close(context.Context) error        { return nil }
func (p *testProcessor) Process(_ context.Context, b Batch) ([]Record, error) {
	var out []Record
	var rej []Rejection
	for i, r := range b.Records {
		switch string(r.Value) {
		case "drop":
		case "bad":
			rej = append(rej, Rejection{Index: i, Reason: fmt.Sprintf("batch %d replay %v: bad value", b.ID, b.Replay)})
		case "twice":
			out = append(out, r, r)
		case "stray":
			r.Position.Offset += 1000
			out = append(out, r)
		case "fail":
			return nil, errors.Join(errors.New("broken"), Reject(Rejection{Index: i}))
		default:
			r.Value = bytes.ToUpper(r.Value)
			out = append(out, r)
		}
	}
	if rej != nil {
		return out, fmt.Errorf("wrapped: %w", Reject(rej...))
	}
	return out, nil
}

var testProcessorPlugin = Plugin{Processor: &ProcessorPlugin{
	Spec: Spec{Name: "upper", Version: "1.0.0", Kind: KindProcessor, Summary: "test",
		Capabilities: []Capability{CapDeterministic}},
	New: func() Processor { return &testProcessor{} },
}}

// grpcConn serves p in-process over real gRPC through go-plugin (with
// gRPC's own codec: TestServerCodecWire checks the sdk's gives the same
// bytes), and returns the host's connection to it.
func grpcConn(t *testing.T, p Plugin) *grpc.ClientConn {
	t.Helper()
	if err := check(p); err != nil {
		t.Fatal(err)
	}
	set := goplugin.PluginSet{}
	if p.Processor != nil {
		set[protocol.RoleProcessor] = &grpcPlugin{processor: p.Processor}
	}
	if p.Sink != nil {
		set[protocol.RoleSink] = &grpcPlugin{sink: p.Sink}
	}
	client, server := goplugin.TestPluginGRPCConn(t, false, set)
	// Closing the client asks the server to shut down (go-plugin's
	// controller calls its Stop); stopping it here as well races with that.
	_ = server
	t.Cleanup(func() { _ = client.Close() })
	return client.Conn
}

// process runs one Process call the way a host in any language would, with
// the generated code: the batch in two chunks, then the reply's records and
// rejections.
func process(t *testing.T, c pb.ProcessorClient, batch int64, replay bool, values ...string) ([]Record, []*pb.Rejection, error) {
	t.Helper()
	var recs []Record
	for i, v := range values {
		recs = append(recs, Record{Key: []byte{byte('a' + i)}, Value: []byte(v), Position: Position{Partition: "t/0", Offset: int64(10 + i)}})
	}
	st, err := c.Process(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	half := len(recs) / 2
	first, _, err := EncodeChunks(recs[:half])
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := EncodeChunks(recs[half:])
	if err != nil {
		t.Fatal(err)
	}
	reqs := []*pb.ProcessRequest{{Batch: batch, Replay: replay}}
	for _, c := range append(first, second...) {
		var ch pb.Chunk
		if err := proto.Unmarshal(c, &ch); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, &pb.ProcessRequest{Chunk: &ch})
	}
	for _, r := range reqs {
		if err := st.Send(r); err == io.EOF {
			break // the server ended the call early: Recv returns its status
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var out []Record
	var rej []*pb.Rejection
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return out, rej, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if m.Chunk != nil {
			b, _ := proto.Marshal(m.Chunk)
			if out, err = DecodeChunks(out, [][]byte{b}); err != nil {
				t.Fatal(err)
			}
		}
		rej = append(rej, m.Rejected...)
	}
}

// A processor served by the sdk over gRPC: its spec says kind processor and
// deterministic; Process before Open is refused; a batch sent in chunks
// comes back changed, with records dropped, added and rejected (the
// rejection's index is the record's index in the whole batch), and a
// processor that breaks its contract or fails is an error, not a reply.
func TestProcessorServer(t *testing.T) {
	conn := grpcConn(t, testProcessorPlugin)
	c := pb.NewProcessorClient(conn)
	ctx := context.Background()
	spec, err := c.Spec(ctx, &pb.Empty{})
	if err != nil || spec.Kind != "processor" || len(spec.Capabilities) != 1 || spec.Capabilities[0] != "deterministic" {
		t.Fatalf("Spec = %v, %v", spec, err)
	}
	if _, _, err := process(t, c, 1, false, "a"); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Process before Open: %v, want FailedPrecondition", err)
	}
	if _, err := c.Open(ctx, &pb.OpenRequest{Pipeline: "p"}); err != nil {
		t.Fatal(err)
	}
	out, rej, err := process(t, c, 7, true, "a", "drop", "twice", "b", "bad", "c")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out {
		got = append(got, fmt.Sprintf("%s=%s@%s", r.Key, r.Value, r.Position))
	}
	want := "a=A@t/0@10 c=twice@t/0@12 c=twice@t/0@12 d=B@t/0@13 f=C@t/0@15"
	if strings.Join(got, " ") != want {
		t.Errorf("Process = %s\nwant        %s", strings.Join(got, " "), want)
	}
	if len(rej) != 1 || rej[0].Index != 4 || rej[0].Reason != "batch 7 replay true: bad value" {
		t.Errorf("rejections = %v, want record 4's, with the batch's id and replay flag", rej)
	}
	_, _, err = process(t, c, 8, false, "a", "stray")
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "output record 1 is at t/0@1011, the position of no input record") {
		t.Errorf("Process with a made-up position: %v, want a contract error naming it", err)
	}
	_, _, err = process(t, c, 9, false, "fail")
	if status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "broken") {
		t.Errorf("Process failing with a joined rejection: %v, want the failure, not a rejection", err)
	}
	if _, err := c.Close(ctx, &pb.Empty{}); err != nil {
		t.Fatal(err)
	}
}

// rejectingSink rejects records whose value is "bad", or answers with the
// rejections in fixed when set.
type rejectingSink struct{ fixed []Rejection }

func (s *rejectingSink) Open(context.Context, Config) error { return nil }
func (s *rejectingSink) Close(context.Context) error        { return nil }
func (s *rejectingSink) Write(_ context.Context, b Batch) error {
	if s.fixed != nil {
		return Reject(s.fixed...)
	}
	var rej []Rejection
	for i, r := range b.Records {
		if string(r.Value) == "bad" {
			rej = append(rej, Rejection{Index: i, Reason: "bad at " + r.Position.String()})
		}
	}
	if rej != nil {
		return Reject(rej...)
	}
	return nil
}

// A sink's Write that returns *Rejected answers WriteReply with the
// rejections; one that rejects a record the batch does not have breaks the
// contract.
func TestSinkWriteRejections(t *testing.T) {
	fixed := &[]Rejection{}
	p := Plugin{Sink: &SinkPlugin{
		Spec: Spec{Name: "rej", Version: "1", Kind: KindSink},
		New:  func() Sink { return &rejectingSink{fixed: *fixed} },
	}}
	*fixed = nil
	c := pb.NewSinkClient(grpcConn(t, p))
	ctx := context.Background()
	write := func(values ...string) (*pb.WriteReply, error) {
		t.Helper()
		if _, err := c.Open(ctx, &pb.OpenRequest{Pipeline: "p", HostFeatures: []string{protocol.HostRejections}}); err != nil {
			t.Fatal(err)
		}
		st, err := c.Write(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ch := &pb.Chunk{Partitions: []string{"t/0"}}
		for i, v := range values {
			ch.Records = append(ch.Records, &pb.Record{Offset: int64(i), Value: []byte(v)})
		}
		if err := st.Send(&pb.WriteRequest{Batch: 3, Chunk: ch}); err != nil {
			t.Fatal(err)
		}
		return st.CloseAndRecv()
	}
	r, err := write("ok", "bad", "ok", "bad")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rejected) != 2 || r.Rejected[0].Index != 1 || r.Rejected[1].Index != 3 || r.Rejected[1].Reason != "bad at t/0@3" {
		t.Errorf("WriteReply = %v, want records 1 and 3 rejected", r)
	}
	if r, err := write("ok"); err != nil || len(r.Rejected) != 0 {
		t.Errorf("Write without rejections = %v, %v", r, err)
	}
	// A host that does not say it handles rejections gets a failed batch.
	if _, err := c.Open(ctx, &pb.OpenRequest{Pipeline: "p"}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.WriteRequest{Batch: 4, Chunk: &pb.Chunk{Partitions: []string{"t/0"}, Records: []*pb.Record{{Value: []byte("bad")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseAndRecv(); err == nil || !strings.Contains(err.Error(), "predates rejected records") {
		t.Errorf("Write rejecting a record for an old host = %v, want the batch failed", err)
	}
	for _, f := range [][]Rejection{{{Index: 2}}, {{Index: -1}}, {{Index: 0}, {Index: 0}}} {
		*fixed = f
		_, err := write("a", "b")
		if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "sink broke the Write contract") {
			t.Errorf("Write rejecting %v of 2 records: %v, want a contract error", f, err)
		}
	}
}

// Serve takes a plugin with only a processor, of kind processor.
func TestCheckProcessorPlugin(t *testing.T) {
	if err := check(testProcessorPlugin); err != nil {
		t.Errorf("check of a processor-only plugin: %v", err)
	}
	bad := Plugin{Processor: &ProcessorPlugin{Spec: Spec{Name: "x", Kind: KindSink}, New: func() Processor { return &testProcessor{} }}}
	if err := check(bad); err == nil || !strings.Contains(err.Error(), "Processor needs a spec of kind processor") {
		t.Errorf("check of a processor with a sink spec: %v", err)
	}
	if err := check(Plugin{}); err == nil {
		t.Error("check of an empty plugin passed")
	}
}

// recordingSink remembers every Write it was given (batch id and record
// count) and calls FaultBeforeCommit as a transactional sink does before
// its commit.
type recordingSink struct {
	mu     sync.Mutex
	writes [][2]int64
}

func (s *recordingSink) Open(context.Context, Config) error { return nil }
func (s *recordingSink) Close(context.Context) error        { return nil }
func (s *recordingSink) Write(ctx context.Context, b Batch) error {
	if err := FaultBeforeCommit(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, [2]int64{b.ID, int64(len(b.Records))})
	return nil
}

// withFault enables CONNECTD_FAULT=v in this process for one test.
func withFault(t *testing.T, v string) {
	t.Helper()
	t.Cleanup(func() {
		if err := fault.Init(); err != nil { // the environment is restored by now
			t.Error(err)
		}
	})
	t.Setenv(fault.Env, v)
	if err := fault.Init(); err != nil {
		t.Fatal(err)
	}
}

// The error variant of the sink's fault points fails the Write call with a
// retryable status instead of killing the process: sink.write.partial
// stores k records as the batch first, once per process or every Nth call;
// sink.write.commit fires where the sink calls FaultBeforeCommit.
func TestSinkWriteFaultErrors(t *testing.T) {
	tests := []struct {
		env    string
		fails  []int64    // batches (written 1, 2, 3, 4, then 3 again) whose Write fails
		writes [][2]int64 // what the sink was given
	}{
		{"sink.write.partial@3:1/error", []int64{3}, [][2]int64{{1, 3}, {2, 3}, {3, 1}, {4, 3}, {3, 3}}},
		{"sink.write.partial%2/error", []int64{2, 4}, [][2]int64{{1, 3}, {2, 1}, {3, 3}, {4, 1}, {3, 3}}},
		{"sink.write.before@2/error", []int64{2}, [][2]int64{{1, 3}, {3, 3}, {4, 3}, {3, 3}}},
		{"sink.write.after@4/error", []int64{4}, [][2]int64{{1, 3}, {2, 3}, {3, 3}, {4, 3}, {3, 3}}},
		{"sink.write.commit@1/error", []int64{1}, [][2]int64{{2, 3}, {3, 3}, {4, 3}, {3, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			withFault(t, tt.env)
			sk := &recordingSink{}
			p := Plugin{Sink: &SinkPlugin{Spec: Spec{Name: "rec", Version: "1", Kind: KindSink}, New: func() Sink { return sk }}}
			c := pb.NewSinkClient(grpcConn(t, p))
			ctx := context.Background()
			if _, err := c.Open(ctx, &pb.OpenRequest{Pipeline: "p"}); err != nil {
				t.Fatal(err)
			}
			var failed []int64
			for _, id := range []int64{1, 2, 3, 4, 3} {
				st, err := c.Write(ctx)
				if err != nil {
					t.Fatal(err)
				}
				ch := &pb.Chunk{Partitions: []string{"t/0"}}
				for i := range 3 {
					ch.Records = append(ch.Records, &pb.Record{Offset: int64(i), Value: []byte("v")})
				}
				if err := st.Send(&pb.WriteRequest{Batch: id, Chunk: ch}); err != nil {
					t.Fatal(err)
				}
				_, err = st.CloseAndRecv()
				if err == nil {
					continue
				}
				failed = append(failed, id)
				if code := status.Code(err); code != codes.Unknown || !strings.Contains(err.Error(), "fault point") {
					t.Errorf("batch %d failed with %v (%v), want a retryable Unknown naming the fault point", id, err, code)
				}
			}
			if !slices.Equal(failed, tt.fails) {
				t.Errorf("failed batches %v, want %v", failed, tt.fails)
			}
			if !slices.Equal(sk.writes, tt.writes) {
				t.Errorf("sink was given %v, want %v", sk.writes, tt.writes)
			}
		})
	}
}
