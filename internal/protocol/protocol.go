// Package protocol holds connectd's wire protocol, connector.v1: the .proto,
// its generated code (connectorv1/), and the go-plugin handshake both sides use.
package protocol

import (
	"math"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Version is the protocol version negotiated in the go-plugin handshake.
const Version = 1

// Handshake is the go-plugin handshake: a plugin executable started by hand
// (without the cookie) says it must be started by connectd and exits.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  Version,
	MagicCookieKey:   "CONNECTD_PLUGIN",
	MagicCookieValue: "connector.v1:7d0c6f8e-streams",
}

// Role names in the go-plugin plugin set.
const (
	RoleSource = "source"
	RoleSink   = "sink"
)

// ChunkBytes is the size above which a batch is split into several chunks on
// the wire; MaxMessage bounds one message (a single record may be that large).
const (
	ChunkBytes = 1 << 20
	MaxMessage = 256 << 20
)

// ServerOptions are the gRPC server options both sides agree on.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessage), grpc.MaxSendMsgSize(math.MaxInt32)}
}

// DialOptions are the gRPC client options both sides agree on.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage), grpc.MaxCallSendMsgSize(math.MaxInt32))}
}
