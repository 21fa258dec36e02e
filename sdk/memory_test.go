package sdk

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/poison"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/internal/protocol/rawv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// wireWrite is a Write call's request messages as gRPC hands them to the
// server's codec: each message in buffers of 16 KiB (HTTP/2 frames).
func wireWrite(t testing.TB, batch int64, recs []Record) []mem.BufferSlice {
	t.Helper()
	chunks, _, err := EncodeChunks(recs)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []mem.BufferSlice
	for i, c := range chunks {
		m := &rawv1.RawWriteRequest{Chunk: c}
		if i == 0 {
			m.Batch = batch
			m.From = &pb.Offsets{Offsets: map[string]int64{"generator/0": 0}}
			m.Until = &pb.Offsets{Offsets: map[string]int64{"generator/0": int64(len(recs))}}
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var data mem.BufferSlice
		for len(b) > 0 {
			n := min(len(b), 16<<10)
			data = append(data, mem.SliceBuffer(b[:n]))
			b = b[n:]
		}
		msgs = append(msgs, data)
	}
	return msgs
}

// fakeWriteStream is the server half of one Write call: RecvMsg passes each
// message through the sdk's server codec as gRPC does.
type fakeWriteStream struct {
	grpc.ServerStream
	codec serverCodec
	msgs  []mem.BufferSlice
	reply *pb.WriteReply
}

func (f *fakeWriteStream) Context() context.Context { return context.Background() }

func (f *fakeWriteStream) RecvMsg(m any) error {
	if len(f.msgs) == 0 {
		return io.EOF
	}
	data := f.msgs[0]
	f.msgs = f.msgs[1:]
	return f.codec.Unmarshal(data, m)
}

func (f *fakeWriteStream) Recv() (*pb.WriteRequest, error) { panic("the sdk reads raw messages") }

func (f *fakeWriteStream) SendAndClose(r *pb.WriteReply) error {
	f.reply = r
	return nil
}

// sizeSink sums the size of every record it is given.
type sizeSink struct{ bytes int64 }

func (s *sizeSink) Open(context.Context, Config) error { return nil }
func (s *sizeSink) Close(context.Context) error        { return nil }
func (s *sizeSink) Write(_ context.Context, b Batch) error {
	for i := range b.Records {
		s.bytes += int64(b.Records[i].Size())
	}
	return nil
}

// openSinkServer returns a sink server with sk open.
func openSinkServer(t testing.TB, sk Sink) *sinkServer {
	t.Helper()
	s := &sinkServer{def: &SinkPlugin{Spec: Spec{Name: "s", Version: "1", Kind: KindSink}, New: func() Sink { return sk }}}
	if _, err := s.Open(context.Background(), &pb.OpenRequest{Pipeline: "p"}); err != nil {
		t.Fatal(err)
	}
	return s
}

// BenchmarkSinkWrite is the sdk's side of one Write call of 20,000 100-byte
// records (about 2 MiB in 3 chunks): the messages through the server codec,
// the records decoded, the sink's Write called.
func BenchmarkSinkWrite(b *testing.B) {
	msgs := wireWrite(b, 1, benchRecords(20000))
	sk := &sizeSink{}
	s := openSinkServer(b, sk)
	b.ReportAllocs()
	b.SetBytes(110 * 20000)
	for b.Loop() {
		st := &fakeWriteStream{codec: newServerCodec(), msgs: msgs}
		if err := s.Write(st); err != nil || st.reply == nil {
			b.Fatal(err)
		}
	}
}

// keepingSink keeps references to the records it is given, past Write, as a
// sink must not: the records (by value) and the last Records slice; and a
// copy of each value, as it may.
type keepingSink struct {
	kept   []Record
	last   []Record
	copies [][]byte
}

func (s *keepingSink) Open(context.Context, Config) error { return nil }
func (s *keepingSink) Close(context.Context) error        { return nil }
func (s *keepingSink) Write(_ context.Context, b Batch) error {
	s.kept = append(s.kept, b.Records...)
	s.last = b.Records
	for _, r := range b.Records {
		s.copies = append(s.copies, bytes.Clone(r.Value))
	}
	return nil
}

// valueRecords returns n records whose values are 100 bytes of c.
func valueRecords(n int, c byte) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Key: []byte{c}, Value: bytes.Repeat([]byte{c}, 100), Position: Position{Partition: "generator/0", Offset: int64(i)}}
	}
	return recs
}

// write runs one Write call of recs as batch id on s.
func write(t *testing.T, s *sinkServer, id int64, recs []Record) {
	t.Helper()
	st := &fakeWriteStream{codec: newServerCodec(), msgs: wireWrite(t, id, recs)}
	if err := s.Write(st); err != nil || st.reply == nil {
		t.Fatalf("Write of batch %d: %v", id, err)
	}
}

