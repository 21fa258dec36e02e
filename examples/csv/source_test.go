package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// write puts a file in place whole, as the source expects: written under
// another name, then renamed.
func write(t *testing.T, path, data string) {
	t.Helper()
	if err := put(path, data); err != nil {
		t.Fatal(err)
	}
}

func put(path, data string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// chdir makes the test run in a fresh directory, so that partition names are
// the short relative paths a pipeline would use.
func chdir(t *testing.T) {
	t.Chdir(t.TempDir())
}

var quick = sdk.Limits{MaxRecords: 100, MaxWait: time.Millisecond}

// show renders records as "partition@offset key value" lines.
func show(recs []sdk.Record) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "%s %s %s\n", r.Position, r.Key, r.Value)
	}
	return b.String()
}

func read(t *testing.T, src sdk.Source, from sdk.Offsets, lim sdk.Limits) sdk.Read {
	t.Helper()
	rd, err := src.Read(context.Background(), from, lim)
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// TestReadAll reads two files with a header, a key column and fields that
// hold commas, quotes and a newline: one record per row, file after file.
func TestReadAll(t *testing.T) {
	chdir(t)
	write(t, "in/b.csv", "id,name\n3,\"x, \"\"y\"\"\"\n")
	write(t, "in/a.csv", "id,name\n1,ann\n2,\"two\nlines\"\n")
	write(t, "in/notes.txt", "not matched\n")
	src := sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{"in/*.csv"}, "key": "id"})
	recs, until := sdktest.ReadAll(t, src, nil, quick)
	want := `in/a.csv@0 1 {"id":"1","name":"ann"}
in/a.csv@1 2 {"id":"2","name":"two\nlines"}
in/b.csv@0 3 {"id":"3","name":"x, \"y\""}
`
	if got := show(recs); got != want {
		t.Errorf("records:\n%s\nwant:\n%s", got, want)
	}
	if want := (sdk.Offsets{"in/a.csv": 2, "in/b.csv": 1}); !until.Equal(want) {
		t.Errorf("until = %s, want %s", until, want)
	}
}

// TestNoHeader: every row is data and a value is a JSON array.
func TestNoHeader(t *testing.T) {
	chdir(t)
	write(t, "a.csv", "1,ann\n2,bob\n")
	src := sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{"a.csv"}, "header": false})
	recs, _ := sdktest.ReadAll(t, src, nil, quick)
	want := "./a.csv@0  [\"1\",\"ann\"]\n./a.csv@1  [\"2\",\"bob\"]\n"
	if got := show(recs); got != want {
		t.Errorf("records:\n%s\nwant:\n%s", got, want)
	}
}

