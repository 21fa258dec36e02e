package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// tomb makes the record at offset o of b (from batch()) a tombstone.
func tomb(b sdk.Batch, o int) sdk.Batch {
	b.Records[o].Value, b.Records[o].Tombstone = nil, true
	return b
}

// rowsOf renders table's k, v rows ordered by k.
func rowsOf(t *testing.T, table string) string {
	t.Helper()
	return strings.Join(query(t, "SELECT k, v FROM "+table+" ORDER BY k"), ",")
}

// In upsert mode a tombstone deletes the row of its key: across batches, in
// the batch that wrote it, before a value that writes it again; deleting a
// key without a row is no error, and a replay converges.
func TestUpsertTombstoneDeletes(t *testing.T) {
	_, q := schema(t)
	table := q("kv")
	s := open(t, map[string]any{"table": table, "mode": ModeUpsert, "key": []string{"k"}, "create": true, "on_record_error": OnErrorFail,
		"columns": []string{"k = key", "v text = value"}})
	// batch() keys records k<offset>; give them shared keys.
	keyed := func(b sdk.Batch, keys ...string) sdk.Batch {
		for i, k := range keys {
			b.Records[i].Key = []byte(k)
		}
		return b
	}
	write(t, s, keyed(batch(1, 0, "v1", "v2", "v3"), "a", "b", "c"))
	b2 := keyed(batch(2, 3, "", "x", "", "", "y", "", "z"), "a", "b", "b", "c", "c", "none", "d")
	b2 = tomb(tomb(tomb(tomb(b2, 0), 2), 3), 5) // a: deleted; b: x then deleted; c: deleted then y; none: no row; d: z
	write(t, s, b2)
	want := "c|y,d|z"
	if got := rowsOf(t, table); got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	b2.Replay = true
	write(t, s, b2)
	// Batch 3, written twice: the second Write finds it committed; a fresh
	// sink (after a crash) writes it again in a new transaction.
	b3 := tomb(keyed(batch(3, 10, "", "w"), "c", "e"), 0)
	write(t, s, b3)
	if _, err := pgtest.Conn(t, pgURL).Exec(ctx, "UPDATE "+q(DefaultOffsetsTable)+" SET batch = 2"); err != nil {
		t.Fatal(err)
	}
	write(t, s, b3)
	if got, want := rowsOf(t, table), "d|z,e|w"; got != want {
		t.Errorf("after batch 3 and its rewrite: rows %s, want %s", got, want)
	}
}

// A tombstone that cannot name its row in upsert mode (its key column comes
// from the value, or would be NULL, or a column's type refuses it) is
// rejected with the reason, and the rest of the batch is written.
func TestUpsertTombstoneRejected(t *testing.T) {
	_, q := schema(t)
	byField := q("byfield")
	s := open(t, map[string]any{"table": byField, "mode": ModeUpsert, "key": []string{"k"}, "create": true,
		"columns": []string{"k = value.k", "v bigint = value.v"}})
	err := s.Write(ctx, tomb(batch(1, 0, `{"k":"a","v":1}`, ``), 1))
	var rj *sdk.Rejected
	if !errors.As(err, &rj) || len(rj.Records) != 1 || rj.Records[0].Index != 1 ||
		!strings.Contains(rj.Records[0].Reason, `tombstone (a null value), and upsert key column "k" comes from value.k`) {
		t.Errorf("a tombstone keyed on a value field: %v, want record 1 rejected saying why", err)
	}
	if got := strings.Join(query(t, "SELECT k, v FROM "+byField), ","); got != "a|1" {
		t.Errorf("rows %s, want a|1", got)
	}

	byKey := q("bykey")
	s = sdktest.Sink(t, Plugin, "p2", map[string]any{"url": pgURL, "table": byKey, "mode": ModeUpsert, "key": []string{"id"}, "create": true,
		"columns": []string{"id integer = key", "v text = value"}})
	b := tomb(tomb(batch(1, 0, "x", "", "", "y"), 1), 2)
	b.Records[0].Key, b.Records[1].Key, b.Records[2].Key, b.Records[3].Key = []byte("1"), nil, []byte("one"), []byte("2")
	err = s.Write(ctx, b)
	if !errors.As(err, &rj) || len(rj.Records) != 2 || rj.Records[0].Index != 1 || rj.Records[1].Index != 2 ||
		!strings.Contains(rj.Records[0].Reason, `upsert key column "id" would be NULL`) || !strings.Contains(rj.Records[1].Reason, "invalid input syntax for type integer") {
		t.Errorf("tombstones without a key and with a key its type refuses: %v, want records 1 and 2 rejected saying why", err)
	}
	if got := strings.Join(query(t, "SELECT id, v FROM "+byKey+" ORDER BY id"), ","); got != "1|x,2|y" {
		t.Errorf("rows %s, want 1|x,2|y", got)
	}

	// Without columns the key comes from the value's fields.
	dm := sdktest.Sink(t, Plugin, "p3", map[string]any{"url": pgURL, "table": byField, "mode": ModeUpsert, "key": []string{"k"}})
	err = dm.Write(ctx, tomb(batch(1, 0, `{"k":"b","v":2}`, ``), 1))
	if !errors.As(err, &rj) || len(rj.Records) != 1 || rj.Records[0].Index != 1 || !strings.Contains(rj.Records[0].Reason, "without columns the upsert key comes from fields of the value") {
		t.Errorf("a tombstone with the default mapping: %v, want record 1 rejected saying why", err)
	}
}

