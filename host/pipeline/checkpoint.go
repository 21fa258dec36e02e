package pipeline

import (
	"context"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/host/checkpoint/pgstore"
	"github.com/connectd/connectd/host/config"
)

// OpenCheckpoint opens and locks the checkpoint of p in the store its
// configuration names: a directory ("dir") or PostgreSQL tables ("postgres").
// Both give the same Store, with the same format, history and errors
// (checkpoint.ErrLocked, checkpoint.ErrCorrupt).
func OpenCheckpoint(ctx context.Context, p *config.Pipeline) (*checkpoint.Store, error) {
	if p.Checkpoint.Store == config.StorePostgres {
		return pgstore.Open(ctx, p.Checkpoint.URL, p.Checkpoint.Schema, p.Name)
	}
	return checkpoint.Open(p.Checkpoint.Dir, p.Name)
}

// InspectCheckpoint reads the checkpoint of p without its lock, for showing it
// while the pipeline runs (see checkpoint.Inspect).
func InspectCheckpoint(ctx context.Context, p *config.Pipeline) (*checkpoint.Store, error) {
	if p.Checkpoint.Store == config.StorePostgres {
		return pgstore.Inspect(ctx, p.Checkpoint.URL, p.Checkpoint.Schema, p.Name)
	}
	return checkpoint.Inspect(p.Checkpoint.Dir, p.Name)
}
