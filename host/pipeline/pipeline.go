// Package pipeline is the driver: it runs one pipeline's PLAN / WRITE / COMMIT
// / ACK loop between a source and a sink plugin process, keeps the delivery
// guarantee the pipeline was configured with across crashes of any process,
// and recovers on start by replaying the last uncommitted batch exactly.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/host/transform"
	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/protocol"
	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Options configure Run.
type Options struct {
	Pipeline *config.Pipeline
	Loader   *plugin.Loader
	// Drain processes what the source holds when the run starts, then returns.
	Drain    bool
	Progress Progress
	Log      *slog.Logger
	// Grace bounds how long a stop waits for the batch in flight to finish;
	// after it the batch is abandoned (it is replayed at the next start).
	Grace time.Duration
	// Restarts is how many times in a row a failing plugin is restarted (with
	// exponential backoff) before the run fails; 0 means the pipeline's
	// restart policy (config.Restart.Attempts, default 5).
	Restarts int
	// Heartbeat is how long a pipeline may go without finishing a batch
	// before it says so (state and committed offsets, through the Progress
	// if it is a Heartbeater, else the log), and again after each such
	// interval. 0 means 30s; a negative value turns heartbeats off.
	Heartbeat time.Duration
	// Checkpoint opens the pipeline's checkpoint. nil opens directory stores
	// only (the store of PostgreSQL tables is linked by the connectd binary,
	// which passes an Opener for both; the conformance suite's hosts, whose
	// pipelines use directories, do without it).
	Checkpoint Opener
	// Control, when not nil, receives the run's state once per batch and
	// holds the operator's pause, resume and restart requests (control.go).
	Control *Control
	// Epoch is the lease epoch under which the host runs the pipeline
	// (connectd worker, package cluster), sent with every batch to the sinks
	// (sdk.Batch.Epoch) so that a transactional sink can fence a host that
	// lost its lease; 0 when the host holds no lease. The checkpoint's
	// fencing is the Opener's (pgstore.OpenFenced).
	Epoch int64
}

// ConfigError ends a run whose plugin refused its configuration when it
// opened (a *plugin.ConfigError): a problem of the pipeline file that only
// the plugin could see, such as a rule between two of its parameters. The
// user must change the file; connectd exits with status 2 for it.
type ConfigError struct {
	Range hcl.Range // the plugin's block in the pipeline file
	Err   error     // `pipeline "demo": sink "file": <the plugin's message>`
}

// Error returns "file:line:column: " followed by Err.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %v", e.Range.Filename, e.Range.Start.Line, e.Range.Start.Column, e.Err)
}

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// errStopped ends a run stopped through its context: Run returns nil for it,
// or an *Interrupted in drain mode.
var errStopped = errors.New("stopped")

// Interrupted ends a drain stopped through its context before it processed
// what the source held at start: a script must be able to tell it from a
// finished drain (connectd exits with status 130 for it). What was committed
// stays committed; running the drain again finishes it.
type Interrupted struct {
	Pipeline  string
	Committed sdk.Offsets // where the pipeline continues
	// End is the source's end at the run's start (sdk.Ender); nil when the
	// source cannot tell where its data ends.
	End sdk.Offsets
	// Left is how far Committed is from End, summed over the partitions of
	// End (a partition without a committed offset counts from 0); -1 when End
	// is nil.
	Left int64
}

// Error says the drain did not finish and what is left.
func (e *Interrupted) Error() string {
	if e.End == nil {
		return fmt.Sprintf("pipeline %q: interrupted before the drain finished (the source cannot tell how much is left); committed %s; run again to finish", e.Pipeline, e.Committed)
	}
	return fmt.Sprintf("pipeline %q: interrupted before the drain finished: %d records left by offsets (committed %s, the drain's end %s); run again to finish", e.Pipeline, e.Left, e.Committed, e.End)
}

// left sums, over the partitions of end, how far committed is from it; a
// partition without a real committed offset counts from 0.
func left(committed, end sdk.Offsets) int64 {
	var n int64
	for p, e := range end {
		if e < 0 {
			continue
		}
		c := committed[p]
		if c < 0 {
			c = 0
		}
		n += max(0, e-c)
	}
	return n
}

