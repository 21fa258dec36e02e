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
		m.Chunk, err = protocol.UnmarshalAliasing(data.Materialize(), m, protocol.ReadReplyChunk)
	case *rawv1.RawProcessReply:
		m.Chunk, err = protocol.UnmarshalAliasing(data.Materialize(), m, protocol.ProcessReplyChunk)
	default:
		err = c.std.Unmarshal(data, v)
	}
	return err
}
