package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/protocol"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// encodeAll runs records through the encoder as sendRecords does: flushed
// chunks, then what is left in the current chunk. Each encoded chunk is
// parsed by the generated code (the wire format is connector.v1's) and by
// the sdk's decoder, which must agree.
func encodeAll(t *testing.T, batches ...[]Record) []*pb.Chunk {
	t.Helper()
	var chunks []*pb.Chunk
	flush := func(b []byte) error {
		var c pb.Chunk
		if err := proto.Unmarshal(b, &c); err != nil {
			t.Fatalf("the encoder's chunk does not parse as connector.v1 Chunk: %v", err)
		}
		direct, err := decodeBytes(nil, b)
		if err != nil {
			t.Fatalf("decode the encoder's bytes: %v", err)
		}
		viaPB, err := decode(nil, &c)
		if err != nil {
			t.Fatalf("decode proto.Marshal's bytes: %v", err)
		}
		if len(direct) != len(viaPB) {
			t.Fatalf("decoded %d records from the encoder's bytes, %d from proto.Marshal's", len(direct), len(viaPB))
		}
		for i := range direct {
			if err := sameRecord(direct[i], viaPB[i]); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		chunks = append(chunks, &c)
		return nil
	}
	var e encoder
	for _, b := range batches {
		if err := e.add(b, flush); err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	if c := e.finish(); c != nil {
		if err := flush(c); err != nil {
			t.Fatal(err)
		}
	}
	return chunks
}

// decodeBytes decodes one encoded chunk as the sink does.
func decodeBytes(dst []Record, b []byte) ([]Record, error) {
	s, err := scanChunk(b)
	if err != nil {
		return dst, err
	}
	return decodeChunk(dst, b, s)
}

// decode decodes a chunk built with the generated code, after proto.Marshal.
func decode(dst []Record, c *pb.Chunk) ([]Record, error) {
	b, err := proto.Marshal(c)
	if err != nil {
		return dst, err
	}
	return decodeBytes(dst, b)
}

// overTheWire marshals and unmarshals a chunk as gRPC would.
func overTheWire(t *testing.T, c *pb.Chunk) *pb.Chunk {
	t.Helper()
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out pb.Chunk
	if err := proto.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return &out
}

func sameRecord(a, b Record) error {
	switch {
	case a.Position != b.Position:
		return fmt.Errorf("position %s, want %s", a.Position, b.Position)
	case !bytes.Equal(a.Key, b.Key):
		return fmt.Errorf("key %q, want %q", a.Key, b.Key)
	case !bytes.Equal(a.Value, b.Value):
		return fmt.Errorf("value of %d bytes, want %d", len(a.Value), len(b.Value))
	case a.Tombstone != b.Tombstone:
		return fmt.Errorf("tombstone %v, want %v", a.Tombstone, b.Tombstone)
	case a.Timestamp.IsZero() != b.Timestamp.IsZero() || !a.Timestamp.Equal(b.Timestamp):
		return fmt.Errorf("timestamp %v, want %v", a.Timestamp, b.Timestamp)
	case len(a.Headers) != len(b.Headers):
		return fmt.Errorf("%d headers, want %d", len(a.Headers), len(b.Headers))
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return fmt.Errorf("header %d = %q:%q, want %q:%q", i, a.Headers[i].Key, a.Headers[i].Value, b.Headers[i].Key, b.Headers[i].Value)
		}
	}
	return nil
}

func TestEncoderDecodeRoundTrip(t *testing.T) {
	ts := time.Date(2026, 1, 2, 15, 4, 5, 123456789, time.FixedZone("X", 3600))
	big := bytes.Repeat([]byte("v"), 300<<10)
	many := make([]Record, 0, 20000)
	for i := 0; i < 20000; i++ {
		many = append(many, Record{
			Key:      []byte(fmt.Sprintf("k%d", i)),
			Value:    bytes.Repeat([]byte{byte('a' + i%26)}, 100),
			Position: Position{Partition: fmt.Sprintf("t/%d", i%3), Offset: int64(i / 3)},
		})
	}
	bigs := make([]Record, 10)
	for i := range bigs {
		bigs[i] = Record{Value: big, Position: Position{Partition: fmt.Sprintf("f/%d", i%2), Offset: int64(i)}}
	}
	tests := []struct {
		name       string
		recs       []Record
		minChunks  int
		maxChunks  int
		checkSplit bool
	}{
		{"none", nil, 0, 0, false},
		{"one plain", []Record{{Value: []byte("x"), Position: Position{Partition: "t/0", Offset: 0}}}, 1, 1, false},
		{"keys values headers timestamps", []Record{
			{Key: []byte("k"), Value: []byte("v"), Timestamp: ts, Position: Position{Partition: "t/0", Offset: 5},
				Headers: []Header{{Key: "a", Value: []byte("1")}, {Key: "b"}, {Key: "a", Value: []byte("2")}}},
			{Key: nil, Value: nil, Position: Position{Partition: "t/1", Offset: 0}},
			{Value: []byte{0, 1, 2, 255}, Timestamp: time.Unix(0, 1), Position: Position{Partition: "./a.txt", Offset: 1 << 40}},
			{Key: []byte("k2"), Timestamp: time.Unix(-5, 0), Position: Position{Partition: "t/0", Offset: 6}},
		}, 1, 1, false},
		{"several partitions interleaved", many, 2, 10, true},
		{"large records", bigs, 3, 4, true},
		{"one record larger than a chunk", []Record{
			{Value: bytes.Repeat([]byte("z"), protocol.ChunkBytes+1), Position: Position{Partition: "t/0", Offset: 0}},
			{Value: []byte("small"), Position: Position{Partition: "t/0", Offset: 1}},
		}, 2, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := encodeAll(t, tt.recs)
			if len(chunks) < tt.minChunks || len(chunks) > tt.maxChunks {
				t.Fatalf("%d chunks, want %d to %d", len(chunks), tt.minChunks, tt.maxChunks)
			}
			var got []Record
			for i, c := range chunks {
				if tt.checkSplit && i < len(chunks)-1 {
					size := 0
					for _, m := range c.Records {
						size += len(m.Key) + len(m.Value)
					}
					if size > protocol.ChunkBytes+len(c.Records[len(c.Records)-1].Value)+len(c.Records[len(c.Records)-1].Key) {
						t.Errorf("chunk %d holds %d bytes, more than one record past ChunkBytes", i, size)
					}
					if size+16*len(c.Records) < protocol.ChunkBytes {
						t.Errorf("chunk %d flushed at %d bytes, below ChunkBytes", i, size)
					}
				}
				// Every chunk names only the partitions it uses, each once.
				seen := map[string]bool{}
				for _, p := range c.Partitions {
					if seen[p] {
						t.Errorf("chunk %d names partition %q twice", i, p)
					}
					seen[p] = true
				}
				used := map[uint32]bool{}
				for _, m := range c.Records {
					used[m.Partition] = true
				}
				if len(used) != len(c.Partitions) {
					t.Errorf("chunk %d names %d partitions, uses %d", i, len(c.Partitions), len(used))
				}
				var err error
				if got, err = decode(got, overTheWire(t, c)); err != nil {
					t.Fatalf("decode chunk %d: %v", i, err)
				}
			}
			if len(got) != len(tt.recs) {
				t.Fatalf("decoded %d records, want %d", len(got), len(tt.recs))
			}
			for i := range got {
				if err := sameRecord(got[i], tt.recs[i]); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if !got[i].Timestamp.IsZero() && got[i].Timestamp.Location() != time.UTC {
					t.Errorf("record %d: timestamp in %v, want UTC", i, got[i].Timestamp.Location())
				}
			}
		})
	}
}