type driver struct {
	Options
	p        *config.Pipeline
	cp       *checkpoint.Store
	src, snk *plugin.Process
	// procs are the processor plugins of the pipeline's transforms, in
	// order (config.Pipeline.Processors); dlq is the dead-letter sink, nil
	// when the pipeline has none.
	procs []*plugin.Process
	dlq   *plugin.Process
	// steps are the built-in transforms' Steps per worker goroutine (see
	// workers in stages.go); nil until the first batch with transforms.
	steps [][]transform.Step
	// aheadSteps are the read ahead's own (see aheadWorkers).
	aheadSteps [][]transform.Step
	tx         bool // the sink is transactional and its answer drives recovery
	stop       sdk.Offsets
	batches    int64
	records    int64
	started    bool
	// begin is the committed offsets at the run's start, for a drain's
	// progress (see drainProgress); runStart is when the run started.
	begin    sdk.Offsets
	runStart time.Time
	// state is what the pipeline does now, for heartbeats; quietSince is
	// when the last batch finished or the last heartbeat was shown (unix ns).
	state      atomic.Value // State
	quietSince atomic.Int64
	lastBatch  atomic.Int64 // when the last batch finished (unix ns); 0 before the first
	// ahead is the read of the next batch, running while the current one is
	// written and committed (see readAhead); nil when none runs.
	ahead *ahead
	// lagAt is when between last asked the source for its end; lagFailed,
	// that the source could not tell it (logged once).
	lagAt     time.Time
	lagFailed bool
}

// ahead is a Read of batch id from the offsets the current batch ends at,
// started before the current batch is committed. A read has no effect until
// its batch is planned, so a read ahead that is never used (a crash, a stop, a
// failed write) changes nothing: the batch is read again at the next start.
type ahead struct {
	id   int64
	from sdk.Offsets
	data *plugin.Data
	err  error
	took time.Duration
	// shaped is the batch through the pipeline's built-in transforms, done
	// in the read ahead too (see readAhead); nil when not done there.
	shaped   *outcome
	shapeErr error
	done     chan struct{}
	cancel   context.CancelFunc
}

// Run runs the pipeline until ctx is cancelled (a clean stop: the batch in
// flight is finished or abandoned, and Run returns nil), until drain mode has
// processed what was available at start, or until an error it cannot recover
// from. Plugin processes that die are restarted with backoff, and the batch in
// flight is then handled exactly as after a crash of the host.
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Grace == 0 {
		o.Grace = 30 * time.Second
	}
	if o.Restarts == 0 {
		o.Restarts = o.Pipeline.Restart.Attempts
	}
	if o.Restarts == 0 {
		o.Restarts = config.DefaultRestartAttempts
	}
	d := &driver{Options: o, p: o.Pipeline}
	if d.Checkpoint == nil {
		d.Checkpoint = openDir
	}
	cp, err := d.Checkpoint(ctx, d.p)
	if err != nil && ctx.Err() != nil {
		// Stopped while the checkpoint opened (a connection to its
		// database cut short): nothing was planned, the stop is clean.
		d.Control.End(nil)
		if d.Drain {
			return &Interrupted{Pipeline: d.p.Name, Left: -1}
		}
		return nil
	}
	if err != nil {
		return d.errorf("%w", err)
	}
	d.cp = cp
	defer cp.Close()
	defer d.shutdown()
	start := time.Now()
	d.runStart, d.begin = start, cp.Committed().Clone()
	d.state.Store(StateStarting)
	d.quietSince.Store(start.UnixNano())
	if d.Heartbeat >= 0 {
		stop := d.heartbeats()
		defer stop()
	}
	err = d.supervise(ctx)
	if d.Progress != nil && d.started {
		d.Progress.Done(d.p.Name, d.batches, d.records, time.Since(start))
	}
	if errors.Is(err, errStopped) {
		if d.Drain {
			c := d.cp.Committed()
			i := &Interrupted{Pipeline: d.p.Name, Committed: c, End: d.stop, Left: -1}
			err = nil
			if d.stop != nil {
				i.Left = left(c, d.stop)
			}
			if i.Left != 0 { // 0: everything up to the end is committed, the drain is done
				err = i
			}
		} else {
			err = nil
		}
	}
	var stopped *Interrupted
	if errors.As(err, &stopped) {
		d.Control.End(nil) // a stop, not a failure: the run ended cleanly
	} else {
		d.Control.End(err)
	}
	return err
}

func (d *driver) errorf(format string, args ...any) error {
	return fmt.Errorf("pipeline %q: "+format, append([]any{d.p.Name}, args...)...)
}

