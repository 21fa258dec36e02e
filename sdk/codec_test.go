package sdk

import (
	"bytes"
	"testing"

	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/internal/protocol/rawv1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// serverCodec puts the same ReadReply on the wire as gRPC's protobuf codec
// and reads the same WriteRequest, with fewer copies.
func TestServerCodecWire(t *testing.T) {
	c := newServerCodec()
	var e encoder
	if err := e.add(benchRecords(2000), func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	big := bytes.Clone(e.finish()) // a valid Chunk: ReadReply.chunk is a message
	off := &pb.Offsets{Offsets: map[string]int64{"t/0": 7}}
	for _, m := range []*rawv1.RawReadReply{
		{Chunk: big},
		{Chunk: big, Last: true, From: off, Until: off, Records: 9, Bytes: 99},
		{Last: true, From: off, Until: off},
	} {
		buf := new([]byte)
		*buf = bytes.Clone(m.Chunk)
		out, err := c.Marshal(&chunkReply{RawReadReply: m, buf: buf})
		if err != nil {
			t.Fatal(err)
		}
		var got pb.ReadReply // what the host's peer in connector.v1 sees
		if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
			t.Fatal(err)
		}
		want, _ := proto.Marshal(m)
		var wantPB pb.ReadReply
		if err := proto.Unmarshal(want, &wantPB); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, &wantPB) {
			t.Fatalf("read reply changed on the wire")
		}
		out.Free()
	}
	for _, m := range []*rawv1.RawWriteRequest{
		{Batch: 3, From: off, Until: off, Replay: true},
		{Chunk: big},
	} {
		b, _ := proto.Marshal(m)
		var in mem.BufferSlice
		for len(b) > 0 {
			n := min(len(b), 16<<10)
			in = append(in, mem.SliceBuffer(b[:n]))
			b = b[n:]
		}
		got := new(rawv1.RawWriteRequest)
		if err := c.Unmarshal(in, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("write request changed: %v", got)
		}
	}
	rej := []*pb.Rejection{{Index: 3, Reason: "no"}}
	for _, m := range []*rawv1.RawProcessReply{{Chunk: big}, {Chunk: big, Rejected: rej}, {Rejected: rej}} {
		buf := new([]byte)
		*buf = bytes.Clone(m.Chunk)
		out, err := c.Marshal(&processReply{RawProcessReply: m, buf: buf})
		if err != nil {
			t.Fatal(err)
		}
		var got, want pb.ProcessReply
		if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
			t.Fatal(err)
		}
		b, _ := proto.Marshal(m)
		if err := proto.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, &want) || len(got.Rejected) != len(m.Rejected) {
			t.Fatalf("process reply changed on the wire")
		}
		out.Free()
	}
	for _, m := range []*rawv1.RawProcessRequest{{Batch: 3, Replay: true}, {Chunk: big}, {Batch: 4, Chunk: big}} {
		b, _ := proto.Marshal(m)
		got := new(rawv1.RawProcessRequest)
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("process request changed: %v", got)
		}
	}
}
