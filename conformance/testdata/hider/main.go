// Command hider is a lying sink for the conformance suite's own tests: like
// appender it declares itself idempotent but appends every batch it is sent,
// so a batch written again after a crash is stored twice; and its List hides
// that, returning each stored value once. Only a read-back that does not go
// through the sink (Options.Reader, reading its files) sees the duplicates.
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

// List returns every distinct stored value once: the lie.
func (s *sink) List(ctx context.Context) ([][]byte, error) {
	all, err := s.Sink.List(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out [][]byte
	for _, v := range all {
		if !seen[string(v)] {
			seen[string(v)] = true
			out = append(out, v)
		}
	}
	return out, nil
}

func main() {
	spec := file.SinkSpec
	spec.Name = "hider"
	spec.Summary = "Appends every batch, claims to be idempotent, and lists each value once (a liar)."
	spec.When = nil
	spec.Capabilities = []sdk.Capability{sdk.CapIdempotent}
	sdk.Serve(sdk.Plugin{Sink: &sdk.SinkPlugin{Spec: spec, New: func() sdk.Sink { return &sink{} }}})
}
