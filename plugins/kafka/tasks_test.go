package kafka

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/tally"
	"github.com/connectd/connectd/sdk"
)

// openTaskSource opens the kafka source in-process as task k of n, as the
// host does for a pipeline with parallelism n.
func openTaskSource(t *testing.T, k, n int, cfg map[string]any) *Source {
	t.Helper()
	c, err := sdk.NewConfig(SourceSpec, fmt.Sprintf("p-%d", k), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Task, c.Tasks = k, n
	src := &Source{}
	if err := src.Open(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	return src
}

// TestSourceTasks: two tasks over a topic of 4 partitions, then 7: every
// record is read once, by the one task taskOf gives its partition; the
// tasks share the partitions evenly before and after partitions are added;
// a restarted task goes on from its own offsets; offsets that name another
// task's partition (a changed parallelism) are refused.
func TestSourceTasks(t *testing.T) {
	const tasks = 2
	topic := newTopic(t, 4)
	want := map[string]int{} // value → partition
	produceAll := func(parts, round int) {
		for p := range parts {
			for i := range 3 {
				v := fmt.Sprintf("r%d-p%d-%d", round, p, i)
				want[v] = p
				produce(t, topic, p, values(v)...)
			}
		}
	}
	produceAll(4, 0)
	cfg := sourceConfig([]string{topic}, nil)
	srcs := make([]*Source, tasks)
	from := make([]sdk.Offsets, tasks)
	for k := range srcs {
		srcs[k] = openTaskSource(t, k, tasks, cfg)
		from[k] = sdk.Offsets{}
	}
	readBy := map[string][]int{} // value → the tasks that read it
	// readUntil reads with every task until the tasks read total values.
	readUntil := func(total int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for len(readBy) < total && time.Now().Before(deadline) {
			for k, src := range srcs {
				rd, err := src.Read(ctx, from[k], lim(5))
				if err != nil {
					t.Fatalf("task %d: %v", k, err)
				}
				if err := sdk.CheckRead(from[k], lim(5), rd); err != nil {
					t.Fatalf("task %d: Read breaks the contract: %v", k, err)
				}
				for _, r := range rd.Records {
					readBy[string(r.Value)] = append(readBy[string(r.Value)], k)
					p, _ := parseTP(r.Position.Partition)
					if got := taskOf(p, tasks); got != k {
						t.Errorf("task %d read %s (%s), which belongs to task %d", k, r.Value, r.Position, got)
					}
				}
				for name := range rd.Until {
					if p, _ := parseTP(name); taskOf(p, tasks) != k {
						t.Errorf("task %d: Until names %s, another task's partition", k, name)
					}
				}
				from[k] = from[k].Merge(rd.Until)
			}
		}
		if len(readBy) != total {
			t.Fatalf("the tasks read %d distinct records, want %d", len(readBy), total)
		}
	}
	readUntil(len(want))
	// Partitions added later: 4, 5 and 6 (with records produced before the
	// tasks saw them), and new records in the old partitions.
	addPartitions(t, topic, 7)
	produceAll(7, 1)
	readUntil(len(want))
	for v, by := range readBy {
		if _, ok := want[v]; !ok || len(by) != 1 {
			t.Errorf("record %s read by tasks %v, want exactly one", v, by)
		}
	}
	owned := make([]int, tasks)
	for k := range from {
		owned[k] = len(from[k])
	}
	if owned[0]+owned[1] != 7 || owned[0] < 3 || owned[1] < 3 {
		t.Errorf("the tasks own %v of 7 partitions, want 3 and 4", owned)
	}

	// A restarted task (a new process) goes on from its own offsets and
	// reads only new records of its partitions.
	restarted := openTaskSource(t, 1, tasks, cfg)
	var last string
	for p := range 7 {
		if taskOf(tp{topic, int32(p)}, tasks) == 1 {
			last = fmt.Sprintf("late-p%d", p)
			produce(t, topic, p, values(last)...)
		}
		produce(t, topic, p, values(fmt.Sprintf("other-p%d", p))...)
	}
	rd, err := restarted.Read(ctx, from[1], lim(100))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rd.Records {
		if p, _ := parseTP(r.Position.Partition); taskOf(p, tasks) != 1 {
			t.Errorf("restarted task 1 read %s of %s", r.Value, r.Position)
		}
		if strings.HasPrefix(string(r.Value), "r") {
			t.Errorf("restarted task 1 read %s again", r.Value)
		}
	}
	if len(rd.Records) == 0 {
		t.Errorf("restarted task 1 read nothing; want the late records such as %s", last)
	}

	// Offsets of task 1's partition in task 0's checkpoint: refused.
	foreign := from[0].Merge(from[1])
	if _, err := srcs[0].Read(ctx, foreign, lim(5)); err == nil || !sdk.IsConfigError(err) || !strings.Contains(err.Error(), "another parallelism") {
		t.Errorf("task 0 reading from another task's partitions: %v, want a configuration error", err)
	}
	if _, err := srcs[0].Replay(ctx, from[1], from[1]); err == nil || !sdk.IsConfigError(err) {
		t.Errorf("task 0 replaying another task's partitions: %v, want a configuration error", err)
	}
}

// TestTaskOf: the assignment depends only on the partition and the count,
// spreads a topic's partitions evenly, and one task owns everything.
func TestTaskOf(t *testing.T) {
	for _, topic := range []string{"orders", "a", "payments.v2"} {
		for _, n := range []int{2, 3, 5} {
			count := make([]int, n)
			for p := range int32(4 * n) {
				k := taskOf(tp{topic, p}, n)
				if k < 0 || k >= n || k != taskOf(tp{topic, p}, n) {
					t.Fatalf("taskOf(%s/%d, %d) = %d", topic, p, n, k)
				}
				if p > 0 && k != (taskOf(tp{topic, p - 1}, n)+1)%n {
					t.Errorf("taskOf(%s/%d, %d) = %d does not follow partition %d's task", topic, p, n, k, p-1)
				}
				count[k]++
			}
			for k, c := range count {
				if c != 4 {
					t.Errorf("topic %s, %d tasks: task %d owns %d of %d partitions, want 4", topic, n, k, c, 4*n)
				}
			}
		}
		if taskOf(tp{topic, 7}, 1) != 0 {
			t.Errorf("one task does not own %s/7", topic)
		}
	}
}

// TestEndToEndTasks: kafka → file with parallelism = 2 over a topic of 4
// partitions, crashed (kill -9 at a fault point) and drained, then grown to
// 7 partitions and drained again: every record is written once, by the task
// that taskOf gives its partition (task k's files are in out/<name>-<k>).
func TestEndToEndTasks(t *testing.T) {
	const tasks = 2
	topic, want := fillTopic(t, 4, 60)
	dir := t.TempDir()
	cfg := strings.Replace(kafkaToFile("k2f", topic), `delivery = "exactly-once"`, "delivery    = \"exactly-once\"\n  parallelism = 2", 1)
	writeFile(t, filepath.Join(dir, "p.hcl"), cfg)
	crashAndDrain(t, dir, fault.HostWriteAfter)

	addPartitions(t, topic, 7)
	for p := range 7 {
		ms := seq(fmt.Sprintf("%s-%d-late-", topic, p), 20)
		produce(t, topic, p, ms...)
		for _, m := range ms {
			want = append(want, m.value)
		}
	}
	if r := e2e.Run(t, connectdBin, dir, nil, "run", "--drain", filepath.Join(dir, "p.hcl")); r.Code != 0 {
		t.Fatalf("drain after adding partitions: exit %d:\n%s", r.Code, r.Stderr)
	}
	seen := map[string]int{}
	for k := range tasks {
		files, _ := filepath.Glob(filepath.Join(dir, "out", fmt.Sprintf("k2f-%d", k), "batch-*"))
		if len(files) == 0 {
			t.Errorf("task %d wrote nothing", k)
		}
		for _, f := range files {
			for _, v := range lines(t, f) {
				seen[v]++
				// A value is "<topic>-<partition>-…".
				var p int32
				if _, err := fmt.Sscanf(strings.TrimPrefix(v, topic+"-"), "%d-", &p); err != nil {
					t.Fatalf("value %q does not name its partition", v)
				}
				if o := taskOf(tp{topic, p}, tasks); o != k {
					t.Errorf("task %d wrote %s of partition %d, which is task %d's", k, v, p, o)
				}
			}
		}
	}
	lost, dup, extra := tally.Tally(want, seen)
	if lost != 0 || dup != 0 || len(extra) != 0 {
		t.Fatalf("exactly-once with 2 tasks broken: %d lost, %d duplicated, %d never produced", lost, dup, len(extra))
	}
}

// TestSinkDedupeRefusesTasks: mode = "dedupe" reads back a partition's tail
// up to the first record of another writer, so the tasks of one pipeline,
// which write the same partitions, would break it: the sink refuses to open
// as one of several tasks (a configuration error), and opens as one.
func TestSinkDedupeRefusesTasks(t *testing.T) {
	for _, tasks := range []int{1, 2} {
		c, err := sdk.NewConfig(SinkSpec, "p-0", map[string]any{"brokers": brokers, "topic": "t", "mode": "dedupe"})
		if err != nil {
			t.Fatal(err)
		}
		c.Tasks = tasks
		s := &Sink{}
		err = s.Open(context.Background(), c)
		if tasks == 1 && err != nil {
			t.Errorf("dedupe as one task: %v", err)
		}
		if tasks > 1 && (err == nil || !sdk.IsConfigError(err) || !strings.Contains(err.Error(), "parallelism")) {
			t.Errorf("dedupe as task 0 of %d: %v, want a configuration error about parallelism", tasks, err)
		}
		if err == nil {
			s.Close(context.Background())
		}
	}
}
