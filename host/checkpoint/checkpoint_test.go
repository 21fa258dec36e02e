package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

// --- helpers ---

func until(id int64) sdk.Offsets { return sdk.Offsets{"orders/0": id * 10, "orders/1": id} }
func from(id int64) sdk.Offsets  { return until(id - 1) }

func entry(id int64) Entry {
	return Entry{Batch: id, From: from(id), Until: until(id), Records: 11}
}

func newDir(t testing.TB) string { return filepath.Join(t.TempDir(), "state", "demo") }

func mustOpen(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, "demo")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func planCommit(t testing.TB, s *Store, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		if err := s.Plan(entry(id)); err != nil {
			t.Fatalf("Plan(%d): %v", id, err)
		}
		if err := s.Commit(id); err != nil {
			t.Fatalf("Commit(%d): %v", id, err)
		}
	}
}

func seq(a, b int64) []int64 {
	var ids []int64
	for i := a; i <= b; i++ {
		ids = append(ids, i)
	}
	return ids
}

// writeState writes a checkpoint with batches 1..n planned and committed
// directly (no fsync per line), to reach the compaction threshold quickly.
func writeState(t testing.TB, dir string, n int64) {
	t.Helper()
	s := mustOpen(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var offs, coms []byte
	for id := int64(1); id <= n; id++ {
		e := entry(id)
		e.Kind, e.Time = KindBatch, time.Unix(id, 0).UTC()
		l, err := encodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, l...)
		c, err := encodeCommit(id, e.Time)
		if err != nil {
			t.Fatal(err)
		}
		coms = append(coms, c...)
	}
	writeFile(t, filepath.Join(dir, offsetsName), offs)
	writeFile(t, filepath.Join(dir, commitsName), coms)
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countLines(t testing.TB, path string) int {
	return bytes.Count(readFile(t, path), []byte("\n"))
}

// rawLine builds a log line with a correct checksum around any JSON text.
func rawLine(j string) string {
	return fmt.Sprintf("v1 %08x %s", crc32.Checksum([]byte(j), crc32.MakeTable(crc32.Castagnoli)), j)
}

func entryLine(t testing.TB, e Entry) string {
	t.Helper()
	if e.Kind == "" {
		e.Kind = KindBatch
	}
	l, err := encodeEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(l), "\n")
}

func commitLine(t testing.TB, id int64) string {
	t.Helper()
	l, err := encodeCommit(id, time.Unix(id, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(l), "\n")
}

func ids(h []Batch) (planned, committed []int64) {
	for _, b := range h {
		planned = append(planned, b.Batch)
		if b.Committed {
			committed = append(committed, b.Batch)
		}
	}
	return planned, committed
}

// --- tests ---

func TestRoundTrip(t *testing.T) {
	dir := newDir(t)
	s := mustOpen(t, dir)
	if _, ok, c := s.Last(); ok || c != 0 {
		t.Fatalf("new store: Last ok=%v committed=%d, want none", ok, c)
	}
	if c := s.Committed(); c == nil || len(c) != 0 {
		t.Fatalf("new store: Committed = %#v, want empty non-nil map", c)
	}
	planCommit(t, s, 1, 2)
	e3 := entry(3)
	e3.Note = "a note"
	if err := s.Plan(e3); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		last, ok, c := s.Last()
		if !ok || last.Batch != 3 || c != 2 {
			t.Fatalf("Last = %d ok=%v committed=%d, want 3 true 2", last.Batch, ok, c)
		}
		if !last.Until.Equal(until(3)) || !last.From.Equal(from(3)) || last.Records != 11 ||
			last.Kind != KindBatch || last.Note != "a note" || last.Time.IsZero() {
			t.Fatalf("Last = %+v", last)
		}
		if got := s.Committed(); !got.Equal(until(2)) {
			t.Fatalf("Committed = %v, want %v", got, until(2))
		}
		p, c2 := ids(s.History())
		if !slices.Equal(p, []int64{1, 2, 3}) || !slices.Equal(c2, []int64{1, 2}) {
			t.Fatalf("History planned %v committed %v", p, c2)
		}
		b, ok := s.Find(2)
		if !ok || !b.Committed || b.CommitTime.IsZero() || !b.Until.Equal(until(2)) {
			t.Fatalf("Find(2) = %+v, %v", b, ok)
		}
		if _, ok := s.Find(4); ok {
			t.Fatal("Find(4) found a batch that was never planned")
		}
	}
	check(s)
	// Results are copies: changing them does not change the store.
	last, _, _ := s.Last()
	last.Until["orders/0"] = 999
	s.Committed()["orders/0"] = 999
	s.History()[1].Until["orders/0"] = 999
	check(s)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Plan(entry(3)); err == nil {
		t.Fatal("Plan after Close succeeded")
	}
	s = mustOpen(t, dir)
	defer s.Close()
	check(s)
	if err := s.Commit(3); err != nil {
		t.Fatal(err)
	}
	if _, _, c := s.Last(); c != 3 {
		t.Fatalf("committed %d after Commit(3)", c)
	}
}

