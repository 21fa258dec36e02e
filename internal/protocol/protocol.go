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

// HostPIDEnv names the environment variable in which the host gives every
// plugin process its own pid, so that a plugin can tell its host from an
// adoptive parent: a host that runs as pid 1 (a container's entrypoint) looks
// to its child exactly like init adopting an orphan.
const HostPIDEnv = "CONNECTD_HOST_PID"

// Role names in the go-plugin plugin set.
const (
	RoleSource    = "source"
	RoleSink      = "sink"
	RoleProcessor = "processor"
)

// Feature names an optional interface a plugin role implements, beyond the
// required methods of its kind: PluginSpec.features lists them, and the host
// calls a feature's RPCs only on a plugin that lists it. The wire carries the
// constants' string values.
type Feature string

// The features.
const (
	// FeatureReplayer: the source serves Replay (sdk.Replayer).
	FeatureReplayer Feature = "replayer"
	// FeatureEnder: the source serves End (sdk.Ender).
	FeatureEnder Feature = "ender"
	// FeatureTransactional: the sink serves LastCommitted (sdk.Transactional).
	FeatureTransactional Feature = "transactional"
	// FeatureLister: the sink serves List (sdk.Lister).
	FeatureLister Feature = "lister"
)

// HostRejections is the host feature (OpenRequest.host_features) that says
// the host acts on rejected records (WriteReply.rejected,
// CommittedReply.rejected). A sink opened without it fails a batch it
// would reject records of: an older host would drop them unseen.
const HostRejections = "rejections"

// ChunkBytes is the size above which a batch is split into several chunks on
// the wire; MaxMessage bounds one message (a single record may be that large).
const (
	ChunkBytes = 1 << 20
	MaxMessage = 256 << 20
)

// ServerOptions are the gRPC server options both sides agree on.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessage), grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.InitialWindowSize(streamWindow), grpc.InitialConnWindowSize(connWindow),
		grpc.WriteBufferSize(socketBuffer), grpc.ReadBufferSize(socketBuffer),
	}
}

// DialOptions are the gRPC client options both sides agree on.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage), grpc.MaxCallSendMsgSize(math.MaxInt32)),
		grpc.WithInitialWindowSize(streamWindow), grpc.WithInitialConnWindowSize(connWindow),
		grpc.WithWriteBufferSize(socketBuffer), grpc.WithReadBufferSize(socketBuffer),
	}
}

// Transport settings of the data path, on both sides: flow-control windows of
// several chunks (gRPC's default starts at 64 KiB and grows by estimation, so
// a 1 MiB chunk waits for window updates) and socket buffers of a chunk.
const (
	streamWindow = 8 << 20
	connWindow   = 16 << 20
	socketBuffer = 256 << 10
)

// Field numbers of the chunk in connector.v1 ReadReply, WriteRequest,
// ProcessRequest and ProcessReply (and their rawv1 twins), for the data
// path's codecs.
const (
	ReadReplyChunk      = 1
	WriteRequestChunk   = 5
	ProcessRequestChunk = 3
	ProcessReplyChunk   = 1
)
