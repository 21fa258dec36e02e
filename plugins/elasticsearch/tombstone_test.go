package elasticsearch

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/sdk"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// tombstone is key's tombstone at partition p, offset o.
func tombstone(p string, o int64, key string) sdk.Record {
	r := rec(p, o, key, "")
	r.Value, r.Tombstone = nil, true
	return r
}

// In key mode a tombstone deletes its key's document, across batches and in
// one; deleting a document, or an index, that is not there is no error, so
// a replayed batch of tombstones succeeds and changes nothing. An empty
// value is not a tombstone: it is indexed.
func TestTombstoneDeletesByKey(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, map[string]any{"id": "key"})
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{
		rec("p/0", 0, "k1", `{"v":1}`),
		rec("p/0", 1, "k2", `{"v":1}`),
		rec("p/0", 2, "k3", `{"v":1}`),
	}})
	b2 := sdk.Batch{ID: 2, Records: []sdk.Record{
		tombstone("p/0", 3, "k1"),
		rec("p/0", 4, "k2", `{"v":2}`), tombstone("p/0", 5, "k2"), // deleted in the batch that changed it
		tombstone("p/0", 6, "k3"), rec("p/0", 7, "k3", `{"v":3}`), // deleted, then written again
		tombstone("p/0", 8, "never-written"),
		rec("p/0", 9, "k4", ""),
	}}
	write(t, s, b2)
	b2.Replay = true
	write(t, s, b2)
	got := byID(t, docs(t, idx))
	if len(got) != 2 {
		t.Errorf("%d documents, want k3 and k4: %v", len(got), got)
	}
	if d, ok := got[idx+"/k3"]; !ok || !sameJSON(d.Source, []byte(`{"v":3}`)) {
		t.Errorf("document k3 = %s, want {\"v\":3}", d.Source)
	}
	var e Envelope
	if d, ok := got[idx+"/k4"]; !ok || json.Unmarshal(d.Source, &e) != nil || e.Tombstone || len(e.RecordValue()) != 0 || e.Key == nil || *e.Key != "k4" {
		t.Errorf("document k4 = %s, want the envelope of an empty value", d.Source)
	}

	// A tombstone for an index that does not exist.
	s2 := openSink(t, idx+"-none", map[string]any{"id": "key"})
	write(t, s2, sdk.Batch{ID: 1, Records: []sdk.Record{tombstone("p/0", 0, "k1")}})
}

// In position mode a tombstone is a record like any other: its envelope
// says "tombstone": true and has no value; an empty value has neither.
func TestTombstonePositionMode(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, nil)
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{rec("p/0", 0, "k1", `{"v":1}`), tombstone("p/0", 1, "k1"), rec("p/0", 2, "k1", "")}})
	got := byID(t, docs(t, idx))
	if len(got) != 3 {
		t.Fatalf("%d documents, want 3: %v", len(got), got)
	}
	for id, tomb := range map[string]bool{"p/0@1": true, "p/0@2": false} {
		var e Envelope
		d := got[idx+"/"+id]
		if err := json.Unmarshal(d.Source, &e); err != nil || e.Tombstone != tomb || (e.Value != nil) == tomb || len(e.RecordValue()) != 0 || !looksLikeEnvelope(d.Source) {
			t.Errorf("document %s = %s, want an envelope with tombstone %v and a value only when not a tombstone", id, d.Source, tomb)
		}
	}
}

// End-to-end, kafka → elasticsearch in the connectd binary: k1 = v, then
// k1's tombstone (a null value) leaves no document for k1; k2's empty
// value is a document.
func TestEndToEndKafkaTombstone(t *testing.T) {
	t.Parallel()
	brokers := e2e.KafkaBrokers(t, env.root)
	topic := fmt.Sprintf("es-tombstone-%d", time.Now().UnixNano())
	produceTombstones(t, brokers, topic)
	idx := indexName(t)
	tls := ""
	if env.caFile != "" {
		tls = `tls_ca_file = env("ES_CA_CERT")`
	}
	dir, cfg := e2eDir(t, fmt.Sprintf(`
pipeline "es-tomb" {
  delivery = "exactly-once"
  source "kafka" {
    brokers          = ["%s"]
    topics           = [%q]
    starting_offsets = "earliest"
  }
  sink "elasticsearch" {
    addresses = [env("ES_URL")]
    index     = %q
    id        = "key"
    username  = env("ES_USERNAME")
    password  = env("ES_PASSWORD")
    %s
  }
  batch { max_records = 1 }
  checkpoint { dir = "state" }
}
`, strings.Join(brokers, `", "`), topic, idx, tls))
	if r := connectd(t, dir, nil, "run", "--drain", filepath.Base(cfg)); r.Code != 0 {
		t.Fatalf("connectd run: exit %d:\n%s", r.Code, r.Stderr)
	}
	got := byID(t, docs(t, idx))
	if _, ok := got[idx+"/k1"]; ok {
		t.Errorf("document k1 is still there after its tombstone: %s", got[idx+"/k1"].Source)
	}
	if _, ok := got[idx+"/k2"]; !ok || len(got) != 1 {
		t.Errorf("documents %v, want k2 only", got)
	}
}

// produceTombstones creates topic with one partition and writes k1 = {"v":1},
// k1's tombstone and k2 with an empty value, with kafka-go.
func produceTombstones(t *testing.T, brokers []string, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	cr, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err == nil {
		err = cr.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	now := time.Now()
	recs := []protocol.Record{
		{Time: now, Key: protocol.NewBytes([]byte("k1")), Value: protocol.NewBytes([]byte(`{"v":1}`))},
		{Time: now, Key: protocol.NewBytes([]byte("k1"))}, // Value nil: a tombstone
		{Time: now, Key: protocol.NewBytes([]byte("k2")), Value: protocol.NewBytes([]byte{})},
	}
	for {
		res, err := c.Produce(ctx, &kafkago.ProduceRequest{Topic: topic, Partition: 0, RequiredAcks: kafkago.RequireAll, Records: protocol.NewRecordReader(recs...)})
		if err == nil && res.Error != nil {
			err = res.Error
		}
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond) // the new topic's leader may not be known yet
	}
}
