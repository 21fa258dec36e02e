package checkpoint

import (
	"fmt"
	"strconv"
)

// Names of the two logs, as a Medium receives them.
const (
	OffsetLog = "offsets" // the offset log: one line per planned batch
	CommitLog = "commits" // the commit log: one line per finished batch
)

// Medium keeps a Store's two logs somewhere other than a directory (a
// database table, for instance), so that teams without durable local disks
// get the same checkpoint: the same lines, checksums, history and rules. The
// Store decides every line; a Medium only stores them, in order, durably.
//
// The Store calls a Medium from one goroutine at a time. A Medium holds the
// checkpoint's lock (see ErrLocked) from before New until Close: every write
// it accepts must come from the holder of the lock, so that two hosts never
// run one pipeline.
type Medium interface {
	// Append adds line, one complete log line ending in "\n", at the end of
	// log (OffsetLog or CommitLog), and returns only when it is durable. An
	// error means the line may or may not be stored: the Store refuses
	// further writes and the checkpoint must be opened again, which reads
	// what was really stored.
	Append(log string, line []byte) error
	// Rewrite replaces the whole content of both logs with the given lines
	// (each ending in "\n"), oldest first: the compaction that keeps the logs
	// short. A crash must leave either the old content or the new one in
	// both logs, or at least each commit line naming a batch of the offset
	// log (rewrite the commit log first).
	Rewrite(offsets, commits [][]byte) error
	// Close releases the lock and the Medium's resources.
	Close() error
}

// Line is one line of a log as a Medium stored it.
type Line struct {
	// Text is the line without its "\n": "v1 <crc32c> <json>".
	Text []byte
	// Where names the line in error messages, such as
	// `table "public"."connectd_checkpoint_log" row (pipeline "demo", log "offsets", seq 3)`.
	Where string
}

// New returns the Store of pipeline kept in m, whose logs hold offsets and
// commits (oldest first, as m read them while holding the lock). where names
// the checkpoint in messages and must not hold a password. Every line is
// checked as Open checks a directory's (version prefix, checksum, JSON, the
// order of batches); a damaged one makes New fail with an error that
// matches ErrCorrupt and names the line's Where. A Reset that a crash cut
// between its two appends is finished, as Open does.
//
// A nil m gives a read-only snapshot, as Inspect does. The Store closes m
// when it is closed; when New fails, m is left open for the caller to close.
func New(m Medium, where, pipeline string, offsets, commits []Line) (*Store, error) {
	if pipeline == "" {
		return nil, fmt.Errorf("checkpoint %s: no pipeline name given", where)
	}
	check := func(lines []Line, log string) ([]logLine, error) {
		out := make([]logLine, 0, len(lines))
		for i, l := range lines {
			w := l.Where
			if w == "" {
				w = where + " " + log + " log line " + strconv.Itoa(i+1)
			}
			j, problem := checkLine(l.Text)
			if problem != "" {
				return nil, corruptAt(w, "%s", problem)
			}
			out = append(out, logLine{where: w, json: j})
		}
		return out, nil
	}
	off, err := check(offsets, OffsetLog)
	if err != nil {
		return nil, err
	}
	com, err := check(commits, CommitLog)
	if err != nil {
		return nil, err
	}
	s := &Store{where: where, pipeline: pipeline, ext: m, readOnly: m == nil}
	if s.st, err = parseState(where+" "+OffsetLog+" log", off, com); err != nil {
		return nil, err
	}
	if m == nil {
		return s, nil
	}
	if e, ok := s.last(); ok && e.Kind == KindReset && !s.isCommitted(e.Batch) {
		if err := s.appendCommit(e.Batch); err != nil {
			return nil, err
		}
	}
	return s, nil
}
