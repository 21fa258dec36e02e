package kafka

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

// TestPartitionMatchesJava: keys land where Java's default partitioner puts
// them. The hashes are the murmur2 values Apache Kafka's own UtilsTest
// checks (org.apache.kafka.common.utils.Utils.murmur2); Java picks
// toPositive(hash) % partitions.
func TestPartitionMatchesJava(t *testing.T) {
	java := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for key, h := range java {
		for _, n := range []int{1, 3, 7, 12, 100, 1 << 16} {
			want := int((uint32(h) & 0x7fffffff) % uint32(n))
			if got := Partition([]byte(key), n); got != want {
				t.Errorf("Partition(%q, %d) = %d, Java gives %d", key, n, got, want)
			}
		}
	}
	if Partition(nil, 3) != -1 {
		t.Error("a nil key has a partition")
	}
}

// batch makes a batch of records with keys k<i> (or none when keyless) and
// values <prefix><i>.
func batch(id int64, prefix string, n int, keyless bool) sdk.Batch {
	b := sdk.Batch{ID: id, From: sdk.Offsets{"src/0": id * 1000}, Until: sdk.Offsets{"src/0": id*1000 + int64(n)}}
	for i := 0; i < n; i++ {
		r := sdk.Record{Value: []byte(fmt.Sprintf("%s%d", prefix, i)), Position: sdk.Position{Partition: "src/0", Offset: id*1000 + int64(i)}}
		if !keyless {
			r.Key = []byte(fmt.Sprintf("k%d", i))
		}
		b.Records = append(b.Records, r)
	}
	return b
}

// counts returns how many times each value is in topic.
func counts(t *testing.T, topic string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, f := range readTopic(t, topic) {
		out[string(f.value)]++
	}
	return out
}

