package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/sdk"
)

// MaxLine is the longest line, without its newline, the file source reads.
const MaxLine = 16 << 20

// readBuffer is the size of each open file's read buffer.
const readBuffer = 1 << 20

// Source is the file source. A record is one line terminated by '\n': its
// value is the line without the newline (no key, no headers, zero
// timestamp), its offset the byte offset of the line's start; the next
// offset is the one after the newline. A final line without a newline is not
// a record yet: it may still be being written.
//
// Run as one of several tasks (sdk.Config.Tasks > 1), it reads, replays and
// ends only the files taskOf gives its task, and refuses offsets that name
// another task's file.
type Source struct {
	mu       sync.Mutex
	patterns []string
	poll     time.Duration
	parts    map[string]*partition // by partition name

	task, tasks int // sdk.Config's Task and Tasks
}

var (
	_ sdk.Source   = (*Source)(nil)
	_ sdk.Replayer = (*Source)(nil)
	_ sdk.Ender    = (*Source)(nil)
)

// partition is one file being read: an open handle and where reading is.
type partition struct {
	name, path string
	f          *os.File
	r          *bufio.Reader
	pos        int64  // offset of the next line start
	partial    []byte // bytes at pos already taken from r, no newline among them yet
	line       []byte // the complete line at pos, without its newline, when held is true
	held       bool
}

// Open checks the configuration. It opens no file: files are found on Read.
func (s *Source) Open(_ context.Context, cfg sdk.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.patterns = cfg.Strings("paths")
	s.poll = cfg.Duration("poll")
	s.task, s.tasks = cfg.Task, max(cfg.Tasks, 1)
	s.parts = map[string]*partition{}
	if len(s.patterns) == 0 {
		return sdk.Configf("paths is empty; give at least one file or glob")
	}
	for _, p := range s.patterns {
		if _, err := filepath.Match(p, ""); err != nil {
			return sdk.Configf("path %q is not a valid glob: %w", p, err)
		}
	}
	return nil // poll is checked by the spec's rules
}

// PartitionName returns the partition name of a file path: the cleaned path
// with forward slashes, prefixed by "./" when it has no directory, so that
// every name has a group ("in/a.txt", "./a.txt").
func PartitionName(path string) string {
	name := filepath.ToSlash(filepath.Clean(path))
	if !strings.Contains(name, "/") {
		name = "./" + name
	}
	return name
}

// pathOf is the inverse of PartitionName.
func pathOf(name string) string { return filepath.FromSlash(name) }

