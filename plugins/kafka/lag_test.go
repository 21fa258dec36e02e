package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	kafkago "github.com/segmentio/kafka-go"
)

// TestEndToEndLag runs kafka → file under `connectd run --http`, pauses it
// in the middle and produces more: the lag the API and /metrics show for
// each partition equals what Kafka's own tools compute for the pipeline's
// group (the partition's end offset minus the group's committed offset),
// which is also the end minus the checkpoint's committed offset. After a
// resume the lag falls to 0 everywhere.
func TestEndToEndLag(t *testing.T) {
	const parts = 3
	topic, _ := fillTopic(t, parts, 100)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.hcl")
	writeFile(t, cfg, kafkaToFile("lag", topic))
	h := e2e.Serve(t, connectdBin, dir, nil, cfg)
	type status struct {
		State          string                      `json:"state"`
		Committed      map[string]map[string]int64 `json:"committed"`
		Lag            map[string]int64            `json:"lag"`
		RecordsWritten int64                       `json:"recordsWritten"`
		Batches        int64                       `json:"batches"`
	}
	get := func() status {
		t.Helper()
		resp, err := http.Get(h.URL + "/v1/pipelines/lag")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	h.WaitFor(t, "a first batch", func() bool { return get().RecordsWritten > 0 })
	resp, err := http.Post(h.URL+"/v1/pipelines/lag/pause", "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("pause: %v %v", resp, err)
	}
	resp.Body.Close()
	h.WaitFor(t, "the paused state", func() bool { return get().State == "paused" })
	for p := 0; p < parts; p++ {
		produce(t, topic, p, seq(fmt.Sprintf("more-%d-", p), 10*(p+1))...)
	}

	// kafkaLag is Kafka's view: the end offset minus the group's committed offset.
	kafkaLag := func() map[string]int64 {
		t.Helper()
		ends, err := offsetsOf(topic, parts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adminClient.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: topic + "-lag", Topics: map[string][]int{topic: {0, 1, 2}}})
		if err != nil {
			t.Fatal(err)
		}
		lag := map[string]int64{}
		for _, p := range resp.Topics[topic] {
			committed := max(p.CommittedOffset, 0) // -1: nothing committed yet
			lag[fmt.Sprintf("%s/%d", topic, p.Partition)] = ends[p.Partition][1] - committed
		}
		return lag
	}
	agree := func(when string) {
		t.Helper()
		var api, want map[string]int64
		var st status
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, want = get(), kafkaLag()
			api = st.Lag
			if fmt.Sprint(api) == fmt.Sprint(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond) // the host asks for the end once a second
		}
		if fmt.Sprint(api) != fmt.Sprint(want) {
			t.Fatalf("%s: the API's lag %v, Kafka's (end − group's committed offset) %v", when, api, want)
		}
		ends, err := offsetsOf(topic, parts)
		if err != nil {
			t.Fatal(err)
		}
		m := e2e.Scrape(t, h.URL)
		for p := 0; p < parts; p++ {
			part := fmt.Sprintf("%s/%d", topic, p)
			fromCheckpoint := ends[p][1] - st.Committed[topic][fmt.Sprint(p)]
			if fromCheckpoint != want[part] {
				t.Errorf("%s: partition %s: end − checkpoint %d, Kafka's lag %d", when, part, fromCheckpoint, want[part])
			}
			key := fmt.Sprintf(`connectd_partition_lag{partition=%q,pipeline="lag"}`, part)
			if got, ok := m[key]; !ok || int64(got) != want[part] {
				t.Errorf("%s: %s = %v (present %v), want %d", when, key, got, ok, want[part])
			}
		}
	}
	agree("paused")
	if l := kafkaLag(); l[topic+"/2"] < 30 {
		t.Fatalf("paused with lag %v; want at least the 30 records produced to partition 2 while paused", l)
	}
	resp, err = http.Post(h.URL+"/v1/pipelines/lag/resume", "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("resume: %v %v", resp, err)
	}
	resp.Body.Close()
	h.WaitFor(t, "every record written", func() bool { return get().RecordsWritten == 3*100+10+20+30 })
	agree("caught up")
	for p, l := range kafkaLag() {
		if l != 0 {
			t.Errorf("caught up: Kafka's lag of %s is %d, want 0", p, l)
		}
	}
	// The counters /metrics shows are what was delivered: every record
	// produced, read and written once (no replay happened).
	m := e2e.Scrape(t, h.URL)
	for _, name := range []string{"connectd_records_read_total", "connectd_records_written_total"} {
		if got := m[name+`{pipeline="lag"}`]; got != 3*100+10+20+30 {
			t.Errorf("%s = %v, want %d", name, got, 3*100+10+20+30)
		}
	}
	if got := m[`connectd_batches_total{outcome="committed",pipeline="lag"}`]; got != float64(get().Batches) || got == 0 {
		t.Errorf("committed batches on /metrics = %v, API says %d", got, get().Batches)
	}
}
