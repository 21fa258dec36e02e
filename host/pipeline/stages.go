package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/host/transform"
	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/protocol"
	"github.com/connectd/connectd/sdk"
)

// The headers a dead letter carries besides the record's own.
const (
	// HeaderError is why the record was rejected.
	HeaderError = "connectd.error"
	// HeaderStage is the stage that rejected it: `transform 2 "set"`,
	// `sink "elasticsearch"`.
	HeaderStage = "connectd.stage"
	// HeaderPosition is the record's source position, "partition@offset"
	// (sdk.Position.String).
	HeaderPosition = "connectd.position"
)

// letter is a rejected record: as the stage that rejected it received it.
type letter struct {
	rec           sdk.Record
	stage, reason string
}

// outcome is what one batch's records became on their way to the sink.
type outcome struct {
	data    *plugin.Data // what the sink gets
	recs    []sdk.Record // data's records, decoded; nil without transforms
	letters []letter     // rejected by a transform or by the sink
	written int64        // records the sink kept
}

// shape runs the batch's records through the pipeline's transforms, in
// order. Without transforms the source's chunks go to the sink as they are,
// never decoded. With them, the host decodes the records once, runs every
// built-in and processor over them, and encodes what is left for the sink.
// A record a stage rejects goes no further; with on_record_error = "fail"
// the batch fails before anything is written.
//
// Consecutive built-ins run on several goroutines at once, each over its
// own contiguous part of the records with its own Steps (see workers); their
// outputs and rejections are put back together in record order, so the
// result is the one a single goroutine would give, whatever the number of
// workers (a replay on another machine gives the same records).
func (d *driver) shape(ctx context.Context, id int64, data *plugin.Data, replay bool, steps [][]transform.Step) (*outcome, error) {
	if len(d.p.Transforms) == 0 {
		return &outcome{data: data}, nil
	}
	recs, err := sdk.DecodeChunks(nil, data.Chunks)
	if err != nil {
		return nil, d.errorf("batch %d: decoding the source's records for the transforms: %w", id, err)
	}
	o := &outcome{}
	proc := 0
	for i := 0; i < len(d.p.Transforms); {
		t := d.p.Transforms[i]
		if t.Step == nil {
			stage := t.Stage(i + 1)
			p := d.procs[proc]
			proc++
			var out []sdk.Record
			var rejected []sdk.Rejection
			err := d.within(ctx, p, name(d.p.Processors()[proc-1]), config.PhaseProcess, id, func(ctx context.Context) (err error) {
				out, rejected, err = p.Processor.Process(ctx, id, recs, replay)
				return err
			})
			if err != nil {
				return nil, err
			}
			for _, r := range rejected {
				o.letters = append(o.letters, letter{rec: recs[r.Index], stage: stage, reason: r.Reason})
			}
			recs = out
			i++
		} else {
			j := i + 1
			for j < len(d.p.Transforms) && d.p.Transforms[j].Step != nil {
				j++
			}
			if recs, err = d.builtins(steps, i, j, recs, o); err != nil {
				return nil, err
			}
			i = j
		}
		if err := d.refuse(id, o.letters); err != nil {
			return nil, err
		}
	}
	chunks, size, err := d.encode(steps, recs)
	if err != nil {
		return nil, d.errorf("batch %d: encoding the transformed records: %w", id, err)
	}
	o.data = &plugin.Data{Chunks: chunks, From: data.From, Until: data.Until, Records: int64(len(recs)), Bytes: size}
	o.recs = recs
	return o, nil
}

// minPart is the fewest records a worker gets: below it, handing a part to
// another goroutine costs more than it saves.
const minPart = 1024

// parts splits n records into at most len(d.workers()) contiguous parts of
// at least minPart records (one part for a small batch): the bounds of part
// k are parts[k], parts[k+1].
func (d *driver) parts(steps [][]transform.Step, n int) []int {
	w := min(len(steps), max(1, n/minPart))
	bounds := make([]int, w+1)
	for k := range bounds {
		bounds[k] = n * k / w
	}
	return bounds
}

// workers returns one set of Steps per goroutine that runs built-ins:
// workers()[w][i] is worker w's own Step of transform i (nil for a
// processor). Made once per run, up to GOMAXPROCS sets.
func (d *driver) workers() [][]transform.Step {
	if d.steps == nil {
		d.steps = d.newWorkers(true)
	}
	return d.steps
}

// aheadWorkers is workers for the read ahead's goroutine, which transforms
// the next batch while the current one is written: Steps of its own.
func (d *driver) aheadWorkers() [][]transform.Step {
	if d.aheadSteps == nil {
		d.aheadSteps = d.newWorkers(false)
	}
	return d.aheadSteps
}