// TestSinkWrite: key, value, headers and timestamp reach Kafka; keyed
// records land on murmur2(key) % partitions and keep their batch order
// within the partition; keyless ones are spread over the partitions.
func TestSinkWrite(t *testing.T) {
	topic := newTopic(t, 4)
	sk := openSink(t, "p", map[string]any{"topic": topic, "compression": "lz4"})
	ts := time.UnixMilli(1700000000000).UTC()
	b := batch(1, "v", 40, false)
	for i := range b.Records {
		b.Records[i].Headers = []sdk.Header{{Key: "trace", Value: []byte(fmt.Sprint(i))}}
		b.Records[i].Timestamp = ts.Add(time.Duration(i) * time.Millisecond)
	}
	keyless := batch(2, "n", 8, true)
	for _, x := range []sdk.Batch{b, keyless} {
		if err := sk.Write(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	got := readTopic(t, topic)
	if len(got) != 48 {
		t.Fatalf("topic holds %d records, want 48", len(got))
	}
	last := map[int]int{}
	spread := map[int]bool{}
	for _, f := range got {
		var i int
		if _, err := fmt.Sscanf(string(f.value), "v%d", &i); err != nil {
			spread[f.partition] = true
			if f.key != nil {
				t.Errorf("keyless record %q has key %q", f.value, f.key)
			}
			continue
		}
		if want := Partition([]byte(fmt.Sprintf("k%d", i)), 4); f.partition != want {
			t.Errorf("record %q with key %q is in partition %d, murmur2 says %d", f.value, f.key, f.partition, want)
		}
		if string(f.key) != fmt.Sprintf("k%d", i) || header(f.headers, "trace") != fmt.Sprint(i) ||
			!f.ts.Equal(ts.Add(time.Duration(i)*time.Millisecond)) {
			t.Errorf("record %q: key %q headers %v ts %v", f.value, f.key, f.headers, f.ts)
		}
		if l, ok := last[f.partition]; ok && i < l {
			t.Errorf("partition %d: v%d after v%d", f.partition, i, l)
		}
		last[f.partition] = i
	}
	if len(spread) < 4 {
		t.Errorf("8 keyless records went to partitions %v only", spread)
	}
}

// TestSinkTopicHeader: a record's header picks its topic; records without
// it go to topic; with no topic set, such a record is an error naming it.
func TestSinkTopicHeader(t *testing.T) {
	a, b := newTopic(t, 1), newTopic(t, 2)
	sk := openSink(t, "p", map[string]any{"topic": a, "topic_header": "route"})
	x := batch(1, "v", 6, false)
	for i := range x.Records {
		if i%2 == 1 {
			x.Records[i].Headers = []sdk.Header{{Key: "route", Value: []byte(b)}}
		}
	}
	if err := sk.Write(ctx, x); err != nil {
		t.Fatal(err)
	}
	if ca, cb := counts(t, a), counts(t, b); len(ca) != 3 || len(cb) != 3 || ca["v0"] != 1 || cb["v1"] != 1 {
		t.Fatalf("topic a holds %v, b holds %v", ca, cb)
	}
	only := openSink(t, "p", map[string]any{"topic_header": "route"})
	err := only.Write(ctx, x)
	if err == nil || !strings.Contains(err.Error(), "record 0") || !strings.Contains(err.Error(), "src/0@1000") || !strings.Contains(err.Error(), `"route"`) {
		t.Fatalf("Write without a topic: %v", err)
	}
	missing := openSink(t, "p", map[string]any{"topic": "connectd-test-no-such-topic"})
	if err := missing.Write(ctx, x); err == nil || !strings.Contains(err.Error(), `"connectd-test-no-such-topic"`) {
		t.Fatalf("Write to a missing topic: %v", err)
	}
}

// TestSinkDedupe: in mode "dedupe", a batch written again after part of it
// was written (a crash in the middle) ends up in Kafka exactly once; in mode
// "plain" the same sequence leaves duplicates (so the counting can see
// them).
func TestSinkDedupe(t *testing.T) {
	for _, mode := range []string{"dedupe", "plain"} {
		t.Run(mode, func(t *testing.T) {
			topic := newTopic(t, 3)
			sk := openSink(t, "pipe", map[string]any{"topic": topic, "mode": mode})
			b1 := batch(1, "a", 30, false)
			if err := sk.Write(ctx, b1); err != nil {
				t.Fatal(err)
			}
			b2 := batch(2, "b", 50, true)
			part := b2
			part.Records = b2.Records[:17] // what a sink killed mid-write left
			if err := sk.Write(ctx, part); err != nil {
				t.Fatal(err)
			}
			// A new sink process (as after the crash) gets the batch again.
			again := openSink(t, "pipe", map[string]any{"topic": topic, "mode": mode})
			b2.Replay = true
			if err := again.Write(ctx, b2); err != nil {
				t.Fatal(err)
			}
			if err := again.Write(ctx, b2); err != nil { // and once more
				t.Fatal(err)
			}
			// An older batch written again (the conformance suite's check
			// of an idempotent sink) is found behind the later one.
			b1.Replay = true
			if err := again.Write(ctx, b1); err != nil {
				t.Fatal(err)
			}
			c := counts(t, topic)
			adups := 0
			dups := 0
			for i := 0; i < 30; i++ {
				adups += c[fmt.Sprintf("a%d", i)] - 1
				if c[fmt.Sprintf("a%d", i)] != 1 && mode == "dedupe" {
					t.Errorf("a%d is in the topic %d times", i, c[fmt.Sprintf("a%d", i)])
				}
			}
			if mode == "plain" && adups != 30 {
				t.Errorf("plain mode: batch 1 written twice left %d duplicates, want 30", adups)
			}
			for i := 0; i < 50; i++ {
				n := c[fmt.Sprintf("b%d", i)]
				if n == 0 {
					t.Errorf("b%d is lost", i)
				}
				dups += n - 1
			}
			switch {
			case mode == "dedupe" && dups != 0:
				t.Errorf("dedupe mode wrote %d duplicates", dups)
			case mode == "plain" && dups != 17+50:
				t.Errorf("plain mode wrote %d duplicates, want %d", dups, 17+50)
			}
			if mode == "dedupe" {
				for _, f := range readTopic(t, topic) {
					if header(f.headers, HeaderPipeline) != "pipe" || header(f.headers, HeaderSeq) == "" ||
						!strings.HasPrefix(header(f.headers, HeaderBatch), fmt.Sprint(f.value[0]-'a'+1)+":") {
						t.Fatalf("record %q has headers %v", f.value, f.headers)
					}
				}
			}
		})
	}
}

// TestSinkDedupeIsPerRun: a batch with the same id but other ranges (the
// pipeline's checkpoint was deleted and its ids start again at 1) is not
// taken for the one already in the topic.
func TestSinkDedupeIsPerRun(t *testing.T) {
	topic := newTopic(t, 1)
	sk := openSink(t, "pipe", map[string]any{"topic": topic, "mode": "dedupe"})
	old := batch(1, "x", 5, false)
	if err := sk.Write(ctx, old); err != nil {
		t.Fatal(err)
	}
	fresh := batch(1, "x", 5, false)
	fresh.From, fresh.Until = sdk.Offsets{"src/0": 5000}, sdk.Offsets{"src/0": 5005}
	fresh.Replay = true
	if err := sk.Write(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if c := counts(t, topic); c["x0"] != 2 || c["x4"] != 2 {
		t.Fatalf("topic holds %v; the new batch 1 was skipped", c)
	}
}

// TestSinkDedupeAfterRepartition: when partitions are added between two
// attempts at a batch, keys hash elsewhere; what the first attempt wrote is
// still found, in whichever partition it is.
func TestSinkDedupeAfterRepartition(t *testing.T) {
	topic := newTopic(t, 1)
	sk := openSink(t, "pipe", map[string]any{"topic": topic, "mode": "dedupe"})
	b := batch(7, "r", 40, false)
	part := b
	part.Records = b.Records[:25]
	if err := sk.Write(ctx, part); err != nil {
		t.Fatal(err)
	}
	addPartitions(t, topic, 4)
	again := openSink(t, "pipe", map[string]any{"topic": topic, "mode": "dedupe"})
	b.Replay = true
	if err := again.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	c := counts(t, topic)
	for i := 0; i < 40; i++ {
		if n := c[fmt.Sprintf("r%d", i)]; n != 1 {
			t.Errorf("r%d is in the topic %d times", i, n)
		}
	}
}

// TestSinkList: List returns what the topic holds (the pipeline's records in
// dedupe mode).
func TestSinkList(t *testing.T) {
	topic := newTopic(t, 2)
	produce(t, topic, 0, values("foreign")...)
	for _, mode := range []string{"plain", "dedupe"} {
		sk := openSink(t, "pipe-"+mode, map[string]any{"topic": topic, "mode": mode})
		if err := sk.Write(ctx, batch(1, mode, 3, false)); err != nil {
			t.Fatal(err)
		}
	}
	sk := openSink(t, "pipe-dedupe", map[string]any{"topic": topic, "mode": "dedupe"})
	vals, err := sk.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sorted(toStrings(vals)), ","); got != "dedupe0,dedupe1,dedupe2" {
		t.Errorf("dedupe List = %s", got)
	}
	plain := openSink(t, "pipe-plain", map[string]any{"topic": topic})
	vals, err = plain.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 7 {
		t.Errorf("plain List returned %d values, want all 7", len(vals))
	}
}

func toStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// TestSinkConfigErrors: bad configuration is refused, by the spec's rules or
// by Open, as a configuration error naming the parameter; no broker is
// contacted.
func TestSinkConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "topic_header"},
		{map[string]any{"topic": "t", "mode": "exactly"}, `parameter "mode": "exactly" is not one of "plain", "dedupe"`},
		{map[string]any{"topic": "t", "compression": "brotli"}, `parameter "compression": "brotli" is not one of`},
		{map[string]any{"topic": "t", "batch_bytes": int64(10)}, `parameter "batch_bytes": 10 is outside the range 1024 to 1073741824`},
		{map[string]any{"topic": "a b"}, `parameter "topic": "a b" does not match`},
		{map[string]any{"topic": "t", "topic_partitions": 0}, `parameter "topic_partitions": 0 is less than the minimum 1`},
		{map[string]any{"topic": "t", "topic_replication": -2}, `parameter "topic_replication"`},
		{map[string]any{"topic": "t", "topic_replication": 0}, "topic_replication is 0"},
		{map[string]any{"topic": "t", "brokers": []string{"host"}}, `parameter "brokers": element 0: "host" does not match`},
		{map[string]any{"topic": "t", "brokers": []string{"a:b:9092"}}, `broker "a:b:9092" is not "host:port"`},
		{map[string]any{"topic": "t", "sasl_mechanism": "plain"}, `did you mean "PLAIN"?`},
	}
	for _, c := range cases {
		vals := map[string]any{"brokers": []string{"127.0.0.1:1"}}
		for k, v := range c.cfg {
			vals[k] = v
		}
		cfg, err := sdk.NewConfig(SinkSpec, "p", vals)
		if err == nil {
			err = (&Sink{}).Open(ctx, cfg)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !sdk.IsConfigError(err) {
			t.Errorf("config %v: error %v, want a configuration error containing %q", c.cfg, err, c.want)
		}
	}
	for _, b := range []string{"localhost:9092", "10.0.0.1:9092", "[::1]:9092", "kafka-1.example.com:19092"} {
		if _, err := sdk.NewConfig(SinkSpec, "p", map[string]any{"brokers": []string{b}, "topic": "t"}); err != nil {
			t.Errorf("broker %q: %v", b, err)
		}
	}
}
