package pipeline

import (
	"context"
	"fmt"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/host/config"
)

// Opener opens and locks the checkpoint of a pipeline in the store its
// configuration names, as checkpoint.Open does for a directory. Every store
// gives the same Store, with the same format, history and errors
// (checkpoint.ErrLocked, checkpoint.ErrCorrupt).
type Opener func(ctx context.Context, p *config.Pipeline) (*checkpoint.Store, error)

// openDir is the Opener of a host that links only the directory store: it
// refuses any other store.
func openDir(_ context.Context, p *config.Pipeline) (*checkpoint.Store, error) {
	if p.Checkpoint.Store != config.DefaultStore {
		return nil, fmt.Errorf("checkpoint store %q: this host opens only directory stores", p.Checkpoint.Store)
	}
	return checkpoint.Open(p.Checkpoint.Dir, p.Name)
}
