package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/protocol"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/internal/protocol/rawv1"
	"github.com/connectd/connectd/sdk"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Data is one batch as the host holds it: the chunks the source sent, still
// encoded (the host passes them to the sink without decoding a record), and
// the range they cover.
type Data struct {
	Chunks  [][]byte
	From    sdk.Offsets
	Until   sdk.Offsets
	Records int64
	Bytes   int64
	// Epoch is the lease epoch the host holds for the pipeline (sdk.Batch.Epoch);
	// 0 when it holds none.
	Epoch int64
}

// Source is the host's handle on a source plugin process.
type Source struct {
	name   string
	client pb.SourceClient
	conn   *grpc.ClientConn
}

// Sink is the host's handle on a sink plugin process.
type Sink struct {
	name   string
	client pb.SinkClient
	conn   *grpc.ClientConn
}

// The data path uses the wire-compatible raw messages of rawv1, so records
// stay encoded inside the host.
var (
	readDesc   = &grpc.StreamDesc{StreamName: "Read", ServerStreams: true}
	replayDesc = &grpc.StreamDesc{StreamName: "Replay", ServerStreams: true}
	writeDesc  = &grpc.StreamDesc{StreamName: "Write", ClientStreams: true}
)

// serverStream opens a server-streaming call with one request.
func serverStream(ctx context.Context, conn *grpc.ClientConn, desc *grpc.StreamDesc, method string, req any) (grpc.ClientStream, error) {
	st, err := conn.NewStream(ctx, desc, method, dataPath)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(req); err != nil {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	return st, nil
}

// Error is an error a plugin returned or a failure to reach it. Exited tells
// whether the plugin process is gone (the host restarts it and recovers).
type Error struct {
	Plugin string // e.g. `source "file"`
	Op     string
	Err    error
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	if s, ok := status.FromError(e.Err); ok {
		msg = s.Message()
	}
	return fmt.Sprintf("%s: %s: %s", e.Plugin, e.Op, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether calling again cannot help: the plugin answered
// and broke its contract (INTERNAL, as the Go sdk reports a Read, Replay,
// Write or Process that breaks it, and as the host reports a Write or Process
// reply that breaks it), does not implement the call (UNIMPLEMENTED), or is not in
// the state the call needs (FAILED_PRECONDITION). A plugin that died or could
// not be reached, or failed in any other way, is worth restarting.
func (e *Error) Permanent() bool {
	switch status.Code(e.Err) {
	case codes.Internal, codes.Unimplemented, codes.FailedPrecondition:
		return true
	}
	return false
}

// ConfigError is a plugin's refusal of its configuration: the plugin
// answered INVALID_ARGUMENT (the Go sdk does for a value that breaks its
// spec's rules and for an sdk.ConfigError returned by Open or by a later
// call, such as a Read from a partition its configuration does not have).
// The user must change the configuration or the offsets; starting the plugin
// again does not help.
type ConfigError struct {
	Plugin string // e.g. `sink "file"`
	Msg    string // the plugin's message, e.g. `mode "upsert" needs key`; after Open, prefixed with the call: `read: …`
}

func (e *ConfigError) Error() string { return e.Plugin + ": " + e.Msg }

// openErr is wrap for Open.
func openErr(plugin string, err error) error { return wrap(plugin, "open", err) }

// wrap turns a failed call into an *Error, or into a *ConfigError when the
// plugin answered INVALID_ARGUMENT.
func wrap(plugin, op string, err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.InvalidArgument {
		msg := s.Message()
		if op != "open" {
			msg = op + ": " + msg
		}
		return &ConfigError{Plugin: plugin, Msg: msg}
	}
	return &Error{Plugin: plugin, Op: op, Err: err}
}

func specFromPB(p *pb.PluginSpec) (sdk.Spec, []protocol.Feature, error) {
	s := sdk.Spec{Name: p.Name, Version: p.Version, Kind: sdk.Kind(p.Kind), Summary: p.Summary}
	for _, c := range p.Capabilities {
		s.Capabilities = append(s.Capabilities, sdk.Capability(c))
	}
	for _, c := range p.When {
		s.When = append(s.When, sdk.Conditional{Capability: sdk.Capability(c.Capability), Param: c.Param, Values: c.Values})
	}
	for _, q := range p.Params {
		par := sdk.Param{Name: q.Name, Type: sdk.Type(q.Type), Required: q.Required, Secret: q.Secret, Doc: q.Doc,
			Enum: q.Enum, Pattern: q.Pattern}
		for _, f := range []struct {
			what string
			json string
			to   *any
		}{{"default", q.DefaultJson, &par.Default}, {"min", q.MinJson, &par.Min}, {"max", q.MaxJson, &par.Max}} {
			if f.json == "" {
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(f.json), &v); err != nil {
				return sdk.Spec{}, nil, fmt.Errorf("spec %q: %s of %q is not JSON: %w", p.Name, f.what, q.Name, err)
			}
			c, err := sdk.Convert(par.Type, v)
			if err != nil {
				return sdk.Spec{}, nil, fmt.Errorf("spec %q: %s of %q: %w", p.Name, f.what, q.Name, err)
			}
			*f.to = c
		}
		s.Params = append(s.Params, par)
	}
	if err := s.Check(); err != nil {
		return sdk.Spec{}, nil, err
	}
	var features []protocol.Feature
	for _, f := range p.Features {
		features = append(features, protocol.Feature(f))
	}
	return s, features, nil
}

// Task is what a plugin is opened for: Name is the pipeline's name, or the
// task's own name when the pipeline runs as several tasks (config.Tasks);
// Index is the task's index in [0, Count), Count how many tasks the
// pipeline runs as (0 is taken as 1).
type Task struct {
	Name         string
	Index, Count int
}

func openRequest(t Task, values map[string]any) (*pb.OpenRequest, error) {
	vals := map[string]any{}
	for k, v := range values {
		if d, ok := v.(time.Duration); ok {
			v = d.String()
		}
		vals[k] = v
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, err
	}
	count := max(t.Count, 1)
	if t.Index < 0 || t.Index >= count || count > math.MaxInt32 {
		return nil, fmt.Errorf("task %d of %d: want 0 <= task < tasks", t.Index, count)
	}
	return &pb.OpenRequest{Pipeline: t.Name, ConfigJson: string(b), HostFeatures: []string{protocol.HostRejections},
		Task: int32(t.Index), Tasks: int32(count)}, nil
}

// Open configures the source for pipeline, run as one task, with validated
// values. A configuration the plugin refuses is a *ConfigError.
func (s *Source) Open(ctx context.Context, pipeline string, values map[string]any) error {
	return s.OpenTask(ctx, Task{Name: pipeline, Count: 1}, values)
}

// OpenTask configures the source for task t of its pipeline with validated
// values (sdk.Config's Pipeline, Task and Tasks). A configuration the plugin
// refuses is a *ConfigError.
func (s *Source) OpenTask(ctx context.Context, t Task, values map[string]any) error {
	req, err := openRequest(t, values)
	if err != nil {
		return wrap(s.name, "open", err)
	}
	_, err = s.client.Open(ctx, req)
	return openErr(s.name, err)
}

func collect(st grpc.ClientStream) (*Data, error) {
	d := &Data{}
	for {
		m := new(rawv1.RawReadReply)
		if err := st.RecvMsg(m); err != nil {
			if err == io.EOF {
				return nil, errors.New("stream ended before the batch's range")
			}
			return nil, err
		}
		if len(m.Chunk) > 0 {
			d.Chunks = append(d.Chunks, m.Chunk)
		}
		if m.Last {
			d.From, d.Until = offsets(m.From), offsets(m.Until)
			d.Records, d.Bytes = m.Records, m.Bytes
			return d, nil
		}
	}
}

func offsets(o *pb.Offsets) sdk.Offsets {
	if o == nil || o.Offsets == nil {
		return sdk.Offsets{}
	}
	return sdk.Offsets(o.Offsets)
}

// Read asks the source for batch's records from from within lim.
func (s *Source) Read(ctx context.Context, batch int64, from sdk.Offsets, lim sdk.Limits) (*Data, error) {
	req := &pb.ReadRequest{Batch: batch, From: &pb.Offsets{Offsets: from}, MaxRecords: int64(lim.MaxRecords), MaxBytes: lim.MaxBytes, MaxWaitNanos: int64(lim.MaxWait)}
	if lim.Stop != nil {
		req.HasStop, req.Stop = true, &pb.Offsets{Offsets: lim.Stop}
	}
	st, err := serverStream(ctx, s.conn, readDesc, pb.Source_Read_FullMethodName, req)
	if err != nil {
		return nil, wrap(s.name, "read", err)
	}
	d, err := collect(st)
	return d, wrap(s.name, "read", err)
}

// Replay asks the source for the records of [from, until) again.
func (s *Source) Replay(ctx context.Context, batch int64, from, until sdk.Offsets) (*Data, error) {
	req := &pb.ReplayRequest{Batch: batch, From: &pb.Offsets{Offsets: from}, Until: &pb.Offsets{Offsets: until}}
	st, err := serverStream(ctx, s.conn, replayDesc, pb.Source_Replay_FullMethodName, req)
	if err != nil {
		return nil, wrap(s.name, "replay", err)
	}
	d, err := collect(st)
	if d != nil {
		d.From, d.Until = from, until
	}
	return d, wrap(s.name, "replay", err)
}

// End asks the source where its data ends now.
func (s *Source) End(ctx context.Context) (sdk.Offsets, error) {
	o, err := s.client.End(ctx, &pb.Empty{})
	if err != nil {
		return nil, wrap(s.name, "end", err)
	}
	return offsets(o), nil
}

// Ack tells the source that batch is committed up to until.
func (s *Source) Ack(ctx context.Context, batch int64, until sdk.Offsets) error {
	_, err := s.client.Ack(ctx, &pb.AckRequest{Batch: batch, Until: &pb.Offsets{Offsets: until}})
	return wrap(s.name, "ack", err)
}

// Close closes the source.
func (s *Source) Close(ctx context.Context) error {
	_, err := s.client.Close(ctx, &pb.Empty{})
	return wrap(s.name, "close", err)
}

// Open configures the sink for pipeline, run as one task, with validated
// values. A configuration the plugin refuses is a *ConfigError.
func (s *Sink) Open(ctx context.Context, pipeline string, values map[string]any) error {
	return s.OpenTask(ctx, Task{Name: pipeline, Count: 1}, values)
}

// OpenTask configures the sink for task t of its pipeline with validated
// values (sdk.Config's Pipeline, Task and Tasks). A configuration the plugin
// refuses is a *ConfigError.
func (s *Sink) OpenTask(ctx context.Context, t Task, values map[string]any) error {
	req, err := openRequest(t, values)
	if err != nil {
		return wrap(s.name, "open", err)
	}
	_, err = s.client.Open(ctx, req)
	return openErr(s.name, err)
}

// Write sends batch to the sink and returns when the sink says it is durable:
// every record but the rejected ones (indexes into the batch's records, in
// range and each at most once, as the host checked). A sink that rejects a
// record the batch does not have broke its contract: a permanent *Error.
// The host-side fault point host.write.partial lives here: it lets k records
// through, then kills the host.
func (s *Sink) Write(ctx context.Context, batch int64, d *Data, replay bool) ([]sdk.Rejection, error) {
	reply := new(pb.WriteReply)
	if err := s.write(ctx, batch, d, replay, reply); err != nil {
		return nil, wrap(s.name, "write", err)
	}
	rejected := rejections(reply.Rejected)
	if err := sdk.CheckRejections(int(d.Records), rejected); err != nil {
		return nil, contractErr(s.name, "write", fmt.Errorf("sink broke the Write contract: batch %d: %w", batch, err))
	}
	return rejected, nil
}

// rejections is rs off the wire.
func rejections(rs []*pb.Rejection) []sdk.Rejection {
	if len(rs) == 0 {
		return nil
	}
	out := make([]sdk.Rejection, len(rs))
	for i, r := range rs {
		out[i] = sdk.Rejection{Index: int(r.Index), Reason: r.Reason}
	}
	return out
}

// contractErr is the permanent *Error of a plugin that answered and broke its
// contract (as the Go sdk reports one itself, with INTERNAL).
func contractErr(plugin, op string, err error) error {
	return &Error{Plugin: plugin, Op: op, Err: status.Error(codes.Internal, err.Error())}
}

// write streams the batch and reads the sink's reply.
func (s *Sink) write(ctx context.Context, batch int64, d *Data, replay bool, reply *pb.WriteReply) error {
	st, err := s.conn.NewStream(ctx, writeDesc, pb.Sink_Write_FullMethodName, dataPath)
	if err != nil {
		return err
	}
	head := &rawv1.RawWriteRequest{Batch: batch, From: &pb.Offsets{Offsets: d.From}, Until: &pb.Offsets{Offsets: d.Until}, Replay: replay, Epoch: d.Epoch}
	if err := st.SendMsg(head); err != nil {
		return closeErr(st, err, reply)
	}
	k, partial := fault.K(fault.HostWritePartial, batch, int(d.Records))
	for _, c := range d.Chunks {
		if partial {
			c, k = cut(c, k)
			_ = st.SendMsg(&rawv1.RawWriteRequest{Chunk: c})
			if k == 0 {
				fault.Fire(fault.HostWritePartial, batch)
			}
			continue
		}
		if err := st.SendMsg(&rawv1.RawWriteRequest{Chunk: c}); err != nil {
			return closeErr(st, err, reply)
		}
	}
	if partial {
		fault.Fire(fault.HostWritePartial, batch)
	}
	return closeErr(st, nil, reply)
}

// cut returns at most k records of an encoded chunk and how many of k are left.
// It decodes the chunk: it only runs when the host.write.partial fault is armed.
func cut(raw []byte, k int) ([]byte, int) {
	var c pb.Chunk
	if err := proto.Unmarshal(raw, &c); err != nil || len(c.Records) <= k {
		return raw, k - len(c.Records)
	}
	c.Records = c.Records[:k]
	out, _ := proto.Marshal(&c)
	return out, 0
}

// closeErr finishes a client stream and reads the server's answer into
// reply: it returns the server's status when a Send failed with io.EOF, or
// the error of the whole call.
func closeErr(st grpc.ClientStream, sendErr error, reply proto.Message) error {
	if sendErr != nil && sendErr != io.EOF {
		return sendErr
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	if err := st.RecvMsg(reply); err != nil {
		return err
	}
	return nil
}

// LastCommitted asks a transactional sink which batch it committed last.
func (s *Sink) LastCommitted(ctx context.Context) (sdk.Committed, error) {
	r, err := s.client.LastCommitted(ctx, &pb.Empty{})
	if err != nil {
		return sdk.Committed{}, wrap(s.name, "last committed", err)
	}
	c := sdk.Committed{Batch: r.Batch, Until: offsets(r.Until)}
	for _, x := range r.Rejected {
		c.Rejected = append(c.Rejected, sdk.Rejection{Index: int(x.Index), Reason: x.Reason})
	}
	return c, nil
}

// List asks the sink for the value of every record it holds (conformance).
func (s *Sink) List(ctx context.Context) ([][]byte, error) {
	st, err := s.client.List(ctx, &pb.Empty{})
	if err != nil {
		return nil, wrap(s.name, "list", err)
	}
	var out [][]byte
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, wrap(s.name, "list", err)
		}
		out = append(out, m.Values...)
	}
}

// Close closes the sink.
func (s *Sink) Close(ctx context.Context) error {
	_, err := s.client.Close(ctx, &pb.Empty{})
	return wrap(s.name, "close", err)
}
