package file

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLateWriteOfFencedWorker: the file sink in batch mode is idempotent, not
// transactional, and ignores Batch.Epoch. A worker that lost its lease (epoch
// 1) may still write a batch it planned, after the new holder (epoch 2)
// replayed and committed it and wrote the next one: the late write carries
// the same batch id and the same records (exact replay), rewrites the same
// file with the same bytes, and leaves the output as it was — harmless by
// construction. (Its commit is then refused by the checkpoint.)
func TestLateWriteOfFencedWorker(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, map[string]any{"dir": dir, "mode": ModeBatch})
	planned := batch(3, "a", "b") // planned by the old holder, epoch 1
	replay := batch(3, "a", "b")  // the new holder's exact replay
	replay.Epoch, replay.Replay = 2, true
	mustWrite(t, s, replay)
	next := batch(4, "c")
	next.Epoch = 2
	mustWrite(t, s, next)
	before := snapshot(t, dir)
	planned.Epoch = 1
	mustWrite(t, s, planned) // the late write
	after := snapshot(t, dir)
	if len(after) != len(before) {
		t.Fatalf("the late write changed the files: %v → %v", keys(before), keys(after))
	}
	for name, b := range before {
		if after[name] != b {
			t.Errorf("%s changed: %q → %q", name, b, after[name])
		}
	}
	if got := list(t, s); len(got) != 3 {
		t.Errorf("the sink holds %v, want a, b and c once", got)
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = string(b)
	}
	return out
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