// enter records the pipeline's state for the Control and the heartbeats.
func (d *driver) enter(s State) {
	d.Control.state(s)
	d.state.Store(s)
}

// current is the pipeline's state: the Control's when there is one (it
// knows about pauses), else the driver's own.
func (d *driver) current() State {
	if d.Control != nil {
		return d.Control.Status().State
	}
	return d.state.Load().(State)
}

// heartbeats shows a heartbeat whenever no batch finished for d.Heartbeat,
// until the returned function is called.
func (d *driver) heartbeats() (stop func()) {
	every := d.Heartbeat
	if every == 0 {
		every = 30 * time.Second
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		wait := every
		for {
			select {
			case <-done:
				return
			case <-time.After(wait):
			}
			quiet := time.Since(time.Unix(0, d.quietSince.Load()))
			if quiet < every {
				wait = every - quiet
				continue
			}
			h := Heartbeat{Pipeline: d.p.Name, State: d.current(), Quiet: d.quiet(), Committed: d.cp.Committed()}
			if hb, ok := d.Progress.(Heartbeater); !ok || !hb.Heartbeat(h) {
				d.Log.Info("no batch for a while", "pipeline", h.Pipeline, "state", string(h.State), "quiet", h.Quiet.Round(time.Second).String(), "committed", h.Committed.String())
			}
			d.quietSince.Store(time.Now().UnixNano())
			wait = every
		}
	}()
	return func() { close(done); <-finished }
}

// quiet is how long ago the last batch finished, or the run started.
func (d *driver) quiet() time.Duration {
	last := d.runStart
	if t := d.lastBatch.Load(); t != 0 {
		last = time.Unix(0, t)
	}
	return time.Since(last)
}

// supervise runs sessions; a session that fails because a plugin died or a
// plugin call failed is retried with backoff after restarting dead processes.
func (d *driver) supervise(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = config.DefaultRestartBackoff, config.DefaultRestartMaxBackoff
	if r := d.p.Restart; r.Backoff > 0 {
		ceiling := r.MaxBackoff
		if ceiling == 0 {
			ceiling = config.DefaultRestartMaxBackoff
		}
		bo.InitialInterval, bo.MaxInterval = r.Backoff, max(r.Backoff, ceiling)
	}
	bo.Reset() // the first wait is InitialInterval, not the library's default
	bo.MaxElapsedTime = 0
	failures := 0
	for {
		before := d.batches
		err := d.session(ctx)
		if err == nil {
			return nil // drained, even if a stop came just after
		}
		if errors.Is(err, checkpoint.ErrFenced) || plugin.Fenced(err) {
			return err // never a clean stop, even when the stop came first: the worker must learn it was fenced
		}
		if ctx.Err() != nil || errors.Is(err, errStopped) {
			return errStopped // a stop asked for while starting or recovering is clean too
		}
		if perm := d.permanent(err); perm != nil {
			return perm // retrying cannot help: fail at once
		}
		if errors.Is(err, errRestart) {
			d.Log.Info("restarting the plugins as asked", "pipeline", d.p.Name)
			d.shutdown()
			continue
		}
		var perr *plugin.Error
		if !errors.As(err, &perr) {
			return err // checkpoint or host-side contract errors are not retried
		}
		if d.batches > before {
			failures = 0
			bo.Reset()
		}
		failures++
		d.Control.failed(err, failures)
		if failures > d.Restarts {
			return d.errorf("giving up after %d restarts: %w", d.Restarts, err)
		}
		d.state.Store(StateRestarting) // the Control learns it from failed
		wait := bo.NextBackOff()
		d.Log.Warn("plugin failed; restarting and recovering", "pipeline", d.p.Name, "error", err.Error(), "attempt", failures, "backoff", wait.String())
		select {
		case <-ctx.Done():
			return errStopped
		case <-time.After(wait):
		}
	}
}

// permanent returns the error that ends the run at once for an error no
// restart can cure, or nil: a plugin's refusal of its configuration (a
// *ConfigError naming the plugin's block, exit status 2) and a plugin call
// that failed for good (plugin.Error.Permanent: a broken contract, a missing
// call). A plugin that died is not permanent: it is restarted.
func (d *driver) permanent(err error) error {
	var own *ConfigError
	if errors.As(err, &own) {
		return own
	}
	var cerr *plugin.ConfigError
	if errors.As(err, &cerr) {
		block := &d.p.Source
		for _, b := range d.blocks() {
			if strings.HasPrefix(cerr.Plugin, fmt.Sprintf("%s %q", b.Kind, b.Name)) {
				block = b
				break
			}
		}
		return &ConfigError{Range: block.Range, Err: d.errorf("%w (not retried: change the configuration, or the offsets with connectd offsets reset)", err)}
	}
	var perr *plugin.Error
	if errors.As(err, &perr) && perr.Permanent() && !d.exited() {
		return d.errorf("%w (not retried: restarting the plugin cannot help)", err)
	}
	return nil
}

