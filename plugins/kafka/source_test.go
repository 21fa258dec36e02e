package kafka

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
	kafkago "github.com/segmentio/kafka-go"
)

var ctx = context.Background()

func lim(n int) sdk.Limits { return sdk.Limits{MaxRecords: n, MaxWait: 200 * time.Millisecond} }

// valuesOf lists record values as strings.
func valuesOf(recs []sdk.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = string(recs[i].Value)
	}
	return out
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func TestSpecs(t *testing.T) {
	for _, s := range []sdk.Spec{SourceSpec, SinkSpec} {
		if err := s.Check(); err != nil {
			t.Error(err)
		}
		p, ok := s.Param("sasl_password")
		if !ok || !p.Secret {
			t.Errorf("%s %s: sasl_password is not a secret parameter", s.Kind, s.Name)
		}
	}
	if !SourceSpec.Has(sdk.CapReplayable) {
		t.Error("source does not declare replayable")
	}
	has := func(vals map[string]any, c sdk.Capability) bool {
		for _, x := range SinkSpec.CapabilitiesFor(vals) {
			if x == c {
				return true
			}
		}
		return false
	}
	if has(map[string]any{}, sdk.CapIdempotent) || has(map[string]any{"mode": "plain"}, sdk.CapIdempotent) {
		t.Error("sink declares idempotent in plain mode")
	}
	if !has(map[string]any{"mode": "dedupe"}, sdk.CapIdempotent) {
		t.Error("sink does not declare idempotent in dedupe mode")
	}
	if Plugin.Name() != "kafka" || Plugin.Source == nil || Plugin.Sink == nil {
		t.Error("Plugin is not the kafka source and sink")
	}
}

// TestSourceConfigErrors: bad configuration fails Open with a message that
// names the parameter; no broker is contacted.
func TestSourceConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"no topics", map[string]any{"topics": []string{}}, "topics is empty"},
		{"bad topic", map[string]any{"topics": []string{"a/b"}}, `parameter "topics": element 0: "a/b" does not match`},
		{"topic twice", map[string]any{"topics": []string{"t", "t"}}, `topic "t" is listed twice`},
		{"bad starting", map[string]any{"starting_offsets": "newest"}, `parameter "starting_offsets": "newest" does not match`},
		{"bad json", map[string]any{"starting_offsets": `{"t":{"0":"x"}}`}, "starting_offsets"},
		{"json other topic", map[string]any{"starting_offsets": `{"other":{"0":1}}`}, `topic "other"`},
		{"group without id", map[string]any{"starting_offsets": "group"}, "needs group_id"},
		{"bad loss", map[string]any{"on_data_loss": "skip"}, `parameter "on_data_loss": "skip" is not one of "fail", "earliest"`},
		{"bad broker", map[string]any{"brokers": []string{"nohostport"}}, `"nohostport"`},
		{"bad sasl", map[string]any{"sasl_mechanism": "GSSAPI"}, "GSSAPI"},
		{"sasl no user", map[string]any{"sasl_mechanism": "PLAIN"}, "sasl_username"},
		{"half a client cert", map[string]any{"tls_cert_file": "c.pem"}, "tls_key_file"},
		{"fetch too small", map[string]any{"fetch_max_bytes": 10}, `parameter "fetch_max_bytes"`},
		{"discovery 0", map[string]any{"discovery_interval": "0s"}, `parameter "discovery_interval": 0s is less than the minimum 1ms`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := map[string]any{"brokers": []string{"127.0.0.1:1"}, "topics": []string{"t"}}
			for k, v := range c.cfg {
				vals[k] = v
			}
			cfg, err := sdk.NewConfig(SourceSpec, "p", vals)
			if err == nil {
				err = (&Source{}).Open(ctx, cfg)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !sdk.IsConfigError(err) {
				t.Fatalf("error %v, want a configuration error containing %q", err, c.want)
			}
		})
	}
	// A missing file is the system's answer, not a configuration error.
	cfg, err := sdk.NewConfig(SourceSpec, "p", map[string]any{"brokers": []string{"127.0.0.1:1"}, "topics": []string{"t"}, "tls_ca_file": "/no/such/ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Source{}).Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "tls_ca_file") || sdk.IsConfigError(err) {
		t.Errorf("missing CA: %v", err)
	}
	for _, st := range []string{"earliest", " latest ", "group", `{"t":{"0":23,"1":-1}}`, "{\n  \"t\": {\"0\": 5}\n}"} {
		if _, err := sdk.NewConfig(SourceSpec, "p", map[string]any{"brokers": []string{"127.0.0.1:1"}, "topics": []string{"t"}, "starting_offsets": st}); err != nil {
			t.Errorf("starting_offsets %q: %v", st, err)
		}
	}
}

