package file

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

func openSource(t *testing.T, params map[string]any) *Source {
	t.Helper()
	cfg, err := sdk.NewConfig(Plugin.Source.Spec, "pipe", params)
	if err != nil {
		t.Fatal(err)
	}
	s := Plugin.Source.New().(*Source)
	if err := s.Open(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

func read(t *testing.T, s *Source, from sdk.Offsets, limits sdk.Limits) sdk.Read {
	t.Helper()
	rd, err := s.Read(context.Background(), from, limits)
	if err != nil {
		t.Fatal(err)
	}
	if err := sdk.CheckRead(from, limits, rd); err != nil {
		t.Fatalf("Read(%v, %+v) breaks the contract: %v", from, limits, err)
	}
	return rd
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// values renders records as "partition@offset=value" strings.
func values(recs []sdk.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%s=%s", r.Position, r.Value)
	}
	return out
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestSourceSpec(t *testing.T) {
	if err := SourceSpec.Check(); err != nil {
		t.Fatal(err)
	}
	if Plugin.Name() != "file" || !SourceSpec.Has(sdk.CapReplayable) {
		t.Fatalf("plugin %+v", Plugin)
	}
	if _, err := sdk.NewConfig(SourceSpec, "pipe", nil); err == nil {
		t.Fatal("paths is required")
	}
	if _, err := sdk.NewConfig(SourceSpec, "pipe", map[string]any{"paths": []string{"a"}, "poll": "0s"}); err == nil {
		t.Error("poll 0s accepted")
	}
	for _, params := range []map[string]any{{"paths": []string{}}, {"paths": []string{"a[.txt"}}} {
		cfg, err := sdk.NewConfig(SourceSpec, "pipe", params)
		if err != nil {
			t.Fatal(err)
		}
		if err := (&Source{}).Open(context.Background(), cfg); err == nil || !sdk.IsConfigError(err) {
			t.Errorf("Open(%v): error %v, want a configuration error", params, err)
		}
	}
}

func TestPartitionName(t *testing.T) {
	for in, want := range map[string]string{
		"a.txt":        "./a.txt",
		"./a.txt":      "./a.txt",
		"in/a.txt":     "in/a.txt",
		"./in//a.txt":  "in/a.txt",
		"/abs/x/a.log": "/abs/x/a.log",
		"../up/a.txt":  "../up/a.txt",
	} {
		if got := PartitionName(in); got != want {
			t.Errorf("PartitionName(%q) = %q, want %q", in, got, want)
		}
		if g, p := sdk.SplitPartition(PartitionName(in)); g == "" || p == "" {
			t.Errorf("%q has no group: %q %q", in, g, p)
		}
	}
}

func TestReadRelativeNames(t *testing.T) {
	t.Chdir(t.TempDir())
	write(t, "a.txt", "1\n")
	os.Mkdir("in", 0o755)
	write(t, "in/b.txt", "2\n")
	s := openSource(t, map[string]any{"paths": []any{"a.txt", "./in/*.txt"}})
	rd := read(t, s, nil, sdk.Limits{MaxRecords: 10})
	eq(t, "records", values(rd.Records), []string{"./a.txt@0=1", "in/b.txt@0=2"})
	got, err := s.Replay(context.Background(), rd.From, rd.Until)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "replay", values(got), values(rd.Records))
}

func TestReadSeveralFiles(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt"), filepath.Join(dir, "c.log")
	write(t, b, "b1\n\nb3\n")
	write(t, a, "a1\na2\n")
	write(t, c, "not matched\n")
	os.Mkdir(filepath.Join(dir, "d.txt"), 0o755) // a directory is not a partition
	s := openSource(t, map[string]any{"paths": []string{filepath.Join(dir, "*.txt"), a}})
	pa, pb := PartitionName(a), PartitionName(b)

	rd := read(t, s, nil, sdk.Limits{MaxRecords: 3})
	eq(t, "first", values(rd.Records), []string{pa + "@0=a1", pa + "@3=a2", pb + "@0=b1"})
	if want := (sdk.Offsets{pa: 6, pb: 3}); !rd.Until.Equal(want) {
		t.Fatalf("until %v, want %v", rd.Until, want)
	}
	if want := (sdk.Offsets{pa: 0, pb: 0}); !rd.From.Equal(want) {
		t.Fatalf("from %v, want %v", rd.From, want)
	}
	for _, r := range rd.Records {
		if r.Key != nil || r.Headers != nil || !r.Timestamp.IsZero() {
			t.Fatalf("record %v has a key, headers or timestamp", r)
		}
	}
	rd = read(t, s, rd.Until, sdk.Limits{MaxRecords: 3})
	eq(t, "second", values(rd.Records), []string{pb + "@3=", pb + "@4=b3"})
	rd = read(t, s, rd.Until, sdk.Limits{MaxRecords: 3})
	if len(rd.Records) != 0 || !rd.Until.Equal(sdk.Offsets{pa: 6, pb: 7}) {
		t.Fatalf("at the end: %q until %v", values(rd.Records), rd.Until)
	}
}

func TestPartialLine(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.txt")
	write(t, a, "one\ntw")
	pa := PartitionName(a)
	s := openSource(t, map[string]any{"paths": []string{a}})
	rd := read(t, s, nil, sdk.Limits{MaxRecords: 10})
	eq(t, "before", values(rd.Records), []string{pa + "@0=one"})
	from := rd.Until
	if rd = read(t, s, from, sdk.Limits{MaxRecords: 10}); len(rd.Records) != 0 || rd.Until[pa] != 4 {
		t.Fatalf("partial line returned: %q until %v", values(rd.Records), rd.Until)
	}
	appendTo(t, a, "o")
	if rd = read(t, s, from, sdk.Limits{MaxRecords: 10}); len(rd.Records) != 0 {
		t.Fatalf("partial line returned: %q", values(rd.Records))
	}
	if end, err := s.End(context.Background()); err != nil || !end.Equal(sdk.Offsets{pa: 4}) {
		t.Fatalf("End = %v, %v; want %s: 4", end, err, pa)
	}
	appendTo(t, a, "\nthr")
	rd = read(t, s, from, sdk.Limits{MaxRecords: 10})
	eq(t, "after", values(rd.Records), []string{pa + "@4=two"})
	appendTo(t, a, "ee\n")
	rd = read(t, s, rd.Until, sdk.Limits{MaxRecords: 10})
	eq(t, "third", values(rd.Records), []string{pa + "@8=three"})
}

func TestPollAndNewFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	write(t, a, "")
	s := openSource(t, map[string]any{"paths": []string{filepath.Join(dir, "*.txt")}, "poll": "10ms"})

	start := time.Now()
	rd := read(t, s, nil, sdk.Limits{MaxRecords: 10, MaxWait: 60 * time.Millisecond})
	if len(rd.Records) != 0 || time.Since(start) < 60*time.Millisecond {
		t.Fatalf("empty read: %q after %v", values(rd.Records), time.Since(start))
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		write(t, b, "new\n")
	}()
	start = time.Now()
	rd = read(t, s, rd.Until, sdk.Limits{MaxRecords: 10, MaxWait: 10 * time.Second})
	eq(t, "new file", values(rd.Records), []string{PartitionName(b) + "@0=new"})
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Read(ctx, rd.Until, sdk.Limits{MaxRecords: 1, MaxWait: time.Hour}); err == nil {
		t.Fatal("cancelled read: no error")
	}
}

func TestEarliestLatest(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	write(t, a, "a1\na2\na3")
	write(t, b, "b1\nb2\n")
	pa, pb := PartitionName(a), PartitionName(b)
	s := openSource(t, map[string]any{"paths": []string{filepath.Join(dir, "*")}, "poll": "5ms"})

	rd := read(t, s, sdk.Offsets{pa: -1, pb: -2}, sdk.Limits{MaxRecords: 10})
	eq(t, "-1/-2", values(rd.Records), []string{pb + "@0=b1", pb + "@3=b2"})
	if want := (sdk.Offsets{pa: 6, pb: 0}); !rd.From.Equal(want) {
		t.Fatalf("from %v, want %v", rd.From, want)
	}
	// -1 is resolved once per Read: lines written while it polls are read.
	go func() {
		time.Sleep(30 * time.Millisecond)
		appendTo(t, a, "\n")
	}()
	rd = read(t, s, sdk.Offsets{pa: -1, pb: -1}, sdk.Limits{MaxRecords: 10, MaxWait: 10 * time.Second})
	eq(t, "latest then appended", values(rd.Records), []string{pa + "@6=a3"})
	if _, err := s.Read(context.Background(), sdk.Offsets{pa: -3}, sdk.Limits{MaxRecords: 1}); err == nil {
		t.Fatal("offset -3 accepted")
	}
	if _, err := s.Read(context.Background(), sdk.Offsets{pa: 4}, sdk.Limits{MaxRecords: 1}); err == nil || !strings.Contains(err.Error(), "not at the start of a line") {
		t.Fatalf("offset inside a line: %v", err)
	}
	if _, err := s.Read(context.Background(), sdk.Offsets{pa: 400}, sdk.Limits{MaxRecords: 1}); err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Fatalf("offset past the end: %v", err)
	}
}