// exited reports whether a plugin process of the pipeline has died.
func (d *driver) exited() bool {
	for _, r := range d.roles() {
		if p := *r.proc; p != nil && p.Exited() {
			return true
		}
	}
	return false
}

// blocks returns the pipeline's plugin blocks: source, processors, sink,
// dead-letter sink.
func (d *driver) blocks() []*config.Plugin {
	out := append([]*config.Plugin{&d.p.Source}, d.p.Processors()...)
	out = append(out, &d.p.Sink)
	if d.p.DeadLetter != nil {
		out = append(out, d.p.DeadLetter)
	}
	return out
}

// role is one plugin process of the pipeline: where the driver keeps it, its
// block, and the name the Control counts its restarts under.
type role struct {
	proc  **plugin.Process
	block *config.Plugin
	name  string // "source", "processor", "sink", "dead_letter"
}

// roles lists the pipeline's plugin processes in the order they start: the
// source, the processors, the sink, the dead-letter sink.
func (d *driver) roles() []role {
	procs := d.p.Processors()
	if len(d.procs) != len(procs) {
		d.procs = make([]*plugin.Process, len(procs))
	}
	out := []role{{&d.src, &d.p.Source, "source"}}
	for i, b := range procs {
		out = append(out, role{&d.procs[i], b, "processor"})
	}
	out = append(out, role{&d.snk, &d.p.Sink, "sink"})
	if d.p.DeadLetter != nil {
		out = append(out, role{&d.dlq, d.p.DeadLetter, "dead_letter"})
	}
	return out
}

// open opens a started plugin process with its block's values.
func (d *driver) open(ctx context.Context, p *plugin.Process, b *config.Plugin) error {
	t := plugin.Task{Name: d.p.Name, Index: d.p.Task, Count: d.p.Tasks}
	switch {
	case p.Source != nil:
		return p.Source.OpenTask(ctx, t, b.Values)
	case p.Processor != nil:
		return p.Processor.OpenTask(ctx, t, b.Values)
	default:
		return p.Sink.OpenTask(ctx, t, b.Values)
	}
}

// ensure starts the plugin processes that are not running and opens them.
func (d *driver) ensure(ctx context.Context) error {
	roles := d.roles()
	for _, r := range roles {
		if p := *r.proc; p != nil && p.Exited() {
			p.Kill() // releases what the client holds for the dead process
			*r.proc = nil
			d.Control.restarted(r.name)
		}
	}
	restart := d.started
	for _, r := range roles {
		if *r.proc != nil {
			continue
		}
		p, err := d.Loader.Start(ctx, r.block.Kind, r.block.Name, plugin.Env(restart))
		if err != nil {
			return d.errorf("%w", err)
		}
		err = d.within(ctx, p, name(r.block), config.PhaseOpen, 0, func(ctx context.Context) error { return d.open(ctx, p, r.block) })
		if err != nil {
			return d.openFailed(p, r.block, err)
		}
		*r.proc = p
	}
	if err := d.checkCapabilities(); err != nil {
		return err
	}
	d.started = true
	return nil
}

// openFailed stops a plugin whose Open failed. A plugin that refused its
// configuration fails the run at once with a *ConfigError naming its block;
// one that refused its system (a missing directory, a server that says no)
// fails the run at once too; one that died while opening is restarted like
// any crash.
func (d *driver) openFailed(p *plugin.Process, block *config.Plugin, err error) error {
	exited := p.Exited() || status.Code(err) == codes.Unavailable
	p.Kill()
	var cerr *plugin.ConfigError
	if errors.As(err, &cerr) {
		return &ConfigError{Range: block.Range, Err: d.errorf("%w", err)}
	}
	if exited {
		return d.errorf("%w", err)
	}
	return d.errorf("%v", err)
}