// TestSourceCarriesEverything: key, value, headers and timestamp arrive as
// produced, every record once, in offset order within each partition.
func TestSourceCarriesEverything(t *testing.T) {
	topic := newTopic(t, 3)
	ts := time.UnixMilli(1700000000123).UTC()
	want := map[string]msg{}
	for p := 0; p < 3; p++ {
		var ms []msg
		for i := 0; i < 20; i++ {
			m := msg{
				key:     fmt.Sprintf("k%d-%d", p, i),
				value:   fmt.Sprintf("v%d-%d", p, i),
				headers: []sdk.Header{{Key: "h1", Value: []byte(fmt.Sprint(i))}, {Key: "h2", Value: []byte("x")}},
				ts:      ts.Add(time.Duration(i) * time.Millisecond),
			}
			ms = append(ms, m)
			want[m.value] = m
		}
		produce(t, topic, p, ms...)
	}
	src := openSource(t, "p", sourceConfig([]string{topic}, nil))
	recs, until := sdktest.ReadAll(t, src, sdk.Offsets{}, lim(7))
	if len(recs) != 60 {
		t.Fatalf("read %d records, want 60", len(recs))
	}
	last := map[string]int64{}
	for _, r := range recs {
		m, ok := want[string(r.Value)]
		if !ok {
			t.Fatalf("unexpected record %q", r.Value)
		}
		delete(want, string(r.Value))
		if string(r.Key) != m.key || !r.Timestamp.Equal(m.ts) || len(r.Headers) != 2 ||
			r.Headers[0].Key != "h1" || !bytes.Equal(r.Headers[0].Value, m.headers[0].Value) || string(r.Headers[1].Value) != "x" {
			t.Errorf("record %s: key %q ts %v headers %v; want key %q ts %v headers %v", r.Position, r.Key, r.Timestamp, r.Headers, m.key, m.ts, m.headers)
		}
		if l, ok := last[r.Position.Partition]; ok && r.Position.Offset != l+1 {
			t.Errorf("%s follows offset %d", r.Position, l)
		}
		last[r.Position.Partition] = r.Position.Offset
		if !strings.HasPrefix(r.Position.Partition, topic+"/") {
			t.Errorf("partition name %q is not %s/<n>", r.Position.Partition, topic)
		}
	}
	for p := 0; p < 3; p++ {
		if u := until[fmt.Sprintf("%s/%d", topic, p)]; u != 20 {
			t.Errorf("until of partition %d is %d, want 20", p, u)
		}
	}
}

