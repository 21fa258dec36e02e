package sdk

import (
	"strings"
	"testing"

	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"google.golang.org/protobuf/proto"
)

// A tombstone (null value) and an empty value must stay apart on the wire,
// in both directions: the encoder's bytes read by the generated code, and
// the generated code's bytes read by the decoder.
func TestTombstoneRoundTrip(t *testing.T) {
	recs := []Record{
		{Key: []byte("k1"), Value: []byte("v"), Position: Position{Partition: "t/0", Offset: 0}},
		{Key: []byte("k1"), Tombstone: true, Position: Position{Partition: "t/0", Offset: 1}},
		{Key: []byte("k2"), Value: []byte{}, Position: Position{Partition: "t/0", Offset: 2}},
		{Key: []byte("k3"), Position: Position{Partition: "t/0", Offset: 3}},
		{Tombstone: true, Position: Position{Partition: "t/0", Offset: 4, Index: 2}},
	}
	chunks, _, err := EncodeChunks(recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 1 {
		t.Fatalf("%d chunks, want 1", len(chunks))
	}
	var c pb.Chunk
	if err := proto.Unmarshal(chunks[0], &c); err != nil {
		t.Fatalf("the generated code cannot read the encoder's chunk: %v", err)
	}
	for i, m := range c.Records {
		if m.Tombstone != recs[i].Tombstone {
			t.Errorf("record %d: the generated code reads tombstone %v, want %v", i, m.Tombstone, recs[i].Tombstone)
		}
	}
	b, err := proto.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		chunk []byte
	}{{"encoder", chunks[0]}, {"generated code", b}} {
		got, err := DecodeChunks(nil, [][]byte{tc.chunk})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != len(recs) {
			t.Fatalf("%s: %d records, want %d", tc.name, len(got), len(recs))
		}
		for i := range got {
			if err := sameRecord(got[i], recs[i]); err != nil {
				t.Errorf("%s: record %d: %v", tc.name, i, err)
			}
		}
	}
}

// A record that says null and carries a value is refused on both sides,
// never sent or read as one or the other.
func TestTombstoneWithValueRefused(t *testing.T) {
	_, _, err := EncodeChunks([]Record{{Key: []byte("k"), Value: []byte("v"), Tombstone: true, Position: Position{Partition: "t/0", Offset: 7}}})
	if err == nil || !strings.Contains(err.Error(), "t/0@7") || !strings.Contains(err.Error(), "tombstone") {
		t.Fatalf("encoding a tombstone with a value: error %v, want one naming t/0@7 and the tombstone", err)
	}
	b, err := proto.Marshal(&pb.Chunk{Partitions: []string{"t/0"}, Records: []*pb.Record{{Offset: 7, Value: []byte("v"), Tombstone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeChunks(nil, [][]byte{b}); err == nil || !strings.Contains(err.Error(), "tombstone") {
		t.Fatalf("decoding a tombstone with a value: error %v, want one about the tombstone", err)
	}
}
