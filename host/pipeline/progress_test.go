package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

// report returns batch id of pipeline "demo": 10 records in 100ms from
// t/0 at (id-1)*10, delivered id*10 so far.
func report(id int64) Report {
	return Report{
		Pipeline: "demo", Batch: id, Records: 10, Bytes: 1000,
		From:      sdk.Offsets{"t/0": (id - 1) * 10},
		Until:     sdk.Offsets{"t/0": id * 10},
		Start:     time.Date(2026, 1, 2, 15, 4, 5, 123000000, time.FixedZone("X", 3600)),
		Read:      10 * time.Millisecond,
		Plan:      2 * time.Millisecond,
		Write:     80 * time.Millisecond,
		Commit:    3 * time.Millisecond,
		Ack:       1500 * time.Microsecond,
		Total:     100 * time.Millisecond,
		Source:    "generator",
		Sink:      "file",
		Delivered: id * 10,
	}
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestTextProgress(t *testing.T) {
	replayed := func(r Report) Report { r.Replay = true; return r }
	tests := []struct {
		name    string
		every   time.Duration
		reports []Report
		done    [3]int64 // batches, records, elapsed ms
		want    []string // the lines, in order
	}{
		{
			name:    "slow batches: one line each",
			every:   0,
			reports: []Report{report(1), report(2), report(3)},
			done:    [3]int64{3, 30, 300},
			want: []string{
				`pipeline "demo": batch 1: 10 records, 100 records/s, 10 delivered in this run; last: t/0 0→10`,
				`pipeline "demo": batch 2: 10 records, 100 records/s, 20 delivered in this run; last: t/0 10→20`,
				`pipeline "demo": batch 3: 10 records, 100 records/s, 30 delivered in this run; last: t/0 20→30`,
				`pipeline "demo": stopped after 3 batches, 30 records in 300ms (100 records/s)`,
			},
		},
		{
			name:    "fast batches: first line, then a summary",
			every:   time.Hour,
			reports: []Report{report(1), report(2), report(3), report(4)},
			done:    [3]int64{4, 40, 2000},
			want: []string{
				`pipeline "demo": batch 1: 10 records, 100 records/s, 10 delivered in this run; last: t/0 0→10`,
				`pipeline "demo": batches 2-4: 30 records, 100 records/s, 40 delivered in this run; last: t/0 30→40`,
				`pipeline "demo": stopped after 4 batches, 40 records in 2s (20 records/s)`,
			},
		},
		{
			name:    "fast batches: two held back",
			every:   time.Hour,
			reports: []Report{report(1), report(2), report(3)},
			done:    [3]int64{3, 30, 300},
			want: []string{
				`pipeline "demo": batch 1: 10 records, 100 records/s, 10 delivered in this run; last: t/0 0→10`,
				`pipeline "demo": batches 2-3: 20 records, 100 records/s, 30 delivered in this run; last: t/0 20→30`,
				`pipeline "demo": stopped after 3 batches, 30 records in 300ms (100 records/s)`,
			},
		},
		{
			name:    "fast batches: one left over is a single batch line",
			every:   time.Hour,
			reports: []Report{report(1), report(2)},
			done:    [3]int64{2, 20, 200},
			want: []string{
				`pipeline "demo": batch 1: 10 records, 100 records/s, 10 delivered in this run; last: t/0 0→10`,
				`pipeline "demo": batch 2: 10 records, 100 records/s, 20 delivered in this run; last: t/0 10→20`,
				`pipeline "demo": stopped after 2 batches, 20 records in 200ms (100 records/s)`,
			},
		},
		{
			name:    "a replay is shown at once",
			every:   time.Hour,
			reports: []Report{report(1), replayed(report(2)), report(3)},
			done:    [3]int64{3, 30, 300},
			want: []string{
				`pipeline "demo": batch 1: 10 records, 100 records/s, 10 delivered in this run; last: t/0 0→10`,
				`pipeline "demo": batch 2 (replayed after a crash): 10 records, 100 records/s, 20 delivered in this run; last: t/0 10→20`,
				`pipeline "demo": batch 3: 10 records, 100 records/s, 30 delivered in this run; last: t/0 20→30`,
				`pipeline "demo": stopped after 3 batches, 30 records in 300ms (100 records/s)`,
			},
		},
		{
			name:  "nothing run",
			every: time.Second,
			done:  [3]int64{0, 0, 0},
			want:  []string{`pipeline "demo": stopped after 0 batches, 0 records in 0s (0 records/s)`},
		},
		{
			name:  "empty batch with zero duration",
			every: 0,
			reports: []Report{{Pipeline: "demo", Batch: 1, From: sdk.Offsets{"t/0": 5},
				Until: sdk.Offsets{"t/0": 5}}},
			done: [3]int64{1, 0, 1},
			want: []string{
				`pipeline "demo": batch 1: 0 records, 0 records/s, 0 delivered in this run; last: no ranges`,
				`pipeline "demo": stopped after 1 batches, 0 records in 1ms (0 records/s)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := &Text{W: &buf, Every: tt.every}
			for _, r := range tt.reports {
				p.Batch(r)
			}
			p.Done("demo", tt.done[0], tt.done[1], time.Duration(tt.done[2])*time.Millisecond)
			got := lines(buf.String())
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestTextProgressSummaryAfterEvery(t *testing.T) {
	// With a short Every, batches that come within it are held, and the next
	// batch after it prints a summary of all of them.
	var buf bytes.Buffer
	p := &Text{W: &buf, Every: 200 * time.Millisecond}
	p.Batch(report(1))
	p.Batch(report(2))
	p.Batch(report(3))
	time.Sleep(250 * time.Millisecond)
	p.Batch(report(4))
	got := lines(buf.String())
	want := []string{
		`pipeline "demo": batch 1: 10 records, 100 records/s, 10 delivered in this run; last: t/0 0→10`,
		`pipeline "demo": batches 2-4: 30 records, 100 records/s, 40 delivered in this run; last: t/0 30→40`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRanges(t *testing.T) {
	many := func(n int) (sdk.Offsets, sdk.Offsets) {
		from, until := sdk.Offsets{}, sdk.Offsets{}
		for i := 0; i < n; i++ {
			p := fmt.Sprintf("p/%d", i)
			from[p], until[p] = 0, int64(i+1)
		}
		return from, until
	}
	f5, u5 := many(5)
	f3, u3 := many(3)
	tests := []struct {
		name        string
		from, until sdk.Offsets
		max         int
		want        string
	}{
		{"none", nil, nil, 3, "no ranges"},
		{"only empty ranges", sdk.Offsets{"t/0": 4}, sdk.Offsets{"t/0": 4}, 3, "no ranges"},
		{"new partition without from is empty", nil, sdk.Offsets{"t/0": 4}, 3, "no ranges"},
		{"skips empty ranges", sdk.Offsets{"a/0": 1, "b/0": 2}, sdk.Offsets{"a/0": 1, "b/0": 5}, 3, "b/0 2→5"},
		{"exactly max", f3, u3, 3, "p/0 0→1, p/1 0→2, p/2 0→3"},
		{"more than max", f5, u5, 3, "p/0 0→1, p/1 0→2, p/2 0→3 (+2 partitions)"},
		{"max one", f5, u5, 1, "p/0 0→1 (+4 partitions)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ranges(tt.from, tt.until, tt.max); got != tt.want {
				t.Errorf("ranges = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReportRate(t *testing.T) {
	tests := []struct {
		records int64
		total   time.Duration
		want    float64
	}{
		{10, 100 * time.Millisecond, 100},
		{10, 0, 0},
		{10, -time.Second, 0},
		{0, time.Second, 0},
		{3, 2 * time.Second, 1.5},
	}
	for _, tt := range tests {
		if got := (Report{Records: tt.records, Total: tt.total}).Rate(); got != tt.want {
			t.Errorf("Rate(%d in %v) = %v, want %v", tt.records, tt.total, got, tt.want)
		}
	}
}

func TestJSONProgress(t *testing.T) {
	tests := []struct {
		name        string
		r           Report
		startOffset string // Spark form, compact
		endOffset   string
		rate        float64
	}{
		{"one partition", report(2), `{"t":{"0":10}}`, `{"t":{"0":20}}`, 100},
		{"several groups and a file", Report{
			Pipeline: "demo", Batch: 7, Records: 3, Total: time.Second,
			From:  sdk.Offsets{"t/0": 0, "t/1": -2, "./a.txt": 4},
			Until: sdk.Offsets{"t/0": 1, "t/1": 2, "./a.txt": 5},
		}, `{".":{"a.txt":4},"t":{"0":0,"1":-2}}`, `{".":{"a.txt":5},"t":{"0":1,"1":2}}`, 3},
		{"empty offsets", Report{Pipeline: "demo", Batch: 1}, `{}`, `{}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := &JSON{W: &buf}
			p.Batch(tt.r)
			p.Done("demo", 1, tt.r.Records, time.Second)
			ls := lines(buf.String())
			if len(ls) != 1 {
				t.Fatalf("%d lines, want one JSON object:\n%s", len(ls), buf.String())
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(ls[0]), &obj); err != nil {
				t.Fatalf("not a JSON object: %v\n%s", err, ls[0])
			}
			for _, k := range []string{"name", "timestamp", "batchId", "replay", "numInputRows", "inputBytes",
				"processedRowsPerSecond", "durationMs", "sources", "sink"} {
				if _, ok := obj[k]; !ok {
					t.Errorf("key %q missing: %s", k, ls[0])
				}
			}
			var got struct {
				Name                   string           `json:"name"`
				Timestamp              string           `json:"timestamp"`
				BatchID                int64            `json:"batchId"`
				NumInputRows           int64            `json:"numInputRows"`
				InputBytes             int64            `json:"inputBytes"`
				ProcessedRowsPerSecond float64          `json:"processedRowsPerSecond"`
				DurationMs             map[string]int64 `json:"durationMs"`
				Sources                []struct {
					Description  string          `json:"description"`
					StartOffset  json.RawMessage `json:"startOffset"`
					EndOffset    json.RawMessage `json:"endOffset"`
					NumInputRows int64           `json:"numInputRows"`
				} `json:"sources"`
				Sink struct {
					Description   string `json:"description"`
					NumOutputRows int64  `json:"numOutputRows"`
				} `json:"sink"`
			}
			if err := json.Unmarshal([]byte(ls[0]), &got); err != nil {
				t.Fatal(err)
			}
			r := tt.r
			if got.Name != r.Pipeline || got.BatchID != r.Batch || got.NumInputRows != r.Records || got.InputBytes != r.Bytes {
				t.Errorf("got %+v for %+v", got, r)
			}
			if got.ProcessedRowsPerSecond != tt.rate {
				t.Errorf("processedRowsPerSecond = %v, want %v", got.ProcessedRowsPerSecond, tt.rate)
			}
			ts, err := time.Parse(time.RFC3339Nano, got.Timestamp)
			if err != nil || !ts.Equal(r.Start) || !strings.HasSuffix(got.Timestamp, "Z") {
				t.Errorf("timestamp %q (%v), want %v in UTC", got.Timestamp, err, r.Start)
			}
			wantMs := map[string]int64{
				"read": r.Read.Milliseconds(), "plan": r.Plan.Milliseconds(), "write": r.Write.Milliseconds(),
				"commit": r.Commit.Milliseconds(), "ack": r.Ack.Milliseconds(), "triggerExecution": r.Total.Milliseconds(),
			}
			if fmt.Sprint(got.DurationMs) != fmt.Sprint(wantMs) {
				t.Errorf("durationMs = %v, want %v", got.DurationMs, wantMs)
			}
			if len(got.Sources) != 1 {
				t.Fatalf("%d sources, want 1", len(got.Sources))
			}
			s := got.Sources[0]
			if string(s.StartOffset) != tt.startOffset || string(s.EndOffset) != tt.endOffset {
				t.Errorf("offsets %s → %s, want %s → %s", s.StartOffset, s.EndOffset, tt.startOffset, tt.endOffset)
			}
			var end sdk.Offsets
			if err := json.Unmarshal(s.EndOffset, &end); err != nil || !end.Equal(r.Until) {
				t.Errorf("endOffset reads back as %v (%v), want %v", end, err, r.Until)
			}
			if s.Description != r.Source || s.NumInputRows != r.Records || got.Sink.Description != r.Sink || got.Sink.NumOutputRows != r.Records {
				t.Errorf("source %+v sink %+v for %+v", s, got.Sink, r)
			}
		})
	}
}

func TestJSONProgressDurations(t *testing.T) {
	var buf bytes.Buffer
	(&JSON{W: &buf}).Batch(report(1))
	var got struct {
		DurationMs map[string]int64 `json:"durationMs"`
		Replay     bool             `json:"replay"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"read": 10, "plan": 2, "write": 80, "commit": 3, "ack": 1, "triggerExecution": 100}
	if fmt.Sprint(got.DurationMs) != fmt.Sprint(want) || got.Replay {
		t.Errorf("durationMs = %v replay %v, want %v, false", got.DurationMs, got.Replay, want)
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes the progress
// writers serialize themselves (a plain buffer would do; this one catches a
// writer that does not lock under -race too).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	if !b.mu.TryLock() {
		panic("concurrent write to the progress output")
	}
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func TestProgressConcurrent(t *testing.T) {
	for _, mk := range []struct {
		name string
		new  func(*syncBuffer) Progress
	}{
		{"json", func(b *syncBuffer) Progress { return &JSON{W: b} }},
		{"text", func(b *syncBuffer) Progress { return &Text{W: b} }},
	} {
		t.Run(mk.name, func(t *testing.T) {
			var out syncBuffer
			p := mk.new(&out)
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; i < 50; i++ {
						p.Batch(report(int64(g*50 + i + 1)))
					}
				}(g)
			}
			wg.Wait()
			p.Done("demo", 200, 2000, time.Second)
			ls := lines(out.buf.String())
			if mk.name == "json" {
				if len(ls) != 200 {
					t.Fatalf("%d lines, want 200", len(ls))
				}
				for i, l := range ls {
					if !json.Valid([]byte(l)) {
						t.Fatalf("line %d is not JSON: %s", i, l)
					}
				}
				return
			}
			if len(ls) != 201 {
				t.Fatalf("%d lines, want 200 batch lines and a done line", len(ls))
			}
		})
	}
}

func TestDrainProgressSums(t *testing.T) {
	tests := []struct {
		name             string
		begin, end, from sdk.Offsets
		until            sdk.Offsets
		elapsed          time.Duration
		done, total      int64
		eta              time.Duration
		learned          sdk.Offsets // begin after the call
	}{
		{"from committed offsets", sdk.Offsets{"t/0": 10, "t/1": 20}, sdk.Offsets{"t/0": 110, "t/1": 120}, sdk.Offsets{"t/0": 10, "t/1": 20}, sdk.Offsets{"t/0": 60, "t/1": 20},
			time.Second, 50, 200, 3 * time.Second, sdk.Offsets{"t/0": 10, "t/1": 20}},
		{"a partition starts at its first batch's start", sdk.Offsets{"t/0": -2}, sdk.Offsets{"t/0": 150}, sdk.Offsets{"t/0": 50}, sdk.Offsets{"t/0": 100},
			time.Second, 50, 100, time.Second, sdk.Offsets{"t/0": 50}},
		{"a partition not yet read counts from 0", sdk.Offsets{}, sdk.Offsets{"t/0": 40, "t/1": 60}, sdk.Offsets{"t/0": 0}, sdk.Offsets{"t/0": 40},
			2 * time.Second, 40, 100, 3 * time.Second, sdk.Offsets{"t/0": 0}},
		{"past the end counts as done", sdk.Offsets{"t/0": 0}, sdk.Offsets{"t/0": 10}, sdk.Offsets{"t/0": 0}, sdk.Offsets{"t/0": 15},
			time.Second, 10, 10, 0, sdk.Offsets{"t/0": 0}},
		{"nothing to do", sdk.Offsets{"t/0": 10}, sdk.Offsets{"t/0": 10, "t/1": -1}, sdk.Offsets{}, sdk.Offsets{"t/0": 10},
			time.Second, 0, 0, 0, sdk.Offsets{"t/0": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := drainProgress(tt.begin, tt.end, tt.from, tt.until, tt.elapsed)
			if d.Done != tt.done || d.Total != tt.total || d.ETA != tt.eta {
				t.Errorf("drained %d/%d, ETA %s; want %d/%d, ETA %s", d.Done, d.Total, d.ETA, tt.done, tt.total, tt.eta)
			}
			if !tt.begin.Equal(tt.learned) {
				t.Errorf("begin after the call %v, want %v", tt.begin, tt.learned)
			}
		})
	}
}

func TestTextProgressDrainAndHeartbeat(t *testing.T) {
	var buf bytes.Buffer
	p := &Text{W: &buf, Every: 0}
	r := report(1)
	r.Drain = &Drain{Done: 10, Total: 40, ETA: 3400 * time.Millisecond}
	p.Batch(r)
	r = report(2)
	r.Drain = &Drain{Done: 40, Total: 40}
	p.Batch(r)
	p.Heartbeat(Heartbeat{Pipeline: "demo", State: "running", Quiet: 30 * time.Second, Committed: sdk.Offsets{"t/0": 40}})
	want := []string{
		`pipeline "demo": batch 1: 10 records, 100 records/s, 10 delivered in this run, drained 10/40 (25%), ETA 3s; last: t/0 0→10`,
		`pipeline "demo": batch 2: 10 records, 100 records/s, 20 delivered in this run, drained 40/40 (100%); last: t/0 10→20`,
		`pipeline "demo": running, no batch for 30s; committed {"t":{"0":40}}`,
	}
	if got := lines(buf.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestJSONProgressDrain(t *testing.T) {
	var buf bytes.Buffer
	p := &JSON{W: &buf}
	r := report(1)
	p.Batch(r)
	r.Drain = &Drain{Done: 10, Total: 40, ETA: 1500 * time.Millisecond}
	p.Batch(r)
	got := lines(buf.String())
	if len(got) != 2 {
		t.Fatalf("want 2 lines, got %q", got)
	}
	if strings.Contains(got[0], `"drain"`) {
		t.Errorf("a batch without drain progress has a drain object: %s", got[0])
	}
	if !strings.Contains(got[1], `"drain":{"done":10,"total":40,"etaSeconds":1.5}`) {
		t.Errorf("drain object missing or wrong: %s", got[1])
	}
}
