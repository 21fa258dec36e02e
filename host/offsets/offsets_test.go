package offsets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/sdk"
)

// batches planned by newCheckpoint: 1 and 2 committed, 3 planned only.
var testBatches = []checkpoint.Entry{
	{Batch: 1, From: sdk.Offsets{"t/0": 0, "t/1": 0}, Until: sdk.Offsets{"t/0": 5, "t/1": 3}, Records: 8},
	{Batch: 2, From: sdk.Offsets{"t/0": 5, "t/1": 3}, Until: sdk.Offsets{"t/0": 9, "t/1": 3}, Records: 4},
	{Batch: 3, From: sdk.Offsets{"t/0": 9, "t/1": 3, "./a.txt": 0}, Until: sdk.Offsets{"t/0": 12, "t/1": 4, "./a.txt": 2}, Records: 6},
}

func openCheckpoint(t *testing.T) *checkpoint.Store {
	t.Helper()
	cp, err := checkpoint.Open(filepath.Join(t.TempDir(), "cp"), "demo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	return cp
}

// newCheckpoint returns a checkpoint with testBatches[:n] planned, all but
// batch 3 committed.
func newCheckpoint(t *testing.T, n int) *checkpoint.Store {
	t.Helper()
	cp := openCheckpoint(t)
	for _, e := range testBatches[:n] {
		if err := cp.Plan(e); err != nil {
			t.Fatalf("plan %d: %v", e.Batch, err)
		}
		if e.Batch != 3 {
			if err := cp.Commit(e.Batch); err != nil {
				t.Fatalf("commit %d: %v", e.Batch, err)
			}
		}
	}
	return cp
}

func TestTarget(t *testing.T) {
	tests := []struct {
		name    string
		batches int // how many of testBatches the checkpoint holds
		to      string
		want    sdk.Offsets
		wantErr string
	}{
		{"earliest covers committed and pending partitions", 3, "earliest",
			sdk.Offsets{"t/0": -2, "t/1": -2, "./a.txt": -2}, ""},
		{"latest covers committed and pending partitions", 3, "latest",
			sdk.Offsets{"t/0": -1, "t/1": -1, "./a.txt": -1}, ""},
		{"earliest committed only", 2, "earliest", sdk.Offsets{"t/0": -2, "t/1": -2}, ""},
		{"earliest on an empty checkpoint", 0, "earliest", sdk.Offsets{}, ""},
		{"json changes only the partitions it names", 3, `{"t":{"0":5}}`, sdk.Offsets{"t/0": 5, "t/1": 3}, ""},
		{"json with specials and a file", 3, ` {"t":{"0":-2,"1":-1},".":{"a.txt":1}}`,
			sdk.Offsets{"t/0": -2, "t/1": -1, "./a.txt": 1}, ""},
		{"json unknown partition", 3, `{"gen":{"0":5}}`, nil, `unknown partition(s) "gen/0": the pipeline has never had them; it knows "./a.txt", "t/0", "t/1"`},
		{"json unknown among known", 2, `{"t":{"0":1,"7":5}}`, nil, `unknown partition(s) "t/7"`},
		{"json on an empty checkpoint", 0, `{"new":{"0":3}}`, sdk.Offsets{"new/0": 3}, ""},
		{"json offset below earliest", 3, `{"t":{"0":-3}}`, nil, `offset -3 for "t/0"`},
		{"json not spark form", 3, `{"t/0":5}`, nil, "--to: "},
		{"json broken", 3, `{"t":{"0":5}`, nil, "--to: "},
		{"committed batch", 3, "batch:2", sdk.Offsets{"t/0": 5, "t/1": 3}, ""},
		{"first batch", 3, "batch:1", sdk.Offsets{"t/0": 0, "t/1": 0}, ""},
		{"pending batch", 3, "batch:3", sdk.Offsets{"t/0": 9, "t/1": 3, "./a.txt": 0}, ""},
		{"batch missing from history", 3, "batch:9", nil, `batch 9 is not in the checkpoint's history (it keeps batches 1 to 3)`},
		{"batch missing from an empty checkpoint", 0, "batch:1", nil, "the checkpoint holds no batches"},
		{"batch zero", 3, "batch:0", nil, "want batch:<id> with a batch id >= 1"},
		{"batch negative", 3, "batch:-1", nil, "want batch:<id> with a batch id >= 1"},
		{"batch not a number", 3, "batch:two", nil, "want batch:<id> with a batch id >= 1"},
		{"batch empty", 3, "batch:", nil, "want batch:<id> with a batch id >= 1"},
		{"unknown", 3, "beginning", nil, `--to "beginning": want earliest, latest, batch:<id> or offsets as JSON`},
		{"empty", 3, "", nil, "want earliest, latest"},
		{"case matters", 3, "EARLIEST", nil, "want earliest, latest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := newCheckpoint(t, tt.batches)
			got, err := Target(cp, tt.to)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Target(%q) = %v, want error containing %q", tt.to, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Target(%q) error %q, want it to contain %q", tt.to, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Target(%q): %v", tt.to, err)
			}
			if got == nil || !got.Equal(tt.want) {
				t.Fatalf("Target(%q) = %v, want %v", tt.to, got, tt.want)
			}
			// The result is the caller's: changing it leaves the checkpoint alone.
			for k := range got {
				got[k] = 777
			}
			if c := cp.Committed(); c["t/0"] == 777 {
				t.Errorf("Target's result aliases the committed offsets")
			}
			for _, b := range cp.History() {
				if b.From["t/0"] == 777 || b.Until["t/0"] == 777 {
					t.Errorf("Target's result aliases batch %d", b.Batch)
				}
			}
		})
	}
}