func TestLimitsAndStop(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	write(t, a, "aaaa\nbbbb\ncccc\n")
	write(t, b, "x\ny\n")
	pa, pb := PartitionName(a), PartitionName(b)
	s := openSource(t, map[string]any{"paths": []string{filepath.Join(dir, "*")}})
	for _, tc := range []struct {
		name string
		lim  sdk.Limits
		want []string
	}{
		{"max records", sdk.Limits{MaxRecords: 2}, []string{pa + "@0=aaaa", pa + "@5=bbbb"}},
		{"max bytes", sdk.Limits{MaxRecords: 10, MaxBytes: 7}, []string{pa + "@0=aaaa"}},
		{"max bytes exact", sdk.Limits{MaxRecords: 10, MaxBytes: 8}, []string{pa + "@0=aaaa", pa + "@5=bbbb"}},
		{"larger than max bytes", sdk.Limits{MaxRecords: 10, MaxBytes: 1}, []string{pa + "@0=aaaa"}},
		{"stop", sdk.Limits{MaxRecords: 10, Stop: sdk.Offsets{pa: 10, pb: 2}}, []string{pa + "@0=aaaa", pa + "@5=bbbb", pb + "@0=x"}},
		{"stop zero", sdk.Limits{MaxRecords: 10, Stop: sdk.Offsets{pa: 0, pb: 4}}, []string{pb + "@0=x", pb + "@2=y"}},
		{"stop leaves out files it does not name", sdk.Limits{MaxRecords: 10, Stop: sdk.Offsets{pb: 4}}, []string{pb + "@0=x", pb + "@2=y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := read(t, s, sdk.Offsets{}, tc.lim)
			eq(t, "records", values(rd.Records), tc.want)
			got, err := s.Replay(context.Background(), rd.From, rd.Until)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "replay", values(got), tc.want)
		})
	}
}

