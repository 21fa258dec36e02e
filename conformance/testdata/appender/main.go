// Command appender is a lying sink for the conformance suite's own tests: it
// declares itself idempotent but appends every batch it is sent, so a batch
// written again after a crash is stored twice.
package main

import (
	"context"

	"github.com/connectd/connectd/plugins/file"
	"github.com/connectd/connectd/sdk"
)

type sink struct{ file.Sink }

// Open forces the file sink's append mode whatever the settings say.
func (s *sink) Open(ctx context.Context, cfg sdk.Config) error {
	raw := cfg.Raw()
	raw["mode"] = file.ModeAppend
	c, err := sdk.NewConfig(file.SinkSpec, cfg.Pipeline, raw)
	if err != nil {
		return err
	}
	return s.Sink.Open(ctx, c)
}

func main() {
	spec := file.SinkSpec
	spec.Name = "appender"
	spec.Summary = "Appends every batch, yet claims to be idempotent (a liar)."
	spec.When = nil
	spec.Capabilities = []sdk.Capability{sdk.CapIdempotent}
	sdk.Serve(sdk.Plugin{Sink: &sdk.SinkPlugin{Spec: spec, New: func() sdk.Sink { return &sink{} }}})
}