// TestSourceReplay: every batch replays to the same records in the same
// order, with and without a max_bytes cut, across uneven partitions.
func TestSourceReplay(t *testing.T) {
	topic := newTopic(t, 3)
	produce(t, topic, 0, seq("a", 50)...)
	produce(t, topic, 1, seq("b", 7)...)
	produce(t, topic, 2, seq("c", 23)...)
	for _, l := range []sdk.Limits{lim(13), {MaxRecords: 1000, MaxBytes: 40, MaxWait: 100 * time.Millisecond}} {
		src := openSource(t, "p", sourceConfig([]string{topic}, nil))
		rp := sdktest.Unwrap(src).(sdk.Replayer)
		from := sdk.Offsets{}
		total := 0
		for i := 0; ; i++ {
			rd, err := src.Read(ctx, from, l)
			if err != nil {
				t.Fatal(err)
			}
			if len(rd.Records) == 0 {
				break
			}
			if l.MaxBytes > 0 && len(rd.Records) > 1 {
				var size int64
				for j := range rd.Records {
					size += int64(rd.Records[j].Size())
				}
				if size > l.MaxBytes {
					t.Fatalf("batch of %d bytes, max_bytes %d", size, l.MaxBytes)
				}
			}
			bf, bu := from.Merge(rd.From), from.Merge(rd.Until)
			again, err := rp.Replay(ctx, bf, bu)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := valuesOf(again), valuesOf(rd.Records); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("batch %d: replay returned\n%v\nread returned\n%v", i, got, want)
			}
			total += len(rd.Records)
			from = bu
		}
		if total != 80 {
			t.Fatalf("read %d records, want 80", total)
		}
	}
}

// TestSourceSharesMaxRecords: a batch takes records from every partition
// with a backlog, not all from the first one.
func TestSourceSharesMaxRecords(t *testing.T) {
	topic := newTopic(t, 3)
	for p := 0; p < 3; p++ {
		produce(t, topic, p, seq(fmt.Sprintf("p%d-", p), 100)...)
	}
	src := openSource(t, "p", sourceConfig([]string{topic}, nil))
	rd, err := src.Read(ctx, sdk.Offsets{}, lim(30))
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, r := range rd.Records {
		per[r.Position.Partition]++
	}
	for p := 0; p < 3; p++ {
		if n := per[fmt.Sprintf("%s/%d", topic, p)]; n != 10 {
			t.Errorf("partition %d gave %d records of 30, want 10 (all: %v)", p, n, per)
		}
	}
}

// TestSourceStartingOffsets covers earliest, latest, Spark's JSON form and a
// checkpoint that already holds the topic (starting_offsets is then ignored).
func TestSourceStartingOffsets(t *testing.T) {
	topic := newTopic(t, 3)
	for p := 0; p < 3; p++ {
		produce(t, topic, p, seq(fmt.Sprintf("old%d-", p), 5)...)
	}
	p0, p1, p2 := topic+"/0", topic+"/1", topic+"/2"
	t.Run("earliest", func(t *testing.T) {
		src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": "earliest"}))
		recs, _ := sdktest.ReadAll(t, src, sdk.Offsets{}, lim(100))
		if len(recs) != 15 {
			t.Fatalf("earliest: %d records, want 15", len(recs))
		}
	})
	t.Run("json", func(t *testing.T) {
		js := fmt.Sprintf(`{%q:{"0":3,"1":-1}}`, topic) // partition 2 left out: earliest
		src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": js}))
		recs, until := sdktest.ReadAll(t, src, sdk.Offsets{}, lim(100))
		got := sorted(valuesOf(recs))
		want := []string{"old0-3", "old0-4", "old2-0", "old2-1", "old2-2", "old2-3", "old2-4"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("json: got %v, want %v", got, want)
		}
		if until[p1] != 5 {
			t.Errorf("json: partition 1 at -1 (latest) should have resolved to 5, until is %v", until)
		}
	})
	t.Run("json unknown partition", func(t *testing.T) {
		js := fmt.Sprintf(`{%q:{"7":0}}`, topic)
		src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": js}))
		_, err := src.Read(ctx, sdk.Offsets{}, lim(10))
		if err == nil || !strings.Contains(err.Error(), topic+"/7") {
			t.Fatalf("Read: %v, want an error naming %s/7", err, topic)
		}
	})
	t.Run("latest", func(t *testing.T) {
		src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": "latest"}))
		rd, err := src.Read(ctx, sdk.Offsets{}, lim(100))
		if err != nil || len(rd.Records) != 0 {
			t.Fatalf("latest: first read %d records, %v; want none", len(rd.Records), err)
		}
		// Records produced between two Reads that found nothing are not
		// skipped: "latest" stays where it was first resolved.
		produce(t, topic, 1, values("new1")...)
		recs, _ := sdktest.ReadAll(t, src, sdk.Offsets{}, lim(100))
		if got := valuesOf(recs); len(got) != 1 || got[0] != "new1" {
			t.Fatalf("latest: got %v, want [new1]", got)
		}
	})
	t.Run("checkpoint wins", func(t *testing.T) {
		// The checkpoint holds every partition: starting_offsets = latest is
		// not used; from is.
		src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": "latest"}))
		recs, _ := sdktest.ReadAll(t, src, sdk.Offsets{p0: 4, p1: 5, p2: 5}, lim(100))
		if got := sorted(valuesOf(recs)); strings.Join(got, ",") != "new1,old0-4" {
			t.Fatalf("got %v, want [new1 old0-4]", got)
		}
	})
	t.Run("checkpoint at -2", func(t *testing.T) {
		// An offsets reset to earliest writes -2 into the checkpoint.
		src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": "latest"}))
		recs, _ := sdktest.ReadAll(t, src, sdk.Offsets{p0: -2, p1: 6, p2: 5}, lim(100))
		if len(recs) != 5 {
			t.Fatalf("got %v, want the 5 records of partition 0", valuesOf(recs))
		}
	})
}

