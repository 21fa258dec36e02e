// Command counter is a lying processor for the conformance suite's own
// tests: it declares itself deterministic (unless claim = false) but drops
// the records whose offset plus the number of batches this process has
// processed is a multiple of 4, so the same batch processed again, or by a
// restarted process after a crash, keeps other records. In a faultless run
// its output is the same every time; only a replay tells.
package main

import (
	"context"

	"github.com/connectd/connectd/sdk"
)

type processor struct{ calls int64 }

func (p *processor) Open(context.Context, sdk.Config) error { return nil }

func (p *processor) Process(_ context.Context, b sdk.Batch) ([]sdk.Record, error) {
	p.calls++
	var out []sdk.Record
	for _, r := range b.Records {
		if (r.Position.Offset+p.calls)%4 != 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

func (p *processor) Close(context.Context) error { return nil }

func main() {
	spec := sdk.Spec{
		Name:    "counter",
		Version: "0.0.1",
		Kind:    sdk.KindProcessor,
		Summary: "Drops records by a per-process batch counter while it claims to be deterministic (a liar).",
		Params: []sdk.Param{
			{Name: "claim", Type: sdk.TypeBool, Default: true, Doc: "Whether to declare capability deterministic."},
		},
		When: []sdk.Conditional{{Capability: sdk.CapDeterministic, Param: "claim", Values: []string{"true"}}},
	}
	sdk.Serve(sdk.Plugin{Processor: &sdk.ProcessorPlugin{Spec: spec, New: func() sdk.Processor { return &processor{} }}})
}
