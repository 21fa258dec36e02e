package sdk

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/connectd/connectd/internal/protocol"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// A hand-written codec for connector.v1 Chunk, the message that carries the
// records (internal/protocol/connector.proto). It writes and reads the same
// bytes as the generated code, without a protobuf message per record:
//
//	message Chunk  { repeated string partitions = 1; repeated Record records = 2; }
//	message Record { uint32 partition = 1; int64 offset = 2; bytes key = 3;
//	                 bytes value = 4; repeated Header headers = 5;
//	                 int64 timestamp_unix_nano = 6; uint32 index = 7;
//	                 bool tombstone = 8; }
//	message Header { string key = 1; bytes value = 2; }
//
// The encoder writes each record's fields in field-number order and omits
// zero values, as proto.Marshal does; it writes a chunk's partitions after
// its records (a protobuf parser accepts fields in any order, and the
// partitions of a chunk are only known once it is full). The decoder accepts
// any valid encoding: fields in any order, repeated scalars (the last wins),
// unknown fields (skipped).

// Field numbers and wire types of the messages above.
const (
	chunkPartitions = 1
	chunkRecords    = 2

	recPartition = 1
	recOffset    = 2
	recKey       = 3
	recValue     = 4
	recHeaders   = 5
	recTimestamp = 6
	recIndex     = 7
	recTombstone = 8

	hdrKey   = 1
	hdrValue = 2
)

// encoder packs records into encoded chunks of about protocol.ChunkBytes.
// By default the buffer is reused from one chunk to the next: flush must be
// done with the bytes when it returns. With handOff, flush owns the bytes
// (sendRecords gives them to the transport, which puts them back in
// chunkPool once written) and the encoder takes a new buffer from chunkPool.
type encoder struct {
	handOff bool
	buf     []byte            // records of the current chunk, encoded
	parts   []string          // partitions of the current chunk, by index
	index   map[string]uint32 // parts by name, once there are many
	n       int               // records in the current chunk
	size    int               // Record.Size + 16 per record: the flush policy
	bytes   int64             // Record.Size of every record added, all chunks
	check   []string          // new partitions of the last record, to validate
}

// lookup returns the index of partition p in the current chunk, adding it.
func (e *encoder) lookup(p string) uint32 {
	if e.index == nil {
		for i, q := range e.parts {
			if q == p {
				return uint32(i)
			}
		}
		if len(e.parts) < 8 {
			e.parts = append(e.parts, p)
			e.check = append(e.check, p)
			return uint32(len(e.parts) - 1)
		}
		e.index = make(map[string]uint32, 2*len(e.parts))
		for i, q := range e.parts {
			e.index[q] = uint32(i)
		}
	}
	idx, ok := e.index[p]
	if !ok {
		idx = uint32(len(e.parts))
		e.index[p] = idx
		e.parts = append(e.parts, p)
		e.check = append(e.check, p)
	}
	return idx
}

// bytesField returns the encoded size of a length-delimited field of n bytes
// (1-byte tag), or 0 when n is 0 (proto3 omits it).
func bytesField(n int) int {
	if n == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(uint64(n)) + n
}

