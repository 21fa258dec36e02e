// Command replayonce is a lying sink for the conformance suite's own tests:
// the file sink's append mode, made idempotent with a mark per batch, and a
// bug that lives only in a second recovery of the same batch.
//
// Before it appends batch N it writes a hidden mark file holding the append
// file's size and, once the batch is stored, how many records it stored.
// When batch N comes again it reads the mark: a batch stored in full is
// skipped, a batch stored in part (a Write cut short by a crash or a failed
// call) is cut off at its start and stored again. That is right, and keeps
// the idempotence contract. The bug: when it skips a batch stored in full,
// it deletes the batch's mark, taking the replay it was kept for as the last
// one. A batch written, replayed and replayed again (the host died during
// its first recovery, after the replay was written) finds no mark the third
// time and is appended again: every record of it twice.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/connectd/connectd/plugins/file"
	"github.com/connectd/connectd/sdk"
)

type sink struct {
	file.Sink
	mu   sync.Mutex
	path string // the append file
	dir  string
}

// Open forces the file sink's append mode whatever the settings say.
func (s *sink) Open(ctx context.Context, cfg sdk.Config) error {
	raw := cfg.Raw()
	raw["mode"] = file.ModeAppend
	c, err := sdk.NewConfig(file.SinkSpec, cfg.Pipeline, raw)
	if err != nil {
		return err
	}
	s.dir = c.String("dir")
	s.path = filepath.Join(s.dir, c.String("file"))
	return s.Sink.Open(ctx, c)
}

// mark is what the mark file of a batch holds.
type mark struct {
	start  int64 // size of the append file before the batch
	stored int   // records of the batch stored; -1 while they are written
}

func (s *sink) markPath(id int64) string {
	return filepath.Join(s.dir, fmt.Sprintf(".mark-%d", id))
}

func (s *sink) readMark(id int64) (mark, bool, error) {
	b, err := os.ReadFile(s.markPath(id))
	if os.IsNotExist(err) {
		return mark{}, false, nil
	}
	if err != nil {
		return mark{}, false, err
	}
	var m mark
	if _, err := fmt.Sscanf(string(b), "%d %d", &m.start, &m.stored); err != nil {
		return mark{}, false, fmt.Errorf("replayonce: mark of batch %d: %w", id, err)
	}
	return m, true, nil
}

func (s *sink) writeMark(id int64, m mark) error {
	return os.WriteFile(s.markPath(id), fmt.Appendf(nil, "%d %d", m.start, m.stored), 0o644)
}

func (s *sink) Write(ctx context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok, err := s.readMark(b.ID)
	if err != nil {
		return err
	}
	switch {
	case ok && m.stored == len(b.Records):
		// Stored in full: skip it. The bug: the mark goes with this replay.
		return os.Remove(s.markPath(b.ID))
	case ok:
		// Stored in part, at the end of the file: cut it off, store it again.
		if err := os.Truncate(s.path, m.start); err != nil {
			return err
		}
	default:
		st, err := os.Stat(s.path)
		if err != nil {
			return err
		}
		m.start = st.Size()
	}
	m.stored = -1
	if err := s.writeMark(b.ID, m); err != nil {
		return err
	}
	if err := s.Sink.Write(ctx, b); err != nil {
		return err
	}
	m.stored = len(b.Records)
	return s.writeMark(b.ID, m)
}

func main() {
	spec := file.SinkSpec
	spec.Name = "replayonce"
	spec.Summary = "Skips a replayed batch it stored in full, but only once (a liar)."
	spec.When = nil
	spec.Capabilities = []sdk.Capability{sdk.CapIdempotent}
	sdk.Serve(sdk.Plugin{Sink: &sdk.SinkPlugin{Spec: spec, New: func() sdk.Sink { return &sink{} }}})
}
