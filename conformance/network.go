package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// networkAttempts bounds the runs of a network row: a run that fails under
// the faults (a plugin that cannot reach its system during a partition ends
// the run with exit 1) is started again, as a supervisor would.
const networkAttempts = 10

// networkBatch is the max_records of the network row's pipelines.
const networkBatch = 2

// networkRuns drains the pipeline while Options.Network injects faults into
// its connections, starting it again after every run that failed under them,
// and returns what the sink holds once a run drained it.
func (s *suite) networkRuns(ctx context.Context, dir, name string) (*listed, string, error) {
	var steps []string
	nctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	var injected string
	var nerr error
	go func() {
		defer close(done)
		injected, nerr = s.o.Network(nctx, Pipeline{Name: name, Dir: dir})
	}()
	finish := func() {
		stop()
		<-done
		if injected != "" {
			steps = append([]string{"network faults: " + injected}, steps...)
		}
	}
	ret := func(l *listed, err error) (*listed, string, error) {
		finish()
		if err == nil && nerr != nil && !errors.Is(nerr, context.Canceled) {
			err = fmt.Errorf("Options.Network failed: %w", nerr)
		}
		return l, strings.Join(steps, "; "), err
	}
	for attempt := 1; ; attempt++ {
		r, err := s.child(ctx, dir, name, nil, modeRun, pipelineFile, "list")
		if err != nil {
			return ret(nil, err)
		}
		if r.code == 0 && r.status.Listed != nil {
			steps = append(steps, fmt.Sprintf("run %d drained (%d batches, %d replayed, %d plugin failures)", attempt, r.status.Batches, r.status.Replays, r.status.Warnings))
			return ret(r.status.Listed, nil)
		}
		if r.killed {
			return ret(nil, fmt.Errorf("run %d was killed: %s", attempt, r.tail()))
		}
		if attempt == networkAttempts {
			return ret(nil, fmt.Errorf("the pipeline did not drain in %d runs under network faults; the last (exit %d): %s", attempt, r.code, r.tail()))
		}
		steps = append(steps, fmt.Sprintf("run %d failed under the faults (exit %d: %s)", attempt, r.code, firstLine(lastLine(r.stderr))))
		select {
		case <-ctx.Done():
			return ret(nil, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
