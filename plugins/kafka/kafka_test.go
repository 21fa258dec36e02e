package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// The tests talk to a real Kafka-protocol broker: the one KAFKA_BROKERS
// names (host:port[,host:port…], a real Apache Kafka works unchanged), or
// else a kfake broker that TestMain builds from testenv/kafka and starts on
// 127.0.0.1, and stops at the end. TestMain also builds the connectd binary
// for the end-to-end tests.

var (
	brokers     []string
	connectdBin string // the connectd binary
	testenvBin  string // testenv/kafka, for tests that need a broker of their own
	adminClient *kafkago.Client
	// adminTransport is adminClient's transport, for requests kafka-go has no call for.
	adminTransport = &kafkago.Transport{MetadataTTL: 250 * time.Millisecond}
	// brokerPid is the pid of the broker TestMain started (0: KAFKA_BROKERS).
	brokerPid int
	// replication is the replication factor of test topics (KAFKA_REPLICATION, default 1).
	replication = 1
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "connectd-kafka-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	connectdBin = filepath.Join(dir, "connectd")
	testenvBin = filepath.Join(dir, "kafka-testenv")
	// Two builds at once; the binaries are not built with -race (they are
	// the programs under test, run as a user would).
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, b := range []struct{ dir, out, pkg string }{
		{root, connectdBin, "./cmd/connectd"},
		{filepath.Join(root, "testenv"), testenvBin, "./kafka"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
			cmd.Dir = b.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s in %s: %v\n%s", b.pkg, b.dir, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if r := os.Getenv("KAFKA_REPLICATION"); r != "" {
		fmt.Sscan(r, &replication)
	}
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		brokers = strings.Split(env, ",")
	} else {
		b, stop, pid, err := startBrokerPid(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stop()
		brokers = b
		brokerPid = pid
	}
	adminClient = &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second, Transport: adminTransport}
	return m.Run()
}

// startBroker starts testenv/kafka with extra flags; it dies with this
// process. It returns the brokers and a function that stops it. Tests in
// parallel may call it.
func startBroker(dir string, flags ...string) ([]string, func(), error) {
	addrs, stop, _, err := startBrokerPid(dir, flags...)
	return addrs, stop, err
}

// startBrokerPid is startBroker that also returns the broker's pid.
func startBrokerPid(dir string, flags ...string) ([]string, func(), int, error) {
	b, err := e2e.StartKafka(testenvBin, dir, flags...)
	if err != nil {
		return nil, nil, 0, err
	}
	return b.Addrs, b.Stop, b.Pid, nil
}

// execConnectd prepares the connectd binary to run in dir.
func execConnectd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(connectdBin, args...)
	cmd.Dir = dir
	return cmd
}

var nameChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// newTopic creates a topic of parts partitions with a name unique to the
// test, and waits until every partition has a leader that answers.
func newTopic(t testing.TB, parts int) string {
	t.Helper()
	name := nameChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 100 {
		name = name[:100]
	}
	topic := fmt.Sprintf("connectd-test-%s-%06d", name, rand.Intn(1000000))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adminClient.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: topic, NumPartitions: parts, ReplicationFactor: replication,
	}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	waitPartitions(t, topic, parts)
	return topic
}