// TestFrom covers every shape of a from map: empty (a first read), a missing
// partition, -2, -1, a real offset, and an offset past the end.
func TestFrom(t *testing.T) {
	chdir(t)
	write(t, "a.csv", "n\n0\n1\n2\n")
	write(t, "b.csv", "n\n0\n1\n")
	src := sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{"*.csv"}})
	for _, c := range []struct {
		name       string
		from       sdk.Offsets
		first      string // position of the first record read
		resolved   sdk.Offsets
		wantUntil  sdk.Offsets
		wantRecord int
	}{
		{"empty", nil, "./a.csv@0", sdk.Offsets{"./a.csv": 0, "./b.csv": 0}, sdk.Offsets{"./a.csv": 3, "./b.csv": 2}, 5},
		{"missing", sdk.Offsets{"./a.csv": 3}, "./b.csv@0", sdk.Offsets{"./a.csv": 3, "./b.csv": 0}, sdk.Offsets{"./a.csv": 3, "./b.csv": 2}, 2},
		{"earliest", sdk.Offsets{"./a.csv": sdk.Earliest, "./b.csv": 2}, "./a.csv@0", sdk.Offsets{"./a.csv": 0, "./b.csv": 2}, sdk.Offsets{"./a.csv": 3, "./b.csv": 2}, 3},
		{"latest", sdk.Offsets{"./a.csv": sdk.Latest, "./b.csv": 1}, "./b.csv@1", sdk.Offsets{"./a.csv": 3, "./b.csv": 1}, sdk.Offsets{"./a.csv": 3, "./b.csv": 2}, 1},
		{"real", sdk.Offsets{"./a.csv": 1, "./b.csv": 2}, "./a.csv@1", sdk.Offsets{"./a.csv": 1, "./b.csv": 2}, sdk.Offsets{"./a.csv": 3, "./b.csv": 2}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			rd := read(t, src, c.from, quick)
			if len(rd.Records) != c.wantRecord || rd.Records[0].Position.String() != c.first {
				t.Fatalf("records:\n%s", show(rd.Records))
			}
			if !rd.From.Equal(c.resolved) || !rd.Until.Equal(c.wantUntil) {
				t.Errorf("from %s, until %s; want %s, %s", rd.From, rd.Until, c.resolved, c.wantUntil)
			}
		})
	}
	// At the end of every file: nothing, and from = until for each.
	rd := read(t, src, sdk.Offsets{"./a.csv": sdk.Latest, "./b.csv": sdk.Latest}, quick)
	if len(rd.Records) != 0 || !rd.Until.Equal(sdk.Offsets{"./a.csv": 3, "./b.csv": 2}) {
		t.Errorf("read at latest: %d records, until %s", len(rd.Records), rd.Until)
	}
	_, err := src.Read(context.Background(), sdk.Offsets{"./a.csv": 4}, quick)
	if err == nil || !strings.Contains(err.Error(), "past the end of a.csv (3 rows)") {
		t.Errorf("read past the end: %v", err)
	}
	_, err = src.Read(context.Background(), sdk.Offsets{"./a.csv": -3}, quick)
	if err == nil || !strings.Contains(err.Error(), "offset -3") {
		t.Errorf("read at -3: %v", err)
	}
}

// TestLimits: max_records and max_bytes end a batch, the next read goes on
// from its until, and a record larger than max_bytes still goes, alone.
func TestLimits(t *testing.T) {
	chdir(t)
	write(t, "a.csv", "v\n"+strings.Repeat("x\n", 5)+strings.Repeat("y", 100)+"\nz\n")
	src := sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{"a.csv"}})
	var sizes []int
	from := sdk.Offsets{}
	for {
		rd := read(t, src, from, sdk.Limits{MaxRecords: 2, MaxBytes: 20, MaxWait: time.Millisecond})
		if len(rd.Records) == 0 {
			break
		}
		sizes = append(sizes, len(rd.Records))
		from = from.Merge(rd.Until)
	}
	// Each "x" record is 9 bytes ({"v":"x"}): two fit in 20 bytes; the 108
	// byte record goes alone.
	if fmt.Sprint(sizes) != "[2 2 1 1 1]" {
		t.Errorf("batch sizes %v, want [2 2 1 1 1]", sizes)
	}
}

// TestStopAndEnd: drain mode reads only the partitions of Stop, never at or
// past their stop offset, and returns at once when they are all there; End
// says where every file ends.
func TestStopAndEnd(t *testing.T) {
	chdir(t)
	write(t, "a.csv", "n\n0\n1\n2\n")
	src := sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{"*.csv"}})
	end, err := sdktest.Unwrap(src).(sdk.Ender).End(context.Background())
	if err != nil || !end.Equal(sdk.Offsets{"./a.csv": 3}) {
		t.Fatalf("End = %s, %v", end, err)
	}
	write(t, "b.csv", "n\n0\n") // appeared after the drain started
	stop := sdk.Offsets{"./a.csv": 2}
	lim := sdk.Limits{MaxRecords: 100, MaxWait: time.Minute, Stop: stop}
	rd := read(t, src, nil, lim)
	if got := show(rd.Records); got != "./a.csv@0  {\"n\":\"0\"}\n./a.csv@1  {\"n\":\"1\"}\n" {
		t.Errorf("records:\n%s", got)
	}
	start := time.Now()
	rd = read(t, src, rd.Until, lim)
	if len(rd.Records) != 0 || time.Since(start) > 10*time.Second {
		t.Errorf("read at the stop offsets: %d records after %v, want none at once", len(rd.Records), time.Since(start))
	}
}

