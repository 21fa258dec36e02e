package protocol

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// UnmarshalAliasing unmarshals b into m, except the bytes field number f,
// which it returns as a slice of b (the last occurrence wins, as in
// proto.Unmarshal). b must be the caller's to keep. The data path's gRPC codecs
// use it to keep a received chunk where it arrived instead of copying it.
func UnmarshalAliasing(b []byte, m proto.Message, f protowire.Number) ([]byte, error) {
	var alias, rest []byte
	for in := b; len(in) > 0; {
		num, typ, n := protowire.ConsumeTag(in)
		if n < 0 {
			return nil, fmt.Errorf("grpc: failed to unmarshal %T: %w", m, protowire.ParseError(n))
		}
		if num == f && typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(in[n:])
			if k < 0 {
				return nil, fmt.Errorf("grpc: failed to unmarshal %T: %w", m, protowire.ParseError(k))
			}
			alias = v[:len(v):len(v)]
			in = in[n+k:]
			continue
		}
		k := protowire.ConsumeFieldValue(num, typ, in[n:])
		if k < 0 {
			return nil, fmt.Errorf("grpc: failed to unmarshal %T: %w", m, protowire.ParseError(k))
		}
		rest = append(rest, in[:n+k]...)
		in = in[n+k:]
	}
	if err := proto.Unmarshal(rest, m); err != nil {
		return nil, err
	}
	return alias, nil
}
