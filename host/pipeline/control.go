package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/internal/protocol"
	"github.com/connectd/connectd/sdk"
)

// State is where a pipeline's run is.
type State string

// The states of a run, in the order a run usually goes through them.
const (
	StateStarting   State = "starting"   // starting and opening the plugin processes
	StateRecovering State = "recovering" // finishing the last uncommitted batch, if any
	StateRunning    State = "running"    // running batches
	StatePaused     State = "paused"     // waiting between two batches until resumed; nothing in flight
	StateRestarting State = "restarting" // a plugin failed: waiting to restart it (with backoff)
	StateFailed     State = "failed"     // the run ended with an error (Status.Error)
	StateFinished   State = "finished"   // the run ended cleanly: drained, or stopped
)

// Errors of Control's requests; each says why the pipeline's state does not
// allow it.
var (
	ErrAlreadyPaused = errors.New("the pipeline is already paused (or pausing)")
	ErrNotPaused     = errors.New("the pipeline is not paused")
	ErrEnded         = errors.New("the pipeline's run has ended")
)

// Status is a snapshot of one pipeline's run.
type Status struct {
	Name  string
	State State
	// Error is why the run failed (StateFailed), or the last plugin failure
	// while restarting; "" otherwise.
	Error string
	// PauseRequested is true from a Pause until the pipeline is resumed.
	PauseRequested bool
	// Committed are the committed offsets (nil before the checkpoint is read).
	Committed sdk.Offsets
	// LastCommit is when the last batch committed (zero before any).
	LastCommit time.Time
	// Last is the report of the last finished batch (zero Batch before any).
	Last Report
	// End is where the source's data ended when last asked (LagAt), for a
	// source that implements sdk.Ender (asked at most once a second,
	// between batches); nil otherwise. Lag is, per partition, End minus the
	// committed offset.
	End   sdk.Offsets
	Lag   map[string]int64
	LagAt time.Time
	// Restarts counts plugin processes restarted after they died, by role
	// ("source", "sink").
	Restarts map[string]int64
	// Failures is how many sessions in a row failed (reset by a batch that
	// commits); FailedBatches counts every batch that failed.
	Failures      int
	FailedBatches int64
	// RecordsRead and BytesRead count what the source returned, batches that
	// later failed included; RecordsWritten and BytesWritten what committed
	// batches delivered.
	RecordsRead, BytesRead       int64
	RecordsWritten, BytesWritten int64
	// RecordsRejected counts the records of committed batches that a
	// transform, a processor or the sink rejected; DeadLetters those of them
	// written to the dead-letter sink.
	RecordsRejected, DeadLetters int64
	// Committed batches of this run: Batches new ones, Replayed the ones
	// recovered after a crash.
	Batches, Replayed int64
}

// Control is the handle an operator holds on one pipeline's run: it reports
// the run's Status and takes pause, resume and restart requests, which the
// driver honours between two batches (after a batch's ACK, before the next
// PLAN), so no request ever splits a batch or weakens the guarantee. A
// Control serves one Run; its methods are safe for concurrent use.
type Control struct {
	mu      sync.Mutex
	st      Status
	paused  bool          // pause requested
	restart bool          // restart requested
	wake    chan struct{} // closed and replaced when a request arrives
	ended   bool
}

// NewControl returns the Control of the pipeline named name, in StateStarting.
func NewControl(name string) *Control {
	return &Control{st: Status{Name: name, State: StateStarting, Restarts: map[string]int64{}}, wake: make(chan struct{})}
}

// Status returns a snapshot; its maps are copies.
func (c *Control) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.PauseRequested = c.paused
	s.Committed = c.st.Committed.Clone()
	s.Restarts = make(map[string]int64, len(c.st.Restarts))
	for k, v := range c.st.Restarts {
		s.Restarts[k] = v
	}
	s.End = c.st.End.Clone()
	s.Lag = lagOf(c.st.End, c.st.Committed)
	return s
}

// Pause asks the pipeline to wait after the batch in flight, if any, is
// acknowledged. It returns ErrAlreadyPaused or ErrEnded when it cannot.
func (c *Control) Pause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.ended:
		return ErrEnded
	case c.paused:
		return ErrAlreadyPaused
	}
	c.paused = true
	c.signal()
	return nil
}

// Resume lets a paused (or pausing) pipeline run batches again. It returns
// ErrNotPaused or ErrEnded when it cannot.
func (c *Control) Resume() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.ended:
		return ErrEnded
	case !c.paused:
		return ErrNotPaused
	}
	c.paused = false
	c.signal()
	return nil
}

// Restart asks the pipeline to stop its plugin processes after the batch in
// flight, start them again and recover, as after a clean stop and start. A
// paused pipeline stays paused after it. It returns ErrEnded when the run
// has ended.
func (c *Control) Restart() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return ErrEnded
	}
	c.restart = true
	c.signal()
	return nil
}

func (c *Control) signal() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// The hooks below are called by the driver, once per batch or less: nothing
// is added to the per-record path. Every hook accepts a nil *Control.

func (c *Control) set(f func(s *Status)) {
	if c == nil {
		return
	}
	c.mu.Lock()
	f(&c.st)
	c.mu.Unlock()
}

func (c *Control) state(s State) { c.set(func(st *Status) { st.State = s }) }

func (c *Control) committed(o sdk.Offsets) {
	c.set(func(st *Status) { st.Committed = o.Clone() })
}

func (c *Control) read(records, bytes int64) {
	c.set(func(st *Status) { st.RecordsRead += records; st.BytesRead += bytes })
}

