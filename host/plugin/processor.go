package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/internal/protocol/rawv1"
	"github.com/connectd/connectd/sdk"
	"google.golang.org/grpc"
)

// Processor is the host's handle on a processor plugin process.
type Processor struct {
	name   string
	client pb.ProcessorClient
	conn   *grpc.ClientConn
}

var processDesc = &grpc.StreamDesc{StreamName: "Process", ServerStreams: true, ClientStreams: true}

// Open configures the processor for pipeline, run as one task, with
// validated values. A configuration the plugin refuses is a *ConfigError.
func (p *Processor) Open(ctx context.Context, pipeline string, values map[string]any) error {
	return p.OpenTask(ctx, Task{Name: pipeline, Count: 1}, values)
}

// OpenTask configures the processor for task t of its pipeline with
// validated values. A configuration the plugin refuses is a *ConfigError.
func (p *Processor) OpenTask(ctx context.Context, t Task, values map[string]any) error {
	req, err := openRequest(t, values)
	if err != nil {
		return wrap(p.name, "open", err)
	}
	_, err = p.client.Open(ctx, req)
	return openErr(p.name, err)
}

// Process sends the records of batch to the processor and returns what they
// became and the input records it rejected (indexes into recs). The host
// checks the reply: a rejection of a record recs does not have (or twice),
// or an output record whose partition and offset are not those of an input
// record, is the processor's broken contract, a permanent *Error that names
// it. Output records that share a partition and offset get Position.Index
// 0, 1, 2, … in output order, whatever index the processor gave them.
//
// The output records alias the reply's buffers, never recs. A record of
// recs that cannot be encoded (a header key that is not UTF-8) is an error
// that is not an *Error: no processor was asked.
func (p *Processor) Process(ctx context.Context, batch int64, recs []sdk.Record, replay bool) ([]sdk.Record, []sdk.Rejection, error) {
	chunks, _, err := sdk.EncodeChunks(recs)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: process: batch %d: %w", p.name, batch, err)
	}
	got, rej, err := p.call(ctx, batch, replay, chunks)
	if err != nil {
		return nil, nil, wrap(p.name, "process", err)
	}
	broke := func(err error) error {
		return contractErr(p.name, "process", fmt.Errorf("processor broke the Process contract: batch %d: %w", batch, err))
	}
	out, err := sdk.DecodeChunks(nil, got)
	if err != nil {
		return nil, nil, broke(err)
	}
	rejected := rejections(rej)
	if err := sdk.CheckRejections(len(recs), rejected); err != nil {
		return nil, nil, broke(err)
	}
	if err := sdk.CheckProcess(recs, out); err != nil {
		return nil, nil, broke(err)
	}
	number(out)
	return out, rejected, nil
}

// call streams the encoded batch to the processor, half-closes, and collects
// the reply's chunks and rejections.
func (p *Processor) call(ctx context.Context, batch int64, replay bool, chunks [][]byte) ([][]byte, []*pb.Rejection, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream if the reply is not read to its end
	st, err := p.conn.NewStream(ctx, processDesc, pb.Processor_Process_FullMethodName, dataPath)
	if err != nil {
		return nil, nil, err
	}
	head := &rawv1.RawProcessRequest{Batch: batch, Replay: replay}
	if len(chunks) > 0 {
		head.Chunk, chunks = chunks[0], chunks[1:]
	}
	sendErr := st.SendMsg(head)
	for _, c := range chunks {
		if sendErr != nil {
			break
		}
		sendErr = st.SendMsg(&rawv1.RawProcessRequest{Chunk: c})
	}
	if sendErr != nil && sendErr != io.EOF { // io.EOF: the processor ended the call; RecvMsg says why
		return nil, nil, sendErr
	}
	if err := st.CloseSend(); err != nil {
		return nil, nil, err
	}
	var got [][]byte
	var rej []*pb.Rejection
	for {
		m := new(rawv1.RawProcessReply)
		err := st.RecvMsg(m)
		if errors.Is(err, io.EOF) {
			if sendErr != nil {
				return nil, nil, errors.New("the processor ended the call before it received the batch")
			}
			return got, rej, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if len(m.Chunk) > 0 {
			got = append(got, m.Chunk)
		}
		rej = append(rej, m.Rejected...)
	}
}

// number gives the records that share a partition and offset Position.Index
// 0, 1, 2, … in their order.
func number(recs []sdk.Record) {
	type at struct {
		p string
		o int64
	}
	seen := make(map[at]int, len(recs))
	for i := range recs {
		pos := &recs[i].Position
		k := at{pos.Partition, pos.Offset}
		pos.Index = seen[k]
		seen[k]++
	}
}

// Close closes the processor.
func (p *Processor) Close(ctx context.Context) error {
	_, err := p.client.Close(ctx, &pb.Empty{})
	return wrap(p.name, "close", err)
}
