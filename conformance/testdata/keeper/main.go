// Command keeper is a lying sink for the conformance suite's own tests: the
// file sink in batch mode, durable and idempotent, that keeps the last batch
// it wrote without copying its records and writes it again on Close, "to be
// sure". A batch's records are valid only until Write returns: in a run, the
// sdk has reused (the suite: poisoned) their memory by then.
package main

import (
	"context"

	"github.com/connectd/connectd/plugins/file"
	"github.com/connectd/connectd/sdk"
)

type sink struct {
	file.Sink
	last *sdk.Batch
}

// Write writes b and keeps it, references and all.
func (s *sink) Write(ctx context.Context, b sdk.Batch) error {
	if err := s.Sink.Write(ctx, b); err != nil {
		return err
	}
	s.last = &b
	return nil
}

// Close writes the last batch again from the records it kept.
func (s *sink) Close(ctx context.Context) error {
	if s.last != nil {
		if err := s.Sink.Write(ctx, *s.last); err != nil {
			return err
		}
	}
	return s.Sink.Close(ctx)
}

func main() {
	spec := file.SinkSpec
	spec.Name = "keeper"
	spec.Summary = "The file sink in batch mode, keeping references to a batch past Write (a liar)."
	spec.When = nil
	spec.Capabilities = []sdk.Capability{sdk.CapIdempotent}
	sdk.Serve(sdk.Plugin{Sink: &sdk.SinkPlugin{Spec: spec, New: func() sdk.Sink { return &sink{} }}})
}
