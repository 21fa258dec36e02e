package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
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

// Plugin is the csv plugin: a source only.
var Plugin = sdk.Plugin{
	Source: &sdk.SourcePlugin{Spec: Spec, New: func() sdk.Source { return &Source{} }},
}

// Spec declares the source, its capability and its parameters.
var Spec = sdk.Spec{
	Name:    "csv",
	Version: "0.1.0",
	Kind:    sdk.KindSource,
	Summary: "Reads CSV files, one record per row; every file is a partition and a row's offset is its index.",
	// The files never change once they are there, and a row's offset is its
	// index: reading rows [from, until) of a file again returns the same rows,
	// so the source is replayable (it implements sdk.Replayer).
	Capabilities: []sdk.Capability{sdk.CapReplayable},
	Params: []sdk.Param{
		{Name: "paths", Type: sdk.TypeStrings, Required: true,
			Doc: `Files to read, as paths or globs ("in/*.csv"). Every file is a partition named by its path with forward slashes ("./a.csv" when the path has no directory). A file must be complete when its name first matches (write it elsewhere, then rename it into place); files that appear later are read too.`},
		{Name: "header", Type: sdk.TypeBool, Default: true,
			Doc: `The first row of every file names the columns, and a record's value is a JSON object {"column":"field",…} in column order. false: every row is data and a value is a JSON array of its fields.`},
		{Name: "key", Type: sdk.TypeString,
			Doc: "Column whose field becomes the record's key (needs header); empty: records have no key."},
	},
}

// pollEvery is how often a Read that has found nothing looks for new files,
// within the batch's max wait.
const pollEvery = 100 * time.Millisecond

// Source is the csv source. Offset k of a partition is the k-th data row of
// its file (0 is the first row after the header): a batch's until is the
// index of the first row it did not read.
type Source struct {
	mu       sync.Mutex // the host calls one method at a time; this is for safety only
	patterns []string
	header   bool
	key      string
	cursors  map[string]*cursor // the files being read, by partition name
}

// The interfaces the source implements: Replayer makes it replayable, Ender
// lets `connectd run --drain` stop at the rows that are there at start.
var (
	_ sdk.Source   = (*Source)(nil)
	_ sdk.Replayer = (*Source)(nil)
	_ sdk.Ender    = (*Source)(nil)
)

// Open reads and checks the configuration. It opens no file and does not
// wait for data: files are found by Read.
func (s *Source) Open(_ context.Context, cfg sdk.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.patterns, s.header, s.key = cfg.Strings("paths"), cfg.Bool("header"), cfg.String("key")
	if len(s.patterns) == 0 {
		return errors.New("csv source: paths is empty; give at least one file or glob")
	}
	for _, p := range s.patterns {
		if _, err := filepath.Match(p, ""); err != nil {
			return fmt.Errorf("csv source: path %q is not a valid glob: %w", p, err)
		}
	}
	if s.key != "" && !s.header {
		return fmt.Errorf("csv source: key = %q needs header = true: columns have names only in a header", s.key)
	}
	s.cursors = map[string]*cursor{}
	return nil
}

// Read returns the next rows after from, file after file in partition name
// order. A partition at -2 (earliest) or missing from from starts at row 0;
// -1 (latest) means after the file's last row. When it finds no rows it
// looks for new files every 100ms until limits.MaxWait has passed, then
// returns an empty Read (at once in drain mode when every file has reached
// its stop offset). From and Until name every file read, so that a -2 or -1
// becomes a real offset in the batch the host plans.
func (s *Source) Read(ctx context.Context, from sdk.Offsets, limits sdk.Limits) (sdk.Read, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cursors == nil {
		return sdk.Read{}, errors.New("csv source: not open")
	}
	deadline := time.Now().Add(limits.MaxWait)
	for {
		rd, err := s.readOnce(from, limits)
		if err != nil || len(rd.Records) > 0 {
			return rd, err
		}
		wait := time.Until(deadline)
		if wait <= 0 || atStop(rd.Until, limits.Stop) {
			return rd, nil
		}
		t := time.NewTimer(min(wait, pollEvery))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return sdk.Read{}, ctx.Err()
		}
	}
}

// readOnce is one pass of Read over the files matched now.
func (s *Source) readOnce(from sdk.Offsets, limits sdk.Limits) (sdk.Read, error) {
	names, err := s.files()
	if err != nil {
		return sdk.Read{}, err
	}
	s.forget(names)
	rd := sdk.Read{From: sdk.Offsets{}, Until: sdk.Offsets{}}
	maxRecords := max(limits.MaxRecords, 1)
	var size int64
	full := false
	for _, name := range names {
		stop, hasStop := limits.Stop[name]
		if limits.Stop != nil && !hasStop {
			continue // drain mode: a file that appeared after the run started is left alone
		}
		c, err := s.cursor(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the glob
		}
		if err != nil {
			return sdk.Read{}, err
		}
		start, err := c.resolve(from)
		if err != nil {
			return sdk.Read{}, err
		}
		if err := c.seek(start); err != nil {
			return sdk.Read{}, err
		}
		rd.From[name] = start
		for !full && (!hasStop || c.next < stop) {
			fields, err := c.peek()
			if err != nil {
				return sdk.Read{}, err
			}
			if fields == nil {
				break // the end of the file
			}
			rec := c.record(fields)
			if limits.MaxBytes > 0 && len(rd.Records) > 0 && size+int64(rec.Size()) > limits.MaxBytes {
				full = true // the row stays held for the next Read
				break
			}
			rd.Records = append(rd.Records, rec)
			size += int64(rec.Size())
			c.take()
			full = len(rd.Records) >= maxRecords
		}
		rd.Until[name] = c.next
	}
	return rd, nil
}