func (c *Control) batchDone(r Report) {
	c.set(func(st *Status) {
		r.From, r.Until = r.From.Clone(), r.Until.Clone() // read by Status's callers later
		st.Last, st.Committed, st.LastCommit, st.Failures = r, r.Until.Clone(), time.Now(), 0
		st.RecordsWritten += r.Written
		st.BytesWritten += r.Bytes
		st.RecordsRejected += r.Rejected
		st.DeadLetters += r.DeadLetters
		if r.Replay {
			st.Replayed++
		} else {
			st.Batches++
		}
	})
}

func (c *Control) failed(err error, failures int) {
	c.set(func(st *Status) {
		st.State, st.Error, st.Failures = StateRestarting, err.Error(), failures
		st.FailedBatches++
	})
}

func (c *Control) restarted(role string) { c.set(func(st *Status) { st.Restarts[role]++ }) }

func (c *Control) lag(end sdk.Offsets) {
	c.set(func(st *Status) { st.End, st.LagAt = end.Clone(), time.Now() })
}

// lagOf is, per partition of end, end minus the committed offset (never
// below 0); a partition never committed is behind by its end.
func lagOf(end, committed sdk.Offsets) map[string]int64 {
	if end == nil {
		return nil
	}
	lag := make(map[string]int64, len(end))
	for p, e := range end {
		if e < 0 {
			continue // the source does not know this partition's end
		}
		if from, ok := committed[p]; ok && from >= 0 {
			lag[p] = max(0, e-from)
		} else if !ok {
			lag[p] = e
		}
	}
	return lag
}

// End records how the run ended (nil: finished, else failed with err); after
// it every request fails with ErrEnded. Run calls it as it returns; a host
// that ends a pipeline without Run (one that never started) calls it too.
// It accepts a nil *Control.
func (c *Control) End(err error) {
	c.set(func(st *Status) {
		if err != nil {
			st.State, st.Error = StateFailed, err.Error()
		} else {
			st.State, st.Error = StateFinished, ""
		}
	})
	if c != nil {
		c.mu.Lock()
		c.ended = true
		c.mu.Unlock()
	}
}

// Reopen readies a Control whose run ended for another Run of the same
// pipeline (a connectd worker that takes the pipeline again): the state is
// StateStarting, requests are accepted again, and the counters go on.
func (c *Control) Reopen() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended, c.restart = false, false
	c.st.State, c.st.Error = StateStarting, ""
}

// takeRestart reports and clears a restart request.
func (c *Control) takeRestart() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.restart
	c.restart = false
	return r
}

// gate returns false at once unless a pause is requested; then it sets
// StatePaused and waits until the pipeline is resumed or a restart is
// requested (it sets StateRunning again and returns false), until done is
// closed (false), or until wait has passed while still paused (true: call it
// again).
func (c *Control) gate(done <-chan struct{}, wait time.Duration) bool {
	if c == nil {
		return false
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		c.mu.Lock()
		if !c.paused || c.restart {
			if c.st.State == StatePaused {
				c.st.State = StateRunning
			}
			c.mu.Unlock()
			return false
		}
		c.st.State = StatePaused
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			return false
		case <-timeout.C:
			return true
		}
	}
}

// errRestart ends a session whose restart was asked for through Control.
var errRestart = errors.New("restart requested")

// lagEvery bounds how often between asks an sdk.Ender source for its end.
const lagEvery = time.Second

// between runs between two batches, when nothing is in flight (the last
// batch is acknowledged; a read ahead may hold the next one's records, which
// have no effect until planned): it refreshes the lag, waits while the
// pipeline is paused, and ends the session when a restart is asked for.
func (d *driver) between(ctx context.Context) error {
	if d.Control == nil {
		return nil
	}
	if err := d.measureLag(ctx); err != nil {
		return err
	}
	if d.Control.pausing() {
		d.dropAhead() // nothing read while paused
		d.Log.Info("paused between batches", "pipeline", d.p.Name)
		for d.Control.gate(ctx.Done(), lagEvery) {
			if err := d.measureLag(ctx); err != nil { // the lag grows while paused
				return err
			}
		}
		if ctx.Err() == nil && !d.Control.pausing() {
			d.Log.Info("resumed", "pipeline", d.p.Name)
		}
	}
	if d.Control.takeRestart() {
		return errRestart
	}
	if ctx.Err() != nil {
		return errStopped
	}
	return nil
}

// measureLag asks an sdk.Ender source for its end, at most once per lagEvery,
// and gives it to Control, which reports the lag against the committed
// offsets.
func (d *driver) measureLag(ctx context.Context) error {
	if !d.src.Has(protocol.FeatureEnder) || time.Since(d.lagAt) < lagEvery {
		return nil
	}
	if d.ahead != nil {
		<-d.ahead.done // a source serves one call at a time
	}
	d.lagAt = time.Now()
	var end sdk.Offsets
	err := d.within(ctx, d.src, d.srcName(), config.PhaseEnd, 0, func(ctx context.Context) (err error) {
		end, err = d.src.Source.End(ctx)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		// The lag is for watching: a source that cannot tell its end now (an
		// unbounded generator, a broker that does not answer) leaves it
		// unknown and the pipeline runs on; a dead plugin is found by the
		// next batch's call.
		if d.Control.Status().End != nil || !d.lagFailed {
			d.Log.Warn("the source cannot tell where its data ends; lag unknown", "pipeline", d.p.Name, "error", err.Error())
		}
		d.lagFailed = true
		d.Control.lag(nil)
		return nil
	}
	d.Control.lag(end)
	return nil
}

// pausing reports whether a pause is requested.
func (c *Control) pausing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused
}
