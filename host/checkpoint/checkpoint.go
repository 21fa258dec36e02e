package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/sdk"
)

// Entry is one offset log entry: batch Batch covers the offsets [From, Until)
// and holds Records records.
type Entry struct {
	Batch   int64       // batch id, from 1, one more per batch
	Time    time.Time   // when the batch was planned (UTC once stored)
	From    sdk.Offsets // where the batch starts, per partition
	Until   sdk.Offsets // where the batch ends (exclusive) and the next one starts
	Records int64       // number of records in the batch
	Kind    string      // KindBatch or KindReset
	Note    string      // free text; Reset stores its note here
}

// Batch is a kept batch with its commit state.
type Batch struct {
	Entry
	Committed  bool      // the commit log holds this batch
	CommitTime time.Time // when it was committed (zero if not)
}

// ErrLocked is matched (errors.Is) by the error Open returns when another
// Store, in this or another process, holds the checkpoint open. The error's
// message names the directory, the holder's pid and the pipeline.
var ErrLocked = errors.New("checkpoint is locked")

type lockedError struct {
	dir, pipeline string
	pid           int // 0 if unknown
}

func (e *lockedError) Error() string {
	by := "another process"
	if e.pid > 0 {
		by = "process " + strconv.Itoa(e.pid)
	}
	return fmt.Sprintf("checkpoint %s is locked by %s: pipeline %q is already running", e.dir, by, e.pipeline)
}

func (e *lockedError) Unwrap() error { return ErrLocked }

// Store is an open checkpoint. Its methods are safe for concurrent use.
type Store struct {
	dir      string // "" for a Store over a Medium
	where    string // names the checkpoint in messages: dir, or the Medium's place
	pipeline string
	readOnly bool
	ext      Medium // nil for a directory

	mu      sync.Mutex
	lock    *os.File // nil when read-only
	offsets *os.File // append handles; nil when read-only
	commits *os.File
	st      *state
	broken  error // set when a write failed: the files may end in a partial line
	closed  bool
	synced  time.Duration // how long the last append took to become durable

	// hook, if set (tests only), is called at named points of compaction and
	// Reset; an error returned stops the operation there, as a crash would.
	hook func(point string) error
}

// Open opens or creates the checkpoint directory dir for pipeline and locks
// it for as long as the Store is open (see ErrLocked). It cuts away a torn
// final line left by a crash, and finishes a Reset that a crash interrupted
// between its two appends. It fails, naming the file and line, if the
// checkpoint is damaged (errors.Is(err, ErrCorrupt)), if meta.json names
// another pipeline, or if it was written by a newer format version.
func Open(dir, pipeline string) (*Store, error) {
	if pipeline == "" {
		return nil, fmt.Errorf("checkpoint %s: no pipeline name given", dir)
	}
	if err := mkdirDurable(dir); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	s := &Store{dir: dir, where: dir, pipeline: pipeline}
	if err := s.open(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func (s *Store) open() error {
	lf, created, err := openCreate(s.path(lockName), os.O_RDWR)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.dir, err)
	}
	if err := lockFile(lf); err != nil {
		lf.Close() // not ours: leave the holder's pid alone
		if errors.Is(err, errWouldBlock) {
			return &lockedError{dir: s.dir, pipeline: s.pipeline, pid: readPID(s.path(lockName))}
		}
		return fmt.Errorf("checkpoint %s: lock %s: %w", s.dir, s.path(lockName), err)
	}
	s.lock = lf
	if err := lf.Truncate(0); err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.dir, err)
	}
	if _, err := lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.dir, err)
	}

	// Temporary files are leftovers of a compaction that a crash interrupted
	// before its rename: the logs themselves are intact.
	for _, name := range []string{offsetsName, commitsName, metaName} {
		if err := os.Remove(s.path(name + tmpSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("checkpoint %s: %w", s.dir, err)
		}
	}

	_, exists, err := readMeta(s.path(metaName), s.pipeline)
	if err != nil {
		return err
	}
	if !exists {
		if err := s.checkNoLogs(); err != nil {
			return err
		}
		m := metaJSON{Format: formatVersion, Pipeline: s.pipeline, Created: time.Now().UTC()}
		b, err := jsonIndent(m)
		if err != nil {
			return err
		}
		if err := s.replaceFile(metaName, b); err != nil {
			return err
		}
	}

	of, c1, err := openCreate(s.path(offsetsName), os.O_RDWR|os.O_APPEND)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.dir, err)
	}
	s.offsets = of
	cf, c2, err := openCreate(s.path(commitsName), os.O_RDWR|os.O_APPEND)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.dir, err)
	}
	s.commits = cf
	if created || c1 || c2 {
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("checkpoint %s: %w", s.dir, err)
		}
	}

	off, err := readLog(of, s.path(offsetsName), true)
	if err != nil {
		return err
	}
	com, err := readLog(cf, s.path(commitsName), true)
	if err != nil {
		return err
	}
	if s.st, err = parseState(s.path(offsetsName), off, com); err != nil {
		return err
	}

	// A Reset is one operation: if a crash came between its plan and its
	// commit, finish it.
	if e, ok := s.last(); ok && e.Kind == KindReset && !s.isCommitted(e.Batch) {
		if err := s.appendCommit(e.Batch); err != nil {
			return err
		}
	}
	return nil
}