// checkCapabilities refuses a guarantee the running plugins cannot keep: the
// spec they declare now (a third-party plugin may have been replaced since
// validation) and the interfaces they implement.
func (d *driver) checkCapabilities() error {
	procs := make([]sdk.Spec, len(d.procs))
	for i, p := range d.procs {
		procs[i] = p.Spec
	}
	var dl sdk.Spec
	if d.dlq != nil {
		dl = d.dlq.Spec
	}
	if err := config.CheckPipeline(d.p, d.src.Spec, d.snk.Spec, procs, dl); err != nil {
		return d.errorf("%w", err)
	}
	has := func(s sdk.Spec, vals map[string]any, c sdk.Capability) bool {
		for _, x := range s.CapabilitiesFor(vals) {
			if x == c {
				return true
			}
		}
		return false
	}
	if has(d.src.Spec, d.p.Source.Values, sdk.CapReplayable) && !d.src.Has(protocol.FeatureReplayer) {
		return d.errorf("source %q declares capability %q but does not implement sdk.Replayer", d.p.Source.Name, sdk.CapReplayable)
	}
	d.tx = has(d.snk.Spec, d.p.Sink.Values, sdk.CapTransactional)
	if d.tx && !d.snk.Has(protocol.FeatureTransactional) {
		return d.errorf("sink %q declares capability %q but does not implement sdk.Transactional", d.p.Sink.Name, sdk.CapTransactional)
	}
	return nil
}

// shutdown closes and stops every plugin process of the pipeline, and
// forgets them.
func (d *driver) shutdown() {
	ctx := context.Background()
	for _, r := range d.roles() {
		p := *r.proc
		if p == nil {
			continue
		}
		if !p.Exited() {
			err := d.within(ctx, p, name(r.block), config.PhaseClose, 0, func(ctx context.Context) error {
				switch {
				case p.Source != nil:
					return p.Source.Close(ctx)
				case p.Processor != nil:
					return p.Processor.Close(ctx)
				default:
					return p.Sink.Close(ctx)
				}
			})
			if err != nil {
				d.Log.Warn("closing "+r.name, "pipeline", d.p.Name, "plugin", r.block.Name, "error", err.Error())
			}
		}
		p.Kill()
		*r.proc = nil
	}
}

// session starts what is missing, recovers, and runs batches.
func (d *driver) session(ctx context.Context) error {
	defer d.dropAhead()
	d.enter(StateStarting)
	if err := d.ensure(ctx); err != nil {
		return err
	}
	if d.Drain && d.stop == nil && d.src.Has(protocol.FeatureEnder) {
		var end sdk.Offsets
		err := d.within(ctx, d.src, d.srcName(), config.PhaseEnd, 0, func(ctx context.Context) (err error) {
			end, err = d.src.Source.End(ctx)
			return err
		})
		if err != nil {
			return err
		}
		d.stop = end
		d.Log.Info("draining up to the source's end at start", "pipeline", d.p.Name, "end", end.String())
	}
	d.enter(StateRecovering)
	if err := d.recover(ctx); err != nil {
		return err
	}
	d.Control.committed(d.cp.Committed())
	d.enter(StateRunning)
	for {
		if ctx.Err() != nil {
			return errStopped
		}
		if err := d.between(ctx); err != nil {
			return err
		}
		done, err := d.next(ctx)
		if err != nil || done {
			return err
		}
	}
}

// recover brings the checkpoint and the sink into agreement and finishes the
// last planned batch if it was not committed, replaying it exactly.
func (d *driver) recover(ctx context.Context) error {
	planned, ok, committed := d.cp.Last()
	if d.tx {
		var c sdk.Committed
		err := d.within(ctx, d.snk, d.snkName(), config.PhaseLastCommitted, 0, func(ctx context.Context) (err error) {
			c, err = d.snk.Sink.LastCommitted(ctx)
			return err
		})
		if err != nil {
			return err
		}
		switch {
		case c.Batch == 0 || c.Batch <= committed:
			// The host knows at least as much as the sink (a reset moves the
			// host past the sink's answer).
		case ok && c.Batch == planned.Batch:
			if !c.Until.Equal(planned.Until) {
				return d.errorf("sink %q committed batch %d with until %s, but the checkpoint planned it with until %s: checkpoint and sink disagree", d.p.Sink.Name, c.Batch, c.Until, planned.Until)
			}
			if err := d.committedRejections(ctx, planned, c.Rejected); err != nil {
				return err
			}
			d.Log.Info("the transactional sink committed the batch; the checkpoint follows it", "pipeline", d.p.Name, "batch", c.Batch)
			if err := d.cp.Commit(c.Batch); err != nil {
				return d.errorf("%w", err)
			}
			committed = c.Batch
		default:
			return d.errorf("sink %q says it committed batch %d, but the checkpoint in %s has planned only up to batch %d: was the checkpoint deleted or restored from a backup? Reset the sink's offsets or restore the checkpoint", d.p.Sink.Name, c.Batch, d.cp.Where(), planned.Batch)
		}
	}
	if !ok || planned.Batch <= committed {
		return nil
	}
	_, err := d.batch(ctx, planned.Batch, &planned)
	return err
}