func TestTargetThenReset(t *testing.T) {
	// What Target returns is what Reset accepts, and the pipeline continues there.
	for _, to := range []string{"earliest", "latest", "batch:2", `{"t":{"0":7}}`, `{"t":{"1":-1}}`} {
		t.Run(to, func(t *testing.T) {
			cp := newCheckpoint(t, 3)
			want, err := Target(cp, to)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cp.Reset(want, "test"); err != nil {
				t.Fatalf("Reset(%v): %v", want, err)
			}
			if got := cp.Committed(); !got.Equal(want) {
				t.Errorf("after reset, committed = %v, want %v", got, want)
			}
		})
	}
}

func TestTargetUnknownPartitionError(t *testing.T) {
	_, err := Target(newCheckpoint(t, 2), `{"gen":{"0":5}}`)
	var u *UnknownPartitionError
	if !errors.As(err, &u) {
		t.Fatalf("Target error %v (%T), want an *UnknownPartitionError", err, err)
	}
	if !reflect.DeepEqual(u.Partitions, []string{"gen/0"}) || !reflect.DeepEqual(u.Known, []string{"t/0", "t/1"}) {
		t.Errorf("unknown %q, known %q; want [gen/0] and [t/0 t/1]", u.Partitions, u.Known)
	}
}