// atStop reports whether every partition of until has a stop offset and has
// reached it: in drain mode nothing more can come.
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

// Replay reads rows [from, until) of every partition of until again, file
// after file in partition name order as Read does, from a fresh handle (the
// cursors of Read are left where they are). The files must still hold the
// rows.
func (s *Source) Replay(_ context.Context, from, until sdk.Offsets) ([]sdk.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cursors == nil {
		return nil, errors.New("csv source: not open")
	}
	var recs []sdk.Record
	for _, r := range sdk.RangesOf(from, until) {
		if r.From < 0 || r.Until < r.From {
			return nil, fmt.Errorf("csv source: cannot replay %s [%d, %d): want real offsets, from <= until", r.Partition, r.From, r.Until)
		}
		if r.From == r.Until {
			continue
		}
		var err error
		if recs, err = s.replayRange(recs, r); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// replayRange appends the rows of one range to recs.
func (s *Source) replayRange(recs []sdk.Record, r sdk.Range) ([]sdk.Record, error) {
	c, err := s.open(r.Partition)
	if err != nil {
		return nil, fmt.Errorf("csv source: cannot replay %s [%d, %d): %w", r.Partition, r.From, r.Until, err)
	}
	defer c.close()
	if err := c.seek(r.From); err != nil {
		return nil, fmt.Errorf("csv source: cannot replay %s [%d, %d): %w", r.Partition, r.From, r.Until, err)
	}
	for c.next < r.Until {
		fields, err := c.peek()
		if err == nil && fields == nil {
			err = fmt.Errorf("the file ends at row %d", c.next)
		}
		if err != nil {
			return nil, fmt.Errorf("csv source: cannot replay %s [%d, %d): %w", r.Partition, r.From, r.Until, err)
		}
		recs = append(recs, c.record(fields))
		c.take()
	}
	return recs, nil
}

// End returns, for every file matched now, the number of its rows: the
// offset after its last row.
func (s *Source) End(context.Context) (sdk.Offsets, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cursors == nil {
		return nil, errors.New("csv source: not open")
	}
	names, err := s.files()
	if err != nil {
		return nil, err
	}
	end := sdk.Offsets{}
	for _, name := range names {
		c, err := s.open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the glob
		}
		if err != nil {
			return nil, err
		}
		err = c.seek(sdk.Latest)
		end[name] = c.next
		c.close()
		if err != nil {
			return nil, err
		}
	}
	return end, nil
}

// Ack does nothing: the source never changes its files, so nothing can be
// released, and a replay can always read a committed range again.
func (s *Source) Ack(context.Context, sdk.Offsets) error { return nil }

// Close closes every open file.
func (s *Source) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, c := range s.cursors {
		errs = append(errs, c.close())
		delete(s.cursors, name)
	}
	return errors.Join(errs...)
}

// PartitionName returns the partition name of a file path: the cleaned path
// with forward slashes, so that a name is the same on every OS, prefixed by
// "./" when it has no directory, so that every name has a group ("in/a.csv",
// "./a.csv"; offsets print as {"in":{"a.csv":12}}).
func PartitionName(path string) string {
	name := filepath.ToSlash(filepath.Clean(path))
	if !strings.Contains(name, "/") {
		name = "./" + name
	}
	return name
}