// varintField returns the encoded size of a varint field (1-byte tag), or 0
// when v is 0.
func varintField(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

// appendRecord appends r as a Chunk.records field with partition index idx.
func appendRecord(b []byte, r *Record, idx uint32) []byte {
	var ts int64
	if !r.Timestamp.IsZero() {
		ts = r.Timestamp.UnixNano()
	}
	n := varintField(uint64(idx)) + varintField(uint64(r.Position.Offset)) +
		bytesField(len(r.Key)) + bytesField(len(r.Value)) + varintField(uint64(ts)) +
		varintField(uint64(uint32(r.Position.Index)))
	if r.Tombstone {
		n += 2
	}
	for i := range r.Headers {
		n += 1 + protowire.SizeBytes(headerSize(&r.Headers[i]))
	}
	b = append(b, chunkRecords<<3|byte(protowire.BytesType))
	b = protowire.AppendVarint(b, uint64(n))
	if idx != 0 {
		b = append(b, recPartition<<3|byte(protowire.VarintType))
		b = protowire.AppendVarint(b, uint64(idx))
	}
	if r.Position.Offset != 0 {
		b = append(b, recOffset<<3|byte(protowire.VarintType))
		b = protowire.AppendVarint(b, uint64(r.Position.Offset))
	}
	if len(r.Key) > 0 {
		b = append(b, recKey<<3|byte(protowire.BytesType))
		b = protowire.AppendBytes(b, r.Key)
	}
	if len(r.Value) > 0 {
		b = append(b, recValue<<3|byte(protowire.BytesType))
		b = protowire.AppendBytes(b, r.Value)
	}
	for i := range r.Headers {
		h := &r.Headers[i]
		b = append(b, recHeaders<<3|byte(protowire.BytesType))
		b = protowire.AppendVarint(b, uint64(headerSize(h)))
		if h.Key != "" {
			b = append(b, hdrKey<<3|byte(protowire.BytesType))
			b = protowire.AppendString(b, h.Key)
		}
		if len(h.Value) > 0 {
			b = append(b, hdrValue<<3|byte(protowire.BytesType))
			b = protowire.AppendBytes(b, h.Value)
		}
	}
	if ts != 0 {
		b = append(b, recTimestamp<<3|byte(protowire.VarintType))
		b = protowire.AppendVarint(b, uint64(ts))
	}
	if r.Position.Index != 0 {
		b = append(b, recIndex<<3|byte(protowire.VarintType))
		b = protowire.AppendVarint(b, uint64(uint32(r.Position.Index)))
	}
	if r.Tombstone {
		b = append(b, recTombstone<<3|byte(protowire.VarintType), 1)
	}
	return b
}

func headerSize(h *Header) int { return bytesField(len(h.Key)) + bytesField(len(h.Value)) }

// add appends records to the current chunk, calling flush with the encoded
// chunk whenever it is full.
func (e *encoder) add(recs []Record, flush func([]byte) error) error {
	for i := range recs {
		r := &recs[i]
		if e.buf == nil {
			e.buf = (*chunkPool.Get(0))[:0]
		}
		if uint(r.Position.Index) > math.MaxUint32 {
			return fmt.Errorf("record %s: position index %d is outside 0…%d", r.Position, r.Position.Index, uint32(math.MaxUint32))
		}
		if r.Tombstone && len(r.Value) > 0 {
			return fmt.Errorf("record %s: a tombstone (null value) has a value of %d bytes", r.Position, len(r.Value))
		}
		idx := e.lookup(r.Position.Partition)
		if len(e.check) > 0 || len(r.Headers) > 0 {
			if err := e.validate(r); err != nil {
				return err
			}
		}
		e.buf = appendRecord(e.buf, r, idx)
		e.n++
		size := r.Size()
		e.size += size + 16
		e.bytes += int64(size)
		if e.size >= protocol.ChunkBytes {
			if err := flush(e.finish()); err != nil {
				return err
			}
			e.reset()
		}
	}
	return nil
}

// validate refuses what proto.Marshal refuses: a string field (partition,
// header key) that is not UTF-8.
func (e *encoder) validate(r *Record) error {
	for _, p := range e.check {
		if !utf8.ValidString(p) {
			return fmt.Errorf("record %s: partition name is not valid UTF-8", r.Position)
		}
	}
	e.check = e.check[:0]
	for _, h := range r.Headers {
		if !utf8.ValidString(h.Key) {
			return fmt.Errorf("record %s: header key %q is not valid UTF-8", r.Position, h.Key)
		}
	}
	return nil
}

// finish appends the partitions to the current chunk and returns its bytes;
// nil when it holds no record.
func (e *encoder) finish() []byte {
	if e.n == 0 {
		return nil
	}
	for _, p := range e.parts {
		e.buf = append(e.buf, chunkPartitions<<3|byte(protowire.BytesType))
		e.buf = protowire.AppendString(e.buf, p)
	}
	return e.buf
}

// reset empties the current chunk, keeping its buffer unless handed off.
func (e *encoder) reset() {
	e.buf = e.buf[:0]
	if e.handOff {
		e.buf = nil
	}
	e.parts = e.parts[:0]
	e.index = nil
	e.check = e.check[:0]
	e.n, e.size = 0, 0
}

// chunkCap is the capacity of a new chunk buffer: a chunk is flushed past
// protocol.ChunkBytes of records plus the fields around them (about 20 bytes
// a record at most for small records; protocol.ChunkBytes/4 leaves room).
const chunkCap = protocol.ChunkBytes + protocol.ChunkBytes/4

// chunkPool recycles chunk buffers between the encoder and the transport.
var chunkPool mem.BufferPool = &bufferPool{}

// bufferPool is a mem.BufferPool of chunk buffers.
type bufferPool struct{ p sync.Pool }

// Get returns a buffer of length n.
func (b *bufferPool) Get(n int) *[]byte {
	if v, ok := b.p.Get().(*[]byte); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	s := make([]byte, n, max(n, chunkCap))
	return &s
}

// Put keeps buf for a later Get, unless it grew much past a chunk (a single
// large record).
func (b *bufferPool) Put(buf *[]byte) {
	if cap(*buf) <= 4*chunkCap {
		b.p.Put(buf)
	}
}

// EncodeChunks encodes recs as connector.v1 Chunks of about
// protocol.ChunkBytes each (a single larger record gets a chunk of its own),
// for a host that sends records it decoded and changed: the chunks are the
// caller's to keep. bytes is the records' total Record.Size. A partition name
// or header key that is not UTF-8, or a Position.Index outside uint32, is an
// error that names the record; no records gives no chunks.
func EncodeChunks(recs []Record) (chunks [][]byte, bytes int64, err error) {
	var e encoder
	keep := func(c []byte) error {
		chunks = append(chunks, append(make([]byte, 0, len(c)), c...))
		return nil
	}
	err = e.add(recs, keep)
	if err == nil {
		if c := e.finish(); c != nil {
			err = keep(c)
		}
	}
	if e.buf != nil {
		buf := e.buf[:0]
		chunkPool.Put(&buf)
	}
	if err != nil {
		return nil, 0, err
	}
	return chunks, e.bytes, nil
}

var errTruncated = errors.New("truncated or malformed protobuf")

// scanned is what a first pass over an encoded chunk finds.
type scanned struct {
	parts   []string
	records int
}

// scanChunk reads a chunk's partitions and counts its records.
func scanChunk(b []byte) (scanned, error) {
	var s scanned
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, errTruncated
		}
		b = b[n:]
		switch {
		case num == chunkPartitions && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return s, errTruncated
			}
			if !utf8.Valid(v) {
				return s, errors.New("partition name is not valid UTF-8")
			}
			s.parts = append(s.parts, string(v))
			b = b[n:]
		case num == chunkRecords && typ == protowire.BytesType:
			_, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return s, errTruncated
			}
			s.records++
			b = b[n:]
		case num == chunkPartitions || num == chunkRecords:
			return s, fmt.Errorf("field %d has wire type %d", num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return s, errTruncated
			}
			b = b[n:]
		}
	}
	return s, nil
}