// TestSourceStartingGroup: starting_offsets = "group" starts where a
// consumer group committed; partitions without a commit start at earliest;
// a group with no commits at all is an error.
func TestSourceStartingGroup(t *testing.T) {
	topic := newTopic(t, 2)
	produce(t, topic, 0, seq("a", 10)...)
	produce(t, topic, 1, seq("b", 4)...)
	group := topic + "-group"
	t.Run("no commits", func(t *testing.T) {
		src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": "group", "group_id": group}))
		_, err := src.Read(ctx, sdk.Offsets{}, lim(10))
		if err == nil || !strings.Contains(err.Error(), group) || !strings.Contains(err.Error(), "no committed offset") {
			t.Fatalf("Read: %v, want an error saying group %q has no committed offset", err, group)
		}
	})
	// An existing consumer committed partition 0 up to 8 (a standalone
	// commit, as tools and other clients do).
	resp, err := adminClient.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: group, GenerationID: -1,
		Topics: map[string][]kafkago.OffsetCommit{topic: {{Partition: 0, Offset: 8}}}})
	if err != nil || resp.Topics[topic][0].Error != nil {
		t.Fatalf("commit: %v %+v", err, resp)
	}
	src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": "group", "group_id": group}))
	recs, _ := sdktest.ReadAll(t, src, sdk.Offsets{}, lim(100))
	if got := sorted(valuesOf(recs)); strings.Join(got, ",") != "a8,a9,b0,b1,b2,b3" {
		t.Fatalf("got %v, want a8 a9 and all of partition 1", got)
	}
}