// TestWaitForFiles: a Read with nothing to read waits for a new file within
// max_wait and returns its rows.
func TestWaitForFiles(t *testing.T) {
	chdir(t)
	if err := os.Mkdir("in", 0o755); err != nil {
		t.Fatal(err)
	}
	src := sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{"in/*.csv"}})
	go func() {
		time.Sleep(150 * time.Millisecond)
		if err := put("in/late.csv", "n\n7\n"); err != nil {
			t.Error(err)
		}
	}()
	rd := read(t, src, nil, sdk.Limits{MaxRecords: 10, MaxWait: 30 * time.Second})
	if got := show(rd.Records); got != "in/late.csv@0  {\"n\":\"7\"}\n" {
		t.Errorf("records:\n%s", got)
	}
}

// TestReplay reads a file in batches, then replays every batch's range and
// each range of several batches: the same records in the same order.
func TestReplay(t *testing.T) {
	chdir(t)
	var a, b strings.Builder
	a.WriteString("id,v\n")
	b.WriteString("id,v\n")
	for i := range 25 {
		fmt.Fprintf(&a, "a%d,\"%d\n%d\"\n", i, i, i)
		fmt.Fprintf(&b, "b%d,%d\n", i, i)
	}
	write(t, "in/a.csv", a.String())
	write(t, "in/b.csv", b.String())
	src := sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{"in/*.csv"}, "key": "id"})
	rp := sdktest.Unwrap(src).(sdk.Replayer)
	type batch struct {
		from, until sdk.Offsets
		recs        []sdk.Record
	}
	var batches []batch
	pos := sdk.Offsets{}
	for {
		rd := read(t, src, pos, sdk.Limits{MaxRecords: 7, MaxWait: time.Millisecond})
		if len(rd.Records) == 0 {
			break
		}
		from := pos.Merge(rd.From)
		pos = pos.Merge(rd.Until)
		batches = append(batches, batch{from, pos.Clone(), rd.Records})
	}
	if len(batches) != 8 {
		t.Fatalf("%d batches, want 8", len(batches))
	}
	for i, bt := range batches {
		got, err := rp.Replay(context.Background(), bt.from, bt.until)
		if err != nil {
			t.Fatalf("replay of batch %d: %v", i, err)
		}
		if show(got) != show(bt.recs) {
			t.Errorf("replay of batch %d:\n%s\nread:\n%s", i, show(got), show(bt.recs))
		}
	}
	// Three batches at once, the middle of the input.
	got, err := rp.Replay(context.Background(), batches[2].from, batches[4].until)
	if err != nil {
		t.Fatal(err)
	}
	var want []sdk.Record
	for _, bt := range batches[2:5] {
		want = append(want, bt.recs...)
	}
	if show(got) != show(want) {
		t.Errorf("replay of batches 2-4:\n%s\nwant:\n%s", show(got), show(want))
	}
	// A range the file does not hold is an error, not fewer records.
	if _, err := rp.Replay(context.Background(), sdk.Offsets{"in/a.csv": 20}, sdk.Offsets{"in/a.csv": 26}); err == nil || !strings.Contains(err.Error(), "ends at row 25") {
		t.Errorf("replay past the end: %v", err)
	}
}

// TestChangedFile: a file that grows while it is read is an error, never a
// silent change of what a range holds.
func TestChangedFile(t *testing.T) {
	chdir(t)
	write(t, "a.csv", "n\n0\n")
	src := sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{"a.csv"}})
	rd := read(t, src, nil, quick)
	f, err := os.OpenFile("a.csv", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("1\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = src.Read(context.Background(), rd.Until, quick)
	if err == nil || !strings.Contains(err.Error(), "changed from 4 to 6 bytes") {
		t.Errorf("read of a grown file: %v", err)
	}

	write(t, "b.csv", "n\n0\n")
	src = sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{"b.csv"}})
	rd = read(t, src, nil, quick)
	write(t, "b.csv", "n\n9\n") // same size, another file
	_, err = src.Read(context.Background(), rd.Until, quick)
	if err == nil || !strings.Contains(err.Error(), "b.csv was replaced") {
		t.Errorf("read of a replaced file: %v", err)
	}
}