func TestOnDiskFormat(t *testing.T) {
	dir := newDir(t)
	s := mustOpen(t, dir)
	defer s.Close()
	tm := time.Date(2026, 1, 2, 15, 4, 5, 123456789, time.UTC)
	if err := s.Plan(Entry{Batch: 1, Time: tm, Until: sdk.Offsets{"orders/0": 23, "orders/1": -1}, Records: 5, Note: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	lineRE := regexp.MustCompile(`^v1 ([0-9a-f]{8}) (\{.*\})\n$`)
	check := func(name, wantJSON string) {
		t.Helper()
		b := readFile(t, filepath.Join(dir, name))
		m := lineRE.FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s = %q, want one line v1 <crc32c> <json>", name, b)
		}
		if want := fmt.Sprintf("%08x", crc32.Checksum(m[2], crc32.MakeTable(crc32.Castagnoli))); string(m[1]) != want {
			t.Errorf("%s checksum %s, want crc32c %s", name, m[1], want)
		}
		if wantJSON != "" && string(m[2]) != wantJSON {
			t.Errorf("%s JSON\n got %s\nwant %s", name, m[2], wantJSON)
		}
	}
	check(offsetsName, `{"batch":1,"time":"2026-01-02T15:04:05.123456789Z","from":{},"until":{"orders":{"0":23,"1":-1}},"records":5,"kind":"batch","note":"x"}`)
	check(commitsName, "")
	var c struct {
		Batch int64     `json:"batch"`
		Time  time.Time `json:"time"`
	}
	b := readFile(t, filepath.Join(dir, commitsName))
	if err := json.Unmarshal(b[12:], &c); err != nil || c.Batch != 1 || c.Time.IsZero() {
		t.Fatalf("commit entry %s: %+v %v", b, c, err)
	}
	var m map[string]any
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, metaName)), &m); err != nil {
		t.Fatal(err)
	}
	if m["format"] != float64(1) || m["pipeline"] != "demo" || m["created"] == nil {
		t.Fatalf("meta.json = %v", m)
	}
	if got := strings.TrimSpace(string(readFile(t, filepath.Join(dir, lockName)))); got != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, want our pid %d", got, os.Getpid())
	}
}

