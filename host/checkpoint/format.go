package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"time"

	"github.com/connectd/connectd/sdk"
)

// File names inside a checkpoint directory and format constants.
const (
	formatVersion = 1
	lineVersion   = "v1"

	offsetsName = "offsets.log"
	commitsName = "commits.log"
	metaName    = "meta.json"
	lockName    = "lock"
	tmpSuffix   = ".tmp"

	// compactAbove is the offset log length (in lines) above which both logs
	// are compacted to the newest compactKeep batches.
	compactAbove = 1000
	compactKeep  = 200
)

// Kinds of offset log entries.
const (
	KindBatch = "batch" // a batch planned by the pipeline
	KindReset = "reset" // a position set by hand (Store.Reset); it has no records
)

// ErrCorrupt is matched (errors.Is) by every error that reports a damaged
// checkpoint: a log line that fails its checksum, does not parse, or breaks
// the order of batches, or a meta.json that cannot be read.
var ErrCorrupt = errors.New("checkpoint is corrupt")

// ErrFenced is matched (errors.Is) by the error of a write refused because
// the writer's lease on the pipeline is older than the newest one: another
// host (a connectd worker) took the pipeline over. Nothing was written; the
// writer must stop running the pipeline.
var ErrFenced = errors.New("fenced: another worker holds a newer lease on the pipeline")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// corruptError names the file and line (or the table and row) of a damaged
// checkpoint.
type corruptError struct {
	where   string // "<path> line <n>", "<path>", or a Line.Where
	problem string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("checkpoint %s: %s: the checkpoint is corrupt; restore it or reset offsets", e.where, e.problem)
}

func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// corrupt reports a damaged file (line 0) or line of a file.
func corrupt(path string, line int, format string, args ...any) error {
	return corruptAt(lineWhere(path, line), format, args...)
}

// corruptAt reports damage at where, which names the file and line or the
// table and row.
func corruptAt(where, format string, args ...any) error {
	return &corruptError{where: where, problem: fmt.Sprintf(format, args...)}
}

func lineWhere(path string, line int) string {
	if line > 0 {
		return path + " line " + strconv.Itoa(line)
	}
	return path
}

// offsetJSON is an offset log entry on disk.
type offsetJSON struct {
	Batch   int64       `json:"batch"`
	Time    time.Time   `json:"time"`
	From    sdk.Offsets `json:"from"`
	Until   sdk.Offsets `json:"until"`
	Records int64       `json:"records"`
	Kind    string      `json:"kind"`
	Note    string      `json:"note,omitempty"`
}

// commitJSON is a commit log entry on disk.
type commitJSON struct {
	Batch int64     `json:"batch"`
	Time  time.Time `json:"time"`
}

// metaJSON is meta.json.
type metaJSON struct {
	Format   int       `json:"format"`
	Pipeline string    `json:"pipeline"`
	Created  time.Time `json:"created"`
}

// encodeLine renders v as one log line: "v1 <crc32c> <json>\n".
func encodeLine(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	line := make([]byte, 0, len(lineVersion)+10+len(j)+1)
	line = append(line, lineVersion...)
	line = fmt.Appendf(line, " %08x ", crc32.Checksum(j, castagnoli))
	line = append(line, j...)
	return append(line, '\n'), nil
}

func encodeEntry(e Entry) ([]byte, error) {
	return encodeLine(offsetJSON{Batch: e.Batch, Time: e.Time, From: e.From, Until: e.Until,
		Records: e.Records, Kind: e.Kind, Note: e.Note})
}

func encodeCommit(batch int64, t time.Time) ([]byte, error) {
	return encodeLine(commitJSON{Batch: batch, Time: t})
}

// logLine is one complete, checked line of a log: where it is (for errors)
// and its JSON.
type logLine struct {
	where string // "<path> line <n>", or the Line.Where a Medium gave
	json  []byte
}

// splitLog splits a log file's content into checked lines. valid is the
// length of the complete lines; anything after it is a torn final append
// (no newline) that the caller cuts away or ignores.
func splitLog(path string, data []byte) (lines []logLine, valid int, err error) {
	for n := 1; ; n++ {
		i := bytes.IndexByte(data[valid:], '\n')
		if i < 0 {
			return lines, valid, nil
		}
		j, problem := checkLine(data[valid : valid+i])
		if problem != "" {
			return nil, 0, corrupt(path, n, "%s", problem)
		}
		lines = append(lines, logLine{where: lineWhere(path, n), json: j})
		valid += i + 1
	}
}