// Inspect reads the checkpoint in dir without taking the lock, for showing it
// while the pipeline runs; the Store is a snapshot, and Plan, Commit and Reset
// on it fail. An empty pipeline skips the check of meta.json's pipeline name.
// A missing directory is an error that wraps os.ErrNotExist and names dir.
// A torn final line is ignored, not cut away: Inspect never writes.
func Inspect(dir, pipeline string) (*Store, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no checkpoint at %s (has the pipeline run yet?): %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("checkpoint %s is not a directory", dir)
	}
	// The pipeline may be appending or compacting while we read: a damage we
	// see may be a moment of that, so look again before reporting it.
	for attempt := 1; ; attempt++ {
		s, err := inspect(dir, pipeline)
		if err == nil || !errors.Is(err, ErrCorrupt) || attempt == 5 {
			return s, err
		}
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
	}
}

func inspect(dir, pipeline string) (*Store, error) {
	s := &Store{dir: dir, where: dir, pipeline: pipeline, readOnly: true}
	m, exists, err := readMeta(s.path(metaName), pipeline)
	if err != nil {
		return nil, err
	}
	if !exists {
		if err := s.checkNoLogs(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("no checkpoint at %s (%s is missing): %w", dir, s.path(metaName), os.ErrNotExist)
	}
	s.pipeline = m.Pipeline
	// The commit log first: a batch is planned before it is committed, so an
	// offset log read later has every batch the commit log read names. Only a
	// compaction in between breaks that, and the retry in Inspect covers it.
	var logs [2][]logLine
	for _, i := range []int{1, 0} {
		name := []string{offsetsName, commitsName}[i]
		f, err := os.Open(s.path(name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
		}
		logs[i], err = readLog(f, s.path(name), false)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if s.st, err = parseState(s.path(offsetsName), logs[0], logs[1]); err != nil {
		return nil, err
	}
	return s, nil
}

// checkNoLogs is called when meta.json is missing: that is a checkpoint
// whose creation a crash interrupted only if its logs are empty. Open writes
// meta.json before the logs.
func (s *Store) checkNoLogs() error {
	for _, name := range []string{offsetsName, commitsName} {
		if fi, err := os.Stat(s.path(name)); err == nil && fi.Size() > 0 {
			return corrupt(s.path(metaName), 0, "missing, but %s is not empty", s.path(name))
		}
	}
	return nil
}

// readLog reads a whole log from f. With cut, a torn final line is truncated
// away and the truncation fsync'ed; without, it is ignored.
func readLog(f *os.File, path string, cut bool) ([]logLine, error) {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	lines, valid, err := splitLog(path, data)
	if err != nil {
		return nil, err
	}
	if cut && valid < len(data) {
		if err := f.Truncate(int64(valid)); err != nil {
			return nil, fmt.Errorf("checkpoint %s: cut torn final line: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("checkpoint %s: cut torn final line: %w", path, err)
		}
	}
	return lines, nil
}

// Dir returns the checkpoint directory; "" for a Store over a Medium.
func (s *Store) Dir() string { return s.dir }

// Where names the checkpoint for people: its directory, or where a Medium
// keeps it (never with a password).
func (s *Store) Where() string { return s.where }

// Last returns the newest planned entry (ok=false if none) and the id of the
// newest committed batch (0 if none). The pipeline replays planned when
// planned.Batch > committed.
func (s *Store) Last() (planned Entry, ok bool, committed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.last()
	return cloneEntry(e), ok, s.st.committed
}

// Committed returns the until offsets of the newest committed batch, where the
// pipeline continues; an empty, non-nil map if no batch was committed.
func (s *Store) Committed() sdk.Offsets {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committedOffsets()
}

// Plan appends e to the offset log and fsyncs it. e.Batch must be the last
// planned batch + 1, and then the last planned batch must be committed; or it
// must equal the last planned batch if that one is not committed (a re-plan,
// which replaces it). The first batch is 1. A zero Time is filled with
// time.Now and an empty Kind means KindBatch. From and Until must survive
// Spark's JSON form (offsets >= -2; partition names that split and join back
// to themselves).
func (s *Store) Plan(e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable("plan batch " + strconv.FormatInt(e.Batch, 10)); err != nil {
		return err
	}
	last, ok := s.last()
	replan := false
	switch {
	case ok && e.Batch == last.Batch:
		if s.isCommitted(last.Batch) {
			return fmt.Errorf("checkpoint %s: cannot plan batch %d again: it is committed; the next batch is %d", s.where, e.Batch, e.Batch+1)
		}
		replan = true
	case e.Batch == last.Batch+1:
		if ok && !s.isCommitted(last.Batch) {
			return fmt.Errorf("checkpoint %s: cannot plan batch %d: batch %d is planned but not committed; replay it (plan it again) or reset offsets", s.where, e.Batch, last.Batch)
		}
	default:
		return fmt.Errorf("checkpoint %s: cannot plan batch %d: the next batch is %d", s.where, e.Batch, last.Batch+1)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Kind == "" {
		e.Kind = KindBatch
	}
	if err := s.appendEntry(e, replan); err != nil {
		return err
	}
	return s.maybeCompact()
}

// Commit appends batch to the commit log and fsyncs it. batch must be the last
// planned batch and not yet committed.
func (s *Store) Commit(batch int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable("commit batch " + strconv.FormatInt(batch, 10)); err != nil {
		return err
	}
	last, ok := s.last()
	switch {
	case !ok:
		return fmt.Errorf("checkpoint %s: cannot commit batch %d: no batch is planned", s.where, batch)
	case batch != last.Batch:
		return fmt.Errorf("checkpoint %s: cannot commit batch %d: the last planned batch is %d", s.where, batch, last.Batch)
	case s.isCommitted(batch):
		return fmt.Errorf("checkpoint %s: cannot commit batch %d: it is already committed", s.where, batch)
	}
	return s.appendCommit(batch)
}

// History returns the kept batches, oldest first: at least the last 100 (see
// the package doc), copies the caller may change.
func (s *Store) History() []Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := make([]Batch, len(s.st.entries))
	for i, e := range s.st.entries {
		h[i] = s.batch(e)
	}
	return h
}

// Find returns the kept batch with id, ok=false if there is none.
func (s *Store) Find(id int64) (Batch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.st.index(id)
	if i < 0 {
		return Batch{}, false
	}
	return s.batch(s.st.entries[i]), true
}

// Reset moves the pipeline to until: it appends a batch with id last planned
// + 1, Kind KindReset, no records, From the currently committed offsets and
// Until until, and commits it, so Committed returns until afterwards. Reset is
// allowed when the last planned batch is not committed: the reset supersedes
// it, and that batch stays in history as never committed (it is not replayed).
// If a crash interrupts Reset between its two appends, the next Open finishes
// it.
func (s *Store) Reset(until sdk.Offsets, note string) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable("reset offsets"); err != nil {
		return Entry{}, err
	}
	last, _ := s.last()
	e := Entry{Batch: last.Batch + 1, Time: time.Now(), From: s.committedOffsets(),
		Until: until.Clone(), Kind: KindReset, Note: note}
	if err := s.appendEntry(e, false); err != nil {
		return Entry{}, err
	}
	if err := s.runHook("reset:planned"); err != nil {
		return Entry{}, err
	}
	if err := s.appendCommit(e.Batch); err != nil {
		return Entry{}, err
	}
	e, _ = s.last()
	if err := s.maybeCompact(); err != nil {
		return cloneEntry(e), err
	}
	return cloneEntry(e), nil
}

// Close releases the lock and closes the files. Further Plan, Commit and
// Reset calls fail; the read methods keep answering from memory. Closing
// twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeFiles()
}

func (s *Store) closeFiles() error {
	var errs []error
	if s.ext != nil {
		errs = append(errs, s.ext.Close())
	}
	for _, f := range []*os.File{s.offsets, s.commits} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	if s.lock != nil {
		// The pid is only read while the lock is held; clear it anyway so a
		// stale one never shows. Closing the file releases the flock.
		_ = s.lock.Truncate(0)
		errs = append(errs, s.lock.Close())
	}
	s.offsets, s.commits, s.lock = nil, nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("checkpoint %s: close: %w", s.where, err)
	}
	return nil
}

// --- internals; the caller holds s.mu ---

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) writable(op string) error {
	switch {
	case s.readOnly:
		return fmt.Errorf("checkpoint %s: cannot %s: the checkpoint was opened read-only (Inspect)", s.where, op)
	case s.closed:
		return fmt.Errorf("checkpoint %s: cannot %s: the checkpoint is closed", s.where, op)
	case s.broken != nil:
		return fmt.Errorf("checkpoint %s: cannot %s: an earlier write failed, reopen the checkpoint: %w", s.where, op, s.broken)
	}
	return nil
}

