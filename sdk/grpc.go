package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/poison"
	"github.com/connectd/connectd/internal/protocol"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/internal/protocol/rawv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The server half of connector.v1: it turns gRPC calls into calls on the
// author's Source, Sink or Processor, checks what comes back, and hosts the plugin-side
// fault points: each kills the process or, for an error item (see
// internal/fault), makes the call fail with an error the host retries.

func specToPB(s Spec, features []protocol.Feature) *pb.PluginSpec {
	out := &pb.PluginSpec{Name: s.Name, Version: s.Version, Kind: string(s.Kind), Summary: s.Summary}
	for _, f := range features {
		out.Features = append(out.Features, string(f))
	}
	for _, c := range s.Capabilities {
		out.Capabilities = append(out.Capabilities, string(c))
	}
	for _, c := range s.When {
		out.When = append(out.When, &pb.Conditional{Capability: string(c.Capability), Param: c.Param, Values: c.Values})
	}
	for _, p := range s.Params {
		out.Params = append(out.Params, &pb.Param{Name: p.Name, Type: string(p.Type), DefaultJson: valueJSON(p.Default), Required: p.Required, Secret: p.Secret, Doc: p.Doc,
			Enum: p.Enum, MinJson: valueJSON(p.Min), MaxJson: valueJSON(p.Max), Pattern: p.Pattern})
	}
	return out
}

