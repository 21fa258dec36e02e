package plugin

import (
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
// with fewer copies of the data path's chunks, which the host never decodes:
//
//   - a received RawReadReply's chunk aliases the one buffer the message is
//     gathered into (proto.Unmarshal would copy it once more);
//   - a sent RawWriteRequest's chunk goes to the transport as it is, after a
//     few header bytes (proto.Marshal would copy it into a new buffer).
//
// A chunk is never modified once received, so the transport may read it
// while the host goes on.
type chunkCodec struct{ std encoding.CodecV2 }

var codec = chunkCodec{std: encoding.GetCodecV2("proto")}

// dataPath is the call option of the streams that carry chunks.
var dataPath = grpc.ForceCodecV2(codec)

func (c chunkCodec) Name() string { return c.std.Name() }

func (c chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawv1.RawWriteRequest)
	if !ok || len(m.Chunk) < 64<<10 {
		return c.std.Marshal(v)
	}
	head, err := proto.Marshal(&rawv1.RawWriteRequest{Batch: m.Batch, From: m.From, Until: m.Until, Replay: m.Replay})
	if err != nil {
		return nil, err
	}
	head = protowire.AppendTag(head, protocol.WriteRequestChunk, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(m.Chunk)))
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(m.Chunk)}, nil
}

func (c chunkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawv1.RawReadReply)
	if !ok {
		return c.std.Unmarshal(data, v)
	}
	var err error
	m.Chunk, err = protocol.UnmarshalAliasing(data.Materialize(), m, protocol.ReadReplyChunk)
	return err
}