func (s *Store) last() (Entry, bool) {
	if n := len(s.st.entries); n > 0 {
		return s.st.entries[n-1], true
	}
	return Entry{}, false
}

func (s *Store) isCommitted(id int64) bool {
	_, ok := s.st.commits[id]
	return ok
}

func (s *Store) committedOffsets() sdk.Offsets {
	if i := s.st.index(s.st.committed); i >= 0 {
		return s.st.entries[i].Until.Clone()
	}
	return sdk.Offsets{}
}

func (s *Store) batch(e Entry) Batch {
	t, ok := s.st.commits[e.Batch]
	return Batch{Entry: cloneEntry(e), Committed: ok, CommitTime: t}
}

func cloneEntry(e Entry) Entry {
	e.From, e.Until = e.From.Clone(), e.Until.Clone()
	return e
}

func (s *Store) runHook(point string) error {
	if s.hook == nil {
		return nil
	}
	if err := s.hook(point); err != nil {
		s.broken = err
		return err
	}
	return nil
}

// appendEntry normalizes e, checks it survives the on-disk form, appends it to
// the offset log and fsyncs, then records it in memory.
func (s *Store) appendEntry(e Entry, replan bool) error {
	e = cloneEntry(e)
	if e.From == nil {
		e.From = sdk.Offsets{}
	}
	if e.Until == nil {
		e.Until = sdk.Offsets{}
	}
	e.Time = e.Time.UTC().Round(0)
	if e.Kind != KindBatch && e.Kind != KindReset {
		return fmt.Errorf("checkpoint %s: batch %d: kind %q is neither %q nor %q", s.where, e.Batch, e.Kind, KindBatch, KindReset)
	}
	if e.Records < 0 {
		return fmt.Errorf("checkpoint %s: batch %d: negative record count %d", s.where, e.Batch, e.Records)
	}
	for _, o := range []struct {
		name string
		offs sdk.Offsets
	}{{"from", e.From}, {"until", e.Until}} {
		if err := checkOffsets(o.offs); err != nil {
			return fmt.Errorf("checkpoint %s: batch %d: %s offsets %s: %w", s.where, e.Batch, o.name, o.offs, err)
		}
	}
	line, err := encodeEntry(e)
	if err != nil {
		return fmt.Errorf("checkpoint %s: batch %d: %w", s.where, e.Batch, err)
	}
	if err := s.write(s.offsets, offsetsName, line); err != nil {
		return err
	}
	if replan {
		s.st.entries[len(s.st.entries)-1] = e
	} else {
		s.st.entries = append(s.st.entries, e)
	}
	s.st.lines++
	return nil
}