// files returns the partition names of the regular files the patterns match
// now that belong to this task, sorted.
func (s *Source) files() ([]string, error) {
	seen := map[string]bool{}
	var names []string
	for _, pat := range s.patterns {
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("file source: path %q: %w", pat, err)
		}
		for _, m := range matches {
			name := PartitionName(m)
			if seen[name] || taskOf(name, s.tasks) != s.task {
				continue
			}
			seen[name] = true
			if fi, err := os.Stat(m); err != nil || !fi.Mode().IsRegular() {
				continue // gone since the glob, or a directory
			}
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// part returns the open partition for name, opening the file when needed.
func (s *Source) part(name string) (*partition, error) {
	if p := s.parts[name]; p != nil {
		return p, nil
	}
	f, err := os.Open(pathOf(name))
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	p := &partition{name: name, path: pathOf(name), f: f, r: bufio.NewReaderSize(f, readBuffer), pos: -1}
	s.parts[name] = p
	return p, nil
}

// seek makes p read from off, a real offset, unless it already does. It
// checks that off is within the file and at a line start.
func (p *partition) seek(off int64) error {
	fi, err := p.f.Stat()
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	if off == p.pos {
		if fi.Size() < p.pos+int64(len(p.partial)) {
			return fmt.Errorf("file source: %s shrank to %d bytes while being read at offset %d; files must only grow", p.path, fi.Size(), p.pos)
		}
		return nil
	}
	if off > fi.Size() {
		return fmt.Errorf("file source: offset %d is past the end of %s (%d bytes); was the file truncated or replaced?", off, p.path, fi.Size())
	}
	if err := atLineStart(p.f, p.path, off); err != nil {
		return err
	}
	if _, err := p.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	p.r.Reset(p.f)
	p.pos, p.partial, p.line, p.held = off, p.partial[:0], nil, false
	return nil
}

// atLineStart reports an error unless off is 0 or follows a newline.
func atLineStart(f *os.File, path string, off int64) error {
	if off == 0 {
		return nil
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], off-1); err != nil {
		return fmt.Errorf("file source: %s at offset %d: %w", path, off, err)
	}
	if b[0] != '\n' {
		return fmt.Errorf("file source: offset %d of %s is not at the start of a line", off, path)
	}
	return nil
}

// peek returns the complete line at p.pos without its newline, or false when
// the file has no complete line there yet. The line stays valid until take
// or seek.
func (p *partition) peek() ([]byte, bool, error) {
	if p.held {
		return p.line, true, nil
	}
	for {
		chunk, err := p.r.ReadSlice('\n')
		switch {
		case err == nil:
			line := chunk
			if len(p.partial) > 0 {
				p.partial = append(p.partial, chunk...)
				line = p.partial
			}
			line = line[:len(line)-1]
			if len(line) > MaxLine {
				return nil, false, p.tooLong()
			}
			p.line, p.held = line, true
			return line, true, nil
		case errors.Is(err, bufio.ErrBufferFull) || errors.Is(err, io.EOF):
			p.partial = append(p.partial, chunk...)
			if len(p.partial) > MaxLine {
				return nil, false, p.tooLong()
			}
			if errors.Is(err, io.EOF) {
				return nil, false, nil
			}
		default:
			return nil, false, fmt.Errorf("file source: reading %s at offset %d: %w", p.path, p.pos+int64(len(p.partial)), err)
		}
	}
}

func (p *partition) tooLong() error {
	return fmt.Errorf("file source: the line at offset %d of %s is longer than %d bytes", p.pos, p.path, MaxLine)
}

// take moves past the line peek returned.
func (p *partition) take() {
	p.pos += int64(len(p.line)) + 1
	p.line, p.held, p.partial = nil, false, p.partial[:0]
}

// close closes p's file.
func (p *partition) close() error { return p.f.Close() }

// Read returns whole lines from the files, file after file in partition
// name order, starting at from: a partition missing from from or at -2
// starts at 0; -1 means after the last complete line at the time of the
// call. It returns as soon as it has lines; when there are none it looks at
// the files again every poll until limits.MaxWait has passed, then returns an
// empty Read (at once when every file has reached its limits.Stop offset).
// From and Until hold every file matched.
func (s *Source) Read(ctx context.Context, from sdk.Offsets, limits sdk.Limits) (sdk.Read, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parts == nil {
		return sdk.Read{}, fmt.Errorf("file source: not open")
	}
	if err := s.foreign("the batch's start", from); err != nil {
		return sdk.Read{}, err
	}
	deadline := time.Now().Add(limits.MaxWait)
	starts := sdk.Offsets{} // resolved once per Read, so -1 stays put while polling
	for {
		rd, err := s.readOnce(from, starts, limits)
		if err != nil || len(rd.Records) > 0 {
			return rd, err
		}
		wait := time.Until(deadline)
		if wait <= 0 || atStop(rd.Until, limits.Stop) {
			return rd, nil
		}
		t := time.NewTimer(min(wait, s.poll))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return sdk.Read{}, ctx.Err()
		}
	}
}

// atStop reports whether every partition of until has a stop offset and
// has reached it: nothing more can come in drain mode.
func atStop(until, stop sdk.Offsets) bool {
	if stop == nil {
		return false
	}
	for p, u := range until {
		if s, ok := stop[p]; !ok || u < s {
			return false
		}
	}
	return true
}

// readOnce is one pass of Read over the files matched now.
func (s *Source) readOnce(from, starts sdk.Offsets, limits sdk.Limits) (sdk.Read, error) {
	names, err := s.files()
	if err != nil {
		return sdk.Read{}, err
	}
	s.forget(names)
	rd := sdk.Read{From: make(sdk.Offsets, len(names)), Until: make(sdk.Offsets, len(names))}
	maxRecords := max(limits.MaxRecords, 1)
	var arena []byte
	var size int64
	full := false
	for _, name := range names {
		p, err := s.part(name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed since the glob
			}
			return sdk.Read{}, err
		}
		start, ok := starts[name]
		if !ok {
			if start, err = p.resolve(from, name); err != nil {
				return sdk.Read{}, err
			}
			starts[name] = start
		}
		if err := p.seek(start); err != nil {
			return sdk.Read{}, err
		}
		rd.From[name] = start
		stop, hasStop := limits.Stop[name]
		if !hasStop && limits.Stop != nil {
			continue // drain mode: a file that appeared after the run started is left for later
		}
		for !full && (!hasStop || p.pos < stop) {
			line, ok, err := p.peek()
			if err != nil {
				return sdk.Read{}, err
			}
			if !ok {
				break
			}
			if limits.MaxBytes > 0 && len(rd.Records) > 0 && size+int64(len(line)) > limits.MaxBytes {
				full = true
				break
			}
			if arena == nil {
				arena = make([]byte, 0, arenaSize(limits))
			}
			at := len(arena)
			arena = append(arena, line...)
			rd.Records = append(rd.Records, sdk.Record{
				Value:    arena[at:len(arena):len(arena)],
				Position: sdk.Position{Partition: name, Offset: p.pos},
			})
			size += int64(len(line))
			p.take()
			full = len(rd.Records) >= maxRecords
		}
		rd.Until[name] = p.pos
	}
	return rd, nil
}

