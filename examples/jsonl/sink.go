package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/connectd/connectd/sdk"
)

// Plugin is the jsonl plugin: a sink only.
var Plugin = sdk.Plugin{
	Sink: &sdk.SinkPlugin{Spec: Spec, New: func() sdk.Sink { return &Sink{} }},
}

// Spec declares the sink, its one capability and its parameters.
var Spec = sdk.Spec{
	Name:    "jsonl",
	Version: "0.1.0",
	Kind:    sdk.KindSink,
	Summary: "Writes every batch as a JSON Lines file, dir/<pipeline>-<batch>.jsonl, atomically.",
	// One file per batch id, replaced atomically: writing a batch again
	// rewrites the same file with the same content, so the sink is idempotent.
	Capabilities: []sdk.Capability{sdk.CapIdempotent},
	Params: []sdk.Param{
		{Name: "dir", Type: sdk.TypeString, Required: true, Doc: "Directory the files are written to; created when missing."},
		{Name: "fsync", Type: sdk.TypeBool, Default: true, Doc: "Flush every file and the directory before a write returns."},
	},
}

// Sink is the jsonl sink. Each line is {"key":…, "value":…, "partition":…,
// "offset":…}; a value that is a JSON object is embedded as is, any other
// value as a string.
type Sink struct {
	dir, pipeline string
	fsync         bool
}

// The interfaces the sink implements: Lister lets the conformance suite read
// back what the sink holds.
var (
	_ sdk.Sink   = (*Sink)(nil)
	_ sdk.Lister = (*Sink)(nil)
)

type line struct {
	Key       string          `json:"key,omitempty"`
	Value     json.RawMessage `json:"value"`
	Partition string          `json:"partition"`
	Offset    int64           `json:"offset"`
}

// Open reads the configuration and makes the directory.
func (s *Sink) Open(_ context.Context, cfg sdk.Config) error {
	s.dir, s.fsync, s.pipeline = cfg.String("dir"), cfg.Bool("fsync"), cfg.Pipeline
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("jsonl: %w", err)
	}
	return nil
}

func (s *Sink) file(batch int64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s-%012d.jsonl", s.pipeline, batch))
}

// Write writes batch b to a temporary file, syncs it and renames it over the
// batch's file: a reader sees the whole batch or none of it, and Write
// returns only when the batch is durable.
func (s *Sink) Write(_ context.Context, b sdk.Batch) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range b.Records {
		v := json.RawMessage(r.Value)
		if !json.Valid(r.Value) || len(r.Value) == 0 || r.Value[0] != '{' {
			q, _ := json.Marshal(string(r.Value))
			v = q
		}
		if err := enc.Encode(line{Key: string(r.Key), Value: v, Partition: r.Position.Partition, Offset: r.Position.Offset}); err != nil {
			return fmt.Errorf("jsonl: batch %d: %w", b.ID, err)
		}
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("jsonl: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if _, err := tmp.Write(buf.Bytes()); err == nil && s.fsync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.file(b.ID))
	}
	if err == nil && s.fsync {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("jsonl: batch %d: %w", b.ID, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// List returns the value of every record the sink holds for the pipeline,
// one entry per stored line: what the conformance suite counts.
func (s *Sink) List(context.Context) ([][]byte, error) {
	files, err := filepath.Glob(filepath.Join(s.dir, s.pipeline+"-*.jsonl"))
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("jsonl: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				return nil, fmt.Errorf("jsonl: %s: %w", f, err)
			}
			v := []byte(l.Value)
			var str string
			if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &str) == nil {
				v = []byte(str)
			}
			out = append(out, v)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("jsonl: %s: %w", f, err)
		}
	}
	return out, nil
}

// Close has nothing to release: every Write closed its file.
func (s *Sink) Close(context.Context) error { return nil }
