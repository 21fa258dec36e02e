package sdk

import (
	"bytes"
	"strings"
	"testing"

	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The decoder must read any valid encoding of a Chunk, not only the
// encoder's: a non-Go plugin's protobuf library may order fields otherwise,
// repeat scalars or carry fields a newer connector.v1 adds.
func TestDecodeAnyValidEncoding(t *testing.T) {
	var b []byte
	// A record before the partitions, with its fields reversed, a repeated
	// offset (the last wins), and unknown fields of every wire type.
	var rec []byte
	rec = protowire.AppendTag(rec, 99, protowire.BytesType)
	rec = protowire.AppendString(rec, "unknown")
	rec = protowire.AppendTag(rec, recTimestamp, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 7)
	var hdr []byte
	hdr = protowire.AppendTag(hdr, hdrValue, protowire.BytesType)
	hdr = protowire.AppendBytes(hdr, []byte("hv"))
	hdr = protowire.AppendTag(hdr, 7, protowire.Fixed32Type)
	hdr = protowire.AppendFixed32(hdr, 1)
	hdr = protowire.AppendTag(hdr, hdrKey, protowire.BytesType)
	hdr = protowire.AppendString(hdr, "hk")
	rec = protowire.AppendTag(rec, recHeaders, protowire.BytesType)
	rec = protowire.AppendBytes(rec, hdr)
	rec = protowire.AppendTag(rec, recValue, protowire.BytesType)
	rec = protowire.AppendBytes(rec, []byte("value"))
	rec = protowire.AppendTag(rec, recKey, protowire.BytesType)
	rec = protowire.AppendBytes(rec, []byte("key"))
	rec = protowire.AppendTag(rec, recOffset, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 1)
	rec = protowire.AppendTag(rec, recOffset, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 42)
	rec = protowire.AppendTag(rec, 12, protowire.Fixed64Type)
	rec = protowire.AppendFixed64(rec, 1)
	rec = protowire.AppendTag(rec, recPartition, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 1)
	b = protowire.AppendTag(b, chunkRecords, protowire.BytesType)
	b = protowire.AppendBytes(b, rec)
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, 3)
	b = protowire.AppendTag(b, chunkPartitions, protowire.BytesType)
	b = protowire.AppendString(b, "a/0")
	b = protowire.AppendTag(b, chunkPartitions, protowire.BytesType)
	b = protowire.AppendString(b, "b/0")
	// An empty record: partition 0, offset 0, nothing else.
	b = protowire.AppendTag(b, chunkRecords, protowire.BytesType)
	b = protowire.AppendBytes(b, nil)

	var want pb.Chunk
	if err := proto.Unmarshal(b, &want); err != nil {
		t.Fatalf("the test's chunk is not valid: %v", err)
	}
	got, err := decodeBytes(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	viaPB, err := decode(nil, &want)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(viaPB) != 2 {
		t.Fatalf("decoded %d and %d records, want 2", len(got), len(viaPB))
	}
	for i := range got {
		if err := sameRecord(got[i], viaPB[i]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	r := got[0]
	if r.Position != (Position{Partition: "b/0", Offset: 42}) || string(r.Key) != "key" || string(r.Value) != "value" ||
		r.Timestamp.UnixNano() != 7 || len(r.Headers) != 1 || r.Headers[0].Key != "hk" || string(r.Headers[0].Value) != "hv" {
		t.Fatalf("record 0 = %+v", r)
	}
	if got[1].Position != (Position{Partition: "a/0", Offset: 0}) || got[1].Key != nil || got[1].Value != nil || got[1].Headers != nil || !got[1].Timestamp.IsZero() {
		t.Fatalf("record 1 = %+v", got[1])
	}
}

// A sink may append to a record's key or value: that must not overwrite the
// bytes that follow in the chunk.
func TestDecodedSlicesAreCapped(t *testing.T) {
	chunks := [][]byte{}
	var e encoder
	recs := []Record{
		{Key: []byte("k1"), Value: []byte("v1"), Headers: []Header{{Key: "h", Value: []byte("x")}}, Position: Position{Partition: "t/0", Offset: 0}},
		{Key: []byte("k2"), Value: []byte("v2"), Headers: []Header{{Key: "h", Value: []byte("y")}}, Position: Position{Partition: "t/0", Offset: 1}},
	}
	if err := e.add(recs, func(b []byte) error { chunks = append(chunks, bytes.Clone(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	chunks = append(chunks, bytes.Clone(e.finish()))
	got, err := DecodeChunks(nil, chunks)
	if err != nil || len(got) != 2 {
		t.Fatalf("DecodeChunks = %d records, %v", len(got), err)
	}
	_ = append(got[0].Key, "XXXXXXXX"...)
	_ = append(got[0].Value, "XXXXXXXX"...)
	_ = append(got[0].Headers, Header{Key: "zz"})
	_ = append(got[0].Headers[0].Value, "XXXXXXXX"...)
	for i := range recs {
		if err := sameRecord(got[i], recs[i]); err != nil {
			t.Fatalf("record %d after appends: %v", i, err)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	good, err := proto.Marshal(&pb.Chunk{Partitions: []string{"t/0"}, Records: []*pb.Record{{Key: []byte("k"), Value: []byte("v"), Headers: []*pb.Header{{Key: "h"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n < len(good); n++ {
		if _, err := DecodeChunks(nil, [][]byte{good[:n]}); err == nil {
			// A cut at a field boundary of the top level is a valid, shorter chunk.
			var c pb.Chunk
			if proto.Unmarshal(good[:n], &c) != nil {
				t.Errorf("a chunk cut at %d of %d bytes decoded without error", n, len(good))
			}
		}
	}
	wrongType := protowire.AppendTag(nil, chunkRecords, protowire.VarintType)
	wrongType = protowire.AppendVarint(wrongType, 1)
	if _, err := DecodeChunks(nil, [][]byte{wrongType}); err == nil {
		t.Error("records as a varint decoded without error")
	}
	bad := protowire.AppendTag(nil, chunkPartitions, protowire.BytesType)
	bad = protowire.AppendString(bad, "\xff")
	if _, err := DecodeChunks(nil, [][]byte{bad}); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("a partition that is not UTF-8: %v", err)
	}
}

func TestEncoderRefusesInvalidUTF8(t *testing.T) {
	for _, r := range []Record{
		{Position: Position{Partition: "t/\xff", Offset: 0}},
		{Position: Position{Partition: "t/0", Offset: 0}, Headers: []Header{{Key: "\xfe"}}},
	} {
		var e encoder
		if err := e.add([]Record{r}, func([]byte) error { return nil }); err == nil || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("add(%+v) = %v, want a UTF-8 error", r, err)
		}
		if _, err := proto.Marshal(&pb.Chunk{Partitions: []string{r.Position.Partition}, Records: []*pb.Record{{Headers: []*pb.Header{{Key: "\xfe"}}}}}); err == nil {
			t.Error("proto.Marshal accepts what the encoder refuses")
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	recs := benchRecords(20000)
	var e encoder
	b.ReportAllocs()
	b.SetBytes(100 * 20000)
	for b.Loop() {
		if err := e.add(recs, func([]byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
		e.finish()
		e.reset()
	}
}

func BenchmarkDecode(b *testing.B) {
	recs := benchRecords(20000)
	var chunks [][]byte
	var e encoder
	flush := func(c []byte) error { chunks = append(chunks, bytes.Clone(c)); return nil }
	if err := e.add(recs, flush); err != nil {
		b.Fatal(err)
	}
	_ = flush(e.finish())
	b.ReportAllocs()
	b.SetBytes(100 * 20000)
	for b.Loop() {
		got, err := DecodeChunks(nil, chunks)
		if err != nil || len(got) != len(recs) {
			b.Fatal(len(got), err)
		}
	}
}

func benchRecords(n int) []Record {
	recs := make([]Record, n)
	parts := []string{"generator/0", "generator/1", "generator/2", "generator/3"}
	for i := range recs {
		v := bytes.Repeat([]byte{'a'}, 100)
		recs[i] = Record{Key: v[:10], Value: v, Position: Position{Partition: parts[i%4], Offset: int64(i / 4)}}
		recs[i].Timestamp = recs[i].Timestamp.AddDate(2000, 0, i)
	}
	return recs
}