// next plans and runs the next batch. done is true when drain mode is finished.
func (d *driver) next(ctx context.Context) (done bool, err error) {
	planned, ok, committed := d.cp.Last()
	id := int64(1)
	if ok {
		id = planned.Batch + 1
		if planned.Batch > committed {
			id = planned.Batch // a re-read of an uncommitted batch came back empty: plan it again
		}
	}
	return d.batch(ctx, id, nil)
}

// replay reads planned batch e again from a replayable source (the
// partitions whose range is not empty) and holds the source to its promise:
// as many records as the plan says. The data covers e's whole range.
func (d *driver) replay(ctx context.Context, e checkpoint.Entry) (*plugin.Data, error) {
	f, u := Moving(e.From, e.Until)
	var data *plugin.Data
	err := d.within(ctx, d.src, d.srcName(), config.PhaseRead, e.Batch, func(ctx context.Context) (err error) {
		data, err = d.src.Source.Replay(ctx, e.Batch, f, u)
		return err
	})
	if err != nil {
		return nil, err
	}
	if data.Records != e.Records {
		return nil, d.errorf("source %q broke its replay promise: batch %d held %d records, its replay returned %d", d.p.Source.Name, e.Batch, e.Records, data.Records)
	}
	data.From, data.Until = e.From, e.Until
	return data, nil
}

// Moving keeps the partitions whose range from → until is not empty (both
// offsets real and different): the ranges a replay of the batch asks the
// source for. The host's recovery and the conformance suite's replay check
// ask with it.
func Moving(from, until sdk.Offsets) (sdk.Offsets, sdk.Offsets) {
	f, u := sdk.Offsets{}, sdk.Offsets{}
	for p, x := range until {
		if y, ok := from[p]; ok && x >= 0 && y >= 0 && x != y {
			f[p], u[p] = y, x
		}
	}
	return f, u
}

// batch runs batch id through the protocol: PLAN, WRITE, COMMIT, ACK (COMMIT
// before WRITE at most once). replay is the planned entry when the batch is
// being recovered; nil plans a new batch. done is true when drain mode has
// nothing more to read.
func (d *driver) batch(ctx context.Context, id int64, replay *checkpoint.Entry) (done bool, err error) {
	r := Report{Pipeline: d.p.Name, Batch: id, Start: time.Now(), Source: fmt.Sprintf("source %q", d.p.Source.Name), Sink: fmt.Sprintf("sink %q", d.p.Sink.Name)}
	fault.Hit(fault.HostPlanBefore, id)
	b, err := d.fetch(ctx, id, replay, &r)
	if err != nil {
		return false, stopOr(ctx, err)
	}
	if b == nil {
		return d.Drain, nil // the source has nothing now
	}
	if b.read { // PLAN: a batch read (not replayed) is planned before it is written
		t := time.Now()
		if err := d.cp.Plan(checkpoint.Entry{Batch: id, From: b.data.From, Until: b.data.Until, Records: b.data.Records}); err != nil {
			return false, d.errorf("%w", err)
		}
		r.Plan, r.PlanSync = time.Since(t), d.cp.LastSync()
	}
	fault.Hit(fault.HostPlanAfter, id)
	d.readAhead(ctx, id+1, b.data.Until)
	defer func() {
		if err != nil {
			d.dropAhead() // a batch that fails leaves no read running
		}
	}()
	bctx, cancel := d.grace(ctx)
	defer cancel()
	if d.p.Delivery == config.AtMostOnce { // COMMIT, then WRITE
		if err := d.commit(id, &r); err != nil {
			return false, err
		}
		if err := d.write(bctx, id, b, &r); err != nil {
			d.Log.Error("batch committed but not written: its records are lost, as at-most-once allows", "pipeline", d.p.Name, "batch", id, "records", b.data.Records, "error", err.Error())
			return false, err
		}
	} else { // WRITE, then COMMIT
		if err := d.write(bctx, id, b, &r); err != nil {
			return false, err
		}
		if err := d.commit(id, &r); err != nil {
			return false, err
		}
	}
	if err := d.ack(bctx, id, b.data, &r); err != nil { // ACK
		return false, err
	}
	d.finished(r, b.data)
	if len(d.p.Transforms) == 0 {
		b.data.Release() // the sink has it all and no record of it is held: its memory serves the next reads
	}
	return false, nil
}