// Reads in batches of every size, with long lines (longer than the read
// buffer), return the same sequence, and each batch replays identically.
func TestReplayIdentical(t *testing.T) {
	dir := t.TempDir()
	var files []string
	want := map[string][]string{}
	for f := 0; f < 3; f++ {
		path := filepath.Join(dir, fmt.Sprintf("f%d.txt", f))
		var buf bytes.Buffer
		for i := 0; i < 120; i++ {
			line := fmt.Sprintf("%d-%d", f, i)
			if i%100 == 7 {
				line += strings.Repeat("x", readBuffer+123) // longer than the buffer
			}
			buf.WriteString(line + "\n")
			want[PartitionName(path)] = append(want[PartitionName(path)], line)
		}
		write(t, path, buf.String())
		files = append(files, path)
	}
	var reference []string
	for _, lim := range []sdk.Limits{{MaxRecords: 1}, {MaxRecords: 33}, {MaxRecords: 1000}, {MaxRecords: 1000, MaxBytes: 3000}} {
		s := openSource(t, map[string]any{"paths": []string{filepath.Join(dir, "*.txt")}})
		from := sdk.Offsets{}
		var all []string
		for {
			rd := read(t, s, from, lim)
			if len(rd.Records) == 0 {
				break
			}
			for _, r := range rd.Records {
				all = append(all, string(r.Value))
			}
			got, err := s.Replay(context.Background(), from.Merge(rd.From), rd.Until)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(rd.Records) {
				t.Fatalf("replay: %d records, want %d", len(got), len(rd.Records))
			}
			for i := range got {
				if !bytes.Equal(got[i].Value, rd.Records[i].Value) || got[i].Position != rd.Records[i].Position {
					t.Fatalf("replay record %d: %s, want %s", i, got[i].Position, rd.Records[i].Position)
				}
			}
			from = from.Merge(rd.Until)
		}
		if reference == nil {
			reference = all
			var expect []string
			for _, f := range files {
				expect = append(expect, want[PartitionName(f)]...)
			}
			if strings.Join(all, "\n") != strings.Join(expect, "\n") {
				t.Fatalf("lines differ from the files (%d vs %d)", len(all), len(expect))
			}
		} else if strings.Join(all, "\n") != strings.Join(reference, "\n") {
			t.Fatalf("limits %+v: a different sequence", lim)
		}
	}
}

