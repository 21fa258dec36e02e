package kafka

import (
	"context"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// kafka-go has no DeleteRecords call, but its protocol package lets a
// program register a message type: these are DeleteRecords v0 and v1 (API
// key 21), which moves a partition's log start offset the way retention
// does. Both kfake and Apache Kafka serve it.

func init() {
	protocol.Register(&deleteRecordsRequest{}, &deleteRecordsResponse{})
}

type deleteRecordsRequest struct {
	Topics    []deleteRecordsRequestTopic `kafka:"min=v0,max=v1"`
	TimeoutMs int32                       `kafka:"min=v0,max=v1"`
}

type deleteRecordsRequestTopic struct {
	Name       string                          `kafka:"min=v0,max=v1"`
	Partitions []deleteRecordsRequestPartition `kafka:"min=v0,max=v1"`
}

type deleteRecordsRequestPartition struct {
	PartitionIndex int32 `kafka:"min=v0,max=v1"`
	Offset         int64 `kafka:"min=v0,max=v1"`
}

func (*deleteRecordsRequest) ApiKey() protocol.ApiKey { return protocol.DeleteRecords }

// Broker sends the request to the leader of its (single) partition.
func (r *deleteRecordsRequest) Broker(c protocol.Cluster) (protocol.Broker, error) {
	t := r.Topics[0]
	topic, ok := c.Topics[t.Name]
	if !ok {
		return protocol.Broker{}, protocol.NewErrNoTopic(t.Name)
	}
	p, ok := topic.Partitions[t.Partitions[0].PartitionIndex]
	if !ok {
		return protocol.Broker{}, protocol.NewErrNoPartition(t.Name, t.Partitions[0].PartitionIndex)
	}
	b, ok := c.Brokers[p.Leader]
	if !ok {
		return protocol.Broker{}, protocol.NewErrNoLeader(t.Name, p.ID)
	}
	return b, nil
}

type deleteRecordsResponse struct {
	ThrottleTimeMs int32                        `kafka:"min=v0,max=v1"`
	Topics         []deleteRecordsResponseTopic `kafka:"min=v0,max=v1"`
}

type deleteRecordsResponseTopic struct {
	Name       string                           `kafka:"min=v0,max=v1"`
	Partitions []deleteRecordsResponsePartition `kafka:"min=v0,max=v1"`
}

type deleteRecordsResponsePartition struct {
	PartitionIndex int32 `kafka:"min=v0,max=v1"`
	LowWatermark   int64 `kafka:"min=v0,max=v1"`
	ErrorCode      int16 `kafka:"min=v0,max=v1"`
}

func (*deleteRecordsResponse) ApiKey() protocol.ApiKey { return protocol.DeleteRecords }

// deleteRecords removes the records of topic/part before offset, as
// retention would, and checks that the partition now starts there.
func deleteRecords(t testing.TB, topic string, part int32, before int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := &deleteRecordsRequest{TimeoutMs: 10000, Topics: []deleteRecordsRequestTopic{{
		Name: topic, Partitions: []deleteRecordsRequestPartition{{PartitionIndex: part, Offset: before}},
	}}}
	m, err := adminTransport.RoundTrip(ctx, adminClient.Addr, req)
	if err != nil {
		t.Fatalf("delete records of %s/%d before %d: %v", topic, part, before, err)
	}
	resp := m.(*deleteRecordsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("delete records: odd answer %+v", resp)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LowWatermark != before {
		t.Fatalf("delete records of %s/%d before %d: %v, low watermark %d", topic, part, before, kafkago.Error(p.ErrorCode), p.LowWatermark)
	}
}
