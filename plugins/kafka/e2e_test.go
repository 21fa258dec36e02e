package kafka

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/tally"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/sdk"
	kafkago "github.com/segmentio/kafka-go"
)

// End-to-end: the real connectd binary runs pipelines with the kafka plugin
// in plugin processes, dies at a fault point (CONNECTD_FAULT=point@batch,
// as kill -9 would), is started again in drain mode, and every record id is
// counted in what the sink holds.

// crashPoints are the fault points the end-to-end tests crash at, in batch 3.
var crashPoints = []string{fault.HostWriteAfter, fault.SinkWritePartial, fault.HostCommitAfter, fault.SourceReadPartial}

// crashAndDrain crashes the pipeline in dir/p.hcl at point in batch 3, then drains it.
func crashAndDrain(t *testing.T, dir, point string) {
	t.Helper()
	e2e.CrashAndDrain(t, connectdBin, dir, filepath.Join(dir, "p.hcl"), point, nil)
}

// fileIDs counts the lines the file sink wrote under dir/out.
func fileIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*"))
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		for _, l := range lines(t, f) {
			seen[l]++
		}
	}
	return seen
}

// topicIDs counts the generator ids (the "id" of JSON values) or plain
// values in a topic.
func topicIDs(t *testing.T, topic string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, f := range readTopic(t, topic) {
		var v struct{ ID string }
		if json.Unmarshal(f.value, &v) == nil && v.ID != "" {
			seen[v.ID]++
		} else {
			seen[string(f.value)]++
		}
	}
	return seen
}

func brokersHCL() string {
	q := make([]string, len(brokers))
	for i, b := range brokers {
		q[i] = fmt.Sprintf("%q", b)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fillTopic produces per records to each of parts partitions of a new topic
// and returns the topic and the values.
func fillTopic(t *testing.T, parts, per int) (string, []string) {
	topic := newTopic(t, parts)
	var want []string
	for p := 0; p < parts; p++ {
		ms := seq(fmt.Sprintf("%s-%d-", topic, p), per)
		produce(t, topic, p, ms...)
		for _, m := range ms {
			want = append(want, m.value)
		}
	}
	return topic, want
}

// TestEndToEndKafkaToFile: kafka → file, exactly-once, crashed at each
// fault point, delivers every record once; ACK leaves the consumer group at
// the end of every partition.
func TestEndToEndKafkaToFile(t *testing.T) {
	for _, point := range crashPoints {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			topic, want := fillTopic(t, 3, 100)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "p.hcl"), kafkaToFile("k2f", topic))
			crashAndDrain(t, dir, point)
			lost, dup, extra := tally.Tally(want, fileIDs(t, dir))
			if lost != 0 || dup != 0 || len(extra) != 0 {
				t.Fatalf("exactly-once broken at %s: %d lost, %d duplicated, %d never produced", point, lost, dup, len(extra))
			}
			resp, err := adminClient.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: topic + "-lag", Topics: map[string][]int{topic: {0, 1, 2}}})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range resp.Topics[topic] {
				if p.CommittedOffset != 100 {
					t.Errorf("group %s-lag: partition %d at %d, want 100", topic, p.Partition, p.CommittedOffset)
				}
			}
		})
	}
}