func TestPlanCommitRules(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*Store) error
		op      func(*Store) error
		wantErr string // "" = must succeed
	}{
		{"first batch is 1", nil, func(s *Store) error { return s.Plan(entry(1)) }, ""},
		{"first batch not 1", nil, func(s *Store) error { return s.Plan(entry(2)) }, "the next batch is 1"},
		{"next after committed", planned(1, true), func(s *Store) error { return s.Plan(entry(2)) }, ""},
		{"skip ahead", planned(1, true), func(s *Store) error { return s.Plan(entry(3)) }, "the next batch is 2"},
		{"backwards", planned(2, true), func(s *Store) error { return s.Plan(entry(1)) }, "the next batch is 3"},
		{"next while uncommitted", planned(1, false), func(s *Store) error { return s.Plan(entry(2)) }, "batch 1 is planned but not committed"},
		{"re-plan uncommitted", planned(1, false), func(s *Store) error { return s.Plan(entry(1)) }, ""},
		{"re-plan committed", planned(1, true), func(s *Store) error { return s.Plan(entry(1)) }, "it is committed"},
		{"commit nothing planned", nil, func(s *Store) error { return s.Commit(1) }, "no batch is planned"},
		{"commit last", planned(2, false), func(s *Store) error { return s.Commit(2) }, ""},
		{"commit not last", planned(2, false), func(s *Store) error { return s.Commit(1) }, "the last planned batch is 2"},
		{"commit twice", planned(2, true), func(s *Store) error { return s.Commit(2) }, "already committed"},
		{"bad kind", nil, func(s *Store) error { e := entry(1); e.Kind = "other"; return s.Plan(e) }, `kind "other"`},
		{"negative records", nil, func(s *Store) error { e := entry(1); e.Records = -1; return s.Plan(e) }, "negative record count"},
		{"offset below earliest", nil, func(s *Store) error {
			return s.Plan(Entry{Batch: 1, Until: sdk.Offsets{"t/0": -3}})
		}, "offsets are >= 0"},
		{"partition not in Spark form", nil, func(s *Store) error {
			return s.Plan(Entry{Batch: 1, Until: sdk.Offsets{"t/": 1}})
		}, "does not survive Spark's JSON form"},
		{"special offsets", nil, func(s *Store) error {
			return s.Plan(Entry{Batch: 1, From: sdk.Offsets{"t/0": sdk.Earliest, "u": sdk.Latest}, Until: sdk.Offsets{"t/0": 5, "u": 7}})
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newDir(t)
			s := mustOpen(t, dir)
			if tt.setup != nil {
				if err := tt.setup(s); err != nil {
					t.Fatal(err)
				}
			}
			before := readFile(t, filepath.Join(dir, offsetsName))
			beforeC := readFile(t, filepath.Join(dir, commitsName))
			h := s.History()
			err := tt.op(s)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("got %v, want an error naming %s and containing %q", err, dir, tt.wantErr)
				}
				if !bytes.Equal(before, readFile(t, filepath.Join(dir, offsetsName))) ||
					!bytes.Equal(beforeC, readFile(t, filepath.Join(dir, commitsName))) {
					t.Fatal("a refused call changed the logs")
				}
				if !slices.EqualFunc(h, s.History(), func(a, b Batch) bool { return a.Batch == b.Batch && a.Committed == b.Committed }) {
					t.Fatal("a refused call changed the history")
				}
			}
			// Whatever happened, the files read back to the same state.
			want := s.History()
			s.Close()
			s = mustOpen(t, dir)
			defer s.Close()
			got := s.History()
			if len(got) != len(want) {
				t.Fatalf("reopened history %d batches, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].Batch != want[i].Batch || got[i].Committed != want[i].Committed ||
					!got[i].From.Equal(want[i].From) || !got[i].Until.Equal(want[i].Until) ||
					!got[i].Time.Equal(want[i].Time) || got[i].Kind != want[i].Kind {
					t.Fatalf("reopened batch %+v, want %+v", got[i], want[i])
				}
			}
		})
	}
}

