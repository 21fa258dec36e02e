package kafka

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// tombstoneMsgs is k1 = v, then k1's tombstone (a null value), then k2 with
// an empty value: what a compacted topic holds for one deleted key.
var tombstoneMsgs = []msg{{key: "k1", value: "v"}, {key: "k1", null: true}, {key: "k2", value: ""}}

// checkTombstoneTopic fails unless topic holds tombstoneMsgs in order: a
// null value for the tombstone, an empty (not null) one for k2, as kafka-go
// reads them (Client.Fetch: a record's Value is nil for null only).
func checkTombstoneTopic(t *testing.T, topic string) {
	t.Helper()
	got := readTopic(t, topic)
	if len(got) != len(tombstoneMsgs) {
		t.Fatalf("topic %s holds %d records, want %d", topic, len(got), len(tombstoneMsgs))
	}
	for i, f := range got {
		m := tombstoneMsgs[i]
		if string(f.key) != m.key || f.null != m.null || (f.value == nil) != m.null || string(f.value) != m.value {
			t.Errorf("record %d: key %q value %q (null %v), want key %q value %q (null %v)", i, f.key, f.value, f.null, m.key, m.value, m.null)
		}
	}
}

// The source reads a null value as a tombstone and an empty value as an
// empty value.
func TestSourceTombstone(t *testing.T) {
	topic := newTopic(t, 1)
	produce(t, topic, 0, tombstoneMsgs...)
	src := openSource(t, "p", sourceConfig([]string{topic}, nil))
	recs, _ := sdktest.ReadAll(t, src, sdk.Offsets{}, lim(10))
	if len(recs) != 3 {
		t.Fatalf("read %d records, want 3", len(recs))
	}
	for i, r := range recs {
		m := tombstoneMsgs[i]
		if string(r.Key) != m.key || r.Tombstone != m.null || string(r.Value) != m.value {
			t.Errorf("record %d: key %q value %q tombstone %v, want key %q value %q tombstone %v", i, r.Key, r.Value, r.Tombstone, m.key, m.value, m.null)
		}
	}
}

// The sink writes a tombstone as Kafka's null value (what compaction
// deletes a key for) and an empty value, nil or not, as an empty value.
func TestSinkTombstone(t *testing.T) {
	for _, mode := range []string{"plain", "dedupe"} {
		t.Run(mode, func(t *testing.T) {
			topic := newTopic(t, 1)
			sk := openSink(t, "p", map[string]any{"topic": topic, "mode": mode})
			b := sdk.Batch{ID: 1, From: sdk.Offsets{"src/0": 0}, Until: sdk.Offsets{"src/0": 4}}
			for i, r := range []sdk.Record{
				{Key: []byte("k1"), Value: []byte("v")},
				{Key: []byte("k1"), Tombstone: true},
				{Key: []byte("k2"), Value: []byte{}},
				{Key: []byte("k3")},
			} {
				r.Position = sdk.Position{Partition: "src/0", Offset: int64(i)}
				b.Records = append(b.Records, r)
			}
			if err := sk.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
			got := readTopic(t, topic)
			want := []struct {
				key, value string
				null       bool
			}{{"k1", "v", false}, {"k1", "", true}, {"k2", "", false}, {"k3", "", false}}
			if len(got) != len(want) {
				t.Fatalf("topic holds %d records, want %d", len(got), len(want))
			}
			for i, f := range got {
				w := want[i]
				if string(f.key) != w.key || string(f.value) != w.value || f.null != w.null || (f.value == nil) != w.null {
					t.Errorf("record %d: key %q value %q (null %v), want key %q value %q (null %v)", i, f.key, f.value, f.null, w.key, w.value, w.null)
				}
			}
		})
	}
}

// End-to-end, kafka → kafka in the connectd binary: the tombstone stays a
// null value and the empty value stays empty, through the host's opaque
// path (no transforms) and through its decode and encode (a transform).
func TestEndToEndKafkaToKafkaTombstone(t *testing.T) {
	for _, tc := range []struct{ name, transform string }{
		{"opaque", ""},
		{"transformed", `transform "set" { headers = { "op" = "value == null ? 'delete' : 'upsert'" } }`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, out := newTopic(t, 1), newTopic(t, 1)
			produce(t, in, 0, tombstoneMsgs...)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "p.hcl"), fmt.Sprintf(`
pipeline "tomb" {
  delivery = "exactly-once"
  source "kafka" {
    brokers          = %[1]s
    topics           = [%[2]q]
    starting_offsets = "earliest"
  }
  %[4]s
  sink "kafka" {
    brokers = %[1]s
    topic   = %[3]q
    mode    = "dedupe"
  }
  checkpoint { dir = "state" }
}
`, brokersHCL(), in, out, tc.transform))
			if r := e2e.Run(t, connectdBin, dir, nil, "run", "--drain", "p.hcl"); r.Code != 0 {
				t.Fatalf("connectd run: exit %d:\n%s", r.Code, r.Stderr)
			}
			checkTombstoneTopic(t, out)
			if tc.transform != "" {
				got := readTopic(t, out)
				for i, want := range []string{"upsert", "delete", "upsert"} {
					if h := header(got[i].headers, "op"); h != want {
						t.Errorf("record %d: header op %q, want %q (value == null in CEL on a tombstone only)", i, h, want)
					}
				}
			}
		})
	}
}