// TestEndToEndGeneratorToKafka: generator → kafka in mode "dedupe",
// exactly-once, crashed at each fault point, leaves every id in the topic
// once. In mode "plain" (at-least-once) a crash in the middle of a write
// loses nothing but duplicates what the crashed write had written.
func TestEndToEndGeneratorToKafka(t *testing.T) {
	const count, parts = 300, 2
	run := func(t *testing.T, delivery, mode, point string) (lost, dup int) {
		topic := newTopic(t, 3)
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "p.hcl"), fmt.Sprintf(`
pipeline "g2k" {
  delivery = %q
  source "generator" {
    count      = %d
    partitions = %d
    size       = 60
  }
  sink "kafka" {
    brokers = %s
    topic   = %q
    mode    = %q
  }
  batch { max_records = 40 }
  checkpoint { dir = "state" }
}
`, delivery, count, parts, brokersHCL(), topic, mode))
		crashAndDrain(t, dir, point)
		lost, dup, extra := tally.Tally(e2e.GenIDs(count, parts), topicIDs(t, topic))
		if len(extra) != 0 {
			t.Errorf("%d records in the topic were never generated", len(extra))
		}
		return lost, dup
	}
	for _, point := range crashPoints {
		if point == fault.SourceReadPartial {
			continue // the generator is not under test
		}
		t.Run("dedupe/"+point, func(t *testing.T) {
			t.Parallel()
			if lost, dup := run(t, "exactly-once", "dedupe", point); lost != 0 || dup != 0 {
				t.Fatalf("exactly-once broken at %s: %d lost, %d duplicated", point, lost, dup)
			}
		})
	}
	t.Run("plain/"+fault.SinkWritePartial, func(t *testing.T) {
		t.Parallel()
		lost, dup := run(t, "at-least-once", "plain", fault.SinkWritePartial)
		if lost != 0 {
			t.Fatalf("at-least-once broken: %d lost", lost)
		}
		// Half of batch 3 (20 records) was written before the crash and
		// is written again: the count sees plain mode's duplicates.
		if dup != 20 {
			t.Fatalf("plain mode after a partial write: %d duplicates, want 20", dup)
		}
	})
}

// TestEndToEndKafkaToKafka: kafka → kafka in mode "dedupe", exactly-once,
// with the record keys, headers and timestamps carried from topic to topic.
func TestEndToEndKafkaToKafka(t *testing.T) {
	for _, point := range []string{fault.HostWriteAfter, fault.SinkWritePartial} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			in := newTopic(t, 2)
			var want []string
			ts := time.UnixMilli(1700000000000).UTC()
			for p := 0; p < 2; p++ {
				var ms []msg
				for i := 0; i < 100; i++ {
					v := fmt.Sprintf("k2k-%d-%d", p, i)
					ms = append(ms, msg{key: v, value: v, ts: ts.Add(time.Duration(i) * time.Millisecond),
						headers: []sdk.Header{{Key: "h", Value: []byte(v)}}})
					want = append(want, v)
				}
				produce(t, in, p, ms...)
			}
			out := newTopic(t, 3)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "p.hcl"), fmt.Sprintf(`
pipeline "k2k" {
  delivery = "exactly-once"
  source "kafka" {
    brokers          = %[1]s
    topics           = [%[2]q]
    starting_offsets = "earliest"
  }
  sink "kafka" {
    brokers = %[1]s
    topic   = %[3]q
    mode    = "dedupe"
  }
  batch { max_records = 30 }
  checkpoint { dir = "state" }
}
`, brokersHCL(), in, out))
			crashAndDrain(t, dir, point)
			got := readTopic(t, out)
			seen := map[string]int{}
			for _, f := range got {
				seen[string(f.value)]++
				if string(f.key) != string(f.value) || header(f.headers, "h") != string(f.value) || f.ts.Before(ts) || f.ts.After(ts.Add(time.Second)) {
					t.Errorf("record %q arrived with key %q, headers %v, timestamp %v", f.value, f.key, f.headers, f.ts)
				}
				if want := Partition(f.key, 3); f.partition != want {
					t.Errorf("record %q is in partition %d, murmur2 says %d", f.value, f.partition, want)
				}
			}
			if lost, dup, extra := tally.Tally(want, seen); lost != 0 || dup != 0 || len(extra) != 0 {
				t.Fatalf("exactly-once broken at %s: %d lost, %d duplicated, %d never produced", point, lost, dup, len(extra))
			}
		})
	}
}

// kafkaToFile is an exactly-once kafka → file pipeline named name that reads
// topic from the start, in batches of at most 40 records.
func kafkaToFile(name, topic string) string {
	return fmt.Sprintf(`
pipeline %q {
  delivery = "exactly-once"
  source "kafka" {
    brokers          = %s
    topics           = [%q]
    starting_offsets = "earliest"
    group_id         = "%s-lag"
  }
  sink "file" {
    dir  = "out"
    mode = "batch"
  }
  batch {
    max_records = 40
    max_wait    = "200ms"
  }
  checkpoint { dir = "state" }
}
`, name, brokersHCL(), topic, topic)
}
