package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/plugin"
)

// Hung is the error of a plugin call that did not answer within its
// deadline (config.Pipeline.Timeout): the host killed the plugin process
// (SIGKILL: a process stopped by SIGSTOP or deadlocked ends too), and the
// run restarts it with backoff and recovers the batch, as after a crash. It
// counts as a plugin failure (errors.As finds a *plugin.Error in it); a stop
// asked for by the user is never a Hung.
type Hung struct {
	Plugin string       // e.g. `sink "file"`
	Phase  config.Phase // the call, e.g. "write"
	Batch  int64        // the batch the call was for; 0 for a call outside a batch
	Limit  time.Duration
	Err    *plugin.Error // the call's own failure
}

// Error says which plugin did not answer which call within how long, and
// what the host did: `sink "file" did not answer write of batch 7 within
// 60s; killed and restarted`.
func (e *Hung) Error() string {
	of := ""
	if e.Batch > 0 {
		of = fmt.Sprintf(" of batch %d", e.Batch)
	}
	return fmt.Sprintf("%s did not answer %s%s within %s; killed and restarted", e.Plugin, e.Phase, of, seconds(e.Limit))
}

// seconds shows a deadline of whole seconds as "60s", others as Go does.
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// Unwrap returns Err.
func (e *Hung) Unwrap() error { return e.Err }

// within runs call, a call of phase ph to plugin process p named who (for
// batch id, 0 if none), under the pipeline's deadline for ph. When the
// deadline passes before call answers, and ctx is not done (a stop is not a
// hang), it kills p at once and returns a *Hung.
func (d *driver) within(ctx context.Context, p *plugin.Process, who string, ph config.Phase, id int64, call func(context.Context) error) error {
	limit := d.p.Timeout(ph)
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := call(cctx)
	if err == nil || ctx.Err() != nil || !errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return err
	}
	p.Abort()
	var perr *plugin.Error
	if !errors.As(err, &perr) {
		perr = &plugin.Error{Plugin: who, Op: string(ph), Err: err}
	}
	h := &Hung{Plugin: who, Phase: ph, Batch: id, Limit: limit, Err: perr}
	d.Log.Warn("plugin did not answer in time; killed", "pipeline", d.p.Name, "plugin", who, "call", string(ph), "batch", id, "deadline", seconds(limit))
	return h
}

// srcName, snkName and name are how errors name the pipeline's plugins:
// `source "file"`.
func (d *driver) srcName() string  { return name(&d.p.Source) }
func (d *driver) snkName() string  { return name(&d.p.Sink) }
func name(b *config.Plugin) string { return fmt.Sprintf("%s %q", b.Kind, b.Name) }