// fetched is a batch as fetch returns it.
type fetched struct {
	data *plugin.Data
	// read is true when the batch was read now (it is to be planned); false
	// when a replayable source replayed a planned batch.
	read bool
	// shaped is the batch through the transforms when the read ahead did
	// that (shapeErr its error); nil otherwise.
	shaped   *outcome
	shapeErr error
}

// fetch gets batch id's records: a replay of the planned entry when the batch
// is recovered from a replayable source, else the read ahead's when it read
// this batch, else a Read from the committed offsets (from replay.From when
// recovering from a source that cannot replay). It returns nil when a read
// found nothing. The data's From and Until cover every partition.
func (d *driver) fetch(ctx context.Context, id int64, replay *checkpoint.Entry, r *Report) (*fetched, error) {
	from := d.cp.Committed()
	t := time.Now()
	if replay != nil {
		r.Replay = true
		from = replay.From
		if d.src.Has(protocol.FeatureReplayer) {
			data, err := d.replay(ctx, *replay)
			if err != nil {
				return nil, err
			}
			r.Read = time.Since(t)
			d.Control.read(data.Records, data.Bytes)
			return &fetched{data: data}, nil
		}
	}
	b := &fetched{read: true}
	if a := d.takeAhead(id, from); a != nil {
		if a.err != nil {
			return nil, a.err
		}
		b.data, r.Read, r.ReadAhead = a.data, a.took, true
		b.shaped, b.shapeErr = a.shaped, a.shapeErr
	} else {
		err := d.within(ctx, d.src, d.srcName(), config.PhaseRead, id, func(ctx context.Context) (err error) {
			b.data, err = d.src.Source.Read(ctx, id, from, d.limits())
			return err
		})
		if err != nil {
			return nil, err
		}
		r.Read = time.Since(t)
	}
	if b.data.Records == 0 {
		return nil, nil
	}
	d.Control.read(b.data.Records, b.data.Bytes)
	b.data.From, b.data.Until = from.Merge(b.data.From), from.Merge(b.data.Until)
	return b, nil
}

// grace returns the context a batch is finished under once it is planned: a
// stop asked for on ctx does not cut it short, unless the batch takes longer
// than Grace after the stop; then it is abandoned and replayed at the next
// start. cancel releases it.
func (d *driver) grace(ctx context.Context) (bctx context.Context, cancel context.CancelFunc) {
	bctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-time.After(d.Grace):
				cancel()
			case <-bctx.Done():
			}
		case <-bctx.Done():
		}
	}()
	return bctx, cancel
}

// write is the WRITE step: batch b through the transforms (unless the read
// ahead did that), to the sink, its rejected records to the dead letters.
func (d *driver) write(ctx context.Context, id int64, b *fetched, r *Report) error {
	t := time.Now()
	o, err := b.shaped, b.shapeErr
	if o == nil && err == nil {
		o, err = d.shape(ctx, id, b.data, r.Replay, d.workers())
	}
	if err != nil {
		return err
	}
	o.data.From, o.data.Until, o.data.Epoch = b.data.From, b.data.Until, d.Epoch
	fault.Hit(fault.HostWriteBefore, id)
	var rejected []sdk.Rejection
	err = d.within(ctx, d.snk, d.snkName(), config.PhaseWrite, id, func(ctx context.Context) (err error) {
		rejected, err = d.snk.Sink.Write(ctx, id, o.data, r.Replay)
		return err
	})
	if err != nil {
		return err
	}
	if err := d.sinkRejected(id, o, rejected); err != nil {
		return err
	}
	fault.Hit(fault.HostDeadLetter, id)
	if err := d.deadLetters(ctx, id, b.data, o, r.Replay); err != nil {
		return err
	}
	r.Write = time.Since(t)
	r.Written, r.Rejected = o.written, int64(len(o.letters))
	if d.dlq != nil {
		r.DeadLetters = r.Rejected
	}
	fault.Hit(fault.HostWriteAfter, id)
	return nil
}