// arenaSize is the first allocation for a batch's values.
func arenaSize(l sdk.Limits) int {
	if l.MaxBytes > 0 {
		return int(min(l.MaxBytes, 4<<20))
	}
	return 256 << 10
}

// resolve returns where p starts for a read from from.
func (p *partition) resolve(from sdk.Offsets, name string) (int64, error) {
	off, ok := from[name]
	switch {
	case !ok || off == sdk.Earliest:
		return 0, nil
	case off == sdk.Latest:
		fi, err := p.f.Stat()
		if err != nil {
			return 0, fmt.Errorf("file source: %w", err)
		}
		end, err := lastLineEnd(p.f, p.path, fi.Size())
		if err != nil {
			return 0, fmt.Errorf("file source: %w", err)
		}
		return end, nil
	case off < 0:
		return 0, fmt.Errorf("file source: offset %d for %s: want >= 0, -2 (earliest) or -1 (latest)", off, name)
	}
	return off, nil
}

// forget closes the files of partitions no longer matched.
func (s *Source) forget(names []string) {
	if len(s.parts) == 0 {
		return
	}
	keep := make(map[string]bool, len(names))
	for _, n := range names {
		keep[n] = true
	}
	for n, p := range s.parts {
		if !keep[n] {
			p.close()
			delete(s.parts, n)
		}
	}
}

// lastLineEnd returns the offset after the last newline in the first size
// bytes of f (0 when there is none).
func lastLineEnd(f *os.File, path string, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return 0, fmt.Errorf("reading %s at offset %d: %w", path, start, err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// Replay reads the byte range [from, until) of every partition of until
// again, file after file in partition name order as Read does, and returns
// its lines. The range must start and end at line boundaries and the file
// must still hold it.
func (s *Source) Replay(_ context.Context, from, until sdk.Offsets) ([]sdk.Record, error) {
	if err := s.foreign("the replayed batch", until); err != nil {
		return nil, err
	}
	var recs []sdk.Record
	for _, r := range sdk.RangesOf(from, until) {
		if r.From == sdk.Earliest {
			r.From = 0
		}
		if r.From < 0 || r.Until < r.From {
			return nil, fmt.Errorf("file source: cannot replay %s [%d, %d): want real offsets, from <= until", r.Partition, r.From, r.Until)
		}
		if r.From == r.Until {
			continue
		}
		var err error
		if recs, err = replayRange(recs, r); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// replayRange appends the lines of one range to recs.
func replayRange(recs []sdk.Record, r sdk.Range) ([]sdk.Record, error) {
	path := pathOf(r.Partition)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("file source: cannot replay %s [%d, %d): "+format, append([]any{path, r.From, r.Until}, args...)...)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fail("%w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fail("%w", err)
	}
	if fi.Size() < r.Until {
		return nil, fail("the file is %d bytes, shorter than %d", fi.Size(), r.Until)
	}
	if r.Until-r.From > 1<<32 {
		return nil, fail("the range is larger than 4 GiB")
	}
	// Read one byte before the range too, to check it starts a line.
	start := max(r.From-1, 0)
	buf := make([]byte, r.Until-start)
	if _, err := f.ReadAt(buf, start); err != nil {
		return nil, fail("%w", err)
	}
	if r.From > 0 {
		if buf[0] != '\n' {
			return nil, fail("offset %d is not at the start of a line", r.From)
		}
		buf = buf[1:]
	}
	if buf[len(buf)-1] != '\n' {
		return nil, fail("offset %d is not at the end of a line", r.Until)
	}
	off := r.From
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i > MaxLine {
			return nil, fail("the line at offset %d is longer than %d bytes", off, MaxLine)
		}
		recs = append(recs, sdk.Record{
			Value:    buf[:i:i],
			Position: sdk.Position{Partition: r.Partition, Offset: off},
		})
		off += int64(i) + 1
		buf = buf[i+1:]
	}
	return recs, nil
}

// End returns, for every file matched now, the offset after its last
// complete line.
func (s *Source) End(context.Context) (sdk.Offsets, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parts == nil {
		return nil, fmt.Errorf("file source: not open")
	}
	names, err := s.files()
	if err != nil {
		return nil, err
	}
	end := make(sdk.Offsets, len(names))
	for _, name := range names {
		f, err := os.Open(pathOf(name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("file source: %w", err)
		}
		fi, err := f.Stat()
		if err == nil {
			end[name], err = lastLineEnd(f, pathOf(name), fi.Size())
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("file source: %w", err)
		}
	}
	return end, nil
}

// Ack does nothing: the files are never changed by the source.
func (s *Source) Ack(context.Context, sdk.Offsets) error { return nil }

// Close closes every open file.
func (s *Source) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for n, p := range s.parts {
		errs = append(errs, p.close())
		delete(s.parts, n)
	}
	return errors.Join(errs...)
}
