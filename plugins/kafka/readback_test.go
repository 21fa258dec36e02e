package kafka_test

import (
	"context"
	"fmt"
	"time"

	"github.com/connectd/connectd/conformance"
	kafkago "github.com/segmentio/kafka-go"
)

// topicReader is the suite's read-back of a kafka sink (conformance.Reader):
// it reads every record of the pipeline's output topic, named by topic from
// the pipeline's name, with kafka-go (a connection to each partition's
// leader, from the first offset to the last), not with the plugin, and
// returns their values, one per stored record.
func topicReader(brokers []string, topic func(cell string) string) conformance.Reader {
	return func(ctx context.Context, p conformance.Pipeline) ([][]byte, error) {
		name := topic(p.Name)
		addr := brokers[0]
		conn, err := kafkago.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		parts, err := conn.ReadPartitions(name)
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("partitions of topic %q: %w", name, err)
		}
		var out [][]byte
		for _, part := range parts {
			vals, err := readPartition(ctx, addr, name, part.ID)
			if err != nil {
				return nil, fmt.Errorf("topic %q partition %d: %w", name, part.ID, err)
			}
			out = append(out, vals...)
		}
		return out, nil
	}
}

// readPartition reads one partition from its first offset to its last,
// with fetches over a connection to its leader.
func readPartition(ctx context.Context, addr, topic string, part int) ([][]byte, error) {
	conn, err := kafkago.DialLeader(ctx, "tcp", addr, topic, part)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for next := first; next < last; {
		if _, err := conn.Seek(next, kafkago.SeekAbsolute); err != nil {
			return nil, err
		}
		b := conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 200 * time.Millisecond})
		n := 0
		for {
			m, err := b.ReadMessage()
			if err != nil {
				break
			}
			if m.Offset >= next {
				out = append(out, m.Value)
				next, n = m.Offset+1, n+1
			}
		}
		if err := b.Close(); err != nil {
			return nil, fmt.Errorf("fetch at %d of [%d, %d): %w", next, first, last, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("fetch at %d of [%d, %d) returned nothing", next, first, last)
		}
	}
	return out, nil
}