// commit is the COMMIT step: the checkpoint records batch id as committed.
func (d *driver) commit(id int64, r *Report) error {
	t := time.Now()
	if err := d.cp.Commit(id); err != nil {
		return d.errorf("%w", err)
	}
	r.Commit, r.CommitSync = time.Since(t), d.cp.LastSync()
	fault.Hit(fault.HostCommitAfter, id)
	return nil
}

// ack is the ACK step: the source may forget what batch id read. A source
// serves one call at a time: the read ahead ends before the Ack.
func (d *driver) ack(ctx context.Context, id int64, data *plugin.Data, r *Report) error {
	if d.ahead != nil {
		<-d.ahead.done
	}
	t := time.Now()
	if err := d.within(ctx, d.src, d.srcName(), config.PhaseAck, id, func(ctx context.Context) error {
		return d.src.Source.Ack(ctx, id, data.Until)
	}); err != nil {
		return err
	}
	r.Ack = time.Since(t)
	fault.Hit(fault.HostAckAfter, id)
	return nil
}

// finished counts a finished batch and reports it: the run's totals, the
// control API, the heartbeats' clock and the progress printer.
func (d *driver) finished(r Report, data *plugin.Data) {
	d.batches++
	d.records += data.Records
	r.Records, r.Bytes, r.From, r.Until = data.Records, data.Bytes, data.From, data.Until
	r.Total = time.Since(r.Start)
	r.Delivered = d.records
	if d.stop != nil {
		r.Drain = drainProgress(d.begin, d.stop, data.From, data.Until, time.Since(d.runStart))
	}
	d.Control.batchDone(r)
	now := time.Now().UnixNano()
	d.lastBatch.Store(now)
	d.quietSince.Store(now)
	if d.Progress != nil {
		d.Progress.Batch(r)
	}
}

func (d *driver) limits() sdk.Limits {
	return sdk.Limits{MaxRecords: d.p.Batch.MaxRecords, MaxBytes: d.p.Batch.MaxBytes, MaxWait: d.p.Batch.MaxWait, Stop: d.stop}
}

// readAhead starts reading batch id from the offsets the current batch ends
// at, so that the source and the host read it while the sink writes the
// current batch, when the pipeline asks for it (read_ahead = true). Only
// replayable sources read ahead: they read from any offsets they are given,
// so a read ahead that is thrown away costs nothing. The batch is planned, as
// always, only after the current one is committed.
func (d *driver) readAhead(ctx context.Context, id int64, from sdk.Offsets) {
	d.dropAhead()
	if !d.p.Batch.ReadAhead || !d.src.Has(protocol.FeatureReplayer) {
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	a := &ahead{id: id, from: from.Clone(), done: make(chan struct{}), cancel: cancel}
	d.ahead = a
	src := d.src
	// A pipeline whose transforms are all built-ins also transforms the
	// batch read ahead there, with Steps of its own, while the current
	// batch is written: the host's work overlaps the sink's. (Processors
	// run when the batch is written: a processor serves one call at a time.)
	var steps [][]transform.Step
	if len(d.p.Transforms) > 0 && len(d.p.Processors()) == 0 {
		steps = d.aheadWorkers()
	}
	go func() {
		defer close(a.done)
		t := time.Now()
		a.err = d.within(rctx, src, d.srcName(), config.PhaseRead, id, func(ctx context.Context) (err error) {
			a.data, err = src.Source.Read(ctx, id, a.from, d.limits())
			return err
		})
		a.took = time.Since(t)
		if steps != nil && a.err == nil && a.data.Records > 0 {
			a.shaped, a.shapeErr = d.shape(rctx, id, a.data, false, steps)
		}
	}()
}

// takeAhead waits for and returns the read ahead of batch id when it started
// at from; otherwise it drops whatever read ahead there is and returns nil.
func (d *driver) takeAhead(id int64, from sdk.Offsets) *ahead {
	a := d.ahead
	if a == nil || a.id != id || !a.from.Equal(from) {
		d.dropAhead()
		return nil
	}
	<-a.done
	a.cancel()
	d.ahead = nil
	return a
}

// dropAhead cancels the read ahead, if any, and waits for it to end.
func (d *driver) dropAhead() {
	if a := d.ahead; a != nil {
		a.cancel()
		<-a.done
		d.ahead = nil
	}
}

// stopOr turns the error of a call cut short by a stop into a clean stop.
func stopOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errStopped
	}
	return err
}
