// Command ackfirst is a lying sink for the conformance suite's own tests: it
// acknowledges a batch at once and writes it half a second later, in the
// background. It flushes on Close, so a run without crashes looks fine; a
// crash between the acknowledgement and the write loses the batch.
package main

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/connectd/connectd/plugins/file"
	"github.com/connectd/connectd/sdk"
)

type sink struct {
	file.Sink
	pending sync.WaitGroup
}

// Write returns before the batch is written. Its lie is about durability
// only: it copies the records it writes later (they are valid until Write
// returns).
func (s *sink) Write(_ context.Context, b sdk.Batch) error {
	recs := make([]sdk.Record, len(b.Records))
	for i, r := range b.Records {
		recs[i] = sdk.Record{Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value), Timestamp: r.Timestamp, Position: r.Position}
	}
	b.Records = recs
	s.pending.Add(1)
	go func() {
		defer s.pending.Done()
		time.Sleep(500 * time.Millisecond)
		_ = s.Sink.Write(context.Background(), b)
	}()
	return nil
}

func (s *sink) Close(ctx context.Context) error {
	s.pending.Wait()
	return s.Sink.Close(ctx)
}

func main() {
	spec := file.SinkSpec
	spec.Name = "ackfirst"
	spec.Summary = "The file sink in batch mode, acknowledging before it writes (a liar)."
	spec.When = nil
	spec.Capabilities = []sdk.Capability{sdk.CapIdempotent}
	sdk.Serve(sdk.Plugin{Sink: &sdk.SinkPlugin{Spec: spec, New: func() sdk.Sink { return &sink{} }}})
}