// TestSourceAckCommitsToGroup: Ack publishes until to the consumer group
// with a standalone commit, readable with OffsetFetch; without group_id
// nothing is committed.
func TestSourceAckCommitsToGroup(t *testing.T) {
	topic := newTopic(t, 2)
	produce(t, topic, 0, seq("a", 6)...)
	produce(t, topic, 1, seq("b", 3)...)
	group := topic + "-lag"
	src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"group_id": group}))
	rd, err := src.Read(ctx, sdk.Offsets{}, lim(100))
	if err != nil || len(rd.Records) != 9 {
		t.Fatalf("read: %d records, %v", len(rd.Records), err)
	}
	if err := src.Ack(ctx, rd.Until); err != nil {
		t.Fatal(err)
	}
	committed := func(g string) map[int]int64 {
		resp, err := adminClient.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: g, Topics: map[string][]int{topic: {0, 1}}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]int64{}
		for _, p := range resp.Topics[topic] {
			out[p.Partition] = p.CommittedOffset
		}
		return out
	}
	if got := committed(group); got[0] != 6 || got[1] != 3 {
		t.Fatalf("group %s holds %v, want partition 0 at 6 and 1 at 3", group, got)
	}
	// Another Ack moves them on.
	if err := src.Ack(ctx, sdk.Offsets{topic + "/0": 5, topic + "/1": 3, "other-topic/0": 9}); err != nil {
		t.Fatal(err)
	}
	if got := committed(group); got[0] != 5 {
		t.Fatalf("after a second Ack the group holds %v, want partition 0 at 5", got)
	}
	quiet := openSource(t, "p", sourceConfig([]string{topic}, nil))
	if err := quiet.Ack(ctx, rd.Until); err != nil {
		t.Fatal(err)
	}
}

// TestSourcePartitionsAdded: partitions added while the source runs are
// found and read from their earliest offset (even with starting_offsets =
// latest), and a source restarted after partitions were added keeps the old
// partitions' offsets and starts the new ones at earliest.
func TestSourcePartitionsAdded(t *testing.T) {
	topic := newTopic(t, 2)
	produce(t, topic, 0, values("a0", "a1")...)
	src := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": "latest"}))
	// First batch: nothing yet (latest), then one record; the host plans it.
	if rd, err := src.Read(ctx, sdk.Offsets{}, lim(10)); err != nil || len(rd.Records) != 0 {
		t.Fatalf("first read: %v %v", valuesOf(rd.Records), err)
	}
	produce(t, topic, 1, values("b0")...)
	recs, from := sdktest.ReadAll(t, src, sdk.Offsets{}, lim(10))
	if got := valuesOf(recs); len(got) != 1 || got[0] != "b0" {
		t.Fatalf("got %v, want [b0]", got)
	}
	// Partitions 2 and 3 appear, with records produced before the source
	// could see them: they must all be read.
	addPartitions(t, topic, 4)
	produce(t, topic, 2, values("c0", "c1")...)
	produce(t, topic, 3, values("d0")...)
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		rd, err := src.Read(ctx, from, lim(10))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, valuesOf(rd.Records)...)
		from = from.Merge(rd.Until)
	}
	if strings.Join(sorted(got), ",") != "c0,c1,d0" {
		t.Fatalf("after adding partitions: got %v, want c0 c1 d0", got)
	}
	if len(from) != 4 {
		t.Errorf("until holds %v; want all 4 partitions", from)
	}

	// Restart: a new source (as after a crash) with the checkpoint holding
	// only the first two partitions, and a fifth partition added meanwhile.
	addPartitions(t, topic, 5)
	produce(t, topic, 0, values("a2")...)
	produce(t, topic, 4, values("e0")...)
	restarted := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": "latest"}))
	cp := sdk.Offsets{topic + "/0": from[topic+"/0"], topic + "/1": from[topic+"/1"]}
	recs, until := sdktest.ReadAll(t, restarted, cp, lim(10))
	// Partition 0 goes on from 2 (a2), 1 has nothing new, 2 and 3 start at
	// earliest (c0 c1 d0 again: this checkpoint never saw them), 4 too (e0).
	if got := strings.Join(sorted(valuesOf(recs)), ","); got != "a2,c0,c1,d0,e0" {
		t.Fatalf("restart: got %s, want a2,c0,c1,d0,e0", got)
	}
	if until[topic+"/0"] != 3 || until[topic+"/4"] != 1 {
		t.Errorf("restart: until %v", until)
	}
}

