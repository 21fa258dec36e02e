package plugin

import (
	"sync"

	"github.com/connectd/connectd/internal/protocol"
	"github.com/connectd/connectd/internal/protocol/rawv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// chunkCodec is gRPC's protobuf codec (same bytes on the wire, same name)
// with fewer copies of the data path's chunks, which the host never decodes
// (but for a processor's):
//
//   - a received RawReadReply's (RawProcessReply's) chunk aliases the one
//     buffer the message is gathered into (proto.Unmarshal would copy it
//     once more);
//   - a sent RawWriteRequest's (RawProcessRequest's) chunk goes to the
//     transport as it is, after a few header bytes (proto.Marshal would copy
//     it into a new buffer).
//
// A chunk is never modified once received, so the transport may read it
// while the host goes on.
type chunkCodec struct{ std encoding.CodecV2 }

var codec = chunkCodec{std: encoding.GetCodecV2("proto")}

// dataPath is the call option of the streams that carry chunks.
var dataPath = grpc.ForceCodecV2(codec)

func (c chunkCodec) Name() string { return c.std.Name() }

func (c chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	var head proto.Message
	var chunk []byte
	var field protowire.Number
	switch m := v.(type) {
	case *rawv1.RawWriteRequest:
		head, chunk, field = &rawv1.RawWriteRequest{Batch: m.Batch, From: m.From, Until: m.Until, Replay: m.Replay, Epoch: m.Epoch}, m.Chunk, protocol.WriteRequestChunk
	case *rawv1.RawProcessRequest:
		head, chunk, field = &rawv1.RawProcessRequest{Batch: m.Batch, Replay: m.Replay}, m.Chunk, protocol.ProcessRequestChunk
	}
	if head == nil || len(chunk) < 64<<10 {
		return c.std.Marshal(v)
	}
	b, err := proto.Marshal(head)
	if err != nil {
		return nil, err
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(chunk)))
	return mem.BufferSlice{mem.SliceBuffer(b), mem.SliceBuffer(chunk)}, nil
}

func (c chunkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var err error
	switch m := v.(type) {
	case *rawv1.RawReadReply:
		n := data.Len()
		if n < pooledChunk {
			m.Chunk, err = protocol.UnmarshalAliasing(data.Materialize(), m, protocol.ReadReplyChunk)
			break
		}
		b := chunkBuf(n)
		data.CopyTo(b)
		var c []byte
		if c, err = protocol.UnmarshalAliasing(b, m, protocol.ReadReplyChunk); err == nil {
			m.Chunk = within(b, c)
		}
	case *rawv1.RawProcessReply:
		m.Chunk, err = protocol.UnmarshalAliasing(data.Materialize(), m, protocol.ProcessReplyChunk)
	default:
		err = c.std.Unmarshal(data, v)
	}
	return err
}

// A source's chunks are gathered into buffers that Data.Release gives back
// for the next reads: the host reads a batch into the same memory again and
// again instead of asking the runtime for a megabyte or so per chunk (which
// it clears, and the kernel faults in, every time). A message smaller than
// pooledChunk is not worth it.
var chunkBufs sync.Pool // of *[]byte

const pooledChunk = 64 << 10

// chunkBuf returns n bytes to gather a message into: a released buffer when
// there is one large enough, else a new one with room to spare (a buffer
// loses the few bytes before its chunk each time it is released).
func chunkBuf(n int) []byte {
	if p, _ := chunkBufs.Get().(*[]byte); p != nil && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]byte, n, n+n/16)
}

// within returns c, a slice of b, with the capacity it has in b, so that
// Release can give the buffer back; c itself when it does not start within
// b's first bytes (where the message's header ends).
func within(b, c []byte) []byte {
	if len(c) == 0 {
		return c
	}
	for i := 0; i < min(64, len(b)-len(c)+1); i++ {
		if &b[i] == &c[0] {
			return b[i : i+len(c)]
		}
	}
	return c
}

// Release gives the memory of d's chunks back, to gather the chunks of later
// reads into, and empties d. The caller promises that nothing reads d's
// chunks any more: neither the host (no record decoded from them is held)
// nor a transport still sending them (a Write that returned without an
// error has sent them all: the sink answers after the last one). The
// pipeline releases a batch it read once the batch is acknowledged.
func (d *Data) Release() {
	for _, c := range d.Chunks {
		if cap(c) >= pooledChunk {
			b := c[:0:cap(c)]
			chunkBufs.Put(&b)
		}
	}
	d.Chunks = nil
}