// valueJSON is the JSON of a default or a bound, durations as strings such as
// "1s"; "" for nil.
func valueJSON(v any) string {
	if v == nil {
		return ""
	}
	if d, ok := v.(time.Duration); ok {
		v = d.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func offsetsPB(o Offsets) *pb.Offsets { return &pb.Offsets{Offsets: o} }

func offsetsOf(o *pb.Offsets) Offsets {
	if o == nil || o.Offsets == nil {
		return Offsets{}
	}
	return Offsets(o.Offsets)
}

// rpcError turns an author's error into a gRPC status the host shows as is,
// after the plugin's name and the call (`sink "file": write: …`). A
// *ConfigError goes out as codes.InvalidArgument: the host reports it as the
// user's configuration error (exit status 2) and does not retry the call.
func rpcError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if IsConfigError(err) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if errors.Is(err, ErrFenced) { // permanent for the host: retrying cannot help
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// openError is rpcError for Open.
func openError(err error) error { return rpcError(err) }

func openConfig(spec Spec, req *pb.OpenRequest) (Config, error) {
	raw := map[string]any{}
	if req.ConfigJson != "" {
		if err := json.Unmarshal([]byte(req.ConfigJson), &raw); err != nil {
			return Config{}, fmt.Errorf("config from host is not JSON: %w", err)
		}
	}
	cfg, err := NewConfig(spec, req.Pipeline, raw)
	if err != nil {
		return Config{}, err
	}
	return cfg.withTask(req.Task, req.Tasks)
}

type sourceServer struct {
	pb.UnimplementedSourceServer
	def *SourcePlugin
	mu  sync.Mutex
	src Source
}

func registerSource(s *grpc.Server, def *SourcePlugin) {
	pb.RegisterSourceServer(s, &sourceServer{def: def})
}

func (s *sourceServer) Spec(context.Context, *pb.Empty) (*pb.PluginSpec, error) {
	var f []protocol.Feature
	probe := s.def.New()
	if _, ok := probe.(Replayer); ok {
		f = append(f, protocol.FeatureReplayer)
	}
	if _, ok := probe.(Ender); ok {
		f = append(f, protocol.FeatureEnder)
	}
	return specToPB(s.def.Spec, f), nil
}

func (s *sourceServer) get() (Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.src == nil {
		return nil, status.Error(codes.FailedPrecondition, "source is not open")
	}
	return s.src, nil
}

func (s *sourceServer) Open(ctx context.Context, req *pb.OpenRequest) (*pb.Empty, error) {
	cfg, err := openConfig(s.def.Spec, req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	src := s.def.New()
	if err := src.Open(ctx, cfg); err != nil {
		return nil, openError(err)
	}
	s.mu.Lock()
	s.src = src
	s.mu.Unlock()
	return &pb.Empty{}, nil
}

func (s *sourceServer) Read(req *pb.ReadRequest, stream pb.Source_ReadServer) error {
	if err := fault.Check(fault.SourceReadBefore, req.Batch); err != nil {
		return rpcError(err)
	}
	src, err := s.get()
	if err != nil {
		return err
	}
	from := offsetsOf(req.From)
	lim := Limits{MaxRecords: int(req.MaxRecords), MaxBytes: req.MaxBytes, MaxWait: time.Duration(req.MaxWaitNanos)}
	if req.HasStop {
		lim.Stop = offsetsOf(req.Stop)
	}
	rd, err := src.Read(stream.Context(), from, lim)
	if err != nil {
		return rpcError(err)
	}
	if err := CheckRead(from, lim, rd); err != nil {
		return status.Error(codes.Internal, "source broke the Read contract: "+err.Error())
	}
	return sendRecords(stream, req.Batch, rd.Records, rd.From, rd.Until, fault.SourceReadPartial)
}

// sendRecords streams records in chunks and then the range. The partial fault
// point lets k records through, then kills the process (or fails the call).
//
// Chunks go out as rawv1.RawReadReply, which is connector.v1 ReadReply on the
// wire with the chunk already encoded by the encoder; serverCodec hands each
// chunk's buffer to the transport without copying it.
func sendRecords(stream grpc.ServerStream, batch int64, recs []Record, from, until Offsets, partial string) error {
	reply := func(c []byte) *chunkReply {
		buf := new([]byte)
		*buf = c
		return &chunkReply{RawReadReply: &rawv1.RawReadReply{Chunk: c}, buf: buf}
	}
	send := func(c []byte) error { return stream.SendMsg(reply(c)) }
	e := encoder{handOff: true}
	if k, ok := fault.Trip(partial, batch, len(recs)); partial != "" && ok {
		if err := e.add(recs[:k], send); err != nil {
			return err
		}
		if c := e.finish(); c != nil {
			if err := send(c); err != nil {
				return err
			}
		}
		return rpcError(fault.Fail(partial, batch))
	}
	if err := e.add(recs, send); err != nil {
		return err
	}
	if err := fault.Check(fault.SourceReadAfter, batch); err != nil {
		return rpcError(err)
	}
	last := reply(e.finish())
	last.Last, last.From, last.Until, last.Records, last.Bytes = true, offsetsPB(from), offsetsPB(until), int64(len(recs)), e.bytes
	return stream.SendMsg(last)
}

func (s *sourceServer) Replay(req *pb.ReplayRequest, stream pb.Source_ReplayServer) error {
	if err := fault.Check(fault.SourceReplay, req.Batch); err != nil {
		return rpcError(err)
	}
	src, err := s.get()
	if err != nil {
		return err
	}
	rp, ok := src.(Replayer)
	if !ok {
		return status.Errorf(codes.Unimplemented, "source %q is not replayable (it does not implement Replayer)", s.def.Spec.Name)
	}
	from, until := offsetsOf(req.From), offsetsOf(req.Until)
	recs, err := rp.Replay(stream.Context(), from, until)
	if err != nil {
		return rpcError(err)
	}
	if err := CheckRead(from, Limits{}, Read{Records: recs, From: from, Until: until}); err != nil {
		return status.Error(codes.Internal, "source broke the Replay contract: "+err.Error())
	}
	return sendRecords(stream, req.Batch, recs, from, until, "")
}

func (s *sourceServer) End(ctx context.Context, _ *pb.Empty) (*pb.Offsets, error) {
	src, err := s.get()
	if err != nil {
		return nil, err
	}
	en, ok := src.(Ender)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "source %q cannot tell where its data ends (it does not implement Ender)", s.def.Spec.Name)
	}
	end, err := en.End(ctx)
	if err != nil {
		return nil, rpcError(err)
	}
	return offsetsPB(end), nil
}

func (s *sourceServer) Ack(ctx context.Context, req *pb.AckRequest) (*pb.Empty, error) {
	src, err := s.get()
	if err != nil {
		return nil, err
	}
	if err := fault.Check(fault.SourceAckBefore, req.Batch); err != nil {
		return nil, rpcError(err)
	}
	if err := src.Ack(ctx, offsetsOf(req.Until)); err != nil {
		return nil, rpcError(err)
	}
	if err := fault.Check(fault.SourceAckAfter, req.Batch); err != nil {
		return nil, rpcError(err)
	}
	return &pb.Empty{}, nil
}

func (s *sourceServer) Close(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	s.mu.Lock()
	src := s.src
	s.src = nil
	s.mu.Unlock()
	if src != nil {
		if err := src.Close(ctx); err != nil {
			return nil, rpcError(err)
		}
	}
	return &pb.Empty{}, nil
}

type sinkServer struct {
	pb.UnimplementedSinkServer
	def  *SinkPlugin
	mu   sync.Mutex
	sink Sink
	tx   bool // transactional with the configuration it was opened with
	// rejections: the host that opened the sink handles rejected records
	// (it listed protocol.HostRejections).
	rejections bool
	poison     bool       // PoisonEnv was 1 when the sink was opened
	mem        memoryPool // batch memory, reused from one Write to the next
}

func registerSink(s *grpc.Server, def *SinkPlugin) {
	pb.RegisterSinkServer(s, &sinkServer{def: def})
}

func (s *sinkServer) Spec(context.Context, *pb.Empty) (*pb.PluginSpec, error) {
	var f []protocol.Feature
	probe := s.def.New()
	if _, ok := probe.(Transactional); ok {
		f = append(f, protocol.FeatureTransactional)
	}
	if _, ok := probe.(Lister); ok {
		f = append(f, protocol.FeatureLister)
	}
	return specToPB(s.def.Spec, f), nil
}

func (s *sinkServer) get() (Sink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sink == nil {
		return nil, status.Error(codes.FailedPrecondition, "sink is not open")
	}
	return s.sink, nil
}

func (s *sinkServer) Open(ctx context.Context, req *pb.OpenRequest) (*pb.Empty, error) {
	cfg, err := openConfig(s.def.Spec, req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	poisoned, err := poison.Enabled()
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	sk := s.def.New()
	if err := sk.Open(ctx, cfg); err != nil {
		return nil, openError(err)
	}
	tx := slices.Contains(s.def.Spec.CapabilitiesFor(cfg.Raw()), CapTransactional)
	s.mu.Lock()
	s.sink, s.tx, s.poison = sk, tx, poisoned
	s.rejections = slices.Contains(req.HostFeatures, protocol.HostRejections)
	s.mu.Unlock()
	return &pb.Empty{}, nil
}

func (s *sinkServer) Write(stream pb.Sink_WriteServer) error {
	sk, err := s.get()
	if err != nil {
		return err
	}
	s.mu.Lock()
	transactional, poisoned := s.tx, s.poison
	s.mu.Unlock()
	// The batch's messages are received into mem, its records decoded
	// there, and mem is reused by the next Write once this one returns (see
	// Batch); with poison it is overwritten as soon as the sink's Write
	// returns.
	mem := s.mem.get(poisoned)
	defer func() {
		if mem != nil {
			s.mem.put(mem)
		}
	}()
	var b Batch
	var chunks [][]byte
	first := true
	m := pooledWrite{mem: mem} // one for the call: &m escapes
	for {
		// rawv1.RawWriteRequest is connector.v1 WriteRequest on the wire with
		// the chunk left encoded; DecodeChunks reads it without a protobuf
		// message per record.
		m.RawWriteRequest = new(rawv1.RawWriteRequest)
		err := stream.RecvMsg(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if first {
			b.ID, b.From, b.Until, b.Replay, b.Epoch = m.Batch, offsetsOf(m.From), offsetsOf(m.Until), m.Replay, m.Epoch
			first = false
		}
		if len(m.Chunk) > 0 {
			chunks = append(chunks, m.Chunk)
		}
	}
	if b.Records, err = mem.decode(chunks); err != nil {
		return status.Error(codes.Internal, "the host broke the Write contract: "+err.Error()) // not the user's configuration
	}
	if first {
		return status.Error(codes.Internal, "the host broke the Write contract: the write stream carried no batch")
	}
	if err := fault.Check(fault.SinkWriteBefore, b.ID); err != nil {
		return rpcError(err)
	}
	ctx := context.WithValue(stream.Context(), batchKey{}, b.ID)
	if k, ok := fault.Trip(fault.SinkWritePartial, b.ID, len(b.Records)); ok {
		if !transactional {
			part := b
			part.Records = b.Records[:k]
			_ = sk.Write(ctx, part)
		}
		return rpcError(fault.Fail(fault.SinkWritePartial, b.ID))
	}
	reply, err := s.reply(b.ID, len(b.Records), sk.Write(ctx, b))
	s.mem.put(mem) // before the host hears back: its next Write reuses mem
	mem = nil
	if err != nil {
		return err
	}
	if err := fault.Check(fault.SinkWriteAfter, b.ID); err != nil {
		return rpcError(err)
	}
	return stream.SendAndClose(reply)
}

// reply is the answer to Write of batch id, of n records, whose sink's
// Write returned err: a reply, or the error the call fails with.
func (s *sinkServer) reply(id int64, n int, err error) (*pb.WriteReply, error) {
	reply := &pb.WriteReply{}
	if err == nil {
		return reply, nil
	}
	rej, ok := rejectedOf(err)
	if !ok {
		return nil, rpcError(fmt.Errorf("batch %d: %w", id, err))
	}
	if err := CheckRejections(n, rej.Records); err != nil {
		return nil, status.Errorf(codes.Internal, "sink broke the Write contract: batch %d: %v", id, err)
	}
	s.mu.Lock()
	handled := s.rejections
	s.mu.Unlock()
	if !handled {
		// An older host would take the reply for a full success.
		return nil, rpcError(fmt.Errorf("batch %d: %w (the host that runs this sink predates rejected records and would drop them: the batch fails instead)", id, rej))
	}
	reply.Rejected = rejectionsPB(rej.Records)
	return reply, nil
}

// batchKey is the context key under which the sdk passes the id of the
// batch being written to a sink's Write (see FaultBeforeCommit).
type batchKey struct{}

// FaultBeforeCommit is the fault point sink.write.commit
// (docs/fault-points.md), which a transactional sink calls in its Write with
// the context Write was given, after it wrote the batch's rows and just before
// it commits them. It does nothing (and returns nil) unless CONNECTD_FAULT
// enables the point for the batch: then it kills the process on the spot, so
// that a crash lands inside the open transaction, or, for an item ending in
// /error, returns the error Write must fail with (after rolling back). With a
// context that does not come from the sdk's Write it does nothing.
func FaultBeforeCommit(ctx context.Context) error {
	id, ok := ctx.Value(batchKey{}).(int64)
	if !ok {
		return nil
	}
	return fault.Check(fault.SinkWriteCommit, id)
}

func (s *sinkServer) LastCommitted(ctx context.Context, _ *pb.Empty) (*pb.CommittedReply, error) {
	sk, err := s.get()
	if err != nil {
		return nil, err
	}
	tx, ok := sk.(Transactional)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "sink %q is not transactional", s.def.Spec.Name)
	}
	c, err := tx.LastCommitted(ctx)
	if err != nil {
		return nil, rpcError(err)
	}
	reply := &pb.CommittedReply{Batch: c.Batch, Until: offsetsPB(c.Until)}
	for _, r := range c.Rejected {
		reply.Rejected = append(reply.Rejected, &pb.Rejection{Index: uint32(r.Index), Reason: r.Reason})
	}
	return reply, nil
}

func (s *sinkServer) List(_ *pb.Empty, stream pb.Sink_ListServer) error {
	sk, err := s.get()
	if err != nil {
		return err
	}
	l, ok := sk.(Lister)
	if !ok {
		return status.Errorf(codes.Unimplemented, "sink %q cannot list what it holds (it does not implement Lister)", s.def.Spec.Name)
	}
	vals, err := l.List(stream.Context())
	if err != nil {
		return rpcError(err)
	}
	for len(vals) > 0 {
		n, size := 0, 0
		for n < len(vals) && (n == 0 || size < protocol.ChunkBytes) {
			size += len(vals[n]) + 8
			n++
		}
		if err := stream.Send(&pb.ListReply{Values: vals[:n]}); err != nil {
			return err
		}
		vals = vals[n:]
	}
	return nil
}

func (s *sinkServer) Close(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	s.mu.Lock()
	sk := s.sink
	s.sink = nil
	s.mu.Unlock()
	if sk != nil {
		if err := sk.Close(ctx); err != nil {
			return nil, rpcError(err)
		}
	}
	return &pb.Empty{}, nil
}