// The sink server receives and decodes batch after batch into the same
// memory: what a sink keeps of batch 1 without copying it reads as batch 2
// once batch 2 is written, and its copies stay what they were.
func TestWriteReusesMemory(t *testing.T) {
	t.Setenv(PoisonEnv, "")
	sk := &keepingSink{}
	s := openSinkServer(t, sk)
	write(t, s, 1, valueRecords(20000, 'a'))
	write(t, s, 2, valueRecords(20000, 'b'))
	first := sk.kept[:20000]
	if string(first[0].Value) != string(bytes.Repeat([]byte{'b'}, 100)) {
		t.Errorf("a value kept from batch 1 reads %.20q… after batch 2, want batch 2's bytes (its memory reused)", first[0].Value)
	}
	if &first[0] == &sk.kept[20000] || string(sk.copies[0]) != string(bytes.Repeat([]byte{'a'}, 100)) {
		t.Errorf("the copy of a value of batch 1 reads %.20q…, want it intact", sk.copies[0])
	}
}

// With PoisonEnv=1 the sink server overwrites a batch's memory as soon as
// Write returns: a kept key and value read as poison from their start, a
// kept record's position is no position, and copies are intact. A value
// of PoisonEnv other than 0 or 1 fails Open, naming it.
func TestWritePoison(t *testing.T) {
	t.Setenv(PoisonEnv, "1")
	sk := &keepingSink{}
	s := openSinkServer(t, sk)
	write(t, s, 1, valueRecords(3, 'a'))
	for i, r := range sk.kept {
		if !strings.HasPrefix(string(r.Value), poison.Pattern) || !poison.In(r.Value) || r.Key[0] != poison.Pattern[0] {
			t.Errorf("record %d kept past Write: key %q, value %.30q…, want poison", i, r.Key, r.Value)
		}
		if p := sk.last[i].Position; p.Offset != -1 || !poison.In([]byte(p.Partition)) {
			t.Errorf("record %d of the Records slice kept past Write is at %s, want a poisoned position", i, p)
		}
		if string(sk.copies[i]) != string(bytes.Repeat([]byte{'a'}, 100)) {
			t.Errorf("copy %d reads %.20q…, want it intact", i, sk.copies[i])
		}
	}
	t.Setenv(PoisonEnv, "yes")
	bad := &sinkServer{def: s.def}
	_, err := bad.Open(context.Background(), &pb.OpenRequest{Pipeline: "p"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `CONNECTD_POISON="yes"`) {
		t.Errorf("Open with %s=yes: %v, want InvalidArgument naming it", PoisonEnv, err)
	}
}

// passProcessor returns its input records as they are (their bytes still in
// the batch's memory) and keeps them past Process, as it must not.
type passProcessor struct{ kept []Record }

func (p *passProcessor) Open(context.Context, Config) error { return nil }
func (p *passProcessor) Close(context.Context) error        { return nil }
func (p *passProcessor) Process(_ context.Context, b Batch) ([]Record, error) {
	p.kept = append(p.kept, b.Records...)
	return b.Records, nil
}

// A processor's batch is poisoned only once its reply is sent: records it
// returns that point into the batch reach the host intact; what it kept
// reads as poison afterwards.
func TestProcessPoison(t *testing.T) {
	t.Setenv(PoisonEnv, "1")
	pp := &passProcessor{}
	p := Plugin{Processor: &ProcessorPlugin{Spec: Spec{Name: "pass", Version: "1", Kind: KindProcessor}, New: func() Processor { return pp }}}
	c := pb.NewProcessorClient(grpcConn(t, p))
	if _, err := c.Open(context.Background(), &pb.OpenRequest{Pipeline: "p"}); err != nil {
		t.Fatal(err)
	}
	for id, want := range [][]string{{"value x", "value y", "value z", "value w"}, {"value v"}} {
		out, _, err := process(t, c, int64(id+1), false, want...)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out {
			got = append(got, string(r.Value))
		}
		if !slices.Equal(got, want) {
			t.Errorf("batch %d came back as %q, want %q", id+1, got, want)
		}
	}
	for i, r := range pp.kept {
		if !poison.In(r.Value) {
			t.Errorf("record %d kept past Process reads %q, want poison", i, r.Value)
		}
	}
}

// discardReadStream takes what sendRecords sends as the transport does: it
// puts each chunk's buffer back in chunkPool once "written".
type discardReadStream struct{ grpc.ServerStream }

func (discardReadStream) Context() context.Context { return context.Background() }
func (discardReadStream) SendMsg(m any) error {
	if c, ok := m.(*chunkReply); ok && c.buf != nil && *c.buf != nil {
		b := (*c.buf)[:0]
		chunkPool.Put(&b)
	}
	return nil
}

// BenchmarkSendRecords is the sdk's side of one Read reply of 20,000
// 100-byte records: encoded into chunks from chunkPool, handed to the
// transport, which puts them back.
func BenchmarkSendRecords(b *testing.B) {
	recs := benchRecords(20000)
	until := Offsets{"generator/0": 5000}
	b.ReportAllocs()
	b.SetBytes(110 * 20000)
	for b.Loop() {
		if err := sendRecords(discardReadStream{}, 1, recs, nil, until, ""); err != nil {
			b.Fatal(err)
		}
	}
}
