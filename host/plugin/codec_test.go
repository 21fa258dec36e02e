package plugin

import (
	"bytes"
	"testing"

	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/internal/protocol/rawv1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// The codec must put the same message on the wire as gRPC's protobuf codec,
// and read back what it reads, only with fewer copies.
func TestChunkCodecWire(t *testing.T) {
	big := bytes.Repeat([]byte("c"), 200<<10)
	off := &pb.Offsets{Offsets: map[string]int64{"t/0": 7}}
	for _, m := range []*rawv1.RawWriteRequest{
		{Batch: 3, From: off, Until: off, Replay: true},
		{Chunk: []byte("small")},
		{Chunk: big},
		{Batch: 4, From: off, Until: off, Chunk: big},
	} {
		out, err := codec.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var got rawv1.RawWriteRequest
		if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, m) {
			t.Fatalf("write request changed on the wire: %v", &got)
		}
	}
	for _, m := range []*rawv1.RawReadReply{
		{Chunk: big},
		{Chunk: []byte("x"), Last: true, From: off, Until: off, Records: 1, Bytes: 1},
		{Last: true},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		// Across several buffers, as the transport gives frames.
		var in mem.BufferSlice
		for len(b) > 0 {
			n := min(len(b), 16<<10)
			in = append(in, mem.SliceBuffer(b[:n]))
			b = b[n:]
		}
		got := new(rawv1.RawReadReply)
		if err := codec.Unmarshal(in, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("read reply changed: %v", got)
		}
	}
	for _, m := range []*rawv1.RawProcessRequest{{Batch: 3, Replay: true}, {Chunk: []byte("small")}, {Batch: 4, Replay: true, Chunk: big}} {
		out, err := codec.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var got rawv1.RawProcessRequest
		if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, m) {
			t.Fatalf("process request changed on the wire: %v", &got)
		}
	}
	for _, m := range []*rawv1.RawProcessReply{{Chunk: big}, {Chunk: big, Rejected: []*pb.Rejection{{Index: 2, Reason: "r"}}}, {Rejected: []*pb.Rejection{{Index: 1}}}} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := new(rawv1.RawProcessReply)
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:len(b)/2]), mem.SliceBuffer(b[len(b)/2:])}, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("process reply changed: %v", got)
		}
	}
	if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x05, 'a'})}, new(rawv1.RawReadReply)); err == nil {
		t.Error("a truncated reply decoded without error")
	}
}

// A released batch's memory gathers the next chunks: each chunk read keeps
// its own bytes while held, whatever was released before it, and a chunk
// that a read into released memory overwrote cannot be one still held.
func TestChunkMemoryReuse(t *testing.T) {
	off := &pb.Offsets{Offsets: map[string]int64{"t/0": 7}}
	read := func(fill byte, last bool) *Data {
		m := &rawv1.RawReadReply{Chunk: bytes.Repeat([]byte{fill}, 300<<10)}
		if last { // the chunk after the other fields and before them
			m.Last, m.From, m.Until, m.Records = true, off, off, 1
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var in mem.BufferSlice
		for len(b) > 0 {
			n := min(len(b), 16<<10)
			in = append(in, mem.SliceBuffer(b[:n]))
			b = b[n:]
		}
		got := new(rawv1.RawReadReply)
		if err := codec.Unmarshal(in, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Chunk, m.Chunk) || got.Last != last {
			t.Fatalf("read reply changed: chunk of %d bytes, last %v", len(got.Chunk), got.Last)
		}
		if cap(got.Chunk) < len(got.Chunk)+1 {
			t.Fatalf("a pooled chunk has no room of its buffer after it (cap %d, len %d): Release could not give the buffer back", cap(got.Chunk), len(got.Chunk))
		}
		return &Data{Chunks: [][]byte{got.Chunk}}
	}
	held := read('a', false)
	for i := range 50 {
		d := read(byte('b'+i%20), i%2 == 0)
		d.Release()
		if d.Chunks != nil {
			t.Fatal("Release left the chunks in the Data")
		}
		if c := held.Chunks[0]; bytes.Count(c, []byte{'a'}) != len(c) {
			t.Fatalf("after %d reads into released memory, a held chunk changed", i+1)
		}
	}
	if got := within([]byte("abc"), []byte("xyz")); string(got) != "xyz" {
		t.Errorf("within of a slice outside the buffer = %q", got)
	}
}
