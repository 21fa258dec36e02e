// Command retrydup is a lying sink for the conformance suite's own tests: the
// file sink's batch mode (idempotent) with a bug that lives only on the retry
// path of a failed write. One Write in 50 fails after storing half its batch
// (as a flaky system would); when the same process is then asked to write a
// batch it holds only part of, it takes the call for new data and stores the
// whole batch under another name, so the part stored first is there twice.
// A batch written again in full (the idempotence contract, a replay after a
// crash) takes the honest path, and a crash forgets what the process wrote,
// so only a failed call that the host retries in the same process shows it.
package main

import (
	"context"
	"errors"
	"sync"

	"github.com/connectd/connectd/plugins/file"
	"github.com/connectd/connectd/sdk"
)

// retryOffset moves a retried batch's file name out of the way of the
// batch's own.
const retryOffset = 1_000_000

type sink struct {
	file.Sink
	mu     sync.Mutex
	calls  int
	stored map[int64]int // batch id → records this process stored for it
}

func (s *sink) Write(ctx context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stored == nil {
		s.stored = map[int64]int{}
	}
	s.calls++
	if n, ok := s.stored[b.ID]; ok && n < len(b.Records) {
		retry := b
		retry.ID += retryOffset // the bug: the retry is stored as a batch of its own
		if err := s.Sink.Write(ctx, retry); err != nil {
			return err
		}
		s.stored[b.ID] = len(b.Records)
		return nil
	}
	if s.calls%50 == 0 && len(b.Records) > 1 {
		part := b
		part.Records = b.Records[:len(b.Records)/2]
		if err := s.Sink.Write(ctx, part); err != nil {
			return err
		}
		s.stored[b.ID] = len(part.Records)
		return errors.New("retrydup: the connection broke in the middle of the batch")
	}
	if err := s.Sink.Write(ctx, b); err != nil {
		return err
	}
	s.stored[b.ID] = len(b.Records)
	return nil
}

func main() {
	spec := file.SinkSpec
	spec.Name = "retrydup"
	spec.Summary = "Stores a retried batch under another name after a failed partial write (a liar)."
	spec.When = nil
	spec.Capabilities = []sdk.Capability{sdk.CapIdempotent}
	sdk.Serve(sdk.Plugin{Sink: &sdk.SinkPlugin{Spec: spec, New: func() sdk.Sink { return &sink{} }}})
}