// planned returns a setup that plans batches 1..n, committing all but the last
// unless lastCommitted.
func planned(n int64, lastCommitted bool) func(*Store) error {
	return func(s *Store) error {
		for id := int64(1); id <= n; id++ {
			if err := s.Plan(entry(id)); err != nil {
				return err
			}
			if id < n || lastCommitted {
				if err := s.Commit(id); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

func TestReplanReplaces(t *testing.T) {
	dir := newDir(t)
	s := mustOpen(t, dir)
	planCommit(t, s, 1)
	if err := s.Plan(entry(2)); err != nil {
		t.Fatal(err)
	}
	e := entry(2)
	e.Until = sdk.Offsets{"orders/0": 77}
	e.Records = 3
	if err := s.Plan(e); err != nil {
		t.Fatal(err)
	}
	for pass := range 2 {
		h := s.History()
		if len(h) != 2 || !h[1].Until.Equal(e.Until) || h[1].Records != 3 {
			t.Fatalf("pass %d: history %+v, want batch 2 replaced by the re-plan", pass, h)
		}
		s.Close()
		s = mustOpen(t, dir)
	}
	defer s.Close()
	if n := countLines(t, filepath.Join(dir, offsetsName)); n != 3 {
		t.Fatalf("offset log has %d lines, want 3 (append-only)", n)
	}
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name          string
		file          string
		tail          func(t *testing.T) []byte
		wantPlanned   int64
		wantCommitted int64
	}{
		{"offsets half line", offsetsName, func(t *testing.T) []byte { l := entryLine(t, entry(4)); return []byte(l[:len(l)/2]) }, 3, 3},
		{"offsets line without newline", offsetsName, func(t *testing.T) []byte { return []byte(entryLine(t, entry(4))) }, 3, 3},
		{"offsets zeros", offsetsName, func(*testing.T) []byte { return make([]byte, 300) }, 3, 3},
		{"commits half line", commitsName, func(t *testing.T) []byte { l := commitLine(t, 4); return []byte(l[:10]) }, 4, 3},
		{"commits line without newline", commitsName, func(t *testing.T) []byte { return []byte(commitLine(t, 4)) }, 4, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newDir(t)
			s := mustOpen(t, dir)
			planCommit(t, s, 1, 2, 3)
			if tt.file == commitsName {
				if err := s.Plan(entry(4)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			path := filepath.Join(dir, tt.file)
			good := readFile(t, path)
			writeFile(t, path, append(slices.Clone(good), tt.tail(t)...))

			s, err := Open(dir, "demo")
			if err != nil {
				t.Fatalf("Open with a torn tail: %v", err)
			}
			if got := readFile(t, path); !bytes.Equal(got, good) {
				t.Fatalf("after Open %s is %q, want the torn tail cut away: %q", tt.file, got, good)
			}
			last, _, c := s.Last()
			if last.Batch != tt.wantPlanned || c != tt.wantCommitted {
				t.Fatalf("Last planned %d committed %d, want %d %d", last.Batch, c, tt.wantPlanned, tt.wantCommitted)
			}
			// The store goes on cleanly from there.
			if c < last.Batch {
				if err := s.Commit(last.Batch); err != nil {
					t.Fatal(err)
				}
			}
			planCommit(t, s, last.Batch+1)
			s.Close()
			s = mustOpen(t, dir)
			defer s.Close()
			if _, _, c := s.Last(); c != last.Batch+1 {
				t.Fatalf("after reopen committed %d, want %d", c, last.Batch+1)
			}
		})
	}
}

func TestTornTailOnly(t *testing.T) {
	dir := newDir(t)
	mustOpen(t, dir).Close()
	writeFile(t, filepath.Join(dir, offsetsName), []byte("v1 1234"))
	s := mustOpen(t, dir)
	defer s.Close()
	if _, ok, _ := s.Last(); ok {
		t.Fatal("a torn first line became an entry")
	}
	planCommit(t, s, 1)
}

func TestCorruption(t *testing.T) {
	// Base: offsets.log lines 1-4 = batches 1-4; commits.log lines 1-3 = batches 1-3.
	tests := []struct {
		name    string
		file    string
		edit    func(t *testing.T, lines []string) []string
		line    int
		problem string
	}{
		{"checksum mismatch", offsetsName, func(t *testing.T, l []string) []string {
			l[1] = strings.Replace(l[1], `"records":11`, `"records":12`, 1)
			return l
		}, 2, "checksum mismatch (want "},
		{"bad JSON", offsetsName, func(t *testing.T, l []string) []string {
			l[2] = rawLine(`{"batch":3,`)
			return l
		}, 3, "bad JSON"},
		{"bad offsets JSON", offsetsName, func(t *testing.T, l []string) []string {
			l[2] = rawLine(`{"batch":3,"from":{"orders":{"0":-7}},"until":{},"kind":"batch"}`)
			return l
		}, 3, "bad JSON"},
		{"unknown version prefix", offsetsName, func(t *testing.T, l []string) []string {
			l[1] = "v2" + strings.TrimPrefix(l[1], "v1")
			return l
		}, 2, `unknown version prefix "v2"`},
		{"malformed line", offsetsName, func(t *testing.T, l []string) []string {
			l[0] = "hello world"
			return l
		}, 1, "malformed line"},
		{"malformed checksum", offsetsName, func(t *testing.T, l []string) []string {
			l[0] = "v1 XYZ " + l[0][12:]
			return l
		}, 1, "malformed checksum field"},
		{"empty line", offsetsName, func(t *testing.T, l []string) []string {
			return slices.Insert(l, 2, "")
		}, 3, "empty line"},
		{"batch ids backwards", offsetsName, func(t *testing.T, l []string) []string {
			l[3] = entryLine(t, entry(2))
			return l
		}, 4, "batch id 2 goes backwards (after batch 3)"},
		{"batch ids skip", offsetsName, func(t *testing.T, l []string) []string {
			l[3] = entryLine(t, entry(6))
			return l
		}, 4, "batch id 6 skips ahead"},
		{"batch id zero", offsetsName, func(t *testing.T, l []string) []string {
			l[0] = entryLine(t, Entry{Batch: 0, Until: until(1)})
			return l
		}, 1, "batch id 0 is not positive"},
		{"unknown kind", offsetsName, func(t *testing.T, l []string) []string {
			e := entry(4)
			e.Kind = "weird"
			l[3] = entryLine(t, e)
			return l
		}, 4, `kind "weird"`},
		{"commit checksum", commitsName, func(t *testing.T, l []string) []string {
			l[2] = strings.Replace(l[2], `"batch":3`, `"batch":4`, 1)
			return l
		}, 3, "checksum mismatch"},
		{"commit of unknown batch", commitsName, func(t *testing.T, l []string) []string {
			return append(l, commitLine(t, 9))
		}, 4, "commit of batch 9, which the offset log"},
		{"commits out of order", commitsName, func(t *testing.T, l []string) []string {
			l[1], l[2] = l[2], l[1]
			return l
		}, 3, "commits out of order: batch 2 after batch 3"},
		{"commit twice", commitsName, func(t *testing.T, l []string) []string {
			return append(l, commitLine(t, 3))
		}, 4, "batch 3 is committed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newDir(t)
			s := mustOpen(t, dir)
			planCommit(t, s, 1, 2, 3)
			if err := s.Plan(entry(4)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			path := filepath.Join(dir, tt.file)
			lines := strings.Split(strings.TrimSuffix(string(readFile(t, path)), "\n"), "\n")
			lines = tt.edit(t, lines)
			damaged := []byte(strings.Join(lines, "\n") + "\n")
			writeFile(t, path, damaged)

			wantPrefix := fmt.Sprintf("checkpoint %s line %d: ", path, tt.line)
			for _, open := range []struct {
				name string
				fn   func(string, string) (*Store, error)
			}{{"Open", Open}, {"Inspect", Inspect}} {
				s, err := open.fn(dir, "demo")
				if err == nil {
					s.Close()
					t.Fatalf("%s of a corrupt checkpoint succeeded", open.name)
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, wantPrefix) || !strings.Contains(msg, tt.problem) ||
					!strings.HasSuffix(msg, "the checkpoint is corrupt; restore it or reset offsets") {
					t.Fatalf("%s error:\n %s\nwant prefix %q and %q", open.name, msg, wantPrefix, tt.problem)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s error is not ErrCorrupt: %v", open.name, err)
				}
			}
			if got := readFile(t, path); !bytes.Equal(got, damaged) {
				t.Fatal("Open changed a corrupt file; it must leave it for the operator")
			}
			// The failed Open released the lock.
			if _, err := Open(dir, "demo"); errors.Is(err, ErrLocked) {
				t.Fatal("a failed Open kept the lock")
			}
		})
	}
}

func TestMeta(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(t *testing.T, dir string)
		want    string
		corrupt bool
	}{
		{"other pipeline", func(t *testing.T, dir string) {
			editMeta(t, dir, func(m *metaJSON) { m.Pipeline = "other" })
		}, `belongs to pipeline "other", not "demo"`, false},
		{"newer format", func(t *testing.T, dir string) {
			editMeta(t, dir, func(m *metaJSON) { m.Format = 2 })
		}, "has format 2, newer than this connectd reads (1)", false},
		{"bad JSON", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, metaName), []byte("{"))
		}, "bad JSON", true},
		{"missing with logs", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, metaName)); err != nil {
				t.Fatal(err)
			}
		}, "missing, but", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newDir(t)
			s := mustOpen(t, dir)
			planCommit(t, s, 1)
			s.Close()
			tt.edit(t, dir)
			for _, open := range []func(string, string) (*Store, error){Open, Inspect} {
				_, err := open(dir, "demo")
				if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, metaName)) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want an error naming %s and saying %q", err, filepath.Join(dir, metaName), tt.want)
				}
				if errors.Is(err, ErrCorrupt) != tt.corrupt {
					t.Fatalf("errors.Is(err, ErrCorrupt) = %v, want %v", !tt.corrupt, tt.corrupt)
				}
			}
		})
	}
	t.Run("no pipeline name", func(t *testing.T) {
		if _, err := Open(newDir(t), ""); err == nil {
			t.Fatal("Open with no pipeline name succeeded")
		}
	})
	t.Run("fresh directory without meta", func(t *testing.T) {
		// A crash while creating the checkpoint: empty logs, no meta.json.
		dir := newDir(t)
		mustOpen(t, dir).Close()
		if err := os.Remove(filepath.Join(dir, metaName)); err != nil {
			t.Fatal(err)
		}
		mustOpen(t, dir).Close()
		if _, err := os.Stat(filepath.Join(dir, metaName)); err != nil {
			t.Fatal(err)
		}
	})
}