// checkLine verifies a line's version prefix and checksum and returns its JSON,
// or a description of what is wrong.
func checkLine(line []byte) (j []byte, problem string) {
	const want = `want "v1 <crc32c> <json>"`
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		if len(line) == 0 {
			return nil, "empty line"
		}
		return nil, "malformed line (" + want + ")"
	}
	if v := string(line[:sp]); v != lineVersion {
		if len(v) > 1 && v[0] == 'v' && isDigits(v[1:]) {
			return nil, fmt.Sprintf("unknown version prefix %q (this connectd reads %s; was the checkpoint written by a newer connectd?)", v, lineVersion)
		}
		return nil, fmt.Sprintf("malformed line: starts with %q (%s)", truncate(v, 20), want)
	}
	rest := line[sp+1:]
	if len(rest) < 10 || rest[8] != ' ' || !isLowerHex(rest[:8]) {
		return nil, "malformed checksum field (" + want + ")"
	}
	stored, _ := strconv.ParseUint(string(rest[:8]), 16, 32)
	j = rest[9:]
	if got := crc32.Checksum(j, castagnoli); uint32(stored) != got {
		return nil, fmt.Sprintf("checksum mismatch (want %08x, got %08x)", stored, got)
	}
	return j, ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// decodeEntry parses an offset log line's JSON.
func decodeEntry(l logLine) (Entry, error) {
	var o offsetJSON
	if err := json.Unmarshal(l.json, &o); err != nil {
		return Entry{}, corruptAt(l.where, "bad JSON: %v", err)
	}
	switch {
	case o.Batch < 1:
		return Entry{}, corruptAt(l.where, "batch id %d is not positive", o.Batch)
	case o.Kind != KindBatch && o.Kind != KindReset:
		return Entry{}, corruptAt(l.where, "kind %q is neither %q nor %q", o.Kind, KindBatch, KindReset)
	case o.Records < 0:
		return Entry{}, corruptAt(l.where, "negative record count %d", o.Records)
	}
	if o.From == nil {
		o.From = sdk.Offsets{}
	}
	if o.Until == nil {
		o.Until = sdk.Offsets{}
	}
	return Entry{Batch: o.Batch, Time: o.Time, From: o.From, Until: o.Until,
		Records: o.Records, Kind: o.Kind, Note: o.Note}, nil
}

// decodeCommit parses a commit log line's JSON.
func decodeCommit(l logLine) (commitJSON, error) {
	var c commitJSON
	if err := json.Unmarshal(l.json, &c); err != nil {
		return c, corruptAt(l.where, "bad JSON: %v", err)
	}
	if c.Batch < 1 {
		return c, corruptAt(l.where, "batch id %d is not positive", c.Batch)
	}
	return c, nil
}

// state is the content of both logs after reading and checking them.
type state struct {
	entries   []Entry // kept offset log entries, ids contiguous and increasing
	commits   map[int64]time.Time
	committed int64 // newest committed batch, 0 if none
	lines     int   // lines in the offset log (re-plans count)
}

// parseState checks both logs' complete lines and their consistency; offName
// names the offset log in messages.
func parseState(offName string, off []logLine, com []logLine) (*state, error) {
	st := &state{commits: map[int64]time.Time{}, lines: len(off)}
	for _, l := range off {
		e, err := decodeEntry(l)
		if err != nil {
			return nil, err
		}
		if n := len(st.entries); n > 0 {
			prev := st.entries[n-1].Batch
			switch {
			case e.Batch == prev: // re-plan of the newest batch replaces it
				st.entries[n-1] = e
				continue
			case e.Batch < prev:
				return nil, corruptAt(l.where, "batch id %d goes backwards (after batch %d)", e.Batch, prev)
			case e.Batch > prev+1:
				return nil, corruptAt(l.where, "batch id %d skips ahead (after batch %d, want %d)", e.Batch, prev, prev+1)
			}
		}
		st.entries = append(st.entries, e)
	}
	for _, l := range com {
		c, err := decodeCommit(l)
		if err != nil {
			return nil, err
		}
		if c.Batch <= st.committed {
			if c.Batch == st.committed {
				return nil, corruptAt(l.where, "batch %d is committed twice", c.Batch)
			}
			return nil, corruptAt(l.where, "commits out of order: batch %d after batch %d", c.Batch, st.committed)
		}
		if st.index(c.Batch) < 0 {
			return nil, corruptAt(l.where, "commit of batch %d, which the offset log %s does not have", c.Batch, offName)
		}
		st.commits[c.Batch] = c.Time
		st.committed = c.Batch
	}
	return st, nil
}

// index returns the position of batch id in entries, or -1.
func (st *state) index(id int64) int {
	if len(st.entries) == 0 {
		return -1
	}
	i := id - st.entries[0].Batch
	if i < 0 || i >= int64(len(st.entries)) {
		return -1
	}
	return int(i)
}

// readMeta reads and checks meta.json. exists is false if there is none.
func readMeta(path, pipeline string) (m metaJSON, exists bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, true, corrupt(path, 0, "bad JSON: %v", err)
	}
	switch {
	case m.Format > formatVersion:
		return m, true, fmt.Errorf("checkpoint %s has format %d, newer than this connectd reads (%d): upgrade connectd", path, m.Format, formatVersion)
	case m.Format < 1:
		return m, true, corrupt(path, 0, "format version %d is not valid", m.Format)
	case m.Pipeline == "":
		return m, true, corrupt(path, 0, "no pipeline name")
	case pipeline != "" && m.Pipeline != pipeline:
		return m, true, fmt.Errorf("checkpoint %s belongs to pipeline %q, not %q: give each pipeline its own checkpoint directory", path, m.Pipeline, pipeline)
	}
	return m, true, nil
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