// TestBadInput: configuration and file errors name what is wrong.
func TestBadInput(t *testing.T) {
	chdir(t)
	for _, c := range []struct {
		values map[string]any
		want   string
	}{
		{map[string]any{"paths": []string{}}, "paths is empty"},
		{map[string]any{"paths": []string{"in/[.csv"}}, "not a valid glob"},
		{map[string]any{"paths": []string{"*.csv"}, "header": false, "key": "id"}, "needs header = true"},
	} {
		cfg, err := sdk.NewConfig(Spec, "p", c.values)
		if err != nil {
			t.Fatal(err)
		}
		if err := (&Source{}).Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%v) = %v, want an error saying %q", c.values, err, c.want)
		}
	}
	write(t, "dup.csv", "n,n\n1,2\n")
	write(t, "ragged.csv", "n,m\n1,2\n3\n")
	write(t, "nokey.csv", "n\n1\n")
	for _, c := range []struct{ file, key, want string }{
		{"dup.csv", "", `column "n" appears twice`},
		{"ragged.csv", "", "ragged.csv: record on line 3: wrong number of fields"},
		{"nokey.csv", "id", `nokey.csv has no column "id" (key)`},
	} {
		src := sdktest.Source(t, Plugin, "p", map[string]any{"paths": []string{c.file}, "key": c.key})
		if _, err := src.Read(context.Background(), nil, quick); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("read of %s: %v, want an error saying %q", c.file, err, c.want)
		}
	}
}

// TestConformance builds the plugin as a third-party executable and runs the
// conformance suite against it: csv → the bundled file sink under every
// guarantee (exactly-once included, since the source is replayable and the
// file sink in batch mode idempotent), crashed at every fault point, plus
// the replay contract. The suite's input is written as CSV files before
// every pipeline, over 7 files so that batches (40 or 50 records) span
// files and a replay must repeat the order of files too.
// CONNECTD_CONFORMANCE_FULL=1 runs the full level.
func TestConformance(t *testing.T) {
	exe := conformance.Build(t, ".")
	rep := conformance.Test(t, conformance.Options{
		Source:    conformance.Plugin{Name: exe, Config: map[string]any{"paths": []string{"in/*.csv"}, "key": "id"}},
		InputFunc: func(dir string, values [][]byte) error { return writeCSV(filepath.Join(dir, "in"), values, 7) },
	})
	if len(rep.Claimed) != 3 {
		t.Errorf("claimed %v, want all three guarantees", rep.Claimed)
	}
}

// writeCSV writes values, JSON objects, as rows of files part-<i>.csv in dir,
// spread over n files: the fields of each object are its columns, "id"
// first. Each file is written under another name and renamed into place.
func writeCSV(dir string, values [][]byte, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var columns []string
	bufs := make([]bytes.Buffer, n)
	ws := make([]*csv.Writer, n)
	for i := range ws {
		ws[i] = csv.NewWriter(&bufs[i])
	}
	for i, v := range values {
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			return fmt.Errorf("value %d: %w", i, err)
		}
		if columns == nil {
			for c := range obj {
				if c != "id" {
					columns = append(columns, c)
				}
			}
			sort.Strings(columns)
			columns = append([]string{"id"}, columns...)
			for _, w := range ws {
				if err := w.Write(columns); err != nil {
					return err
				}
			}
		}
		row := make([]string, len(columns))
		for j, c := range columns {
			f, ok := obj[c]
			if !ok {
				return fmt.Errorf("value %d has no field %q", i, c)
			}
			row[j] = fmt.Sprint(f)
		}
		if err := ws[i%n].Write(row); err != nil {
			return err
		}
	}
	for i, w := range ws {
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		path := filepath.Join(dir, fmt.Sprintf("part-%d.csv", i))
		if err := os.WriteFile(path+".tmp", bufs[i].Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
	}
	return nil
}