// decodeChunk appends the records of the encoded chunk b to dst; s is
// scanChunk(b). Keys, values and header values alias b: b must never change
// afterwards.
func decodeChunk(dst []Record, b []byte, s scanned) ([]Record, error) {
	var headers []Header // one slab for the chunk's headers
	for i := 0; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return dst, errTruncated
		}
		b = b[n:]
		if num != chunkRecords {
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return dst, errTruncated
			}
			b = b[n:]
			continue
		}
		m, n := protowire.ConsumeBytes(b) // typ was checked by scanChunk
		if n < 0 {
			return dst, errTruncated
		}
		b = b[n:]
		dst = append(dst, Record{}) // filled in place: no copy of a Record
		r := &dst[len(dst)-1]
		first := len(headers)
		idx, err := decodeRecord(r, m, &headers)
		if err == nil && idx >= uint64(len(s.parts)) {
			err = fmt.Errorf("record %d names partition index %d of %d", i, idx, len(s.parts))
		}
		if err != nil {
			return dst[:len(dst)-1], err
		}
		if len(headers) > first {
			r.Headers = headers[first:len(headers):len(headers)]
		}
		r.Position.Partition = s.parts[idx]
		i++
	}
	return dst, nil
}

// decodeRecord decodes the encoded Record m into r, but for its partition
// name and headers: it returns the partition index and appends the headers to
// *headers.
func decodeRecord(r *Record, m []byte, headers *[]Header) (idx uint64, err error) {
	var ts int64
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return 0, errTruncated
		}
		m = m[n:]
		switch {
		case typ == protowire.VarintType && (num == recPartition || num == recOffset || num == recTimestamp || num == recIndex || num == recTombstone):
			v, n := protowire.ConsumeVarint(m)
			if n < 0 {
				return 0, errTruncated
			}
			m = m[n:]
			switch num {
			case recPartition:
				idx = uint64(uint32(v))
			case recOffset:
				r.Position.Offset = int64(v)
			case recIndex:
				r.Position.Index = int(uint32(v))
			case recTombstone:
				r.Tombstone = v != 0
			default:
				ts = int64(v)
			}
		case typ == protowire.BytesType && (num == recKey || num == recValue || num == recHeaders):
			v, n := protowire.ConsumeBytes(m)
			if n < 0 {
				return 0, errTruncated
			}
			m = m[n:]
			switch num {
			case recKey:
				r.Key = aliasBytes(v)
			case recValue:
				r.Value = aliasBytes(v)
			default:
				h, err := decodeHeader(v)
				if err != nil {
					return 0, err
				}
				*headers = append(*headers, h)
			}
		case num >= recPartition && num <= recTombstone:
			return 0, fmt.Errorf("record field %d has wire type %d", num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, m)
			if n < 0 {
				return 0, errTruncated
			}
			m = m[n:]
		}
	}
	if ts != 0 {
		r.Timestamp = time.Unix(0, ts).UTC()
	}
	if r.Tombstone && len(r.Value) > 0 {
		return 0, fmt.Errorf("record at offset %d is a tombstone (null value) with a value of %d bytes", r.Position.Offset, len(r.Value))
	}
	return idx, nil
}

