package file

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
)

func openSink(t *testing.T, params map[string]any) *Sink {
	t.Helper()
	s, err := tryOpenSink(params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func tryOpenSink(params map[string]any) (*Sink, error) {
	cfg, err := sdk.NewConfig(Plugin.Sink.Spec, "pipe", params)
	if err != nil {
		return nil, err
	}
	s := Plugin.Sink.New().(*Sink)
	return s, s.Open(context.Background(), cfg)
}

func batch(id int64, vals ...string) sdk.Batch {
	b := sdk.Batch{ID: id, Until: sdk.Offsets{"t/0": id * 10}}
	for _, v := range vals {
		b.Records = append(b.Records, sdk.Record{Value: []byte(v)})
	}
	return b
}

func mustWrite(t *testing.T, s *Sink, b sdk.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func list(t *testing.T, s *Sink) []string {
	t.Helper()
	got, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(got))
	for i, v := range got {
		out[i] = string(v)
	}
	return out
}

// dirState maps every file under dir (hidden ones included) to its content.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		m[strings.TrimPrefix(path, dir)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSinkSpec(t *testing.T) {
	if err := SinkSpec.Check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode string
		want []sdk.Capability
	}{
		{"", []sdk.Capability{sdk.CapIdempotent}},
		{ModeBatch, []sdk.Capability{sdk.CapIdempotent}},
		{ModeAppend, nil},
		{ModeTransactional, []sdk.Capability{sdk.CapTransactional}},
	} {
		vals := map[string]any{"dir": "x"}
		if tc.mode != "" {
			vals["mode"] = tc.mode
		}
		if got := SinkSpec.CapabilitiesFor(vals); !slices.Equal(got, tc.want) {
			t.Errorf("mode %q: capabilities %v, want %v", tc.mode, got, tc.want)
		}
	}
}

func TestSinkBadConfig(t *testing.T) {
	dir := t.TempDir()
	_, err := tryOpenSink(map[string]any{"dir": dir, "mode": "exactly"})
	if err == nil || !strings.Contains(err.Error(), `"exactly"`) || !sdk.IsConfigError(err) {
		t.Fatalf("bad mode: %v", err)
	}
	for _, m := range []string{ModeBatch, ModeAppend, ModeTransactional} {
		if !strings.Contains(err.Error(), `"`+m+`"`) {
			t.Errorf("bad mode error %q does not name %q", err, m)
		}
	}
	for _, f := range []string{"", ".hidden", "a/b", `a\b`} {
		if _, err := tryOpenSink(map[string]any{"dir": dir, "mode": ModeAppend, "file": f}); err == nil || !sdk.IsConfigError(err) {
			t.Errorf("append file %q: error %v, want a configuration error", f, err)
		}
	}
	for _, f := range []string{"records.txt", "a", "a.b.c"} {
		if _, err := sdk.NewConfig(SinkSpec, "pipe", map[string]any{"dir": dir, "file": f}); err != nil {
			t.Errorf("file %q: %v", f, err)
		}
	}
	if _, err := tryOpenSink(map[string]any{"mode": ModeBatch}); err == nil {
		t.Error("dir is required")
	}
	if _, err := tryOpenSink(map[string]any{"dir": ""}); err == nil || !sdk.IsConfigError(err) {
		t.Errorf("empty dir: error %v, want a configuration error", err)
	}
}

func TestBatchMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "deeper") // created by Open
	s := openSink(t, map[string]any{"dir": dir})
	mustWrite(t, s, batch(1, "a", "b"))
	mustWrite(t, s, batch(2))          // empty: no file
	mustWrite(t, s, batch(3, "", "c")) // an empty value is a line too
	want := map[string]string{
		"/" + BatchFile(1): "a\nb\n",
		"/" + BatchFile(3): "\nc\n",
	}
	if got := dirState(t, dir); !maps.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	if BatchFile(1) != "batch-000000000001.txt" {
		t.Fatalf("batch file name %q", BatchFile(1))
	}
	// A replay (same sink, then a new one) rewrites the same file with the
	// same content: nothing changes, no duplicates.
	mustWrite(t, s, batch(1, "a", "b"))
	s.Close(context.Background())
	s = openSink(t, map[string]any{"dir": dir, "mode": ModeBatch})
	replay := batch(3, "", "c")
	replay.Replay = true
	mustWrite(t, s, replay)
	if got := dirState(t, dir); !maps.Equal(got, want) {
		t.Fatalf("after replays: files %q, want %q", got, want)
	}
	eq(t, "list", list(t, s), []string{"a", "b", "", "c"})

	// Values holding a newline are refused, and leave nothing behind.
	if err := s.Write(context.Background(), batch(4, "x", "y\nz")); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Fatalf("newline in a value: %v", err)
	}
	if got := dirState(t, dir); !maps.Equal(got, want) {
		t.Fatalf("after a refused batch: files %q", got)
	}
}

func TestStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, ".tmp-batch-000000000007.txt-123"), "half a reco")
	write(t, filepath.Join(dir, "keep.txt"), "k\n")
	s := openSink(t, map[string]any{"dir": dir})
	if got := dirState(t, dir); !maps.Equal(got, map[string]string{"/keep.txt": "k\n"}) {
		t.Fatalf("files %q", got)
	}
	eq(t, "list", list(t, s), []string{"k"})
}

func TestAppendMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	params := map[string]any{"dir": dir, "mode": ModeAppend, "file": "out.txt"}
	s := openSink(t, params)
	mustWrite(t, s, batch(1, "a", "b"))
	mustWrite(t, s, batch(2))
	mustWrite(t, s, batch(2, "c"))
	mustWrite(t, s, batch(2, "c")) // at-least-once: a replay appends again
	eq(t, "list", list(t, s), []string{"a", "b", "c", "c"})
	s.Close(context.Background())

	// A crash in the middle of a write leaves a torn tail; Open cuts it.
	appendTo(t, path, "d\nhalf a rec")
	s = openSink(t, params)
	if got := dirState(t, dir); !maps.Equal(got, map[string]string{"/out.txt": "a\nb\nc\nc\nd\n"}) {
		t.Fatalf("after reopening: %q", got)
	}
	mustWrite(t, s, batch(3, "e"))
	eq(t, "list", list(t, s), []string{"a", "b", "c", "c", "d", "e"})
	s.Close(context.Background())

	// A file holding nothing but a torn line is emptied.
	write(t, path, "torn")
	openSink(t, params)
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("after reopening: %q", b)
	}
	// The default file name.
	s = openSink(t, map[string]any{"dir": dir, "mode": ModeAppend, "fsync": false})
	mustWrite(t, s, batch(1, "z"))
	if b, _ := os.ReadFile(filepath.Join(dir, "records.txt")); string(b) != "z\n" {
		t.Fatalf("records.txt: %q", b)
	}
}

func TestTransactionalMode(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	params := map[string]any{"dir": dir, "mode": ModeTransactional}
	s := openSink(t, params)
	c, err := s.LastCommitted(ctx)
	if err != nil || c.Batch != 0 || c.Until == nil || len(c.Until) != 0 {
		t.Fatalf("empty dir: LastCommitted = %+v, %v", c, err)
	}
	mustWrite(t, s, batch(1, "a"))
	mustWrite(t, s, batch(2, "b", "c"))
	c, err = s.LastCommitted(ctx)
	if err != nil || c.Batch != 2 || !c.Until.Equal(sdk.Offsets{"t/0": 20}) {
		t.Fatalf("LastCommitted = %+v, %v; want batch 2 until t/0: 20", c, err)
	}
	for _, id := range []int64{1, 2} {
		err := s.Write(ctx, batch(id, "again"))
		want := "transactional file sink: batch " + string(rune('0'+id)) + " is already committed (last committed 2); the host must not write it again"
		if err == nil || err.Error() != want {
			t.Fatalf("rewrite of batch %d: %v\nwant %s", id, err, want)
		}
	}
	eq(t, "list", list(t, s), []string{"a", "b", "c"})
	s.Close(ctx)

	// A crash after the offsets of batch 3 were stored but before its file
	// was renamed: batch 3 is not committed, and can be written.
	raw, err := os.ReadFile(filepath.Join(dir, offsetsDir, "batch-000000000002.json"))
	if err != nil || !strings.Contains(string(raw), `"until":{"t":{"0":20}}`) || !strings.Contains(string(raw), `"pipeline":"pipe"`) {
		t.Fatalf("offsets file: %s, %v", raw, err)
	}
	write(t, filepath.Join(dir, offsetsDir, "batch-000000000003.json"), `{"batch":3,"pipeline":"pipe","until":{"t":{"0":30}}}`)
	write(t, filepath.Join(dir, ".tmp-batch-000000000003.txt-99"), "d\n")
	s = openSink(t, params)
	if c, err := s.LastCommitted(ctx); err != nil || c.Batch != 2 {
		t.Fatalf("after a crash: LastCommitted = %+v, %v", c, err)
	}
	if err := s.Write(ctx, batch(2, "b", "c")); err == nil {
		t.Fatal("a new sink rewrote batch 2")
	}
	mustWrite(t, s, batch(3, "d"))
	mustWrite(t, s, batch(4)) // an empty batch commits its offsets too
	if c, err := s.LastCommitted(ctx); err != nil || c.Batch != 4 || !c.Until.Equal(sdk.Offsets{"t/0": 40}) {
		t.Fatalf("LastCommitted = %+v, %v", c, err)
	}
	eq(t, "list", list(t, s), []string{"a", "b", "c", "d"})
	s.Close(ctx)

	// Another pipeline's directory is refused.
	cfg, _ := sdk.NewConfig(SinkSpec, "other", params)
	if err := (&Sink{}).Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "own dir") {
		t.Fatalf("another pipeline's dir: %v", err)
	}
	// LastCommitted outside transactional mode is an error.
	b := openSink(t, map[string]any{"dir": t.TempDir()})
	if _, err := b.LastCommitted(ctx); err == nil {
		t.Fatal("LastCommitted in batch mode: no error")
	}
}