func editMeta(t *testing.T, dir string, f func(*metaJSON)) {
	t.Helper()
	var m metaJSON
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, metaName)), &m); err != nil {
		t.Fatal(err)
	}
	f(&m)
	b, _ := json.Marshal(m)
	writeFile(t, filepath.Join(dir, metaName), b)
}

func TestLockSameProcess(t *testing.T) {
	dir := newDir(t)
	s := mustOpen(t, dir)
	_, err := Open(dir, "demo")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("checkpoint %s is locked by process %d: pipeline \"demo\" is already running", dir, os.Getpid())
	if err.Error() != want {
		t.Fatalf("error %q\nwant  %q", err, want)
	}
	// The refused Open left the holder's pid in place.
	if got := strings.TrimSpace(string(readFile(t, filepath.Join(dir, lockName)))); got != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q after a refused Open", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, "demo")
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

const helperEnv = "CHECKPOINT_TEST_HELPER"

// TestHelperProcess is not a test: TestLockChildProcess runs the test binary
// with helperEnv set to "hold:<dir>" (open, report, wait for stdin to close,
// Close) or "try:<dir>" (Open once and report the error).
func TestHelperProcess(t *testing.T) {
	mode, dir, ok := strings.Cut(os.Getenv(helperEnv), ":")
	if !ok {
		t.Skip("helper process for TestLockChildProcess")
	}
	s, err := Open(dir, "demo")
	switch mode {
	case "hold":
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		s.Close()
		os.Exit(0)
	case "try":
		if err == nil {
			s.Close()
			fmt.Println("opened")
			os.Exit(0)
		}
		fmt.Printf("locked=%v %v\n", errors.Is(err, ErrLocked), err)
		os.Exit(0)
	}
	os.Exit(3)
}

func helper(t *testing.T, mode, dir string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode+":"+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stdin, bufio.NewReader(stdout)
}

func TestLockChildProcess(t *testing.T) {
	for _, release := range []string{"close", "kill -9"} {
		t.Run("child holds, released by "+release, func(t *testing.T) {
			dir := newDir(t)
			mustOpen(t, dir).Close()
			cmd, stdin, out := helper(t, "hold", dir)
			if line, _ := out.ReadString('\n'); line != "locked\n" {
				t.Fatalf("child said %q", line)
			}
			_, err := Open(dir, "demo")
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("Open while a child holds the lock: %v, want ErrLocked", err)
			}
			if want := fmt.Sprintf("locked by process %d: pipeline \"demo\" is already running", cmd.Process.Pid); !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
			if release == "close" {
				stdin.Close()
				if err := cmd.Wait(); err != nil {
					t.Fatalf("child: %v", err)
				}
			} else {
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
			}
			s, err := Open(dir, "demo")
			if err != nil {
				t.Fatalf("Open after the child released the lock (%s): %v", release, err)
			}
			s.Close()
		})
	}
	t.Run("parent holds", func(t *testing.T) {
		dir := newDir(t)
		s := mustOpen(t, dir)
		defer s.Close()
		cmd, _, out := helper(t, "try", dir)
		line, _ := out.ReadString('\n')
		cmd.Wait()
		want := fmt.Sprintf("locked=true checkpoint %s is locked by process %d", dir, os.Getpid())
		if !strings.HasPrefix(line, want) {
			t.Fatalf("child said %q, want %q...", line, want)
		}
	})
}

