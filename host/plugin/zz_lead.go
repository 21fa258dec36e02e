package plugin

import (
	"context"

	"github.com/connectd/connectd/sdk"
)

// Processor is a lead-branch stand-in.
type Processor struct{}

// Process is a stand-in.
func (p *Processor) Process(ctx context.Context, batch int64, recs []sdk.Record, replay bool) ([]sdk.Record, []sdk.Rejection, error) {
	return recs, nil, nil
}

// Open is a stand-in.
func (p *Processor) Open(ctx context.Context, pipeline string, values map[string]any) error {
	return nil
}

// Close is a stand-in.
func (p *Processor) Close(ctx context.Context) error { return nil }
