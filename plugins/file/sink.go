package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/connectd/connectd/sdk"
)

// The sink's modes.
const (
	ModeBatch         = "batch"
	ModeAppend        = "append"
	ModeTransactional = "transactional"
)

// offsetsDir is the directory, inside dir, where transactional mode keeps
// each batch's until offsets.
const offsetsDir = ".offsets"

// tmpPrefix starts the name of every file the sink has not finished writing.
const tmpPrefix = ".tmp-"

// Sink is the file sink. It writes every record's value followed by "\n"
// (a value holding a newline is refused) and never lets a reader of its
// directory see a partial file or a torn line: see SinkSpec for the modes.
// Hidden files (names starting with ".") are the sink's bookkeeping.
type Sink struct {
	mu       sync.Mutex
	dir      string
	mode     string
	fsync    bool
	pipeline string

	app     *os.File // append mode: the file, opened O_APPEND
	appSize int64    // append mode: its size after the last complete write

	last int64 // transactional mode: highest batch committed that this sink knows of
}

var (
	_ sdk.Sink          = (*Sink)(nil)
	_ sdk.Transactional = (*Sink)(nil)
	_ sdk.Lister        = (*Sink)(nil)
)

// committedOffsets is the content of dir/.offsets/batch-<id>.json.
type committedOffsets struct {
	Batch    int64       `json:"batch"`
	Pipeline string      `json:"pipeline"`
	Until    sdk.Offsets `json:"until"`
}

// BatchFile returns the name of batch id's file in batch and transactional modes.
func BatchFile(id int64) string { return fmt.Sprintf("batch-%012d.txt", id) }

// parseBatchFile returns the id of a batch file name.
func parseBatchFile(name string) (int64, bool) {
	digits, ok := strings.CutPrefix(name, "batch-")
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, ".txt"); !ok || len(digits) < 12 {
		return 0, false
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id < 0 || BatchFile(id) != name {
		return 0, false
	}
	return id, true
}

func offsetsFile(id int64) string { return fmt.Sprintf("batch-%012d.json", id) }

// Open checks the configuration, creates dir when missing and clears what a
// crash may have left: temporary files, and in append mode a torn last line.
func (s *Sink) Open(_ context.Context, cfg sdk.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir = cfg.String("dir")
	if cfg.Tasks > 1 { // the tasks of one pipeline share the block's dir
		s.dir = filepath.Join(s.dir, cfg.Pipeline)
	}
	s.mode = cfg.String("mode")
	s.fsync = cfg.Bool("fsync")
	s.pipeline = cfg.Pipeline
	name := cfg.String("file") // mode, dir and file are checked by the spec's rules
	_, statErr := os.Stat(s.dir)
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := s.syncDir(filepath.Dir(filepath.Clean(s.dir))); err != nil {
			return err
		}
	}
	if err := removeTemps(s.dir); err != nil {
		return err
	}
	switch s.mode {
	case ModeAppend:
		return s.openAppend(name)
	case ModeTransactional:
		od := filepath.Join(s.dir, offsetsDir)
		if err := os.MkdirAll(od, 0o755); err != nil {
			return fmt.Errorf("file sink: %w", err)
		}
		if err := removeTemps(od); err != nil {
			return err
		}
		if err := s.syncDir(s.dir); err != nil {
			return err
		}
		c, err := s.lastCommitted()
		s.last = c.Batch
		return err
	}
	return nil
}

// removeTemps deletes the temporary files a crashed writer left in dir.
func removeTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("file sink: removing a stale temporary file: %w", err)
			}
		}
	}
	return nil
}

// openAppend opens the append file and cuts a torn tail: the bytes after its
// last newline, which a crash in the middle of a write left (the
// at-least-once replay writes those records again).
func (s *Sink) openAppend(name string) error {
	path := filepath.Join(s.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		var end int64
		if end, err = lastLineEnd(f, path, fi.Size()); err == nil && end < fi.Size() {
			err = f.Truncate(end)
		}
		s.appSize = end
	}
	if err == nil {
		err = s.syncFile(f)
	}
	if err == nil {
		err = s.syncDir(s.dir)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("file sink: opening %s: %w", path, err)
	}
	s.app = f
	return nil
}

// content renders a batch as its file content: every value and a newline.
func content(b sdk.Batch) ([]byte, error) {
	n := 0
	for i := range b.Records {
		n += len(b.Records[i].Value) + 1
	}
	buf := make([]byte, 0, n)
	for i := range b.Records {
		v := b.Records[i].Value
		if bytes.IndexByte(v, '\n') >= 0 {
			return nil, fmt.Errorf("file sink: batch %d: record %d (%s) holds a newline; the file sink writes one record per line",
				b.ID, i, b.Records[i].Position)
		}
		buf = append(buf, v...)
		buf = append(buf, '\n')
	}
	return buf, nil
}

// Write writes batch b and returns once it is durable (with fsync set).
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := content(b)
	if err != nil {
		return err
	}
	switch s.mode {
	case ModeBatch:
		if len(b.Records) == 0 {
			return nil
		}
		return s.writeAtomic(s.dir, BatchFile(b.ID), data, nil)
	case ModeAppend:
		return s.append(data)
	case ModeTransactional:
		return s.writeTransactional(ctx, b, data)
	}
	return fmt.Errorf("file sink: not open")
}