func TestChanges(t *testing.T) {
	before := sdk.Offsets{"t/0": 9, "t/1": 3, "t/2": 4}
	after := sdk.Offsets{"t/0": 5, "t/1": 3, "t/3": -2}
	got := Changes(before, after)
	want := []Change{
		{Partition: "t/0", From: 9, To: 5, Was: true, Is: true},
		{Partition: "t/2", From: 4, Was: true},
		{Partition: "t/3", To: -2, Is: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Changes = %+v, want %+v", got, want)
	}
	var b bytes.Buffer
	WriteChanges(&b, got)
	wantText := "  t/0: 9 → 5\n  t/2: 4 → none (the source's config decides)\n  t/3: none (the source's config decides) → earliest\n"
	if b.String() != wantText {
		t.Errorf("WriteChanges wrote\n%s\nwant\n%s", b.String(), wantText)
	}
	b.Reset()
	WriteChanges(&b, Changes(before, before))
	if b.String() != "  no committed offset changed\n" {
		t.Errorf("WriteChanges of no change wrote %q", b.String())
	}
}

func TestShow(t *testing.T) {
	tests := []struct {
		name        string
		batches     int
		n           int
		committed   sdk.Offsets
		last        int64
		pending     int64 // 0: none
		shown       []int64
		shownCommit []bool
	}{
		{"empty", 0, 10, sdk.Offsets{}, 0, 0, []int64{}, []bool{}},
		{"one committed", 1, 10, testBatches[0].Until, 1, 0, []int64{1}, []bool{true}},
		{"committed and pending", 3, 10, testBatches[1].Until, 2, 3, []int64{1, 2, 3}, []bool{true, true, false}},
		{"last two", 3, 2, testBatches[1].Until, 2, 3, []int64{2, 3}, []bool{true, false}},
		{"last one", 3, 1, testBatches[1].Until, 2, 3, []int64{3}, []bool{false}},
		{"none", 3, 0, testBatches[1].Until, 2, 3, []int64{}, []bool{}},
		{"negative n shows none", 3, -1, testBatches[1].Until, 2, 3, []int64{}, []bool{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := newCheckpoint(t, tt.batches)
			st := Show(cp, "demo", tt.n)
			if st.Pipeline != "demo" || st.Checkpoint != cp.Dir() {
				t.Errorf("pipeline %q checkpoint %q", st.Pipeline, st.Checkpoint)
			}
			if st.Committed == nil || !st.Committed.Equal(tt.committed) {
				t.Errorf("committed = %v, want %v", st.Committed, tt.committed)
			}
			if st.LastBatch != tt.last {
				t.Errorf("last batch = %d, want %d", st.LastBatch, tt.last)
			}
			switch {
			case tt.pending == 0 && st.Pending != nil:
				t.Errorf("pending = %+v, want none", st.Pending)
			case tt.pending != 0 && st.Pending == nil:
				t.Errorf("no pending batch, want %d", tt.pending)
			case tt.pending != 0:
				e := testBatches[tt.pending-1]
				if st.Pending.Batch != tt.pending || st.Pending.Committed || st.Pending.Records != e.Records ||
					!st.Pending.From.Equal(e.From) || !st.Pending.Until.Equal(e.Until) || st.Pending.Kind != "batch" {
					t.Errorf("pending = %+v, want batch %+v", st.Pending, e)
				}
			}
			if st.Batches == nil {
				t.Fatal("Batches is nil; JSON would print null")
			}
			var ids []int64
			var commits []bool
			for _, b := range st.Batches {
				ids = append(ids, b.Batch)
				commits = append(commits, b.Committed)
				e := testBatches[b.Batch-1]
				if !b.From.Equal(e.From) || !b.Until.Equal(e.Until) || b.Records != e.Records || b.Time.IsZero() {
					t.Errorf("batch %d = %+v, want %+v", b.Batch, b, e)
				}
			}
			if len(ids) != len(tt.shown) || (len(ids) > 0 && (!reflect.DeepEqual(ids, tt.shown) || !reflect.DeepEqual(commits, tt.shownCommit))) {
				t.Errorf("batches %v (committed %v), want %v (%v)", ids, commits, tt.shown, tt.shownCommit)
			}
		})
	}
}

func TestWriteText(t *testing.T) {
	cp := newCheckpoint(t, 3)
	var buf bytes.Buffer
	WriteText(&buf, []State{Show(cp, "demo", 10)})
	out := buf.String()
	for _, want := range []string{
		fmt.Sprintf("pipeline %q (checkpoint %s)\n", "demo", cp.Dir()),
		`committed offsets: {"t":{"0":9,"1":3}}` + "\n",
		"last committed batch: 2\n",
		"uncommitted batch 3 (replayed at the next start): ./a.txt [0,2), t/0 [9,12), t/1 [3,4)\n",
		"last 3 batches:\n",
		"BATCH", "STATE", "RECORDS", "RANGES",
		"t/0 [0,5), t/1 [0,3)",
		"t/0 [5,9)",
		"uncommitted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text does not contain %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != 9 {
		t.Errorf("%d lines, want 9 (5 of header, 1 table header, 3 batches):\n%s", lines, out)
	}
	// The table's rows are in batch order.
	i1, i2, i3 := strings.Index(out, "  1 "), strings.Index(out, "  2 "), strings.Index(out, "  3 ")
	if i1 < 0 || i2 < 0 || i3 < 0 || !(i1 < i2 && i2 < i3) {
		t.Errorf("batch rows missing or out of order:\n%s", out)
	}
}

func TestWriteTextEmptyAndReset(t *testing.T) {
	empty := newCheckpoint(t, 0)
	reset := newCheckpoint(t, 2)
	if _, err := reset.Reset(sdk.Offsets{"t/0": -2, "t/1": 1}, "test"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	WriteText(&buf, []State{Show(empty, "a", 10), Show(reset, "b", 10)})
	out := buf.String()
	parts := strings.SplitN(out, "\n\n", 2)
	if len(parts) != 2 {
		t.Fatalf("two pipelines are not separated by a blank line:\n%s", out)
	}
	parts[0] += "\n"
	for _, want := range []string{`pipeline "a"`, "committed offsets: {}\n", "no batch committed yet\n"} {
		if !strings.Contains(parts[0], want) {
			t.Errorf("empty pipeline's text lacks %q:\n%s", want, parts[0])
		}
	}
	if strings.Contains(parts[0], "batches:") || strings.Contains(parts[0], "uncommitted") {
		t.Errorf("empty pipeline shows batches:\n%s", parts[0])
	}
	for _, want := range []string{
		`pipeline "b"`,
		`committed offsets: {"t":{"0":-2,"1":1}}` + "\n",
		"last committed batch: 3\n",
		"reset",
		`moved to {"t":{"0":-2,"1":1}}`,
	} {
		if !strings.Contains(parts[1], want) {
			t.Errorf("reset pipeline's text lacks %q:\n%s", want, parts[1])
		}
	}
	if strings.Contains(parts[1], "uncommitted batch") {
		t.Errorf("reset pipeline shows a pending batch:\n%s", parts[1])
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		from, until sdk.Offsets
		want        string
	}{
		{sdk.Offsets{"t/0": 1}, sdk.Offsets{"t/0": 4}, "t/0 [1,4)"},
		{sdk.Offsets{"t/0": 4}, sdk.Offsets{"t/0": 4}, `to {"t":{"0":4}}`},
		{nil, sdk.Offsets{"t/0": 4}, `to {"t":{"0":4}}`},
		{sdk.Offsets{"t/0": 0, "t/1": 5}, sdk.Offsets{"t/0": 1, "t/1": 5}, "t/0 [0,1)"},
		{
			sdk.Offsets{"p/0": 0, "p/1": 0, "p/2": 0, "p/3": 0, "p/4": 0, "p/5": 0},
			sdk.Offsets{"p/0": 1, "p/1": 1, "p/2": 1, "p/3": 1, "p/4": 1, "p/5": 1},
			"p/0 [0,1), p/1 [0,1), p/2 [0,1), p/3 [0,1), +2 more",
		},
	}
	for _, tt := range tests {
		if got := describe(tt.from, tt.until); got != tt.want {
			t.Errorf("describe(%v, %v) = %q, want %q", tt.from, tt.until, got, tt.want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	cp := newCheckpoint(t, 3)
	st := Show(cp, "demo", 10)

	t.Run("one pipeline is an object", func(t *testing.T) {
		var buf bytes.Buffer
		if err := WriteJSON(&buf, []State{st}); err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
			t.Fatalf("not a JSON object: %v\n%s", err, buf.String())
		}
		for _, k := range []string{"pipeline", "checkpoint", "committed", "last_committed_batch", "uncommitted_batch", "batches"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("key %q missing:\n%s", k, buf.String())
			}
		}
		if got := string(raw["committed"]); strings.Join(strings.Fields(got), "") != `{"t":{"0":9,"1":3}}` {
			t.Errorf("committed = %s, want Spark's form", got)
		}
		var back State
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if back.Pipeline != "demo" || back.LastBatch != 2 || !back.Committed.Equal(st.Committed) {
			t.Errorf("read back %+v, want %+v", back, st)
		}
		if back.Pending == nil || back.Pending.Batch != 3 || !back.Pending.Until.Equal(testBatches[2].Until) {
			t.Errorf("pending read back as %+v", back.Pending)
		}
		if len(back.Batches) != 3 {
			t.Fatalf("%d batches read back, want 3", len(back.Batches))
		}
		for i, b := range back.Batches {
			w := st.Batches[i]
			if b.Batch != w.Batch || b.Committed != w.Committed || b.Records != w.Records || b.Kind != w.Kind ||
				!b.From.Equal(w.From) || !b.Until.Equal(w.Until) || !b.Time.Equal(w.Time) {
				t.Errorf("batch %d read back as %+v, want %+v", i, b, w)
			}
		}
	})

	t.Run("several pipelines are an array", func(t *testing.T) {
		empty := Show(newCheckpoint(t, 0), "other", 10)
		var buf bytes.Buffer
		if err := WriteJSON(&buf, []State{st, empty}); err != nil {
			t.Fatal(err)
		}
		var back []State
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, buf.String())
		}
		if len(back) != 2 || back[0].Pipeline != "demo" || back[1].Pipeline != "other" {
			t.Fatalf("read back %+v", back)
		}
		if back[1].Pending != nil || back[1].Batches == nil || len(back[1].Batches) != 0 || back[1].Committed == nil {
			t.Errorf("empty pipeline read back as %+v", back[1])
		}
		if !strings.Contains(buf.String(), `"uncommitted_batch": null`) || !strings.Contains(buf.String(), `"batches": []`) {
			t.Errorf("empty pipeline's JSON:\n%s", buf.String())
		}
	})
}

func TestShowTimes(t *testing.T) {
	cp := openCheckpoint(t)
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	if err := cp.Plan(checkpoint.Entry{Batch: 1, Time: at, From: sdk.Offsets{"t/0": 0}, Until: sdk.Offsets{"t/0": 1}, Records: 1}); err != nil {
		t.Fatal(err)
	}
	st := Show(cp, "demo", 5)
	if st.Pending == nil || !st.Pending.Time.Equal(at) || len(st.Batches) != 1 || !st.Batches[0].Time.Equal(at) {
		t.Fatalf("times not carried: %+v", st)
	}
	var buf bytes.Buffer
	WriteText(&buf, []State{st})
	if want := at.Local().Format("2006-01-02 15:04:05"); !strings.Contains(buf.String(), want) {
		t.Errorf("text lacks the batch time %s:\n%s", want, buf.String())
	}
}
