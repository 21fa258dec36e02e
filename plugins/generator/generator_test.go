package generator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

func open(t testing.TB, params map[string]any) *Source {
	t.Helper()
	cfg, err := sdk.NewConfig(Plugin.Source.Spec, "pipe", params)
	if err != nil {
		t.Fatal(err)
	}
	src := Plugin.Source.New().(*Source)
	if err := src.Open(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	return src
}

func read(t testing.TB, s *Source, from sdk.Offsets, limits sdk.Limits) sdk.Read {
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

// drain reads everything from the start in batches of n records and returns
// the records and every batch's [from, until).
func drain(t testing.TB, s *Source, limits sdk.Limits) (all []sdk.Record, froms, untils []sdk.Offsets) {
	t.Helper()
	from := sdk.Offsets{}
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("drain does not end")
		}
		rd := read(t, s, from, limits)
		if len(rd.Records) == 0 {
			return all, froms, untils
		}
		all = append(all, rd.Records...)
		froms = append(froms, from.Merge(rd.From))
		untils = append(untils, rd.Until)
		from = from.Merge(rd.Until)
	}
}

func sameRecords(t *testing.T, what string, got, want []sdk.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || !g.Timestamp.Equal(w.Timestamp) ||
			g.Position != w.Position || len(g.Headers) != len(w.Headers) {
			t.Fatalf("%s: record %d differs:\n got %s %q %q %v\nwant %s %q %q %v", what, i,
				g.Position, g.Key, g.Value, g.Timestamp, w.Position, w.Key, w.Value, w.Timestamp)
		}
	}
}

func TestSpec(t *testing.T) {
	if err := Plugin.Source.Spec.Check(); err != nil {
		t.Fatal(err)
	}
	if Plugin.Sink != nil || Plugin.Name() != "generator" || !Spec.Has(sdk.CapReplayable) {
		t.Fatalf("plugin: %+v", Plugin)
	}
}

func TestDeterminismAcrossBatchSizes(t *testing.T) {
	for _, parts := range []int{1, 3, 7} {
		t.Run(fmt.Sprint("partitions=", parts), func(t *testing.T) {
			params := map[string]any{"count": 1000, "partitions": parts, "size": 80, "seed": 5}
			var reference []sdk.Record
			for _, lim := range []sdk.Limits{
				{MaxRecords: 1},
				{MaxRecords: 7},
				{MaxRecords: 1000},
				{MaxRecords: 5000},
				{MaxRecords: 100, MaxBytes: 1000},
			} {
				s := open(t, params)
				all, froms, untils := drain(t, s, lim)
				if reference == nil {
					reference = all
					if len(all) != 1000 {
						t.Fatalf("%d records, want 1000", len(all))
					}
				} else {
					sameRecords(t, fmt.Sprintf("limits %+v", lim), all, reference)
				}
				// Each batch replays byte for byte, from a fresh source too.
				fresh := open(t, params)
				k := 0
				for b := range froms {
					n := 0
					for _, r := range sdk.RangesOf(froms[b], untils[b]) {
						n += int(r.Until - r.From)
					}
					for _, src := range []*Source{s, fresh} {
						got, err := src.Replay(context.Background(), froms[b], untils[b])
						if err != nil {
							t.Fatal(err)
						}
						sameRecords(t, fmt.Sprintf("limits %+v, replay of batch %d", lim, b), got, all[k:k+n])
					}
					k += n
				}
			}
		})
	}
}