// aliasBytes returns v capped at its length (an append by a sink cannot reach
// the next field), or nil when empty, as proto.Unmarshal gives for proto3.
func aliasBytes(v []byte) []byte {
	if len(v) == 0 {
		return nil
	}
	return v[:len(v):len(v)]
}

// decodeHeader decodes one encoded Header.
func decodeHeader(m []byte) (Header, error) {
	var h Header
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return h, errTruncated
		}
		m = m[n:]
		switch {
		case (num == hdrKey || num == hdrValue) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(m)
			if n < 0 {
				return h, errTruncated
			}
			m = m[n:]
			if num == hdrKey {
				if !utf8.Valid(v) {
					return h, errors.New("header key is not valid UTF-8")
				}
				h.Key = string(v)
			} else {
				h.Value = aliasBytes(v)
			}
		case num == hdrKey || num == hdrValue:
			return h, fmt.Errorf("header field %d has wire type %d", num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, m)
			if n < 0 {
				return h, errTruncated
			}
			m = m[n:]
		}
	}
	return h, nil
}

// DecodeChunks appends the records of encoded connector.v1 Chunks (as a
// Read or Replay reply carries them, or as EncodeChunks makes them) to dst,
// in order, growing dst once to its final size. Keys, values and header
// values alias chunks: the caller must never change chunks afterwards. A
// malformed chunk is an error that names it.
func DecodeChunks(dst []Record, chunks [][]byte) ([]Record, error) {
	scans := make([]scanned, len(chunks))
	total := len(dst)
	for i, c := range chunks {
		s, err := scanChunk(c)
		if err != nil {
			return dst, fmt.Errorf("chunk %d: %w", i, err)
		}
		scans[i] = s
		total += s.records
	}
	if cap(dst) < total {
		dst = append(make([]Record, 0, total), dst...)
	}
	for i, c := range chunks {
		var err error
		if dst, err = decodeChunk(dst, c, scans[i]); err != nil {
			return dst, fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return dst, nil
}
