//go:build unix

// The benchmarks read CPU time with getrusage, which Windows does not have.

package kafka

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// Benchmarks: the kafka plugins through the whole framework (the connectd
// binary, `run --drain`: host, two plugin processes, checkpoint fsync per
// batch) against a plain kafka-go loop on the same broker and data. One
// iteration moves benchRecords records of benchSize bytes; each reports
// records/s, and the CPU seconds the connectd processes (or the loop) and
// the broker used, to show what bounds them.
//
//	go test -run '^$' -bench . -benchtime 3x ./plugins/kafka

const (
	benchRecords    = 1_000_000
	benchPartitions = 4
	benchSize       = 100
	benchBatch      = 20000
)

var (
	benchOnce  sync.Once
	benchTopic string
)

// benchInput fills a topic of benchPartitions partitions with benchRecords
// records (keys "<p>-<i>", values of benchSize bytes) with the admin client,
// once per benchmark binary.
func benchInput(b *testing.B) string {
	benchOnce.Do(func() {
		benchTopic = newTopic(b, benchPartitions)
		per := benchRecords / benchPartitions
		pad := strings.Repeat("x", benchSize)
		var wg sync.WaitGroup
		for p := 0; p < benchPartitions; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				for i := 0; i < per; i += 5000 {
					recs := make([]protocol.Record, 0, 5000)
					for j := i; j < min(i+5000, per); j++ {
						id := fmt.Sprintf("%d-%d", p, j)
						v := id + pad[:benchSize-len(id)]
						recs = append(recs, protocol.Record{Time: time.Now(), Key: protocol.NewBytes([]byte(id)), Value: protocol.NewBytes([]byte(v))})
					}
					resp, err := adminClient.Produce(context.Background(), &kafkago.ProduceRequest{
						Topic: benchTopic, Partition: p, RequiredAcks: kafkago.RequireAll, Records: protocol.NewRecordReader(recs...),
					})
					if err == nil && resp.Error != nil {
						err = resp.Error
					}
					if err != nil {
						panic(err)
					}
				}
			}(p)
		}
		wg.Wait()
	})
	return benchTopic
}