// A Read from uneven offsets (partitions at different places) must still
// come back identical from Replay.
func TestReplayUnevenStart(t *testing.T) {
	s := open(t, map[string]any{"count": 100, "partitions": 4})
	from := sdk.Offsets{"generator/0": 10, "generator/1": 2, "generator/3": -2}
	rd := read(t, s, from, sdk.Limits{MaxRecords: 13})
	if len(rd.Records) != 13 {
		t.Fatalf("%d records", len(rd.Records))
	}
	want := sdk.Offsets{"generator/0": 10, "generator/1": 2, "generator/2": 0, "generator/3": 0}
	if !rd.From.Equal(want) {
		t.Fatalf("From = %v, want %v", rd.From, want)
	}
	// Global order: smallest index o*4+p first.
	for i := 1; i < len(rd.Records); i++ {
		a, b := rd.Records[i-1].Timestamp, rd.Records[i].Timestamp
		if !a.Before(b) {
			t.Fatalf("records %d and %d out of global order: %v, %v", i-1, i, a, b)
		}
	}
	got, err := s.Replay(context.Background(), rd.From, rd.Until)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "replay", got, rd.Records)
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		size, parts, count int
		seed               int
	}{
		{size: 100, parts: 1, count: 500},
		{size: 100, parts: 3, count: 500, seed: 9},
		{size: 45, parts: 1, count: 20},  // exactly the minimum for 0-0
		{size: 10, parts: 2, count: 300}, // too small: every value at its minimum
		{size: 4096, parts: 5, count: 50},
		{size: 0, parts: 1, count: 5},
	} {
		t.Run(fmt.Sprintf("size=%d/parts=%d", tc.size, tc.parts), func(t *testing.T) {
			s := open(t, map[string]any{"count": tc.count, "partitions": tc.parts, "size": tc.size, "seed": tc.seed})
			all, _, _ := drain(t, s, sdk.Limits{MaxRecords: 64})
			if len(all) != tc.count {
				t.Fatalf("%d records, want %d", len(all), tc.count)
			}
			ids := map[string]bool{}
			for i, r := range all {
				var v struct {
					ID        string `json:"id"`
					Partition int64  `json:"partition"`
					Offset    int64  `json:"offset"`
					Pad       string `json:"pad"`
				}
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Fatalf("record %d: %v: %q", i, err, r.Value)
				}
				p, o := int64(i%tc.parts), int64(i/tc.parts)
				wantID := fmt.Sprintf("%d-%d", p, o)
				minimum := len(fmt.Sprintf(`{"id":%q,"partition":%d,"offset":%d,"pad":""}`, wantID, p, o))
				switch {
				case v.ID != wantID || v.Partition != p || v.Offset != o:
					t.Fatalf("record %d: %q, want id %s", i, r.Value, wantID)
				case string(r.Key) != wantID:
					t.Fatalf("record %d: key %q, want %q", i, r.Key, wantID)
				case r.Position != sdk.Position{Partition: fmt.Sprintf("generator/%d", p), Offset: o}:
					t.Fatalf("record %d: position %v", i, r.Position)
				case len(r.Value) != max(tc.size, minimum):
					t.Fatalf("record %d: %d bytes, want %d", i, len(r.Value), max(tc.size, minimum))
				case !r.Timestamp.Equal(time.Unix(0, 0).Add(time.Duration(i)*time.Millisecond)) || r.Timestamp.Location() != time.UTC:
					t.Fatalf("record %d: timestamp %v", i, r.Timestamp)
				case ids[v.ID]:
					t.Fatalf("record %d: duplicate id %s", i, v.ID)
				}
				ids[v.ID] = true
			}
		})
	}
}

func TestSeedChangesPaddingOnly(t *testing.T) {
	a := read(t, open(t, map[string]any{"count": 10}), nil, sdk.Limits{MaxRecords: 10}).Records
	b := read(t, open(t, map[string]any{"count": 10, "seed": 1}), nil, sdk.Limits{MaxRecords: 10}).Records
	a2 := read(t, open(t, map[string]any{"count": 10}), nil, sdk.Limits{MaxRecords: 10}).Records
	sameRecords(t, "same seed", a2, a)
	for i := range a {
		if bytes.Equal(a[i].Value, b[i].Value) {
			t.Fatalf("record %d has the same value with seeds 0 and 1: %q", i, a[i].Value)
		}
		if !bytes.Equal(a[i].Key, b[i].Key) || len(a[i].Value) != len(b[i].Value) {
			t.Fatalf("record %d: seed changed more than the padding", i)
		}
	}
	if bytes.Equal(a[0].Value[40:], a[1].Value[40:]) {
		t.Fatalf("records 0 and 1 have the same padding: %q", a[0].Value)
	}
}

