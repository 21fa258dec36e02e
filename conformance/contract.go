package conformance

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/pipeline"
	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/internal/protocol"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/sdk"
	"google.golang.org/protobuf/proto"
)

// The contract checks, run without crashes in a child process (they start
// the plugins through host/plugin exactly as the host does).

// checked is what a contract child prints.
type checked struct {
	Pass       bool   `json:"pass"`
	Lost       int    `json:"lost"`
	Duplicated int    `json:"duplicated"`
	Error      string `json:"error,omitempty"`
	Detail     string `json:"detail,omitempty"`
}

// contractChild runs the check named by capability against the pipeline's
// plugins. The pipeline's input must already be in place.
func contractChild(ctx context.Context, capability string, p *config.Pipeline, l *plugin.Loader) checked {
	c := &contract{p: p, l: l}
	var err error
	switch sdk.Capability(capability) {
	case sdk.CapReplayable:
		err = c.replay(ctx)
	case sdk.CapIdempotent:
		err = c.idempotent(ctx)
	case sdk.CapTransactional:
		err = c.transactional(ctx)
	case sdk.CapDeterministic:
		err = c.deterministic(ctx)
	default:
		err = fmt.Errorf("no contract check for %q", capability)
	}
	out := checked{Pass: err == nil, Lost: c.lost, Duplicated: c.dup, Detail: strings.Join(c.steps, "; ")}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

type contract struct {
	p        *config.Pipeline
	l        *plugin.Loader
	steps    []string
	lost     int
	dup      int
	procs    []*plugin.Process
	src, snk *plugin.Process
}

func (c *contract) step(format string, args ...any) {
	c.steps = append(c.steps, fmt.Sprintf(format, args...))
}

func (c *contract) close(ctx context.Context) {
	for _, p := range c.procs {
		stop(ctx, p)
	}
}

// start starts and opens the pipeline's source or sink.
func (c *contract) start(ctx context.Context, kind sdk.Kind) error {
	p, err := open(ctx, c.l, c.p, kind)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	if kind == sdk.KindSource {
		c.src = p
	} else {
		c.snk = p
	}
	return nil
}

// restart kills a plugin process, as a crash would, and starts it again.
func (c *contract) restart(ctx context.Context, proc *plugin.Process) error {
	proc.Kill()
	if proc == c.src {
		return c.start(ctx, sdk.KindSource)
	}
	return c.start(ctx, sdk.KindSink)
}

// readTwo reads the first two batches of the pipeline's source, as the host
// would plan them.
func (c *contract) readTwo(ctx context.Context) (*plugin.Data, *plugin.Data, error) {
	lim := sdk.Limits{MaxRecords: c.p.Batch.MaxRecords, MaxBytes: c.p.Batch.MaxBytes, MaxWait: time.Second}
	if c.src.Has(protocol.FeatureEnder) {
		end, err := c.src.Source.End(ctx)
		if err != nil {
			return nil, nil, err
		}
		lim.Stop = end
	}
	read := func(id int64, from sdk.Offsets) (*plugin.Data, error) {
		d, err := c.src.Source.Read(ctx, id, from, lim)
		if err != nil {
			return nil, err
		}
		d.From, d.Until = from.Merge(d.From), from.Merge(d.Until)
		return d, nil
	}
	d1, err := read(1, sdk.Offsets{})
	if err != nil {
		return nil, nil, err
	}
	d2, err := read(2, d1.Until)
	if err != nil {
		return nil, nil, err
	}
	if d1.Records == 0 || d2.Records == 0 {
		return nil, nil, fmt.Errorf("the source returned %d and %d records for its first two batches; the check needs two full batches of input", d1.Records, d2.Records)
	}
	c.step("read batch 1 (%d records, %s → %s) and batch 2 (%d records)", d1.Records, d1.From, d1.Until, d2.Records)
	return d1, d2, nil
}

// sinkWithInput starts the source and reads two batches from it, then
// starts the sink they are for.
func (c *contract) sinkWithInput(ctx context.Context) (*plugin.Data, *plugin.Data, error) {
	if err := c.start(ctx, sdk.KindSource); err != nil {
		return nil, nil, err
	}
	d1, d2, err := c.readTwo(ctx)
	if err == nil {
		err = c.start(ctx, sdk.KindSink)
	}
	return d1, d2, err
}

// rec is a record as it travels, with its partition resolved.
type rec struct {
	pos     sdk.Position
	key     []byte
	value   []byte
	ts      int64
	headers []*pb.Header
}

// records decodes the chunks of a batch.
func records(d *plugin.Data) ([]rec, error) {
	var out []rec
	for i, raw := range d.Chunks {
		ch := &pb.Chunk{}
		if err := proto.Unmarshal(raw, ch); err != nil {
			return nil, fmt.Errorf("chunk %d of the batch does not decode: %w", i, err)
		}
		for _, m := range ch.Records {
			r := rec{key: m.Key, value: m.Value, ts: m.TimestampUnixNano, headers: m.Headers}
			if int(m.Partition) < len(ch.Partitions) {
				r.pos = sdk.Position{Partition: ch.Partitions[m.Partition], Offset: m.Offset}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// both decodes two batches into one list.
func both(d1, d2 *plugin.Data) ([]rec, error) {
	r1, err := records(d1)
	if err != nil {
		return nil, err
	}
	r2, err := records(d2)
	return append(r1, r2...), err
}

func values(rs []rec) [][]byte {
	out := make([][]byte, len(rs))
	for i := range rs {
		out[i] = rs[i].value
	}
	return out
}

func ids(vals [][]byte) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = ID(v)
	}
	return out
}

// same describes the first difference between what a read returned and
// what its replay returned, or returns "".
func same(read, replay []rec) string {
	for i := 0; i < len(read) && i < len(replay); i++ {
		a, b := read[i], replay[i]
		var what string
		switch {
		case a.pos != b.pos:
			what = fmt.Sprintf("position %s, the read had %s", b.pos, a.pos)
		case !bytes.Equal(a.value, b.value):
			what = fmt.Sprintf("value %.60q, the read had %.60q", b.value, a.value)
		case !bytes.Equal(a.key, b.key):
			what = fmt.Sprintf("key %q, the read had %q", b.key, a.key)
		case a.ts != b.ts:
			what = fmt.Sprintf("timestamp %d, the read had %d", b.ts, a.ts)
		case !sameHeaders(a.headers, b.headers):
			what = "other headers than the read"
		}
		if what != "" {
			return fmt.Sprintf("record %d (%s) has %s", i, a.pos, what)
		}
	}
	if len(read) != len(replay) {
		return fmt.Sprintf("%d records, the read had %d", len(replay), len(read))
	}
	return ""
}

func sameHeaders(a, b []*pb.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// replay checks that a replayed range returns the same records in the same
// order as the read that first returned it: in the same process, and after
// an Ack of the batch before and a restart of the source, as after a crash.
func (c *contract) replay(ctx context.Context) error {
	defer c.close(ctx)
	if err := c.start(ctx, sdk.KindSource); err != nil {
		return err
	}
	d1, d2, err := c.readTwo(ctx)
	if err != nil {
		return err
	}
	check := func(id int64, d *plugin.Data, when string) error {
		f, u := pipeline.Moving(d.From, d.Until)
		r, err := c.src.Source.Replay(ctx, id, f, u)
		if err != nil {
			return fmt.Errorf("replay of batch %d %s: %w", id, when, err)
		}
		want, err := records(d)
		if err != nil {
			return err
		}
		got, err := records(r)
		if err != nil {
			return fmt.Errorf("replay of batch %d %s: %w", id, when, err)
		}
		lost, dup, _ := Tally(ids(values(want)), Count(values(got)))
		c.lost, c.dup = max(c.lost, lost), max(c.dup, dup)
		if diff := same(want, got); diff != "" {
			return fmt.Errorf("replay of batch %d %s differs from its read: %s", id, when, diff)
		}
		c.step("replayed batch %d %s: same %d records", id, when, len(got))
		return nil
	}
	if err := check(2, d2, "in the same process"); err != nil {
		return err
	}
	if err := check(1, d1, "in the same process"); err != nil {
		return err
	}
	if err := c.src.Source.Ack(ctx, 1, d1.Until); err != nil {
		return fmt.Errorf("ack of batch 1: %w", err)
	}
	if err := c.restart(ctx, c.src); err != nil {
		return err
	}
	return check(2, d2, "after the ack of batch 1 and a restart of the source")
}

// listIDs reads back the sink and compares it with the records written.
func (c *contract) listIDs(ctx context.Context, written []rec, when string) (map[string]int, error) {
	vals, err := list(ctx, c.snk, c.p)
	if err != nil {
		return nil, err
	}
	seen := Count(vals)
	lost, dup, unexpected := Tally(ids(values(written)), seen)
	c.lost, c.dup = max(c.lost, lost), max(c.dup, dup)
	switch {
	case lost > 0 || dup > 0:
		return seen, fmt.Errorf("%s, the sink holds %d records: %d of the %d written are missing, %d duplicated", when, len(vals), lost, len(written), dup)
	case len(unexpected) > 0:
		return seen, fmt.Errorf("%s, the sink holds %d records that were never written, such as %q", when, len(unexpected), unexpected[0])
	}
	c.step("%s: the sink holds the %d records written", when, len(vals))
	return seen, nil
}

// idempotent checks that writing a batch again, in the same process and
// after a restart of the sink, changes nothing the sink holds; and that
// what Write acknowledged is there to read back.
func (c *contract) idempotent(ctx context.Context) error {
	defer c.close(ctx)
	d1, d2, err := c.sinkWithInput(ctx)
	if err != nil {
		return err
	}
	written, err := both(d1, d2)
	if err != nil {
		return err
	}
	for i, d := range []*plugin.Data{d1, d2} {
		if _, err := c.snk.Sink.Write(ctx, int64(i+1), d, false); err != nil {
			return fmt.Errorf("write of batch %d: %w", i+1, err)
		}
	}
	if _, err := c.listIDs(ctx, written, "after writing batches 1 and 2"); err != nil {
		return err
	}
	if _, err := c.snk.Sink.Write(ctx, 1, d1, true); err != nil {
		return fmt.Errorf("second write of batch 1: %w", err)
	}
	if _, err := c.listIDs(ctx, written, "after writing batch 1 again"); err != nil {
		return err
	}
	if err := c.restart(ctx, c.snk); err != nil {
		return err
	}
	if _, err := c.snk.Sink.Write(ctx, 2, d2, true); err != nil {
		return fmt.Errorf("write of batch 2 again after a restart: %w", err)
	}
	_, err = c.listIDs(ctx, written, "after a restart of the sink and writing batch 2 again")
	return err
}

// transactional checks that the sink reports the batch it committed last
// with the until offsets Write received, also after a restart.
func (c *contract) transactional(ctx context.Context) error {
	defer c.close(ctx)
	d1, d2, err := c.sinkWithInput(ctx)
	if err != nil {
		return err
	}
	if !c.snk.Has(protocol.FeatureTransactional) {
		return fmt.Errorf("sink %q claims %q but does not implement sdk.Transactional", c.p.Sink.Name, sdk.CapTransactional)
	}
	expect := func(want sdk.Committed, when string) error {
		got, err := c.snk.Sink.LastCommitted(ctx)
		if err != nil {
			return fmt.Errorf("LastCommitted %s: %w", when, err)
		}
		if got.Batch != want.Batch || (want.Batch != 0 && !got.Until.Equal(want.Until)) {
			return fmt.Errorf("LastCommitted %s is batch %d until %s; want batch %d until %s", when, got.Batch, got.Until, want.Batch, want.Until)
		}
		c.step("LastCommitted %s: batch %d", when, got.Batch)
		return nil
	}
	if err := expect(sdk.Committed{}, "on a fresh sink"); err != nil {
		return err
	}
	for i, d := range []*plugin.Data{d1, d2} {
		id := int64(i + 1)
		if _, err := c.snk.Sink.Write(ctx, id, d, false); err != nil {
			return fmt.Errorf("write of batch %d: %w", id, err)
		}
		if err := expect(sdk.Committed{Batch: id, Until: d.Until}, fmt.Sprintf("after writing batch %d", id)); err != nil {
			return err
		}
	}
	if err := c.restart(ctx, c.snk); err != nil {
		return err
	}
	if err := expect(sdk.Committed{Batch: 2, Until: d2.Until}, "after a restart of the sink"); err != nil {
		return err
	}
	written, err := both(d1, d2)
	if err != nil {
		return err
	}
	_, err = c.listIDs(ctx, written, "after writing batches 1 and 2")
	return err
}

// deterministic checks that the chain's last processor (the processor under
// test) turns a batch into the same records and rejections every time: the
// records the source's first batch becomes through the transforms before it
// are processed as batch 1, the second as batch 2, batch 1 again as a
// replay (its output must equal the first), then again as a replay after a
// restart of the process, as after a crash.
func (c *contract) deterministic(ctx context.Context) error {
	defer c.close(ctx)
	procs := c.p.Processors()
	if len(procs) == 0 {
		return fmt.Errorf("the pipeline has no processor to check")
	}
	under := procs[len(procs)-1]
	if err := c.start(ctx, sdk.KindSource); err != nil {
		return err
	}
	d1, d2, err := c.readTwo(ctx)
	if err != nil {
		return err
	}
	// The records as the processor under test gets them: the transforms
	// before it applied once.
	input := func(id int64, d *plugin.Data) ([]sdk.Record, error) {
		recs, err := sdk.DecodeChunks(nil, d.Chunks)
		if err != nil {
			return nil, err
		}
		for i, t := range c.p.Transforms[:len(c.p.Transforms)-1] {
			if t.Step != nil {
				recs, _ = t.Step.Apply(recs)
				continue
			}
			pr, err := startProcessor(ctx, c.l, c.p, t.Plugin)
			if err != nil {
				return nil, err
			}
			c.procs = append(c.procs, pr)
			out, _, err := pr.Processor.Process(ctx, id, recs, false)
			stop(ctx, pr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.Stage(i+1), err)
			}
			recs = out
		}
		return recs, nil
	}
	in1, err := input(1, d1)
	if err != nil {
		return err
	}
	in2, err := input(2, d2)
	if err != nil {
		return err
	}
	proc, err := startProcessor(ctx, c.l, c.p, under)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, proc)
	type result struct {
		out []sdk.Record
		rej []sdk.Rejection
	}
	process := func(id int64, recs []sdk.Record, replay bool, when string) (result, error) {
		out, rej, err := proc.Processor.Process(ctx, id, recs, replay)
		if err != nil {
			return result{}, fmt.Errorf("processing batch %d %s: %w", id, when, err)
		}
		return result{out, rej}, nil
	}
	first, err := process(1, in1, false, "")
	if err != nil {
		return err
	}
	c.step("processed batch 1: %d records in, %d out, %d rejected", len(in1), len(first.out), len(first.rej))
	if len(first.out)+len(first.rej) == 0 {
		return fmt.Errorf("processor %q turned batch 1's %d records into nothing (no record, no rejection): the check needs a batch the processor keeps something of", under.Name, len(in1))
	}
	if _, err := process(2, in2, false, ""); err != nil {
		return err
	}
	check := func(when string) error {
		again, err := process(1, in1, true, when)
		if err != nil {
			return err
		}
		if diff := sameOutput(first.out, first.rej, again.out, again.rej); diff != "" {
			return fmt.Errorf("processor %q declares %q, but batch 1 processed again %s differs from its first processing: %s", under.Name, sdk.CapDeterministic, when, diff)
		}
		c.step("processed batch 1 again %s: the same %d records and %d rejections", when, len(again.out), len(again.rej))
		return nil
	}
	if err := check("after batch 2, in the same process"); err != nil {
		return err
	}
	proc.Kill()
	if proc, err = startProcessor(ctx, c.l, c.p, under); err != nil {
		return err
	}
	c.procs = append(c.procs, proc)
	return check("after a restart of the process")
}

// sameOutput describes the first difference between two outputs of a
// processor for one batch, or returns "".
func sameOutput(out1 []sdk.Record, rej1 []sdk.Rejection, out2 []sdk.Record, rej2 []sdk.Rejection) string {
	for i := 0; i < len(out1) && i < len(out2); i++ {
		a, b := out1[i], out2[i]
		var what string
		switch {
		case a.Position != b.Position:
			what = fmt.Sprintf("position %s, first %s", b.Position, a.Position)
		case !bytes.Equal(a.Value, b.Value):
			what = fmt.Sprintf("value %.80q, first %.80q", b.Value, a.Value)
		case !bytes.Equal(a.Key, b.Key):
			what = fmt.Sprintf("key %q, first %q", b.Key, a.Key)
		case !a.Timestamp.Equal(b.Timestamp):
			what = fmt.Sprintf("timestamp %s, first %s", b.Timestamp, a.Timestamp)
		case !sameSDKHeaders(a.Headers, b.Headers):
			what = "other headers than the first time"
		}
		if what != "" {
			return fmt.Sprintf("record %d (%s) has %s", i, a.Position, what)
		}
	}
	if len(out1) != len(out2) {
		return fmt.Sprintf("%d records, the first time %d", len(out2), len(out1))
	}
	for i := 0; i < len(rej1) && i < len(rej2); i++ {
		if rej1[i] != rej2[i] {
			return fmt.Sprintf("rejection %d is of record %d (%q), the first time of record %d (%q)", i, rej2[i].Index, rej2[i].Reason, rej1[i].Index, rej1[i].Reason)
		}
	}
	if len(rej1) != len(rej2) {
		return fmt.Sprintf("%d rejections, the first time %d", len(rej2), len(rej1))
	}
	return ""
}

func sameSDKHeaders(a, b []sdk.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}
