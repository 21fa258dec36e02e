package main

import (
	"context"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/host/checkpoint/pgstore"
	"github.com/connectd/connectd/host/config"
)

// openCheckpoint opens and locks the checkpoint of p in the store its
// configuration names: a directory ("dir") or PostgreSQL tables
// ("postgres"). It is connectd's pipeline.Opener: the binary links the
// PostgreSQL store, the host's packages do not need to.
func openCheckpoint(ctx context.Context, p *config.Pipeline) (*checkpoint.Store, error) {
	if p.Checkpoint.Store == config.StorePostgres {
		return pgstore.Open(ctx, p.Checkpoint.URL, p.Checkpoint.Schema, p.Name)
	}
	return checkpoint.Open(p.Checkpoint.Dir, p.Name)
}

// inspectCheckpoint reads the checkpoint of p without its lock, for showing
// it while the pipeline runs (see checkpoint.Inspect).
func inspectCheckpoint(ctx context.Context, p *config.Pipeline) (*checkpoint.Store, error) {
	if p.Checkpoint.Store == config.StorePostgres {
		return pgstore.Inspect(ctx, p.Checkpoint.URL, p.Checkpoint.Schema, p.Name)
	}
	return checkpoint.Inspect(p.Checkpoint.Dir, p.Name)
}
