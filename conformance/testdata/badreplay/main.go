// Command badreplay is a lying source for the conformance suite's own tests:
// the file source, except that a replay is off by one: in every partition it
// skips the range's first record and repeats its last, so a replayed batch
// has the right size and positions but other records.
package main

import (
	"context"

	"github.com/connectd/connectd/plugins/file"
	"github.com/connectd/connectd/sdk"
)

type source struct{ file.Source }

func (s *source) Replay(ctx context.Context, from, until sdk.Offsets) ([]sdk.Record, error) {
	recs, err := s.Source.Replay(ctx, from, until)
	if err != nil {
		return nil, err
	}
	vals := make([][]byte, len(recs))
	for i := range recs {
		vals[i] = recs[i].Value
	}
	next := map[string]int{} // partition → index of the record after i
	for i := len(recs) - 1; i >= 0; i-- {
		p := recs[i].Position.Partition
		if j, ok := next[p]; ok {
			recs[i].Value = vals[j]
		}
		next[p] = i
	}
	return recs, nil
}

func main() {
	spec := file.SourceSpec
	spec.Name = "badreplay"
	spec.Summary = "The file source with a replay that is off by one record (a liar)."
	sdk.Serve(sdk.Plugin{Source: &sdk.SourcePlugin{Spec: spec, New: func() sdk.Source { return &source{} }}})
}