func TestEncoderAcrossCalls(t *testing.T) {
	// The partial fault point adds a prefix, then (without dying) the same
	// encoder would carry on: several add calls must keep partition indexes right.
	a := []Record{{Value: []byte("1"), Position: Position{Partition: "x/0", Offset: 0}}, {Value: []byte("2"), Position: Position{Partition: "y/0", Offset: 0}}}
	b := []Record{{Value: []byte("3"), Position: Position{Partition: "y/0", Offset: 1}}, {Value: []byte("4"), Position: Position{Partition: "z/0", Offset: 0}}}
	chunks := encodeAll(t, a, b)
	if len(chunks) != 1 {
		t.Fatalf("%d chunks, want 1", len(chunks))
	}
	if got := chunks[0].Partitions; len(got) != 3 {
		t.Fatalf("partitions %v, want x/0, y/0, z/0", got)
	}
	got, err := decode(nil, chunks[0])
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]Record(nil), a...), b...)
	for i := range want {
		if err := sameRecord(got[i], want[i]); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	}
}

func TestEncoderFlushError(t *testing.T) {
	boom := errors.New("boom")
	recs := []Record{
		{Value: bytes.Repeat([]byte("x"), protocol.ChunkBytes), Position: Position{Partition: "t/0", Offset: 0}},
		{Value: []byte("y"), Position: Position{Partition: "t/0", Offset: 1}},
	}
	var e encoder
	calls := 0
	err := e.add(recs, func([]byte) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("add = %v after %d flushes, want boom after 1", err, calls)
	}
}