// addPartitions grows topic to total partitions.
func addPartitions(t testing.TB, topic string, total int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adminClient.CreatePartitions(ctx, &kafkago.CreatePartitionsRequest{Topics: []kafkago.TopicPartitionsConfig{{Name: topic, Count: int32(total)}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("add partitions to %s: %v", topic, err)
	}
	waitPartitions(t, topic, total)
}

// waitPartitions waits until the admin client sees parts partitions of topic
// and each answers a list offsets request.
func waitPartitions(t testing.TB, topic string, parts int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := offsetsOf(topic, parts)
		if err == nil {
			var md *kafkago.MetadataResponse
			md, err = adminClient.Metadata(context.Background(), &kafkago.MetadataRequest{Topics: []string{topic}})
			if err == nil && (len(md.Topics) != 1 || len(md.Topics[0].Partitions) != parts) {
				err = fmt.Errorf("metadata does not show %d partitions yet", parts)
			}
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: %d partitions not ready after 30s: %v", topic, parts, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// offsetsOf returns the first and last offset of each partition of topic.
func offsetsOf(topic string, parts int) ([][2]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make([][2]int64, parts)
	for _, ts := range []int64{kafkago.FirstOffset, kafkago.LastOffset} {
		req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
		for p := 0; p < parts; p++ {
			req.Topics[topic] = append(req.Topics[topic], kafkago.OffsetRequest{Partition: p, Timestamp: ts})
		}
		resp, err := adminClient.ListOffsets(ctx, req)
		if err != nil {
			return nil, err
		}
		if len(resp.Topics[topic]) != parts {
			return nil, fmt.Errorf("%d of %d partitions answered", len(resp.Topics[topic]), parts)
		}
		for _, po := range resp.Topics[topic] {
			if po.Error != nil {
				return nil, po.Error
			}
			if ts == kafkago.FirstOffset {
				out[po.Partition][0] = po.FirstOffset
			} else {
				out[po.Partition][1] = po.LastOffset
			}
		}
	}
	return out, nil
}

// msg is a record to produce in a test.
type msg struct {
	key, value string
	null       bool // the value is null (a tombstone); value is ignored
	headers    []sdk.Header
	ts         time.Time
}

// produce writes msgs to one partition with the admin client (not with the
// code under test) and returns the offset of the first.
func produce(t testing.TB, topic string, part int, msgs ...msg) int64 {
	t.Helper()
	recs := make([]protocol.Record, len(msgs))
	for i, m := range msgs {
		r := protocol.Record{Time: m.ts, Value: protocol.NewBytes([]byte(m.value))}
		if m.null {
			r.Value = nil
		}
		if r.Time.IsZero() {
			r.Time = time.Now()
		}
		if m.key != "" {
			r.Key = protocol.NewBytes([]byte(m.key))
		}
		for _, h := range m.headers {
			r.Headers = append(r.Headers, protocol.Header{Key: h.Key, Value: h.Value})
		}
		recs[i] = r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adminClient.Produce(ctx, &kafkago.ProduceRequest{
		Topic: topic, Partition: part, RequiredAcks: kafkago.RequireAll, Records: protocol.NewRecordReader(recs...),
	})
	if err == nil && resp.Error != nil {
		err = resp.Error
	}
	if err != nil {
		t.Fatalf("produce %d records to %s/%d: %v", len(msgs), topic, part, err)
	}
	return resp.BaseOffset
}

// values makes msgs with the given values.
func values(vs ...string) []msg {
	out := make([]msg, len(vs))
	for i, v := range vs {
		out[i] = msg{value: v}
	}
	return out
}

// seq makes n msgs with values prefix0 … prefix<n-1>.
func seq(prefix string, n int) []msg {
	out := make([]msg, n)
	for i := range out {
		out[i] = msg{value: fmt.Sprintf("%s%d", prefix, i)}
	}
	return out
}

// fetched is a record read back from Kafka by readTopic.
type fetched struct {
	partition int
	offset    int64
	key       []byte
	value     []byte
	null      bool // the value is null (a tombstone), not empty
	headers   []kafkago.Header
	ts        time.Time
}

// readTopic reads every record of every partition of topic with kafka-go's
// own Client.Fetch (not with the code under test).
func readTopic(t testing.TB, topic string) []fetched {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	md, err := adminClient.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	parts := len(md.Topics[0].Partitions)
	offs, err := offsetsOf(topic, parts)
	if err != nil {
		t.Fatalf("offsets of %s: %v", topic, err)
	}
	var out []fetched
	for p := 0; p < parts; p++ {
		next := offs[p][0]
		for next < offs[p][1] {
			resp, err := adminClient.Fetch(ctx, &kafkago.FetchRequest{Topic: topic, Partition: p, Offset: next, MinBytes: 1, MaxBytes: 4 << 20, MaxWait: time.Second})
			if err == nil && resp.Error != nil {
				err = resp.Error
			}
			if err != nil {
				t.Fatalf("fetch %s/%d at %d: %v", topic, p, next, err)
			}
			for {
				r, err := resp.Records.ReadRecord()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("read %s/%d: %v", topic, p, err)
				}
				if r.Offset < next {
					continue
				}
				f := fetched{partition: p, offset: r.Offset, ts: r.Time, null: r.Value == nil}
				if r.Key != nil {
					f.key, _ = protocol.ReadAll(r.Key)
				}
				if r.Value != nil {
					f.value, _ = protocol.ReadAll(r.Value)
				}
				for _, h := range r.Headers {
					f.headers = append(f.headers, kafkago.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)})
				}
				out = append(out, f)
				next = r.Offset + 1
			}
		}
	}
	return out
}

func header(hs []kafkago.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// sourceConfig is a source configuration for topics with extra parameters.
func sourceConfig(topics []string, extra map[string]any) map[string]any {
	cfg := map[string]any{"brokers": brokers, "topics": topics, "starting_offsets": "earliest", "discovery_interval": "100ms"}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// openSource opens a kafka source in-process.
func openSource(t testing.TB, pipeline string, cfg map[string]any) sdk.Source {
	t.Helper()
	return sdktest.Source(t, Plugin, pipeline, cfg)
}

// openSink opens a kafka sink in-process.
func openSink(t testing.TB, pipeline string, cfg map[string]any) *Sink {
	t.Helper()
	all := map[string]any{"brokers": brokers}
	for k, v := range cfg {
		all[k] = v
	}
	return sdktest.UnwrapSink(sdktest.Sink(t, Plugin, pipeline, all)).(*Sink)
}

// freePort returns a TCP port nobody listens on now.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lines reads a file's lines.
func lines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