// newWorkers compiles up to GOMAXPROCS sets of the built-ins' Steps; first
// says whether the first set may be the pipeline's own compiled Steps.
func (d *driver) newWorkers(first bool) [][]transform.Step {
	var sets [][]transform.Step
	n := max(1, min(runtime.GOMAXPROCS(0), maxWorkers))
	for w := 0; w < n; w++ {
		steps := make([]transform.Step, len(d.p.Transforms))
		for i, t := range d.p.Transforms {
			if t.Step == nil {
				continue
			}
			if w == 0 && first {
				steps[i] = t.Step
				continue
			}
			s, err := t.NewStep()
			if err != nil { // compiled once already: cannot happen
				d.Log.Warn("transforms run on fewer goroutines", "pipeline", d.p.Name, "error", err.Error())
				if len(sets) == 0 {
					return [][]transform.Step{d.workers()[0]}
				}
				return sets
			}
			steps[i] = s
		}
		sets = append(sets, steps)
	}
	return sets
}

// maxWorkers bounds the goroutines that run built-ins for one pipeline.
const maxWorkers = 8

// builtins runs transforms [i, j), all built-ins, over recs: each worker
// takes a contiguous part. It returns what the last one let through, in
// order, and adds the rejected records to o.letters, stage by stage and in
// record order within a stage.
func (d *driver) builtins(steps [][]transform.Step, i, j int, recs []sdk.Record, o *outcome) ([]sdk.Record, error) {
	bounds := d.parts(steps, len(recs))
	w := len(bounds) - 1
	outs := make([][]sdk.Record, w)
	letters := make([][][]letter, w) // [worker][stage - i]
	run := func(k int) {
		part := recs[bounds[k]:bounds[k+1]]
		letters[k] = make([][]letter, j-i)
		for s := i; s < j; s++ {
			out, rejected := steps[k][s].Apply(part)
			for _, r := range rejected {
				letters[k][s-i] = append(letters[k][s-i], letter{rec: part[r.Index], stage: d.p.Transforms[s].Stage(s + 1), reason: r.Reason})
			}
			part = out
		}
		outs[k] = part
	}
	if w == 1 {
		run(0)
	} else {
		var wg sync.WaitGroup
		for k := 0; k < w; k++ {
			wg.Add(1)
			go func() { defer wg.Done(); run(k) }()
		}
		wg.Wait()
	}
	for s := 0; s < j-i; s++ {
		for k := 0; k < w; k++ {
			o.letters = append(o.letters, letters[k][s]...)
		}
	}
	if w == 1 {
		return outs[0], nil
	}
	n := 0
	for _, out := range outs {
		n += len(out)
	}
	all := make([]sdk.Record, 0, n)
	for _, out := range outs {
		all = append(all, out...)
	}
	return all, nil
}

// encode encodes recs into chunks, each worker a contiguous part; the
// chunks are in record order.
func (d *driver) encode(steps [][]transform.Step, recs []sdk.Record) ([][]byte, int64, error) {
	bounds := d.parts(steps, len(recs))
	w := len(bounds) - 1
	if w == 1 {
		return sdk.EncodeChunks(recs)
	}
	chunks := make([][][]byte, w)
	sizes := make([]int64, w)
	errs := make([]error, w)
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunks[k], sizes[k], errs[k] = sdk.EncodeChunks(recs[bounds[k]:bounds[k+1]])
		}()
	}
	wg.Wait()
	var all [][]byte
	var size int64
	for k := 0; k < w; k++ {
		if errs[k] != nil {
			return nil, 0, errs[k]
		}
		all = append(all, chunks[k]...)
		size += sizes[k]
	}
	return all, size, nil
}

// sinkRejected adds the records the sink rejected to o's letters. The sink
// rejected them by index into what it was sent: the transformed records, or
// without transforms the source's chunks, decoded only for a batch with
// rejections.
func (d *driver) sinkRejected(id int64, o *outcome, rejected []sdk.Rejection) error {
	o.written = o.data.Records - int64(len(rejected))
	if len(rejected) == 0 {
		return nil
	}
	sent := o.recs
	if sent == nil {
		var err error
		if sent, err = sdk.DecodeChunks(nil, o.data.Chunks); err != nil {
			return d.errorf("batch %d: decoding the records the sink rejected: %w", id, err)
		}
	}
	stage := fmt.Sprintf("sink %q", d.p.Sink.Name)
	for _, r := range rejected {
		if r.Index < 0 || r.Index >= len(sent) {
			return d.errorf("batch %d: sink %q broke the Write contract: it rejected record %d of %d", id, d.p.Sink.Name, r.Index, len(sent))
		}
		o.letters = append(o.letters, letter{rec: sent[r.Index], stage: stage, reason: r.Reason})
	}
	return d.refuse(id, o.letters)
}

