// Package discard owns the "discard" sink: it drops every record and counts them, for benchmarks.
package discard

import (
	"context"
	"sync/atomic"

	"github.com/connectd/connectd/sdk"
)

// Plugin is the discard plugin: a sink only.
var Plugin = sdk.Plugin{
	Sink: &sdk.SinkPlugin{Spec: Spec, New: func() sdk.Sink { return &Sink{} }},
}

// Spec is the discard sink's spec.
var Spec = sdk.Spec{
	Name:         "discard",
	Version:      "0.1.0",
	Kind:         sdk.KindSink,
	Summary:      "Drops every record and counts them; for benchmarks.",
	Capabilities: []sdk.Capability{sdk.CapIdempotent},
}

// Sink is the discard sink. Writing a batch again changes nothing that is
// kept (it keeps nothing), so it is idempotent; its counters count every
// Write, replays included.
type Sink struct {
	records atomic.Int64
	batches atomic.Int64
	bytes   atomic.Int64
}

var _ sdk.Sink = (*Sink)(nil)

// Open does nothing: the sink has no parameters.
func (s *Sink) Open(context.Context, sdk.Config) error { return nil }

// Write counts b's records and drops them.
func (s *Sink) Write(_ context.Context, b sdk.Batch) error {
	var n int64
	for i := range b.Records {
		n += int64(b.Records[i].Size())
	}
	s.records.Add(int64(len(b.Records)))
	s.batches.Add(1)
	s.bytes.Add(n)
	return nil
}

// Counts returns how many records, batches and bytes (Record.Size) were written.
func (s *Sink) Counts() (records, batches, bytes int64) {
	return s.records.Load(), s.batches.Load(), s.bytes.Load()
}

// Close does nothing.
func (s *Sink) Close(context.Context) error { return nil }