// checkOffsets refuses offsets that would not read back equal from Spark's
// JSON form.
func checkOffsets(o sdk.Offsets) error {
	for _, p := range o.Partitions() {
		if o[p] < sdk.Earliest {
			return fmt.Errorf("offset %d for %q: offsets are >= 0, or -2 (earliest) or -1 (latest)", o[p], p)
		}
		if g, part := sdk.SplitPartition(p); sdk.JoinPartition(g, part) != p {
			return fmt.Errorf("partition name %q does not survive Spark's JSON form (it reads back as %q)", p, sdk.JoinPartition(g, part))
		}
	}
	return nil
}

func (s *Store) appendCommit(batch int64) error {
	t := time.Now().UTC().Round(0)
	line, err := encodeCommit(batch, t)
	if err != nil {
		return fmt.Errorf("checkpoint %s: commit batch %d: %w", s.where, batch, err)
	}
	if err := s.write(s.commits, commitsName, line); err != nil {
		return err
	}
	s.st.commits[batch] = t
	s.st.committed = batch
	return nil
}

// write appends one line with one write call and fsyncs. A failure leaves the
// file in an unknown state (maybe a partial line), so the Store refuses
// further writes; the next Open cuts the partial line away.
func (s *Store) write(f *os.File, name string, line []byte) error {
	if s.ext != nil {
		log := OffsetLog
		if name == commitsName {
			log = CommitLog
		}
		t := time.Now()
		if err := s.ext.Append(log, line); err != nil {
			s.broken = fmt.Errorf("append to the %s log: %w", log, err)
			return fmt.Errorf("checkpoint %s: %w", s.where, s.broken)
		}
		s.synced = time.Since(t)
		return nil
	}
	if _, err := f.Write(line); err != nil {
		s.broken = fmt.Errorf("append to %s: %w", s.path(name), err)
		return fmt.Errorf("checkpoint %s: %w", s.where, s.broken)
	}
	t := time.Now()
	if err := f.Sync(); err != nil {
		s.broken = fmt.Errorf("fsync %s: %w", s.path(name), err)
		return fmt.Errorf("checkpoint %s: %w", s.where, s.broken)
	}
	s.synced = time.Since(t)
	return nil
}

