package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Special offsets a source must resolve when it finds them in a from map.
const (
	// Earliest asks for the first offset the partition still holds.
	Earliest int64 = -2
	// Latest asks for the offset after the last record the partition holds now.
	Latest int64 = -1
)

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Position is where a record came from: a partition and the record's own offset.
// The offset after the record (what a batch's until holds) is chosen by the source.
type Position struct {
	Partition string
	Offset    int64
	// Index tells apart the records that share one source record's position
	// after a transform: 0 for the first record made from it (a source always
	// sets 0), 1, 2, … for the records a processor added after it, numbered by
	// the host in output order. A sink whose idempotence keys on positions
	// keys on all three fields.
	Index int
}

// String renders a position as "partition@offset", or "partition@offset#index"
// when Index is not 0.
func (p Position) String() string {
	s := p.Partition + "@" + strconv.FormatInt(p.Offset, 10)
	if p.Index != 0 {
		s += "#" + strconv.Itoa(p.Index)
	}
	return s
}

// Record is one unit of data moved by connectd.
type Record struct {
	Key   []byte
	Value []byte
	// Tombstone is true when the value is null rather than empty: a Kafka
	// tombstone, which asks a sink to delete what Key names (the kafka sink
	// writes a null value, the elasticsearch sink deletes the document, the
	// postgres sink in upsert mode deletes the row). A tombstone's Value is
	// empty; a record that has both is an error when it is sent. A nil Value
	// alone is an empty value, never a tombstone: only this flag says null.
	Tombstone bool
	Headers   []Header
	Timestamp time.Time
	Position  Position
}

// Size is the number of bytes a record counts for in a batch's max_bytes policy.
func (r *Record) Size() int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Header returns the value of the first header named key, or nil.
func (r *Record) Header(key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// Offsets maps a partition to an offset: in a from map, the next offset to read;
// in an until map, the offset after the batch's last record in that partition.
//
// Partition names have the form "group/part" (a Kafka "topic/0", a file
// "dir/name.txt"): the group is everything before the last slash. That is how
// offsets are printed and accepted in Spark's JSON form,
// {"orders":{"0":23,"1":-1}}.
type Offsets map[string]int64

// Clone returns a copy of o (nil stays nil).
func (o Offsets) Clone() Offsets {
	if o == nil {
		return nil
	}
	c := make(Offsets, len(o))
	for k, v := range o {
		c[k] = v
	}
	return c
}

// Merge returns a copy of o with every entry of n set over it.
func (o Offsets) Merge(n Offsets) Offsets {
	c := make(Offsets, len(o)+len(n))
	for k, v := range o {
		c[k] = v
	}
	for k, v := range n {
		c[k] = v
	}
	return c
}

// Equal reports whether o and n hold the same entries.
func (o Offsets) Equal(n Offsets) bool {
	if len(o) != len(n) {
		return false
	}
	for k, v := range o {
		if w, ok := n[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Partitions returns the partition names in sorted order.
func (o Offsets) Partitions() []string {
	ps := make([]string, 0, len(o))
	for p := range o {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// SplitPartition splits a partition name into its group and part at the last
// slash. A name without a slash is its own group with an empty part.
func SplitPartition(p string) (group, part string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return p, ""
	}
	return p[:i], p[i+1:]
}

// JoinPartition is the inverse of SplitPartition.
func JoinPartition(group, part string) string {
	if part == "" {
		return group
	}
	return group + "/" + part
}

// MarshalJSON writes offsets in Spark's form: {"group":{"part":offset}}.
func (o Offsets) MarshalJSON() ([]byte, error) {
	nested := map[string]map[string]int64{}
	for p, off := range o {
		g, part := SplitPartition(p)
		if nested[g] == nil {
			nested[g] = map[string]int64{}
		}
		nested[g][part] = off
	}
	return json.Marshal(nested) // encoding/json sorts map keys: output is stable
}

// UnmarshalJSON reads offsets in Spark's form.
func (o *Offsets) UnmarshalJSON(b []byte) error {
	var nested map[string]map[string]int64
	if err := json.Unmarshal(b, &nested); err != nil {
		return fmt.Errorf(`offsets must look like {"topic":{"0":23,"1":-1}}: %w`, err)
	}
	m := make(Offsets)
	for g, parts := range nested {
		for part, off := range parts {
			if off < Earliest {
				return fmt.Errorf("offset %d for %q: offsets are >= 0, or -2 (earliest) or -1 (latest)", off, JoinPartition(g, part))
			}
			m[JoinPartition(g, part)] = off
		}
	}
	*o = m
	return nil
}

// String renders offsets in Spark's JSON form.
func (o Offsets) String() string {
	b, _ := o.MarshalJSON()
	return string(b)
}

// Range is the part of one partition that a batch covers: offsets [From, Until).
type Range struct {
	Partition string
	From      int64
	Until     int64
}

// Batch is what a sink receives: batch ID of a pipeline, its records in source
// order, and the offsets it covers. Until is what a transactional sink stores
// atomically with its output. A processor's Process receives one too, with
// ID, Records and Replay only (From and Until are nil).
//
// A batch's records are valid until Write (Process) returns, the way
// bufio.Scanner.Bytes is valid until the next Scan: the sdk then reuses
// their memory for the next batch, so a sink that keeps anything of a record
// past Write (a key, a value, a header value, the Records slice, or a
// Record value, whose slices still point into that memory) copies the bytes
// first (bytes.Clone; string(b) is a copy too). During the call the records
// are the sink's own: each key, value and header value is capped at its own
// length, so changing or appending to one never touches another. With
// CONNECTD_POISON=1 (PoisonEnv), and always under sdktest, the sdk
// overwrites that memory as soon as Write returns, so a sink that keeps
// references fails its tests with "connectd poison: …" where its records
// should be. From and Until are the sink's to keep.
type Batch struct {
	ID      int64
	Records []Record
	From    Offsets
	Until   Offsets
	// Replay is true when the host may already have sent this batch before
	// (recovery after a crash). A sink must behave the same either way; the flag
	// is for logs and for sinks that can skip work on replay.
	Replay bool
	// Epoch is the lease epoch of the host that sent the batch (connectd
	// worker; 0 from a host that holds no lease). It grows at every takeover
	// of the pipeline by another worker. A transactional sink that stores it
	// with its offsets, in the same transaction, and refuses a batch whose
	// Epoch is lower than the one it stored (returning an error that wraps
	// ErrFenced) keeps a host that lost its lease without knowing it from
	// committing; an Epoch of 0 is never refused.
	Epoch int64
}

// ErrFenced is wrapped by a sink's error when it refused a batch whose Epoch
// is older than one it already committed: the host that sent it lost its
// lease to another. The host does not retry such a batch: it stops running
// the pipeline.
var ErrFenced = errors.New("fenced: a newer lease epoch holds this pipeline")

// Ranges lists the batch's ranges sorted by partition.
func (b *Batch) Ranges() []Range {
	return RangesOf(b.From, b.Until)
}

// RangesOf lists [from, until) ranges per partition of until, sorted by partition.
// A partition missing from from starts at until (an empty range).
func RangesOf(from, until Offsets) []Range {
	rs := make([]Range, 0, len(until))
	for _, p := range until.Partitions() {
		f, ok := from[p]
		if !ok {
			f = until[p]
		}
		rs = append(rs, Range{Partition: p, From: f, Until: until[p]})
	}
	return rs
}