func TestDecodeBadPartitionIndex(t *testing.T) {
	tests := []struct {
		name  string
		chunk *pb.Chunk
		ok    int // records decoded before the error
	}{
		{"no partitions", &pb.Chunk{Records: []*pb.Record{{Partition: 0}}}, 0},
		{"index past the end", &pb.Chunk{Partitions: []string{"t/0"}, Records: []*pb.Record{{Partition: 0, Offset: 1}, {Partition: 1}}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(nil, tt.chunk)
			if err == nil || !strings.Contains(err.Error(), "names partition index") {
				t.Fatalf("decode error = %v, want a partition index error", err)
			}
			if len(got) != tt.ok {
				t.Errorf("decoded %d records before the error, want %d", len(got), tt.ok)
			}
		})
	}
	// decode appends to what it is given.
	prev := []Record{{Value: []byte("prev")}}
	got, err := decode(prev, &pb.Chunk{Partitions: []string{"t/0"}, Records: []*pb.Record{{Offset: 3}}})
	if err != nil || len(got) != 2 || string(got[0].Value) != "prev" || got[1].Position != (Position{Partition: "t/0", Offset: 3}) {
		t.Fatalf("decode(prev) = %v, %v", got, err)
	}
}

// fakeReadStream collects what a sourceServer sends.
type fakeReadStream struct {
	grpc.ServerStream
	replies []*pb.ReadReply
}

func (f *fakeReadStream) Context() context.Context { return context.Background() }
func (f *fakeReadStream) Send(r *pb.ReadReply) error {
	f.replies = append(f.replies, r)
	return nil
}

// SendMsg takes what sendRecords sends (rawv1.RawReadReply) as the host's
// peer would: as connector.v1 ReadReply bytes.
func (f *fakeReadStream) SendMsg(m any) error {
	if c, ok := m.(*chunkReply); ok {
		m = c.RawReadReply
	}
	b, err := proto.Marshal(m.(proto.Message))
	if err != nil {
		return err
	}
	var r pb.ReadReply
	if err := proto.Unmarshal(b, &r); err != nil {
		return err
	}
	return f.Send(&r)
}

// fixedSource returns the same Read every time.
type fixedSource struct{ rd Read }

func (s *fixedSource) Open(context.Context, Config) error                  { return nil }
func (s *fixedSource) Read(context.Context, Offsets, Limits) (Read, error) { return s.rd, nil }
func (s *fixedSource) Ack(context.Context, Offsets) error                  { return nil }
func (s *fixedSource) Close(context.Context) error                         { return nil }

func TestSourceServerRead(t *testing.T) {
	spec := Spec{Name: "fixed", Kind: KindSource}
	tests := []struct {
		name    string
		rd      Read
		wantErr string
	}{
		{"good", Read{Records: recs(at("t/0", 0), at("t/1", 0), at("t/0", 1)), Until: Offsets{"t/0": 2, "t/1": 1}}, ""},
		{"empty", Read{}, ""},
		{"record past until", Read{Records: recs(at("t/0", 3)), Until: Offsets{"t/0": 2}}, "source broke the Read contract: record 0 (t/0@3) is at or past until 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fixedSource{rd: tt.rd}
			srv := &sourceServer{def: &SourcePlugin{Spec: spec, New: func() Source { return src }}}
			if _, err := srv.Open(context.Background(), &pb.OpenRequest{Pipeline: "p"}); err != nil {
				t.Fatal(err)
			}
			st := &fakeReadStream{}
			err := srv.Read(&pb.ReadRequest{Batch: 1, From: offsetsPB(Offsets{"t/0": 0, "t/1": 0}), MaxRecords: 10}, st)
			if tt.wantErr != "" {
				if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Read error = %v, want Internal %q", err, tt.wantErr)
				}
				if len(st.replies) != 0 {
					t.Errorf("sent %d replies for a broken read", len(st.replies))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(st.replies) == 0 || !st.replies[len(st.replies)-1].Last {
				t.Fatalf("no last reply among %d", len(st.replies))
			}
			var got []Record
			for _, r := range st.replies {
				if r.Chunk != nil {
					if got, err = decode(got, r.Chunk); err != nil {
						t.Fatal(err)
					}
				}
			}
			last := st.replies[len(st.replies)-1]
			if len(got) != len(tt.rd.Records) || last.Records != int64(len(tt.rd.Records)) {
				t.Fatalf("got %d records (last says %d), want %d", len(got), last.Records, len(tt.rd.Records))
			}
			for i := range got {
				if err := sameRecord(got[i], tt.rd.Records[i]); err != nil {
					t.Errorf("record %d: %v", i, err)
				}
			}
			if u := offsetsOf(last.Until); !u.Equal(tt.rd.Until) {
				t.Errorf("until %v, want %v", u, tt.rd.Until)
			}
			var size int64
			for i := range tt.rd.Records {
				size += int64(tt.rd.Records[i].Size())
			}
			if last.Bytes != size {
				t.Errorf("last says %d bytes, want %d", last.Bytes, size)
			}
		})
	}
	// Reading before Open is refused.
	srv := &sourceServer{def: &SourcePlugin{Spec: spec, New: func() Source { return &fixedSource{} }}}
	if err := srv.Read(&pb.ReadRequest{Batch: 1}, &fakeReadStream{}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Read before Open = %v, want FailedPrecondition", err)
	}
}