// LastSync returns how long the last successful append (Plan, Commit) took
// to become durable: the fsync of a directory checkpoint's log file, or the
// whole append of a Medium (a PostgreSQL transaction's commit); 0 before
// any.
func (s *Store) LastSync() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// maybeCompact compacts both logs to the newest compactKeep batches when the
// offset log holds more than compactAbove lines. The commit log is rewritten
// first: at every point in between, each commit names a batch of the offset
// log, so a crash anywhere leaves a consistent checkpoint.
func (s *Store) maybeCompact() error {
	if s.st.lines <= compactAbove {
		return nil
	}
	if err := s.compact(); err != nil {
		if s.broken == nil {
			s.broken = err
		}
		last, _ := s.last()
		return fmt.Errorf("checkpoint %s: batch %d is durable, but compacting the logs failed (reopen the checkpoint): %w", s.where, last.Batch, err)
	}
	return nil
}

func (s *Store) compact() error {
	last, _ := s.last()
	from := last.Batch - compactKeep + 1
	if s.st.committed > 0 && s.st.committed < from {
		from = s.st.committed // never drop where the pipeline continues
	}
	i := max(s.st.index(from), 0)
	kept := s.st.entries[i:]

	var offs, coms [][]byte
	for _, e := range kept {
		line, err := encodeEntry(e)
		if err != nil {
			return err
		}
		offs = append(offs, line)
		if t, ok := s.st.commits[e.Batch]; ok {
			line, err := encodeCommit(e.Batch, t)
			if err != nil {
				return err
			}
			coms = append(coms, line)
		}
	}
	if s.ext != nil {
		if err := s.ext.Rewrite(offs, coms); err != nil {
			return err
		}
	} else {
		for _, step := range []struct {
			name  string
			lines [][]byte
			f     **os.File
		}{{commitsName, coms, &s.commits}, {offsetsName, offs, &s.offsets}} {
			if err := s.replaceFile(step.name, bytes.Join(step.lines, nil)); err != nil {
				return err
			}
			f, err := os.OpenFile(s.path(step.name), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			(*step.f).Close() // the old, now unlinked file
			*step.f = f
		}
	}

	s.st.entries = append([]Entry(nil), kept...)
	for id := range s.st.commits {
		if s.st.index(id) < 0 {
			delete(s.st.commits, id)
		}
	}
	s.st.lines = len(kept)
	return nil
}

// replaceFile atomically replaces name with data: write a temporary file,
// fsync it, rename it over name, fsync the directory.
func (s *Store) replaceFile(name string, data []byte) error {
	tmp := s.path(name + tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.dir, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: write %s: %w", s.dir, tmp, err)
	}
	if err := s.runHook(name + ":written"); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path(name)); err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.dir, err)
	}
	if err := s.runHook(name + ":renamed"); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.dir, err)
	}
	return nil
}

// openCreate opens path with flag, creating it if needed; created reports
// whether it did (the caller then fsyncs the directory).
func openCreate(path string, flag int) (f *os.File, created bool, err error) {
	f, err = os.OpenFile(path, flag, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(path, flag|os.O_CREATE, 0o644)
		created = true
	}
	return f, created, err
}

// mkdirDurable creates dir and any missing parents, fsyncing each parent whose
// entries it changed.
func mkdirDurable(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