// files returns the partition names of the regular files the patterns match
// now, sorted: the order Read and Replay go through them.
func (s *Source) files() ([]string, error) {
	seen := map[string]bool{}
	var names []string
	for _, pat := range s.patterns {
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("csv source: path %q: %w", pat, err)
		}
		for _, m := range matches {
			name := PartitionName(m)
			if seen[name] {
				continue
			}
			seen[name] = true
			if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

// forget closes the cursors of files no longer matched.
func (s *Source) forget(names []string) {
	keep := make(map[string]bool, len(names))
	for _, n := range names {
		keep[n] = true
	}
	for n, c := range s.cursors {
		if !keep[n] {
			c.close()
			delete(s.cursors, n)
		}
	}
}

// cursor returns Read's cursor of partition name, opening the file when
// needed, and checks that the file has not changed since it was opened.
func (s *Source) cursor(name string) (*cursor, error) {
	if c := s.cursors[name]; c != nil {
		return c, c.unchanged()
	}
	c, err := s.open(name)
	if err != nil {
		return nil, err
	}
	s.cursors[name] = c
	return c, nil
}

// cursor reads one file row after row.
type cursor struct {
	name, path string
	header     bool
	keyName    string
	f          *os.File
	size       int64 // the file's size when it was opened: it must not change
	r          *csv.Reader
	columns    []string // the header's column names
	key        int      // index of the key column, -1 for none
	next       int64    // offset (row index) of the row peek returns
	held       []string // that row, once peek has read it
}

// open opens the file of partition name at row 0.
func (s *Source) open(name string) (*cursor, error) {
	path := filepath.Clean(filepath.FromSlash(name))
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("csv source: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("csv source: %w", err)
	}
	c := &cursor{name: name, path: path, header: s.header, keyName: s.key, f: f, size: fi.Size()}
	if err := c.rewind(); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// rewind moves c to row 0 and reads the header.
func (c *cursor) rewind() error {
	if _, err := c.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("csv source: %w", err)
	}
	c.r, c.next, c.held, c.columns, c.key = csv.NewReader(c.f), 0, nil, nil, -1
	if !c.header {
		return nil
	}
	cols, err := c.r.Read()
	if errors.Is(err, io.EOF) {
		return nil // an empty file: no header, no rows
	}
	if err != nil {
		return fmt.Errorf("csv source: %s: header: %w", c.path, err)
	}
	seen := map[string]bool{}
	for _, col := range cols {
		if seen[col] {
			return fmt.Errorf("csv source: %s: column %q appears twice in the header", c.path, col)
		}
		seen[col] = true
	}
	c.columns = cols
	if c.keyName != "" {
		c.key = -1
		for i, col := range cols {
			if col == c.keyName {
				c.key = i
			}
		}
		if c.key < 0 {
			return fmt.Errorf("csv source: %s has no column %q (key); its columns are %s", c.path, c.keyName, strings.Join(cols, ", "))
		}
	}
	return nil
}

// unchanged reports an error when the file at c's path is not the one c
// opened, or its size is not what it was then: rows read again could differ,
// which would break replay.
func (c *cursor) unchanged() error {
	fi, err := c.f.Stat()
	if err != nil {
		return fmt.Errorf("csv source: %w", err)
	}
	now, err := os.Stat(c.path)
	if err != nil {
		return fmt.Errorf("csv source: %w", err)
	}
	if !os.SameFile(fi, now) {
		return fmt.Errorf("csv source: %s was replaced while being read; files must not change once they are in place", c.path)
	}
	if fi.Size() != c.size {
		return fmt.Errorf("csv source: %s changed from %d to %d bytes while being read; write files elsewhere and rename them into place, complete", c.path, c.size, fi.Size())
	}
	return nil
}

// resolve returns the real offset at which a read from from starts in c's
// partition.
func (c *cursor) resolve(from sdk.Offsets) (int64, error) {
	off, ok := from[c.name]
	switch {
	case !ok || off == sdk.Earliest:
		return 0, nil
	case off == sdk.Latest:
		if err := c.seek(sdk.Latest); err != nil {
			return 0, err
		}
		return c.next, nil
	case off < 0:
		return 0, fmt.Errorf("csv source: offset %d for %s: want >= 0, -2 (earliest) or -1 (latest)", off, c.name)
	}
	return off, nil
}

// seek moves c to row off, or past the last row for sdk.Latest.
func (c *cursor) seek(off int64) error {
	if off < c.next && off != sdk.Latest {
		if err := c.rewind(); err != nil {
			return err
		}
	}
	for off == sdk.Latest || c.next < off {
		fields, err := c.peek()
		if err != nil {
			return err
		}
		if fields == nil {
			if off == sdk.Latest {
				return nil
			}
			return fmt.Errorf("csv source: offset %d is past the end of %s (%d rows); was the file replaced?", off, c.path, c.next)
		}
		c.take()
	}
	return nil
}

// peek returns the row at c.next, or nil at the end of the file.
func (c *cursor) peek() ([]string, error) {
	if c.held != nil {
		return c.held, nil
	}
	if c.header && c.columns == nil {
		return nil, nil // an empty file
	}
	fields, err := c.r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("csv source: %s: %w", c.path, err)
	}
	c.held = fields
	return fields, nil
}

// take moves past the row peek returned.
func (c *cursor) take() {
	c.held = nil
	c.next++
}

// record makes the record of the row at c.next: its value is a JSON object
// of the columns (or an array of the fields without a header).
func (c *cursor) record(fields []string) sdk.Record {
	var v bytes.Buffer
	if c.columns == nil {
		b, _ := json.Marshal(fields) // strings always marshal
		v.Write(b)
	} else {
		v.WriteByte('{')
		for i, col := range c.columns {
			if i > 0 {
				v.WriteByte(',')
			}
			k, _ := json.Marshal(col)
			f, _ := json.Marshal(fields[i])
			v.Write(k)
			v.WriteByte(':')
			v.Write(f)
		}
		v.WriteByte('}')
	}
	rec := sdk.Record{Value: v.Bytes(), Position: sdk.Position{Partition: c.name, Offset: c.next}}
	if c.key >= 0 {
		rec.Key = []byte(fields[c.key])
	}
	return rec
}

// close closes c's file.
func (c *cursor) close() error { return c.f.Close() }
