package checkpoint

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// memMedium keeps the logs in memory, as rows would be.
type memMedium struct {
	logs     map[string][]string
	rewrites int
	fail     error // returned by the next Append
	closed   bool
}

func newMem() *memMedium { return &memMedium{logs: map[string][]string{}} }

func (m *memMedium) Append(log string, line []byte) error {
	if m.fail != nil {
		return m.fail
	}
	if !strings.HasSuffix(string(line), "\n") {
		return fmt.Errorf("line without newline: %q", line)
	}
	m.logs[log] = append(m.logs[log], strings.TrimSuffix(string(line), "\n"))
	return nil
}

func (m *memMedium) Rewrite(offsets, commits [][]byte) error {
	m.rewrites++
	m.logs = map[string][]string{}
	for _, l := range offsets {
		m.logs[OffsetLog] = append(m.logs[OffsetLog], strings.TrimSuffix(string(l), "\n"))
	}
	for _, l := range commits {
		m.logs[CommitLog] = append(m.logs[CommitLog], strings.TrimSuffix(string(l), "\n"))
	}
	return nil
}

func (m *memMedium) Close() error { m.closed = true; return nil }

func (m *memMedium) lines(log string) []Line {
	var out []Line
	for i, l := range m.logs[log] {
		out = append(out, Line{Text: []byte(l), Where: fmt.Sprintf("mem %s row %d", log, i+1)})
	}
	return out
}

func (m *memMedium) open(t *testing.T) *Store {
	t.Helper()
	s, err := New(m, "mem", "demo", m.lines(OffsetLog), m.lines(CommitLog))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// TestMediumSameLines: a Store over a Medium appends exactly the lines a
// directory store writes, reads them back, and keeps the same rules.
func TestMediumSameLines(t *testing.T) {
	m := newMem()
	s := m.open(t)
	dir := newDir(t)
	d := mustOpen(t, dir)
	fixed := func(id int64) Entry {
		e := entry(id)
		e.Time = time.Date(2026, 1, 2, 3, 4, 5, int(id), time.UTC)
		return e
	}
	for _, st := range []*Store{s, d} {
		for id := int64(1); id <= 3; id++ {
			if err := st.Plan(fixed(id)); err != nil {
				t.Fatal(err)
			}
			if id < 3 {
				if err := st.Commit(id); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	file := string(readFile(t, filepath.Join(dir, offsetsName)))
	if got := strings.Join(m.logs[OffsetLog], "\n") + "\n"; got != file {
		t.Errorf("medium offset lines:\n%s\nfile:\n%s", got, file)
	}
	if len(m.logs[CommitLog]) != 2 {
		t.Errorf("%d commit lines, want 2", len(m.logs[CommitLog]))
	}
	if err := s.Plan(entry(4)); err == nil || !strings.Contains(err.Error(), "checkpoint mem: cannot plan batch 4") {
		t.Errorf("plan past an uncommitted batch: %v", err)
	}
	if s.Where() != "mem" || s.Dir() != "" || d.Where() != dir {
		t.Errorf("Where %q Dir %q, dir store Where %q", s.Where(), s.Dir(), d.Where())
	}
	if err := s.Close(); err != nil || !m.closed {
		t.Errorf("Close: %v, medium closed %v", err, m.closed)
	}
	re := m.open(t)
	if p, ok, c := re.Last(); !ok || p.Batch != 3 || c != 2 || !re.Committed().Equal(until(2)) {
		t.Errorf("reopened: planned %d committed %d offsets %s", p.Batch, c, re.Committed())
	}
}

// TestMediumCorrupt: a damaged line fails New with ErrCorrupt naming the
// line's Where.
func TestMediumCorrupt(t *testing.T) {
	m := newMem()
	planCommit(t, m.open(t), 1, 2, 3)
	for _, c := range []struct {
		name   string
		damage func()
		want   string
	}{
		{"checksum", func() {
			m.logs[OffsetLog][1] = strings.Replace(m.logs[OffsetLog][1], `"records":11`, `"records":12`, 1)
		}, "mem offsets row 2: checksum mismatch"},
		{"order", func() { m.logs[CommitLog][2], m.logs[CommitLog][1] = m.logs[CommitLog][1], m.logs[CommitLog][2] }, "mem commits row 3: commits out of order"},
	} {
		saved := map[string][]string{OffsetLog: append([]string(nil), m.logs[OffsetLog]...), CommitLog: append([]string(nil), m.logs[CommitLog]...)}
		c.damage()
		_, err := New(m, "mem", "demo", m.lines(OffsetLog), m.lines(CommitLog))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrCorrupt with %q", c.name, err, c.want)
		}
		m.logs = saved
	}
}

// TestMediumFailedAppend: after a failed append the Store refuses writes.
func TestMediumFailedAppend(t *testing.T) {
	m := newMem()
	s := m.open(t)
	planCommit(t, s, 1)
	m.fail = errors.New("connection reset")
	if err := s.Plan(entry(2)); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("plan with a failing medium: %v", err)
	}
	m.fail = nil
	if err := s.Plan(entry(2)); err == nil || !strings.Contains(err.Error(), "an earlier write failed") {
		t.Errorf("plan after a failed append: %v", err)
	}
}

// TestMediumCompaction: compaction goes through Rewrite and keeps the
// recent history.
func TestMediumCompaction(t *testing.T) {
	m := newMem()
	s := m.open(t)
	planCommit(t, s, seq(1, compactAbove+1)...)
	if m.rewrites != 1 || len(m.logs[OffsetLog]) != compactKeep || len(m.logs[CommitLog]) != compactKeep {
		t.Fatalf("rewrites %d, %d offset and %d commit lines", m.rewrites, len(m.logs[OffsetLog]), len(m.logs[CommitLog]))
	}
	planCommit(t, s, compactAbove+2)
	re := m.open(t)
	h := re.History()
	if len(h) != compactKeep+1 || h[len(h)-1].Batch != compactAbove+2 {
		t.Errorf("history after compaction: %d batches ending at %d", len(h), h[len(h)-1].Batch)
	}
}

// TestMediumReadOnlyAndReset: a nil Medium gives a read-only snapshot; a
// reset cut between its appends is finished by New.
func TestMediumReadOnlyAndReset(t *testing.T) {
	m := newMem()
	s := m.open(t)
	planCommit(t, s, 1)
	ro, err := New(nil, "mem", "demo", m.lines(OffsetLog), m.lines(CommitLog))
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.Plan(entry(2)); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("plan on a snapshot: %v", err)
	}
	if _, err := s.Reset(until(0), "x"); err != nil {
		t.Fatal(err)
	}
	m.logs[CommitLog] = m.logs[CommitLog][:1] // the crash came before the reset's commit
	re := m.open(t)
	if _, _, c := re.Last(); c != 2 || len(m.logs[CommitLog]) != 2 {
		t.Errorf("reset not finished: committed %d, %d commit lines", c, len(m.logs[CommitLog]))
	}
	if _, err := New(m, "mem", "", nil, nil); err == nil {
		t.Error("New without a pipeline name succeeded")
	}
}