func TestInspect(t *testing.T) {
	dir := newDir(t)
	s := mustOpen(t, dir)
	defer s.Close()
	planCommit(t, s, 1, 2)
	if err := s.Plan(entry(3)); err != nil {
		t.Fatal(err)
	}

	in, err := Inspect(dir, "demo")
	if err != nil {
		t.Fatalf("Inspect while locked: %v", err)
	}
	if in.Dir() != dir {
		t.Fatalf("Dir = %q", in.Dir())
	}
	last, ok, c := in.Last()
	if !ok || last.Batch != 3 || c != 2 || !in.Committed().Equal(until(2)) || len(in.History()) != 3 {
		t.Fatalf("Inspect sees last %d committed %d history %d", last.Batch, c, len(in.History()))
	}
	for name, op := range map[string]func() error{
		"Plan":   func() error { return in.Plan(entry(3)) },
		"Commit": func() error { return in.Commit(3) },
		"Reset":  func() error { _, err := in.Reset(until(9), ""); return err },
	} {
		if err := op(); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s on an inspected store: %v, want a read-only error", name, err)
		}
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	// The writer still holds the lock and works.
	if err := s.Commit(3); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "demo"); !errors.Is(err, ErrLocked) {
		t.Fatalf("Inspect took or broke the lock: %v", err)
	}

	// Inspect ignores a torn tail without cutting it.
	path := filepath.Join(dir, offsetsName)
	torn := append(readFile(t, path), "v1 00"...)
	writeFile(t, path, torn)
	in, err = Inspect(dir, "")
	if err != nil {
		t.Fatalf("Inspect with a torn tail and no pipeline name: %v", err)
	}
	if _, _, c := in.Last(); c != 3 {
		t.Fatalf("committed %d", c)
	}
	if !bytes.Equal(readFile(t, path), torn) {
		t.Fatal("Inspect wrote to the checkpoint")
	}

	if _, err := Inspect(dir, "other"); err == nil || !strings.Contains(err.Error(), `belongs to pipeline "demo"`) {
		t.Fatalf("Inspect with the wrong pipeline: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	_, err = Inspect(missing, "demo")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Inspect of a missing directory: %v, want os.ErrNotExist naming %s", err, missing)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Inspect created the directory")
	}
}

