package sdk

import (
	"github.com/connectd/connectd/internal/protocol"
	"github.com/connectd/connectd/internal/protocol/rawv1"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// serverCodec is gRPC's protobuf codec (same bytes on the wire, same name)
// with one copy less of each chunk a sink or processor receives: a
// pooledWrite's (pooledProcess's) chunk aliases the buffer of its
// batchMemory the message is gathered into, where proto.Unmarshal would copy
// it once more; that buffer is reused by a later batch once Write (Process)
// has returned (see Batch).
type serverCodec struct{ std encoding.CodecV2 }

func newServerCodec() serverCodec { return serverCodec{std: encoding.GetCodecV2("proto")} }

func (c serverCodec) Name() string { return c.std.Name() }

// chunkReply is a ReadReply whose chunk buf the encoder handed off: Marshal
// gives it to the transport without a copy, and the transport puts it back in
// chunkPool once written. Any other codec marshals the embedded message.
type chunkReply struct {
	*rawv1.RawReadReply
	buf *[]byte // holds Chunk
}

// processReply is a ProcessReply whose chunk buf the encoder handed off, as
// chunkReply.
type processReply struct {
	*rawv1.RawProcessReply
	buf *[]byte // holds Chunk
}

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	if p, ok := v.(*processReply); ok {
		return c.marshalProcessReply(p)
	}
	r, ok := v.(*chunkReply)
	if !ok {
		return c.std.Marshal(v)
	}
	if len(r.Chunk) == 0 {
		return c.std.Marshal(r.RawReadReply)
	}
	head := protowire.AppendTag(nil, protocol.ReadReplyChunk, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(r.Chunk)))
	rest, err := proto.Marshal(&rawv1.RawReadReply{Last: r.Last, From: r.From, Until: r.Until, Records: r.Records, Bytes: r.Bytes})
	if err != nil {
		return nil, err
	}
	out := mem.BufferSlice{mem.SliceBuffer(head), mem.NewBuffer(r.buf, chunkPool)}
	if len(rest) > 0 {
		out = append(out, mem.SliceBuffer(rest))
	}
	return out, nil
}

// marshalProcessReply is Marshal of a ProcessReply: its chunk's buffer goes
// to the transport as it is.
func (c serverCodec) marshalProcessReply(r *processReply) (mem.BufferSlice, error) {
	if len(r.Chunk) == 0 {
		return c.std.Marshal(r.RawProcessReply)
	}
	head := protowire.AppendTag(nil, protocol.ProcessReplyChunk, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(r.Chunk)))
	rest, err := proto.Marshal(&rawv1.RawProcessReply{Rejected: r.Rejected})
	if err != nil {
		return nil, err
	}
	out := mem.BufferSlice{mem.SliceBuffer(head), mem.NewBuffer(r.buf, chunkPool)}
	if len(rest) > 0 {
		out = append(out, mem.SliceBuffer(rest))
	}
	return out, nil
}

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var err error
	switch m := v.(type) {
	case *pooledWrite:
		buf := m.mem.buffer(data.Len())
		data.CopyTo(buf)
		m.Chunk, err = protocol.UnmarshalAliasing(buf, m.RawWriteRequest, protocol.WriteRequestChunk)
	case *pooledProcess:
		buf := m.mem.buffer(data.Len())
		data.CopyTo(buf)
		m.Chunk, err = protocol.UnmarshalAliasing(buf, m.RawProcessRequest, protocol.ProcessRequestChunk)
	case *rawv1.RawWriteRequest:
		m.Chunk, err = protocol.UnmarshalAliasing(data.Materialize(), m, protocol.WriteRequestChunk)
	case *rawv1.RawProcessRequest:
		m.Chunk, err = protocol.UnmarshalAliasing(data.Materialize(), m, protocol.ProcessRequestChunk)
	default:
		err = c.std.Unmarshal(data, v)
	}
	return err
}
