package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

// TestSourceTasks: three tasks over files, some of them appearing after the
// tasks started, read every line once, each file by the task taskOf names;
// offsets of another task's file are refused.
func TestSourceTasks(t *testing.T) {
	const tasks = 3
	dir := t.TempDir()
	want := map[string]bool{}
	addFile := func(i int) {
		var b strings.Builder
		for j := range 4 {
			line := fmt.Sprintf("f%d-l%d", i, j)
			want[line] = true
			b.WriteString(line + "\n")
		}
		write(t, filepath.Join(dir, fmt.Sprintf("in-%d.txt", i)), b.String())
	}
	for i := range 6 {
		addFile(i)
	}
	params := map[string]any{"paths": []string{filepath.Join(dir, "*.txt")}, "poll": "1ms"}
	srcs := make([]*Source, tasks)
	from := make([]sdk.Offsets, tasks)
	for k := range srcs {
		cfg, err := sdk.NewConfig(Plugin.Source.Spec, fmt.Sprintf("p-%d", k), params)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Task, cfg.Tasks = k, tasks
		srcs[k] = Plugin.Source.New().(*Source)
		if err := srcs[k].Open(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		from[k] = sdk.Offsets{}
	}
	got := map[string]int{}
	drainAll := func() {
		for k, s := range srcs {
			for {
				rd := read(t, s, from[k], sdk.Limits{MaxRecords: 3, MaxWait: time.Millisecond})
				if len(rd.Records) == 0 {
					break
				}
				for _, r := range rd.Records {
					got[string(r.Value)]++
					if o := taskOf(r.Position.Partition, tasks); o != k {
						t.Errorf("task %d read %s of %s, which is task %d's", k, r.Value, r.Position.Partition, o)
					}
				}
				from[k] = from[k].Merge(rd.Until)
			}
		}
	}
	drainAll()
	for i := 6; i < 12; i++ { // files that appear later
		addFile(i)
	}
	drainAll()
	if len(got) != len(want) {
		t.Errorf("the tasks read %d distinct lines, want %d", len(got), len(want))
	}
	for line, n := range got {
		if n != 1 || !want[line] {
			t.Errorf("line %s read %d times", line, n)
		}
	}
	used := 0
	for k := range from {
		if len(from[k]) > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("12 files went to %d of %d tasks", used, tasks)
	}
	for k, s := range srcs {
		other := from[(k+1)%tasks]
		if len(other) == 0 {
			continue
		}
		if _, err := s.Read(context.Background(), other, sdk.Limits{MaxRecords: 1}); err == nil || !sdk.IsConfigError(err) || !strings.Contains(err.Error(), "another parallelism") {
			t.Errorf("task %d reading another task's files: %v, want a configuration error", k, err)
		}
		if _, err := s.Replay(context.Background(), sdk.Offsets{}, other); err == nil || !sdk.IsConfigError(err) {
			t.Errorf("task %d replaying another task's files: %v, want a configuration error", k, err)
		}
		s.Close(context.Background())
	}
}

// TestSinkTasks: the tasks of one pipeline write into their own
// subdirectories of dir, so their batch files (which share ids) never meet.
func TestSinkTasks(t *testing.T) {
	dir := t.TempDir()
	for k := range 2 {
		cfg, err := sdk.NewConfig(Plugin.Sink.Spec, fmt.Sprintf("p-%d", k), map[string]any{"dir": dir, "mode": ModeTransactional})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Task, cfg.Tasks = k, 2
		s := Plugin.Sink.New().(*Sink)
		if err := s.Open(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		b := sdk.Batch{ID: 1, Records: []sdk.Record{{Value: []byte(fmt.Sprintf("task %d", k)), Position: sdk.Position{Partition: fmt.Sprintf("g/%d", k), Offset: 0}}},
			Until: sdk.Offsets{fmt.Sprintf("g/%d", k): 1}}
		if err := s.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		s.Close(context.Background())
	}
	for k := range 2 {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("p-%d", k), BatchFile(1)))
		if err != nil || string(data) != fmt.Sprintf("task %d\n", k) {
			t.Errorf("task %d's batch 1 holds %q", k, data)
		}
	}
}