// refuse fails the batch for its first rejected record when the pipeline's
// on_record_error is "fail". The error is not retried: the same batch would
// be rejected the same way.
func (d *driver) refuse(id int64, letters []letter) error {
	if len(letters) == 0 || d.p.OnRecordError != config.OnErrorFail {
		return nil
	}
	l := letters[0]
	more := ""
	if len(letters) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(letters)-1)
	}
	return d.errorf("batch %d: record %s rejected by %s: %s%s; on_record_error = %q stops the pipeline before the batch commits: fix the cause, or set on_record_error = %q or %q", id, l.rec.Position, l.stage, l.reason, more, config.OnErrorFail, config.OnErrorSkip, config.OnErrorDeadLetter)
}

// deadLetters writes the batch's rejected records to the dead-letter sink
// as batch id (same id, same range, same replay flag as the batch), before
// the batch commits, so a crash at any point writes them again on replay
// and the dead-letter sink's idempotence keeps them once. With
// on_record_error = "skip" they are only logged.
func (d *driver) deadLetters(ctx context.Context, id int64, data *plugin.Data, o *outcome, replay bool) error {
	if len(o.letters) == 0 {
		return nil
	}
	if d.p.OnRecordError == config.OnErrorSkip {
		l := o.letters[0]
		d.Log.Warn("records rejected and skipped", "pipeline", d.p.Name, "batch", id, "records", len(o.letters), "first", l.rec.Position.String(), "stage", l.stage, "reason", l.reason)
		return nil
	}
	recs := make([]sdk.Record, len(o.letters))
	for i, l := range o.letters {
		r := l.rec
		h := make([]sdk.Header, 0, len(r.Headers)+3)
		h = append(h, r.Headers...)
		h = append(h,
			sdk.Header{Key: HeaderError, Value: []byte(l.reason)},
			sdk.Header{Key: HeaderStage, Value: []byte(l.stage)},
			sdk.Header{Key: HeaderPosition, Value: []byte(r.Position.String())})
		r.Headers = h
		recs[i] = r
	}
	chunks, size, err := sdk.EncodeChunks(recs)
	if err != nil {
		return d.errorf("batch %d: encoding dead letters: %w", id, err)
	}
	dl := &plugin.Data{Chunks: chunks, From: data.From, Until: data.Until, Records: int64(len(recs)), Bytes: size, Epoch: d.Epoch}
	var rejected []sdk.Rejection
	err = d.within(ctx, d.dlq, name(d.p.DeadLetter), config.PhaseWrite, id, func(ctx context.Context) (err error) {
		rejected, err = d.dlq.Sink.Write(ctx, id, dl, replay)
		return err
	})
	if err != nil {
		return err
	}
	if len(rejected) > 0 {
		return d.errorf("batch %d: the dead-letter sink %q rejected %d of the %d dead letters (first: %s); nothing else can take them: the batch does not commit", id, d.p.DeadLetter.Name, len(rejected), len(recs), rejected[0].Reason)
	}
	return nil
}

// committedRejections acts on the records a transactional sink rejected in
// batch planned, which it committed before the host could: the host died
// between the sink's commit and its own, maybe before the batch's dead
// letters were written, or the batch failed on them (on_record_error =
// "fail"). The host replays the batch from the source and runs it through
// the transforms again (both are deterministic under exactly-once), picks
// the rejected records by index, and fails or writes them to the dead-letter
// sink as the batch would have; the sink is not written again.
func (d *driver) committedRejections(ctx context.Context, planned checkpoint.Entry, rejected []sdk.Rejection) error {
	if len(rejected) == 0 {
		return nil
	}
	id := planned.Batch
	if d.p.OnRecordError == config.OnErrorSkip {
		d.Log.Warn("records rejected and skipped", "pipeline", d.p.Name, "batch", id, "records", len(rejected), "reason", rejected[0].Reason)
		return nil
	}
	if !d.src.Has(protocol.FeatureReplayer) {
		return d.errorf("batch %d: sink %q committed it with %d rejected records (first: %s), but source %q cannot replay the batch to find them: they are not in the dead-letter sink; the pipeline stops so that this is seen", id, d.p.Sink.Name, len(rejected), rejected[0].Reason, d.p.Source.Name)
	}
	data, err := d.replay(ctx, planned)
	if err != nil {
		return err
	}
	o, err := d.shape(ctx, id, data, true, d.workers())
	if err != nil {
		return err
	}
	if err := d.sinkRejected(id, o, rejected); err != nil {
		return err
	}
	d.Log.Info("the transactional sink committed the batch with rejected records; handling them before the checkpoint follows", "pipeline", d.p.Name, "batch", id, "rejected", len(rejected))
	fault.Hit(fault.HostDeadLetter, id)
	return d.deadLetters(ctx, id, data, o, true)
}