// append writes data at the end of the append file in one write and syncs
// it. A failed write is cut off again so that later writes do not follow a
// torn line.
func (s *Sink) append(data []byte) error {
	if s.app == nil {
		return fmt.Errorf("file sink: not open")
	}
	if len(data) == 0 {
		return nil
	}
	if _, err := s.app.Write(data); err != nil {
		if terr := s.app.Truncate(s.appSize); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("file sink: appending to %s: %w", s.app.Name(), err)
	}
	if err := s.syncFile(s.app); err != nil {
		return fmt.Errorf("file sink: %s: %w", s.app.Name(), err)
	}
	s.appSize += int64(len(data))
	return nil
}

// writeTransactional stores b's until offsets, then its file: the rename of
// the batch file commits both. An empty batch gets an empty file, so that
// its offsets are committed too. The fault point sink.write.commit
// (sdk.FaultBeforeCommit) fires with the batch file written under its
// temporary name, just before that rename.
func (s *Sink) writeTransactional(ctx context.Context, b sdk.Batch, data []byte) error {
	last := s.last
	if _, err := os.Stat(filepath.Join(s.dir, BatchFile(b.ID))); err == nil {
		last = max(last, b.ID)
	}
	if b.ID <= last {
		return fmt.Errorf("transactional file sink: batch %d is already committed (last committed %d); the host must not write it again", b.ID, last)
	}
	meta, err := json.Marshal(committedOffsets{Batch: b.ID, Pipeline: s.pipeline, Until: b.Until})
	if err != nil {
		return fmt.Errorf("file sink: batch %d: %w", b.ID, err)
	}
	if err := s.writeAtomic(filepath.Join(s.dir, offsetsDir), offsetsFile(b.ID), append(meta, '\n'), nil); err != nil {
		return err
	}
	commit := func() error { return sdk.FaultBeforeCommit(ctx) }
	if err := s.writeAtomic(s.dir, BatchFile(b.ID), data, commit); err != nil {
		return err
	}
	s.last = b.ID
	return nil
}

// writeAtomic replaces dir/name with data: a hidden temporary file, synced,
// renamed over name, and the directory synced. A non-nil commit runs just
// before the rename; its error leaves name as it was.
func (s *Sink) writeAtomic(dir, name string, data []byte, commit func() error) (err error) {
	tmp, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("file sink: writing %s: %w", filepath.Join(dir, name), err)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = s.syncFile(tmp); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if commit != nil {
		if err = commit(); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return s.syncDir(dir)
}

func (s *Sink) syncFile(f *os.File) error {
	if !s.fsync {
		return nil
	}
	return f.Sync()
}

func (s *Sink) syncDir(dir string) error {
	if !s.fsync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file sink: syncing directory %s: %w", dir, err)
	}
	return nil
}

// LastCommitted returns, in transactional mode, the highest batch whose
// batch file exists, with the until offsets stored for it.
func (s *Sink) LastCommitted(context.Context) (sdk.Committed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode != ModeTransactional {
		return sdk.Committed{}, fmt.Errorf("file sink: LastCommitted needs mode %q, not %q", ModeTransactional, s.mode)
	}
	c, err := s.lastCommitted()
	if err == nil {
		s.last = max(s.last, c.Batch)
	}
	return c, err
}

func (s *Sink) lastCommitted() (sdk.Committed, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return sdk.Committed{}, fmt.Errorf("file sink: %w", err)
	}
	var last int64
	for _, e := range entries {
		if id, ok := parseBatchFile(e.Name()); ok && e.Type().IsRegular() && id > last {
			last = id
		}
	}
	if last == 0 {
		return sdk.Committed{Until: sdk.Offsets{}}, nil
	}
	path := filepath.Join(s.dir, offsetsDir, offsetsFile(last))
	raw, err := os.ReadFile(path)
	if err != nil {
		return sdk.Committed{}, fmt.Errorf("file sink: batch %d is in %s but its offsets are not: %w", last, s.dir, err)
	}
	var c committedOffsets
	if err := json.Unmarshal(raw, &c); err != nil {
		return sdk.Committed{}, fmt.Errorf("file sink: %s: %w", path, err)
	}
	if c.Pipeline != s.pipeline || c.Batch != last {
		return sdk.Committed{}, fmt.Errorf("file sink: %s holds batch %d of pipeline %q, not batch %d of %q; give each pipeline its own dir",
			path, c.Batch, c.Pipeline, last, s.pipeline)
	}
	if c.Until == nil {
		c.Until = sdk.Offsets{}
	}
	return sdk.Committed{Batch: c.Batch, Until: c.Until}, nil
}

// List returns every line of every regular file in dir that is not hidden:
// the batch files and the append file, one entry per stored line. A last
// line without a newline is listed too.
func (s *Sink) List(context.Context) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	var out [][]byte
	for _, e := range entries { // ReadDir sorts by name
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("file sink: %w", err)
		}
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				i = len(data)
			}
			out = append(out, data[:i:i])
			data = data[min(i+1, len(data)):]
		}
	}
	return out, nil
}

// Close closes the append file.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app == nil {
		return nil
	}
	err := s.app.Close()
	s.app = nil
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("file sink: %w", err)
	}
	return nil
}