func TestLimits(t *testing.T) {
	s := open(t, map[string]any{"count": 100, "partitions": 2, "size": 100})
	for _, tc := range []struct {
		name  string
		from  sdk.Offsets
		lim   sdk.Limits
		n     int
		until sdk.Offsets
	}{
		{"max records", nil, sdk.Limits{MaxRecords: 5}, 5, sdk.Offsets{"generator/0": 3, "generator/1": 2}},
		{"max bytes", nil, sdk.Limits{MaxRecords: 50, MaxBytes: 350}, 3, sdk.Offsets{"generator/0": 2, "generator/1": 1}},
		{"record larger than max bytes goes alone", nil, sdk.Limits{MaxRecords: 50, MaxBytes: 10}, 1, sdk.Offsets{"generator/0": 1, "generator/1": 0}},
		{"stop", nil, sdk.Limits{MaxRecords: 50, Stop: sdk.Offsets{"generator/0": 4, "generator/1": 1}}, 5, sdk.Offsets{"generator/0": 4, "generator/1": 1}},
		{"stop at from", sdk.Offsets{"generator/0": 4, "generator/1": 1}, sdk.Limits{MaxRecords: 50, Stop: sdk.Offsets{"generator/0": 4, "generator/1": 1}}, 0, sdk.Offsets{"generator/0": 4, "generator/1": 1}},
		{"stop one partition", nil, sdk.Limits{MaxRecords: 6, Stop: sdk.Offsets{"generator/0": 0, "generator/1": 50}}, 6, sdk.Offsets{"generator/0": 0, "generator/1": 6}},
		{"stop names one partition", nil, sdk.Limits{MaxRecords: 6, Stop: sdk.Offsets{"generator/1": 2}}, 2, sdk.Offsets{"generator/0": 0, "generator/1": 2}},
		{"end", nil, sdk.Limits{MaxRecords: 1000}, 100, sdk.Offsets{"generator/0": 50, "generator/1": 50}},
		{"earliest", sdk.Offsets{"generator/0": -2, "generator/1": -2}, sdk.Limits{MaxRecords: 2}, 2, sdk.Offsets{"generator/0": 1, "generator/1": 1}},
		{"latest", sdk.Offsets{"generator/0": -1, "generator/1": 48}, sdk.Limits{MaxRecords: 10}, 2, sdk.Offsets{"generator/0": 50, "generator/1": 50}},
		{"past the end", sdk.Offsets{"generator/0": 70}, sdk.Limits{MaxRecords: 2}, 2, sdk.Offsets{"generator/0": 70, "generator/1": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := read(t, s, tc.from, tc.lim)
			if len(rd.Records) != tc.n || !rd.Until.Equal(tc.until) {
				t.Fatalf("%d records until %v, want %d until %v", len(rd.Records), rd.Until, tc.n, tc.until)
			}
			var bytes int64
			for _, r := range rd.Records {
				bytes += int64(r.Size())
			}
			if tc.lim.MaxBytes > 0 && len(rd.Records) > 1 && bytes > tc.lim.MaxBytes {
				t.Fatalf("%d bytes, more than %d", bytes, tc.lim.MaxBytes)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	s := open(t, map[string]any{"count": 10, "partitions": 2})
	ctx := context.Background()
	for _, from := range []sdk.Offsets{{"generator/2": 0}, {"other/0": 0}, {"generator/01": 0}, {"generator/0": -3}} {
		if _, err := s.Read(ctx, from, sdk.Limits{MaxRecords: 1}); err == nil {
			t.Errorf("Read from %v: no error", from)
		}
	}
	if _, err := s.Replay(ctx, sdk.Offsets{"generator/0": 0}, sdk.Offsets{"generator/0": 6}); err == nil || !strings.Contains(err.Error(), "past the partition's end 5") {
		t.Errorf("replay past the end: %v", err)
	}
	if _, err := s.Replay(ctx, sdk.Offsets{"generator/0": 3}, sdk.Offsets{"generator/0": 2}); err == nil {
		t.Errorf("replay backwards: no error")
	}
	for _, params := range []map[string]any{{"partitions": 0}, {"partitions": 1<<20 + 1}, {"count": -1}, {"rate": -5}, {"size": -1}, {"size": 64<<20 + 1}} {
		if _, err := sdk.NewConfig(Spec, "pipe", params); err == nil {
			t.Errorf("NewConfig(%v): no error", params)
		}
	}
}

func TestEnd(t *testing.T) {
	for _, tc := range []struct {
		count, parts int
		want         sdk.Offsets
	}{
		{10, 1, sdk.Offsets{"generator/0": 10}},
		{10, 3, sdk.Offsets{"generator/0": 4, "generator/1": 3, "generator/2": 3}},
		{2, 4, sdk.Offsets{"generator/0": 1, "generator/1": 1, "generator/2": 0, "generator/3": 0}},
	} {
		s := open(t, map[string]any{"count": tc.count, "partitions": tc.parts})
		end, err := s.End(context.Background())
		if err != nil || !end.Equal(tc.want) {
			t.Errorf("count %d, partitions %d: End = %v, %v; want %v", tc.count, tc.parts, end, err, tc.want)
		}
		// Reading with Stop = End drains exactly count records.
		all, _, _ := drain(t, s, sdk.Limits{MaxRecords: 3, Stop: end})
		if len(all) != tc.count {
			t.Errorf("drain to End: %d records, want %d", len(all), tc.count)
		}
	}
	s := open(t, map[string]any{"partitions": 2})
	if _, err := s.End(context.Background()); err == nil || !strings.Contains(err.Error(), "drain needs count") {
		t.Errorf("unbounded End: %v", err)
	}
}

func TestUnbounded(t *testing.T) {
	s := open(t, map[string]any{"partitions": 3})
	from := sdk.Offsets{"generator/0": -1, "generator/1": -1, "generator/2": -2}
	rd := read(t, s, from, sdk.Limits{MaxRecords: 100000})
	if len(rd.Records) != 100000 {
		t.Fatalf("%d records", len(rd.Records))
	}
	if want := (sdk.Offsets{"generator/0": 0, "generator/1": 0, "generator/2": 0}); !rd.From.Equal(want) {
		t.Fatalf("unbounded -1 resolves to %v, want %v", rd.From, want)
	}
	rd2 := read(t, s, rd.Until, sdk.Limits{MaxRecords: 10})
	if rd2.Records[0].Position != (sdk.Position{Partition: "generator/1", Offset: 33333}) {
		t.Fatalf("next record %v", rd2.Records[0].Position)
	}
	got, err := s.Replay(context.Background(), rd.Until, rd2.Until)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "replay", got, rd2.Records)
}

func TestExhaustedWaits(t *testing.T) {
	s := open(t, map[string]any{"count": 2})
	start := time.Now()
	rd := read(t, s, sdk.Offsets{"generator/0": 2}, sdk.Limits{MaxRecords: 10, MaxWait: 50 * time.Millisecond})
	if len(rd.Records) != 0 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("%d records after %v", len(rd.Records), time.Since(start))
	}
	// Drain mode (Stop set) gets its final empty Read at once.
	start = time.Now()
	rd = read(t, s, sdk.Offsets{"generator/0": 2}, sdk.Limits{MaxRecords: 10, MaxWait: time.Hour, Stop: sdk.Offsets{"generator/0": 2}})
	if len(rd.Records) != 0 || time.Since(start) > time.Second {
		t.Fatalf("drain: %d records after %v", len(rd.Records), time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Read(ctx, sdk.Offsets{"generator/0": 2}, sdk.Limits{MaxRecords: 10, MaxWait: time.Hour}); err == nil {
		t.Fatal("cancelled read: no error")
	}
}

func TestRate(t *testing.T) {
	const rate = 200
	s := open(t, map[string]any{"rate": rate, "partitions": 2})
	from := sdk.Offsets{}
	start := time.Now()
	total := 0
	for time.Since(start) < 500*time.Millisecond {
		t0 := time.Now()
		rd := read(t, s, from, sdk.Limits{MaxRecords: 1000, MaxWait: 30 * time.Millisecond})
		if d := time.Since(t0); d > 80*time.Millisecond {
			t.Fatalf("Read took %v, MaxWait is 30ms", d)
		}
		total += len(rd.Records)
		from = from.Merge(rd.Until)
	}
	elapsed := time.Since(start).Seconds()
	// At most the rate plus the initial 100ms burst allowance.
	if limit := rate*elapsed + rate*0.1 + 1; float64(total) > limit {
		t.Fatalf("%d records in %.2fs at rate %d (limit %.0f)", total, elapsed, rate, limit)
	}
	if float64(total) < rate*elapsed*0.5 {
		t.Fatalf("only %d records in %.2fs at rate %d", total, elapsed, rate)
	}
	// MaxWait 0 still makes progress as time passes.
	time.Sleep(20 * time.Millisecond)
	if rd := read(t, s, from, sdk.Limits{MaxRecords: 1000}); len(rd.Records) == 0 {
		t.Fatal("no records with MaxWait 0 after 20ms at 200/s")
	}
}

func BenchmarkGeneratorRead(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprint("size=", size), func(b *testing.B) {
			s := open(b, map[string]any{"size": size, "partitions": 4})
			lim := sdk.Limits{MaxRecords: 10000}
			from := sdk.Offsets{}
			ctx := context.Background()
			var n int
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rd, err := s.Read(ctx, from, lim)
				if err != nil {
					b.Fatal(err)
				}
				n += len(rd.Records)
				from = rd.Until
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(n*size)/b.Elapsed().Seconds()/1e6, "MB/s")
		})
	}
}

// openTask opens the source as task k of n.
func openTask(t testing.TB, params map[string]any, k, n int) *Source {
	t.Helper()
	cfg, err := sdk.NewConfig(Plugin.Source.Spec, fmt.Sprintf("pipe-%d", k), params)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Task, cfg.Tasks = k, n
	src := Plugin.Source.New().(*Source)
	if err := src.Open(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	return src
}

// TestTasks: tasks read disjoint partitions (p % tasks == task) that together
// hold every record once, replay only their own, and refuse offsets of
// another task's partition (parallelism changed).
func TestTasks(t *testing.T) {
	const count, parts, tasks = 101, 5, 3
	params := map[string]any{"count": count, "partitions": parts}
	seen := map[string]int{}
	for k := range tasks {
		s := openTask(t, params, k, tasks)
		end, err := s.End(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for name := range end {
			var p int
			if _, err := fmt.Sscanf(name, "generator/%d", &p); err != nil || p%tasks != k {
				t.Errorf("task %d: End names %q, which is not its partition", k, name)
			}
		}
		all, froms, untils := drain(t, s, sdk.Limits{MaxRecords: 7})
		for _, r := range all {
			seen[string(r.Key)]++
			if end[r.Position.Partition] == 0 {
				t.Errorf("task %d read %s, not its partition", k, r.Position)
			}
		}
		for i := range froms {
			got, err := s.Replay(context.Background(), froms[i], untils[i])
			if err != nil {
				t.Fatalf("task %d: replay: %v", k, err)
			}
			if len(got) == 0 {
				t.Errorf("task %d: replay of batch %d is empty", k, i)
			}
		}
		other := fmt.Sprintf("generator/%d", (k+1)%tasks)
		_, err = s.Read(context.Background(), sdk.Offsets{other: 0}, sdk.Limits{MaxRecords: 1})
		if err == nil || !sdk.IsConfigError(err) || !strings.Contains(err.Error(), "another parallelism") {
			t.Errorf("task %d: Read from %s (another task's): %v, want a configuration error", k, other, err)
		}
		if _, err := s.Replay(context.Background(), sdk.Offsets{other: 0}, sdk.Offsets{other: 1}); err == nil {
			t.Errorf("task %d: Replay of %s (another task's): no error", k, other)
		}
	}
	if len(seen) != count {
		t.Errorf("the tasks read %d distinct records, want %d", len(seen), count)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("record %s read %d times", id, n)
		}
	}
	// More tasks than partitions: a task without partitions reads nothing.
	s := openTask(t, map[string]any{"count": 10, "partitions": 2}, 2, 3)
	if all, _, _ := drain(t, s, sdk.Limits{MaxRecords: 5, Stop: sdk.Offsets{}}); len(all) != 0 {
		t.Errorf("task 2 of 3 over 2 partitions read %d records", len(all))
	}
}