// TestSourceWaitsForData: an empty Read waits for records and returns as
// soon as one arrives, well before max_wait.
func TestSourceWaitsForData(t *testing.T) {
	topic := newTopic(t, 2)
	src := openSource(t, "p", sourceConfig([]string{topic}, nil))
	if _, err := src.Read(ctx, sdk.Offsets{}, lim(10)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		produce(t, topic, 1, values("late")...)
	}()
	start := time.Now()
	rd, err := src.Read(ctx, sdk.Offsets{}, sdk.Limits{MaxRecords: 10, MaxWait: 10 * time.Second})
	took := time.Since(start)
	if err != nil || len(rd.Records) != 1 {
		t.Fatalf("read %v, %v; want the late record", valuesOf(rd.Records), err)
	}
	if took > 3*time.Second {
		t.Errorf("the read took %v to see a record produced after 300ms", took)
	}
	// Nothing more: an empty Read comes back after max_wait.
	start = time.Now()
	rd, err = src.Read(ctx, rd.Until, sdk.Limits{MaxRecords: 10, MaxWait: 300 * time.Millisecond})
	if err != nil || len(rd.Records) != 0 || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("empty read: %d records, %v, after %v", len(rd.Records), err, time.Since(start))
	}
}

// TestSourceDrain: End returns every partition's end; a Read with Stop never
// passes it, and returns at once when there is nothing before it.
func TestSourceDrain(t *testing.T) {
	topic := newTopic(t, 2)
	produce(t, topic, 0, seq("a", 5)...)
	produce(t, topic, 1, seq("b", 2)...)
	src := openSource(t, "p", sourceConfig([]string{topic}, nil))
	end, err := sdktest.Unwrap(src).(sdk.Ender).End(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if end[topic+"/0"] != 5 || end[topic+"/1"] != 2 || len(end) != 2 {
		t.Fatalf("End = %v", end)
	}
	produce(t, topic, 0, values("after")...)
	l := sdk.Limits{MaxRecords: 3, MaxWait: 10 * time.Second, Stop: end}
	recs, _ := sdktest.ReadAll(t, src, sdk.Offsets{}, l)
	if len(recs) != 7 {
		t.Fatalf("drain read %v, want the 7 records before End", valuesOf(recs))
	}
	start := time.Now()
	if rd, err := src.Read(ctx, end, l); err != nil || len(rd.Records) != 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("read at stop: %v %v after %v; want nothing, at once", valuesOf(rd.Records), err, time.Since(start))
	}
}

// TestSourceDataLoss: offsets removed by DeleteRecords (what retention does)
// fail the read with the partition, the wanted and the earliest offset, or
// with on_data_loss = "earliest" the source goes on from the earliest
// offset. An offset past the end of the partition is handled the same way.
func TestSourceDataLoss(t *testing.T) {
	topic := newTopic(t, 2)
	produce(t, topic, 0, seq("a", 10)...)
	produce(t, topic, 1, seq("b", 3)...)
	deleteRecords(t, topic, 0, 6)
	p0, p1 := topic+"/0", topic+"/1"
	from := sdk.Offsets{p0: 2, p1: 0}

	failing := openSource(t, "p", sourceConfig([]string{topic}, nil))
	_, err := failing.Read(ctx, from, lim(100))
	if err == nil {
		t.Fatal("read of deleted offsets succeeded")
	}
	for _, w := range []string{p0, "offset 2", "earliest offset is 6", "on_data_loss"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	// Replaying a range that is gone fails and says so.
	_, err = sdktest.Unwrap(failing).(sdk.Replayer).Replay(ctx, sdk.Offsets{p0: 2}, sdk.Offsets{p0: 8})
	if err == nil || !strings.Contains(err.Error(), p0) || !strings.Contains(err.Error(), "offsets 6 to 10") {
		t.Errorf("replay of a deleted range: %v", err)
	}

	past := sdk.Offsets{p0: 10, p1: 50}
	_, err = failing.Read(ctx, past, lim(100))
	if err == nil || !strings.Contains(err.Error(), p1) || !strings.Contains(err.Error(), "offset 50") || !strings.Contains(err.Error(), "end 3") {
		t.Errorf("read past the end: %v", err)
	}

	going := openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"on_data_loss": "earliest"}))
	recs, until := sdktest.ReadAll(t, going, from, lim(100))
	if got := strings.Join(sorted(valuesOf(recs)), ","); got != "a6,a7,a8,a9,b0,b1,b2" {
		t.Fatalf("on_data_loss = earliest: got %s", got)
	}
	if until[p0] != 10 {
		t.Errorf("until %v", until)
	}
	rd, err := going.Read(ctx, past, lim(100))
	if err != nil || len(rd.Records) != 3 || rd.From[p1] != 0 {
		t.Errorf("on_data_loss = earliest past the end: %v, %v, from %v", valuesOf(rd.Records), err, rd.From)
	}
}