// TestInspectWhileWriting reads the checkpoint while the pipeline plans,
// commits and compacts it: Inspect must never report a corruption that is
// only a moment of a live write.
func TestInspectWhileWriting(t *testing.T) {
	dir := newDir(t)
	writeState(t, dir, 980)
	s := mustOpen(t, dir)
	defer s.Close()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			in, err := Inspect(dir, "demo")
			if err != nil {
				t.Errorf("Inspect during writes: %v", err)
				return
			}
			if len(in.History()) < 100 {
				t.Errorf("Inspect saw %d batches", len(in.History()))
				return
			}
		}
	}()
	planCommit(t, s, seq(981, 1040)...) // crosses the compaction at 1001
	close(done)
	wg.Wait()
}

func TestCompaction(t *testing.T) {
	dir := newDir(t)
	writeState(t, dir, 990)
	s := mustOpen(t, dir)
	planCommit(t, s, seq(991, 1000)...)
	if n := countLines(t, filepath.Join(dir, offsetsName)); n != 1000 {
		t.Fatalf("offset log has %d lines at 1000 batches, want 1000 (no compaction yet)", n)
	}
	planCommit(t, s, 1001)
	check := func(s *Store, last int64) {
		t.Helper()
		h := s.History()
		p, c := ids(h)
		if len(h) < 100 || len(h) > compactAbove || p[len(p)-1] != last || !slices.Equal(p, c) {
			t.Fatalf("history after compaction: %d batches %d..%d, committed %d", len(h), p[0], p[len(p)-1], len(c))
		}
		for i, b := range h {
			if b.Batch != p[0]+int64(i) || !b.Until.Equal(until(b.Batch)) || b.Time.IsZero() || b.CommitTime.IsZero() {
				t.Fatalf("batch %+v after compaction", b)
			}
		}
		if !s.Committed().Equal(until(last)) {
			t.Fatalf("Committed = %v after compaction", s.Committed())
		}
	}
	check(s, 1001)
	if got := len(s.History()); got != compactKeep {
		t.Fatalf("kept %d batches, want %d", got, compactKeep)
	}
	for _, name := range []string{offsetsName, commitsName} {
		if n := countLines(t, filepath.Join(dir, name)); n != compactKeep {
			t.Fatalf("%s has %d lines after compaction, want %d", name, n, compactKeep)
		}
		if _, err := os.Stat(filepath.Join(dir, name+tmpSuffix)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left behind", name+tmpSuffix)
		}
	}
	// Appends go to the new files.
	planCommit(t, s, 1002, 1003)
	s.Close()
	s = mustOpen(t, dir)
	defer s.Close()
	check(s, 1003)
	if n := countLines(t, filepath.Join(dir, offsetsName)); n != compactKeep+2 {
		t.Fatalf("offset log has %d lines, want %d", n, compactKeep+2)
	}
}

// TestCompactionCrash stops a compaction at each step, as a crash would, and
// checks that the checkpoint reopens consistent and compacts later.
func TestCompactionCrash(t *testing.T) {
	for _, point := range []string{
		commitsName + ":written", commitsName + ":renamed",
		offsetsName + ":written", offsetsName + ":renamed",
	} {
		t.Run(point, func(t *testing.T) {
			dir := newDir(t)
			writeState(t, dir, 1000)
			s := mustOpen(t, dir)
			crash := errors.New("crash at " + point)
			s.hook = func(p string) error {
				if p == point {
					return crash
				}
				return nil
			}
			err := s.Plan(entry(1001))
			if !errors.Is(err, crash) || !strings.Contains(err.Error(), "batch 1001 is durable") {
				t.Fatalf("Plan: %v", err)
			}
			if err := s.Commit(1001); err == nil {
				t.Fatal("Commit after a failed compaction succeeded; the store must refuse writes until reopened")
			}
			s.Close()

			s = mustOpen(t, dir)
			defer s.Close()
			last, _, c := s.Last()
			if last.Batch != 1001 || c != 1000 || !s.Committed().Equal(until(1000)) {
				t.Fatalf("after reopen: planned %d committed %d", last.Batch, c)
			}
			if h := s.History(); len(h) < 100 || h[len(h)-1].Batch != 1001 {
				t.Fatalf("after reopen: %d batches", len(h))
			}
			for _, name := range []string{offsetsName, commitsName} {
				if _, err := os.Stat(filepath.Join(dir, name+tmpSuffix)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("Open left %s behind", name+tmpSuffix)
				}
			}
			if err := s.Commit(1001); err != nil {
				t.Fatal(err)
			}
			planCommit(t, s, 1002)
			if n := countLines(t, filepath.Join(dir, offsetsName)); n > compactAbove {
				t.Fatalf("offset log still %d lines: compaction never completed", n)
			}
			if len(s.History()) < 100 {
				t.Fatal("lost history")
			}
		})
	}
}