// brokerCPU returns the CPU time the test broker process used so far (0
// when the broker is not one this binary started).
func brokerCPU() time.Duration {
	if brokerPid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", brokerPid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs f b.N times and reports records/s and CPU per iteration.
// setup, when not nil, runs before each iteration, outside the clock, and
// its result is passed to f; topics it returns are deleted afterwards, so
// the broker holds no more than it must.
func measure(b *testing.B, f func() (ownCPU time.Duration)) {
	measureWith(b, nil, func(string) time.Duration { return f() })
}

func measureWith(b *testing.B, setup func() string, f func(topic string) (ownCPU time.Duration)) {
	var elapsed, own, broker time.Duration
	for i := 0; i < b.N; i++ {
		var topic string
		if setup != nil {
			topic = setup()
		}
		b0 := brokerCPU()
		start := time.Now()
		own += f(topic)
		elapsed += time.Since(start)
		broker += brokerCPU() - b0
		if topic != "" {
			if _, err := adminClient.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(benchRecords)*n/elapsed.Seconds(), "records/s")
	b.ReportMetric(own.Seconds()/n, "cpu-s/op")
	b.ReportMetric(broker.Seconds()/n, "broker-cpu-s/op")
	b.ReportMetric(0, "ns/op")
}

// runConnectd runs `connectd run --drain` on a pipeline and returns the CPU
// the host and its plugin processes used.
func runConnectd(b *testing.B, hcl string) time.Duration {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "bench.hcl")
	if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := execConnectd(dir, "run", "--drain", cfg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("connectd: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf(" %d records in ", benchRecords)) {
		b.Fatalf("connectd did not move %d records:\n%s", benchRecords, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKafkaToDiscard reads the benchmark topic from the start: through
// connectd (kafka source → discard sink, exactly-once), and with a plain
// kafka-go Reader per partition (ReadMessage until the end).
func BenchmarkKafkaToDiscard(b *testing.B) {
	topic := benchInput(b)
	b.Run("connectd", func(b *testing.B) {
		measure(b, func() time.Duration {
			return runConnectd(b, fmt.Sprintf(`
pipeline "bench" {
  delivery = "exactly-once"
  source "kafka" {
    brokers          = %s
    topics           = [%q]
    starting_offsets = "earliest"
  }
  sink "discard" {}
  batch { max_records = %d }
  checkpoint { dir = "state" }
}
`, brokersHCL(), topic, benchBatch))
		})
	})
	// The framework's own ceiling on this machine: the same number of
	// records of the same size from the generator into discard.
	b.Run("connectd-generator-reference", func(b *testing.B) {
		measure(b, func() time.Duration {
			return runConnectd(b, fmt.Sprintf(`
pipeline "bench" {
  delivery = "exactly-once"
  source "generator" {
    count      = %d
    partitions = %d
    size       = %d
  }
  sink "discard" {}
  batch { max_records = %d }
  checkpoint { dir = "state" }
}
`, benchRecords, benchPartitions, benchSize, benchBatch))
		})
	})
	b.Run("kafka-go-reader", func(b *testing.B) {
		measure(b, func() time.Duration {
			c0 := selfCPU()
			var wg sync.WaitGroup
			var mu sync.Mutex
			total := 0
			for p := 0; p < benchPartitions; p++ {
				wg.Add(1)
				go func(p int) {
					defer wg.Done()
					r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 16 << 20})
					defer r.Close()
					n := 0
					for n < benchRecords/benchPartitions {
						if _, err := r.ReadMessage(context.Background()); err != nil {
							panic(err)
						}
						n++
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}(p)
			}
			wg.Wait()
			if total != benchRecords {
				b.Fatalf("read %d records", total)
			}
			return selfCPU() - c0
		})
	})
}

// BenchmarkGeneratorToKafka writes benchRecords generated records to a new
// topic: through connectd (generator → kafka sink: plain at-least-once, the
// same with read_ahead, and dedupe exactly-once), and with a plain kafka-go
// Writer (murmur2 balancer, acks=all) fed benchBatch messages per
// WriteMessages call, made by the generator in-process ("kafka-go-writer",
// the same job in one process) or before the clock starts
// ("kafka-go-writer-prebuilt"). The legs alternate within each iteration
// (each iteration starting at another leg), so that the ratios it reports
// (connectd / loop) compare runs under the same load on a shared machine.
func BenchmarkGeneratorToKafka(b *testing.B) {
	pad := strings.Repeat("x", benchSize)
	msgs := make([]kafkago.Message, benchRecords)
	for i := range msgs {
		id := fmt.Sprintf("%d-%d", i%benchPartitions, i/benchPartitions)
		msgs[i] = kafkago.Message{Key: []byte(id), Value: []byte(id + pad[:benchSize-len(id)]), Time: time.Now()}
	}
	newWriter := func(topic string) *kafkago.Writer {
		return &kafkago.Writer{
			Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{},
			Transport:    &kafkago.Transport{}, // a fresh metadata cache, as a new producer process has
			RequiredAcks: kafkago.RequireAll, BatchSize: benchBatch, BatchBytes: 900 << 10, BatchTimeout: time.Millisecond,
		}
	}
	// The loop that does connectd's job in one process: generate a batch
	// with the generator (in-process), hand it to a Writer, repeat.
	writer := func(topic string) time.Duration {
		c0 := selfCPU()
		w := newWriter(topic)
		src := sdktest.Source(b, generator.Plugin, "loop", map[string]any{"count": benchRecords, "partitions": benchPartitions, "size": benchSize})
		from := sdk.Offsets{}
		batch := make([]kafkago.Message, 0, benchBatch)
		n := 0
		for {
			rd, err := src.Read(context.Background(), from, sdk.Limits{MaxRecords: benchBatch})
			if err != nil {
				b.Fatal(err)
			}
			if len(rd.Records) == 0 {
				break
			}
			from = from.Merge(rd.Until)
			batch = batch[:0]
			for i := range rd.Records {
				r := &rd.Records[i]
				batch = append(batch, kafkago.Message{Key: r.Key, Value: r.Value, Time: r.Timestamp})
			}
			if err := w.WriteMessages(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			n += len(batch)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if n != benchRecords {
			b.Fatalf("the loop wrote %d records", n)
		}
		return selfCPU() - c0
	}
	// The same Writer fed messages made before the clock starts: Kafka's
	// side of the job alone.
	prebuilt := func(topic string) time.Duration {
		c0 := selfCPU()
		w := newWriter(topic)
		for i := 0; i < len(msgs); i += benchBatch {
			if err := w.WriteMessages(context.Background(), msgs[i:min(i+benchBatch, len(msgs))]...); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		return selfCPU() - c0
	}
	connectd := func(mode string, readAhead bool) func(string) time.Duration {
		delivery := "at-least-once"
		if mode == "dedupe" {
			delivery = "exactly-once"
		}
		return func(topic string) time.Duration {
			return runConnectd(b, fmt.Sprintf(`
pipeline "bench" {
  delivery = %q
  source "generator" {
    count      = %d
    partitions = %d
    size       = %d
  }
  sink "kafka" {
    brokers = %s
    topic   = %q
    mode    = %q
  }
  batch {
    max_records = %d
    read_ahead  = %t
  }
  checkpoint { dir = "state" }
}
`, delivery, benchRecords, benchPartitions, benchSize, brokersHCL(), topic, mode, benchBatch, readAhead))
		}
	}
	legs := []struct {
		name string
		run  func(string) time.Duration
	}{
		{"kafka-go-writer", writer},
		{"connectd-plain", connectd("plain", false)},
		{"connectd-plain-read-ahead", connectd("plain", true)},
		{"connectd-dedupe", connectd("dedupe", false)},
		{"kafka-go-writer-prebuilt", prebuilt},
	}
	elapsed := make([]time.Duration, len(legs))
	cpu := make([]time.Duration, len(legs))
	broker := make([]time.Duration, len(legs))
	for i := 0; i < b.N; i++ {
		for k := range legs {
			j := (i + k) % len(legs) // each iteration starts at another leg
			leg := legs[j]
			topic := newTopic(b, benchPartitions)
			b0 := brokerCPU()
			start := time.Now()
			cpu[j] += leg.run(topic)
			elapsed[j] += time.Since(start)
			broker[j] += brokerCPU() - b0
			if _, err := adminClient.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := float64(b.N)
	for j, leg := range legs {
		rate := float64(benchRecords) * n / elapsed[j].Seconds()
		b.ReportMetric(rate, leg.name+"-records/s")
		b.ReportMetric(cpu[j].Seconds()/n, leg.name+"-cpu-s/op")
		b.ReportMetric(broker[j].Seconds()/n, leg.name+"-broker-cpu-s/op")
		if strings.HasPrefix(leg.name, "connectd") {
			b.ReportMetric(elapsed[0].Seconds()/elapsed[j].Seconds(), leg.name+"/writer")
			b.ReportMetric(elapsed[len(legs)-1].Seconds()/elapsed[j].Seconds(), leg.name+"/writer-prebuilt")
		}
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSourceRead measures the kafka source alone, in-process (no
// plugin boundary): Read of benchBatch-record batches over the benchmark
// topic, from the start to the end.
func BenchmarkSourceRead(b *testing.B) {
	topic := benchInput(b)
	measure(b, func() time.Duration {
		c0 := selfCPU()
		src := openSource(b, "bench", sourceConfig([]string{topic}, nil))
		from := sdk.Offsets{}
		n := 0
		for n < benchRecords {
			rd, err := src.Read(context.Background(), from, lim(benchBatch))
			if err != nil {
				b.Fatal(err)
			}
			if len(rd.Records) == 0 {
				b.Fatalf("read stopped after %d records", n)
			}
			n += len(rd.Records)
			from = from.Merge(rd.Until)
		}
		return selfCPU() - c0
	})
}

// BenchmarkFetchLoop is the plainest kafka-go read loop: Client.Fetch of
// 16 MiB per request, one goroutine per partition, every record's key and
// value read.
func BenchmarkFetchLoop(b *testing.B) {
	topic := benchInput(b)
	measure(b, func() time.Duration {
		c0 := selfCPU()
		var wg sync.WaitGroup
		for p := 0; p < benchPartitions; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				next := int64(0)
				for next < benchRecords/benchPartitions {
					resp, err := adminClient.Fetch(context.Background(), &kafkago.FetchRequest{Topic: topic, Partition: p, Offset: next, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second})
					if err != nil {
						panic(err)
					}
					for {
						r, err := resp.Records.ReadRecord()
						if err != nil {
							break
						}
						if r.Offset < next {
							continue
						}
						k, _ := protocol.ReadAll(r.Key)
						v, _ := protocol.ReadAll(r.Value)
						_, _ = k, v
						next = r.Offset + 1
					}
				}
			}(p)
		}
		wg.Wait()
		return selfCPU() - c0
	})
}

// BenchmarkSinkWrite measures the kafka sink alone, in-process (no plugin
// boundary): Write of benchBatch-record batches of generator-like records
// (key = id, benchSize-byte value) to a new topic, plain and dedupe.
func BenchmarkSinkWrite(b *testing.B) {
	pad := strings.Repeat("x", benchSize)
	recs := make([]sdk.Record, benchRecords)
	for i := range recs {
		id := fmt.Sprintf("%d-%d", i%benchPartitions, i/benchPartitions)
		recs[i] = sdk.Record{Key: []byte(id), Value: []byte(id + pad[:benchSize-len(id)]), Timestamp: time.UnixMilli(int64(i)),
			Position: sdk.Position{Partition: "generator/0", Offset: int64(i)}}
	}
	for _, mode := range []string{"plain", "dedupe"} {
		b.Run(mode, func(b *testing.B) {
			measureWith(b, func() string { return newTopic(b, benchPartitions) }, func(topic string) time.Duration {
				c0 := selfCPU()
				sk := openSink(b, "bench", map[string]any{"topic": topic, "mode": mode})
				for i := 0; i < len(recs); i += benchBatch {
					j := min(i+benchBatch, len(recs))
					batch := sdk.Batch{ID: int64(i/benchBatch + 1), Records: recs[i:j],
						From: sdk.Offsets{"generator/0": int64(i)}, Until: sdk.Offsets{"generator/0": int64(j)}}
					if err := sk.Write(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
				}
				return selfCPU() - c0
			})
		})
	}
}