// TestSourceUnknownTopic: a topic that does not exist is an error naming it.
func TestSourceUnknownTopic(t *testing.T) {
	src := openSource(t, "p", sourceConfig([]string{"connectd-test-no-such-topic"}, nil))
	_, err := src.Read(ctx, sdk.Offsets{}, lim(10))
	if err == nil || !strings.Contains(err.Error(), `"connectd-test-no-such-topic"`) {
		t.Fatalf("Read: %v", err)
	}
}

// TestSourceUnreachable: brokers that do not answer fail a Read within
// request_timeout, with the brokers named.
func TestSourceUnreachable(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	src := openSource(t, "p", map[string]any{"brokers": []string{addr}, "topics": []string{"t"}, "request_timeout": "1s"})
	start := time.Now()
	_, err := src.Read(ctx, sdk.Offsets{}, lim(10))
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Read: %v, want an error naming %s", err, addr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	// A commit for lag tools that cannot be made is not an error of Ack.
	lag := openSource(t, "p", map[string]any{"brokers": []string{addr}, "topics": []string{"t"}, "request_timeout": "1s", "group_id": "g"})
	start = time.Now()
	if err := lag.Ack(ctx, sdk.Offsets{"t/0": 5}); err != nil {
		t.Errorf("Ack: %v; a failed group commit must only be logged", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Ack took %v", d)
	}
}

// TestSourceFreshPipelineGainsPartition: a partition added before a new
// pipeline's first batch starts at earliest, whatever starting_offsets says
// about the others, and is no error.
func TestSourceFreshPipelineGainsPartition(t *testing.T) {
	topic := newTopic(t, 1)
	produce(t, topic, 0, values("a0", "a1")...)
	group := topic + "-g"
	resp, err := adminClient.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: group, GenerationID: -1,
		Topics: map[string][]kafkago.OffsetCommit{topic: {{Partition: 0, Offset: 2}}}})
	if err != nil || resp.Topics[topic][0].Error != nil {
		t.Fatalf("commit: %v %+v", err, resp)
	}
	srcs := map[string]sdk.Source{
		"json":  openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": fmt.Sprintf(`{%q:{"0":2}}`, topic)})),
		"group": openSource(t, "p", sourceConfig([]string{topic}, map[string]any{"starting_offsets": "group", "group_id": group})),
	}
	for name, src := range srcs {
		if rd, err := src.Read(ctx, sdk.Offsets{}, lim(10)); err != nil || len(rd.Records) != 0 {
			t.Fatalf("%s: first read %v, %v; want nothing", name, valuesOf(rd.Records), err)
		}
	}
	addPartitions(t, topic, 2)
	produce(t, topic, 1, values("b0")...)
	for name, src := range srcs {
		var got []string
		for deadline := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
			rd, err := src.Read(ctx, sdk.Offsets{}, lim(10))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got = valuesOf(rd.Records)
		}
		if strings.Join(got, ",") != "b0" {
			t.Errorf("%s: got %v, want [b0]", name, got)
		}
	}
}
