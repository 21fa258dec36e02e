package sdk

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/poison"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/internal/protocol/rawv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The server half of connector.v1 Processor: it decodes the batch the host
// streams, calls the author's Process, checks what comes back and streams
// it to the host.

type processorServer struct {
	pb.UnimplementedProcessorServer
	def    *ProcessorPlugin
	mu     sync.Mutex
	proc   Processor
	poison bool       // PoisonEnv was 1 when the processor was opened
	mem    memoryPool // batch memory, reused from one Process to the next
}

func registerProcessor(s *grpc.Server, def *ProcessorPlugin) {
	pb.RegisterProcessorServer(s, &processorServer{def: def})
}

func (s *processorServer) Spec(context.Context, *pb.Empty) (*pb.PluginSpec, error) {
	return specToPB(s.def.Spec, nil), nil
}

func (s *processorServer) get() (Processor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil, status.Error(codes.FailedPrecondition, "processor is not open")
	}
	return s.proc, nil
}

func (s *processorServer) Open(ctx context.Context, req *pb.OpenRequest) (*pb.Empty, error) {
	cfg, err := openConfig(s.def.Spec, req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	poisoned, err := poison.Enabled()
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	p := s.def.New()
	if err := p.Open(ctx, cfg); err != nil {
		return nil, openError(err)
	}
	s.mu.Lock()
	s.proc, s.poison = p, poisoned
	s.mu.Unlock()
	return &pb.Empty{}, nil
}

// Process receives the whole batch (until the host half-closes), calls the
// processor once, and streams the records it returned in chunks; the last
// message carries the rejections. The fault points processor.process.before
// and processor.process.after kill the process around the call (or, for an
// error item, fail it).
func (s *processorServer) Process(stream pb.Processor_ProcessServer) error {
	p, err := s.get()
	if err != nil {
		return err
	}
	s.mu.Lock()
	poisoned := s.poison
	s.mu.Unlock()
	// As in a sink's Write, the batch lives in mem, reused by the next
	// call; it is released once the reply is sent, since the records
	// Process returns may alias b.Records.
	mem := s.mem.get(poisoned)
	defer s.mem.put(mem)
	var b Batch
	var chunks [][]byte
	first := true
	m := pooledProcess{mem: mem} // one for the call: &m escapes
	for {
		// rawv1.RawProcessRequest is connector.v1 ProcessRequest on the
		// wire with the chunk left encoded.
		m.RawProcessRequest = new(rawv1.RawProcessRequest)
		err := stream.RecvMsg(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if first {
			b.ID, b.Replay = m.Batch, m.Replay
			first = false
		}
		if len(m.Chunk) > 0 {
			chunks = append(chunks, m.Chunk)
		}
	}
	if first {
		return status.Error(codes.Internal, "the host broke the Process contract: the process stream carried no batch")
	}
	if b.Records, err = mem.decode(chunks); err != nil {
		return status.Error(codes.Internal, "the host broke the Process contract: "+err.Error())
	}
	if err := fault.Check(fault.ProcessorBefore, b.ID); err != nil {
		return rpcError(err)
	}
	out, err := p.Process(stream.Context(), b)
	var rejected []Rejection
	if err != nil {
		rej, ok := rejectedOf(err)
		if !ok {
			return rpcError(fmt.Errorf("batch %d: %w", b.ID, err))
		}
		rejected = rej.Records
	}
	if err := CheckRejections(len(b.Records), rejected); err != nil {
		return status.Errorf(codes.Internal, "processor broke the Process contract: batch %d: %v", b.ID, err)
	}
	if err := CheckProcess(b.Records, out); err != nil {
		return status.Errorf(codes.Internal, "processor broke the Process contract: batch %d: %v", b.ID, err)
	}
	if err := fault.Check(fault.ProcessorAfter, b.ID); err != nil {
		return rpcError(err)
	}
	return sendProcessed(stream, out, rejected)
}

// sendProcessed streams records in chunks, handed off to the transport as
// sendRecords does, and the rejections in the last message.
func sendProcessed(stream grpc.ServerStream, recs []Record, rejected []Rejection) error {
	reply := func(c []byte) *processReply {
		buf := new([]byte)
		*buf = c
		return &processReply{RawProcessReply: &rawv1.RawProcessReply{Chunk: c}, buf: buf}
	}
	e := encoder{handOff: true}
	var sendErr error
	send := func(c []byte) error {
		sendErr = stream.SendMsg(reply(c))
		return sendErr
	}
	if err := e.add(recs, send); err != nil {
		if sendErr != nil {
			return sendErr
		}
		return status.Errorf(codes.Internal, "processor broke the Process contract: %v", err)
	}
	last := reply(e.finish())
	last.Rejected = rejectionsPB(rejected)
	return stream.SendMsg(last)
}

func (s *processorServer) Close(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		if err := p.Close(ctx); err != nil {
			return nil, rpcError(err)
		}
	}
	return &pb.Empty{}, nil
}

// rejectionsPB is rs on the wire; CheckRejections has bounded the indexes.
func rejectionsPB(rs []Rejection) []*pb.Rejection {
	if len(rs) == 0 {
		return nil
	}
	out := make([]*pb.Rejection, len(rs))
	for i, r := range rs {
		out[i] = &pb.Rejection{Index: uint32(r.Index), Reason: r.Reason}
	}
	return out
}