// In insert mode a tombstone is a row whose columns from the value are
// NULL; an empty value is an empty value. Without columns it is rejected.
func TestInsertTombstoneRow(t *testing.T) {
	for _, method := range []string{MethodCopy, MethodInsert} {
		t.Run(method, func(t *testing.T) {
			_, q := schema(t)
			table := q("events")
			s := open(t, map[string]any{"table": table, "create": true, "method": method,
				"columns": []string{"k = key", "v = value", "f = value.f", "o bigint = offset"}})
			b := tomb(batch(1, 0, `{"f":"x"}`, ``), 1)
			b.Records = append(b.Records, sdk.Record{Key: []byte("k2"), Value: []byte{}, Position: sdk.Position{Partition: "t/0", Offset: 2}})
			b.Until["t/0"] = 3
			err := s.Write(ctx, b)
			var rj *sdk.Rejected
			if !errors.As(err, &rj) || len(rj.Records) != 1 || rj.Records[0].Index != 2 {
				t.Errorf("write: %v, want only the empty value (not a JSON object for value.f) rejected", err)
			}
			if got, want := strings.Join(query(t, "SELECT k, v::text, f, o FROM "+table+" ORDER BY o"), ","), `k0|{"f": "x"}|x|0,k1|NULL|NULL|1`; got != want {
				t.Errorf("rows %s, want %s", got, want)
			}
			dm := sdktest.Sink(t, Plugin, "p2", map[string]any{"url": pgURL, "table": table, "method": method})
			err = dm.Write(ctx, tomb(batch(1, 0, `{"k":"z"}`, ``), 1))
			if !errors.As(err, &rj) || len(rj.Records) != 1 || rj.Records[0].Index != 1 || !strings.Contains(rj.Records[0].Reason, "tombstone (a null value), and without columns") {
				t.Errorf("a tombstone with the default mapping: %v, want record 1 rejected saying why", err)
			}
		})
	}
}

// End-to-end, kafka → postgres (upsert keyed on the record key) in the
// connectd binary: k1 = v, then k1's tombstone (a null value) leaves no
// row for k1; k2's empty value is a row.
func TestEndToEndKafkaTombstone(t *testing.T) {
	root, err := pgtest.Root()
	if err != nil {
		t.Fatal(err)
	}
	brokers := e2e.KafkaBrokers(t, root)
	topic := fmt.Sprintf("pg-tombstone-%d", time.Now().UnixNano())
	produceTombstones(t, brokers, topic)
	_, q := schema(t)
	table := q("kv")
	dir := t.TempDir()
	hcl := fmt.Sprintf(`
pipeline "pg-tomb" {
  delivery = "exactly-once"
  source "kafka" {
    brokers          = ["%s"]
    topics           = [%q]
    starting_offsets = "earliest"
  }
  sink "postgres" {
    url     = env("PG_URL")
    table   = %q
    mode    = "upsert"
    key     = ["k"]
    create  = true
    columns = ["k = key", "v text = value"]
  }
  batch { max_records = 1 }
  checkpoint { dir = "state" }
}
`, strings.Join(brokers, `", "`), topic, table)
	if err := os.WriteFile(filepath.Join(dir, "p.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := connectd(t, dir, nil, "run", "--drain", "p.hcl"); r.Code != 0 {
		t.Fatalf("connectd run: exit %d:\n%s", r.Code, r.Stderr)
	}
	if got, want := strings.Join(query(t, "SELECT k, v FROM "+table+" ORDER BY k"), ","), "k2|NULL"; got != want {
		t.Errorf("rows %s, want %s (k1 deleted by its tombstone; k2's empty value)", got, want)
	}
}

// produceTombstones creates topic with one partition and writes k1 = v,
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
		{Time: now, Key: protocol.NewBytes([]byte("k1")), Value: protocol.NewBytes([]byte("v"))},
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
