package main

import (
	"strings"
	"testing"
)

// TestWorkerUsage: worker --help documents the command (exit 0); a file
// whose pipelines keep their checkpoint in a directory, or in two databases,
// is refused with exit status 2 before anything starts, naming the pipeline.
func TestWorkerUsage(t *testing.T) {
	dir := t.TempDir()
	r := connectd(t, dir, nil, "worker", "--help")
	if r.Code != 0 || !strings.Contains(r.Stderr, "--lease-ttl") || !strings.Contains(r.Stderr, "fenced") {
		t.Errorf("worker --help: exit %d\n%s", r.Code, r.Stderr)
	}
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 10, 1, 5, ""))
	r = connectd(t, dir, nil, "worker", cfg)
	if r.Code != 2 || !strings.Contains(r.Stderr, `checkpoint store "dir": workers share pipelines through PostgreSQL`) {
		t.Errorf("worker with a directory checkpoint: exit %d, want 2 naming the store\n%s", r.Code, r.Stderr)
	}
	two := write(t, dir, "two.hcl", `
pipeline "a" {
  delivery = "at-least-once"
  source "generator" {}
  sink "discard" {}
  checkpoint {
    store = "postgres"
    url   = "postgres://u@db1/x"
  }
}
pipeline "b" {
  delivery = "at-least-once"
  source "generator" {}
  sink "discard" {}
  checkpoint {
    store = "postgres"
    url   = "postgres://u@db2/x"
  }
}
`)
	r = connectd(t, dir, nil, "worker", two)
	if r.Code != 2 || !strings.Contains(r.Stderr, "workers need one database and schema for all") {
		t.Errorf("worker with two databases: exit %d, want 2\n%s", r.Code, r.Stderr)
	}
}