func TestReplayErrors(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.txt")
	write(t, a, "one\ntwo\nthree\n")
	pa := PartitionName(a)
	s := openSource(t, map[string]any{"paths": []string{a}})
	ctx := context.Background()
	for _, tc := range []struct {
		from, until int64
		want        string
	}{
		{2, 8, "offset 2 is not at the start of a line"},
		{0, 6, "offset 6 is not at the end of a line"},
		{8, 4, "want real offsets"},
		{-1, 4, "want real offsets"},
		{0, 100, "the file is 14 bytes, shorter than 100"},
	} {
		_, err := s.Replay(ctx, sdk.Offsets{pa: tc.from}, sdk.Offsets{pa: tc.until})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), a) ||
			!strings.Contains(err.Error(), fmt.Sprintf("[%d, %d)", tc.from, tc.until)) {
			t.Errorf("replay [%d, %d): %v; want an error naming the file, the range and %q", tc.from, tc.until, err, tc.want)
		}
	}
	got, err := s.Replay(ctx, sdk.Offsets{pa: -2}, sdk.Offsets{pa: 8})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "replay from earliest", values(got), []string{pa + "@0=one", pa + "@4=two"})

	// The file is cut short after the batch was read.
	rd := read(t, s, nil, sdk.Limits{MaxRecords: 10})
	if err := os.Truncate(a, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replay(ctx, rd.From, rd.Until); err == nil || !strings.Contains(err.Error(), "shorter than 14") {
		t.Fatalf("replay of a truncated file: %v", err)
	}
	if _, err := s.Read(ctx, rd.Until, sdk.Limits{MaxRecords: 1}); err == nil || !strings.Contains(err.Error(), a) {
		t.Fatalf("read of a truncated file: %v", err)
	}
	os.Remove(a)
	if _, err := s.Replay(ctx, rd.From, rd.Until); err == nil {
		t.Fatal("replay of a removed file: no error")
	}
	if rd := read(t, s, nil, sdk.Limits{MaxRecords: 1}); len(rd.Until) != 0 {
		t.Fatalf("removed file still read: %v", rd.Until)
	}
}

func TestLongLine(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.txt")
	write(t, a, "ok\n"+strings.Repeat("y", MaxLine+1)+"\n")
	s := openSource(t, map[string]any{"paths": []string{a}})
	rd := read(t, s, nil, sdk.Limits{MaxRecords: 1})
	_, err := s.Read(context.Background(), rd.Until, sdk.Limits{MaxRecords: 1})
	if err == nil || !strings.Contains(err.Error(), "offset 3 of "+a) || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("long line: %v", err)
	}
	// Exactly MaxLine is fine.
	write(t, a, strings.Repeat("z", MaxLine)+"\n")
	s2 := openSource(t, map[string]any{"paths": []string{a}})
	if rd := read(t, s2, nil, sdk.Limits{MaxRecords: 5}); len(rd.Records) != 1 || len(rd.Records[0].Value) != MaxLine {
		t.Fatalf("%d records", len(rd.Records))
	}
}

func TestEnd(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt"), filepath.Join(dir, "c.txt")
	write(t, a, "1\n22\n333")
	write(t, b, "")
	write(t, c, strings.Repeat("q", 100000)+"\n"+strings.Repeat("r", 100000))
	s := openSource(t, map[string]any{"paths": []string{filepath.Join(dir, "*")}})
	end, err := s.End(context.Background())
	want := sdk.Offsets{PartitionName(a): 5, PartitionName(b): 0, PartitionName(c): 100001}
	if err != nil || !end.Equal(want) {
		t.Fatalf("End = %v, %v; want %v", end, err, want)
	}
	rd := read(t, s, nil, sdk.Limits{MaxRecords: 100, Stop: end})
	if len(rd.Records) != 3 || !rd.Until.Equal(want) {
		t.Fatalf("drain to End: %d records until %v", len(rd.Records), rd.Until)
	}
	// The final empty Read of a drain does not wait for more lines.
	start := time.Now()
	rd = read(t, s, rd.Until, sdk.Limits{MaxRecords: 100, MaxWait: time.Hour, Stop: end})
	if len(rd.Records) != 0 || time.Since(start) > time.Second {
		t.Fatalf("drain: %d records after %v", len(rd.Records), time.Since(start))
	}
}