func TestReset(t *testing.T) {
	target := sdk.Offsets{"orders/0": 500, "orders/1": sdk.Latest}
	tests := []struct {
		name          string
		setup         func(*Store) error
		wantBatch     int64
		wantFrom      sdk.Offsets
		wantPlanned   []int64
		wantCommitted []int64
	}{
		{"empty checkpoint", nil, 1, sdk.Offsets{}, []int64{1}, []int64{1}},
		{"after committed batches", planned(2, true), 3, until(2), []int64{1, 2, 3}, []int64{1, 2, 3}},
		{"supersedes an uncommitted batch", planned(2, false), 3, until(1), []int64{1, 2, 3}, []int64{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newDir(t)
			s := mustOpen(t, dir)
			if tt.setup != nil {
				if err := tt.setup(s); err != nil {
					t.Fatal(err)
				}
			}
			e, err := s.Reset(target, "skip the poison record")
			if err != nil {
				t.Fatal(err)
			}
			if e.Batch != tt.wantBatch || e.Kind != KindReset || !e.From.Equal(tt.wantFrom) ||
				!e.Until.Equal(target) || e.Records != 0 || e.Note != "skip the poison record" || e.Time.IsZero() {
				t.Fatalf("Reset returned %+v", e)
			}
			for pass := range 2 {
				if !s.Committed().Equal(target) {
					t.Fatalf("pass %d: Committed = %v, want %v", pass, s.Committed(), target)
				}
				last, _, c := s.Last()
				if last.Batch != tt.wantBatch || c != tt.wantBatch || last.Kind != KindReset {
					t.Fatalf("pass %d: Last %+v committed %d", pass, last, c)
				}
				p, cm := ids(s.History())
				if !slices.Equal(p, tt.wantPlanned) || !slices.Equal(cm, tt.wantCommitted) {
					t.Fatalf("pass %d: history planned %v committed %v, want %v %v", pass, p, cm, tt.wantPlanned, tt.wantCommitted)
				}
				s.Close()
				s = mustOpen(t, dir)
			}
			defer s.Close()
			// The pipeline continues after the reset.
			next := Entry{Batch: tt.wantBatch + 1, From: target, Until: sdk.Offsets{"orders/0": 510}}
			if err := s.Plan(next); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(next.Batch); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("crash between plan and commit", func(t *testing.T) {
		dir := newDir(t)
		s := mustOpen(t, dir)
		planCommit(t, s, 1)
		s.hook = func(p string) error {
			if p == "reset:planned" {
				return errors.New("crash")
			}
			return nil
		}
		if _, err := s.Reset(target, ""); err == nil {
			t.Fatal("Reset with a crash succeeded")
		}
		s.Close()
		if in, err := Inspect(dir, "demo"); err != nil {
			t.Fatal(err)
		} else if _, _, c := in.Last(); c != 1 {
			t.Fatalf("Inspect: committed %d, want 1 (Inspect does not write)", c)
		}
		s = mustOpen(t, dir)
		defer s.Close()
		if last, _, c := s.Last(); last.Batch != 2 || c != 2 || !s.Committed().Equal(target) {
			t.Fatalf("after reopen: planned %d committed %d Committed %v: the interrupted reset was not finished", last.Batch, c, s.Committed())
		}
	})
	t.Run("bad offsets refused", func(t *testing.T) {
		dir := newDir(t)
		s := mustOpen(t, dir)
		defer s.Close()
		planCommit(t, s, 1)
		if _, err := s.Reset(sdk.Offsets{"t/0": -5}, ""); err == nil {
			t.Fatal("Reset to offset -5 succeeded")
		}
		if last, _, c := s.Last(); last.Batch != 1 || c != 1 {
			t.Fatalf("a refused Reset changed the store: %d %d", last.Batch, c)
		}
	})
}

// BenchmarkCommit measures one Plan+Commit pair (two appends, two fsyncs) and
// reports its latency percentiles.
func BenchmarkCommit(b *testing.B) {
	s := mustOpen(b, newDir(b))
	defer s.Close()
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := int64(1); i <= int64(b.N); i++ {
		start := time.Now()
		if err := s.Plan(entry(i)); err != nil {
			b.Fatal(err)
		}
		if err := s.Commit(i); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
}
