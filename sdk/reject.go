package sdk

import (
	"errors"
	"fmt"
	"strings"
)

// Rejection is one record of a batch that a sink or a processor refused, and
// why: a per-item 4xx of Elasticsearch, a PostgreSQL row that violates a
// constraint. The pipeline's on_record_error decides what becomes of it
// (fail the run, skip it, or write it to the dead-letter sink).
type Rejection struct {
	// Index is the record's index in the batch's Records, as Write or
	// Process received them.
	Index int
	// Reason says why, for people: it goes into the dead letter's headers.
	Reason string
}

// Rejected is the error a sink's Write or a processor's Process returns when
// it refused some records of a batch and handled all the others: a Write
// that returns a *Rejected has made every record it does not list durable,
// as a nil error would. The host never sends the batch again for it.
//
// A sink's rejections must be the same when the same batch is written again
// (a replay after a crash): an idempotent sink finds them again by writing;
// a transactional sink stores them with the batch's offsets, in the same
// transaction, and returns them in Committed.Rejected (the host recovers a
// batch the sink committed but the host did not from that answer) and again
// if the batch it committed is written again.
type Rejected struct {
	Records []Rejection
}

// Reject returns a *Rejected that refuses the records at the given
// rejections, for a Write or Process to return.
func Reject(rs ...Rejection) error {
	return &Rejected{Records: rs}
}

// Error lists the first few rejections.
func (r *Rejected) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records rejected", len(r.Records))
	for i, x := range r.Records {
		if i == 3 {
			fmt.Fprintf(&b, "; …")
			break
		}
		fmt.Fprintf(&b, "; record %d: %s", x.Index, x.Reason)
	}
	return b.String()
}

// rejectedOf returns the *Rejected that err is or wraps through single
// Unwrap steps (fmt.Errorf with one %w). An error that joins a *Rejected
// with other errors (errors.Join) is not a rejection: the other errors
// would be lost, so it fails the batch.
func rejectedOf(err error) (*Rejected, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if r, ok := e.(*Rejected); ok {
			return r, true
		}
	}
	return nil, false
}

// CheckRejections reports how rs breaks the contract of a Write or Process
// that received n records: an index outside 0…n-1, or one listed twice.
// The sdk applies it before a rejection leaves the plugin, and the host
// applies it to every reply.
func CheckRejections(n int, rs []Rejection) error {
	if len(rs) == 0 {
		return nil
	}
	seen := make(map[int]bool, len(rs))
	for _, r := range rs {
		if r.Index < 0 || r.Index >= n {
			return fmt.Errorf("rejection of record %d: the batch has %d records (0…%d)", r.Index, n, n-1)
		}
		if seen[r.Index] {
			return fmt.Errorf("record %d is rejected twice", r.Index)
		}
		seen[r.Index] = true
	}
	return nil
}

// CheckProcess reports how out, what a processor made of the records in,
// breaks the Processor contract: a record whose partition and offset are
// not those of any record of in (Position.Index is not compared: the host
// numbers it). The sdk applies it to every Process before the host sees it,
// the host applies it to every reply, and sdktest applies it in tests.
func CheckProcess(in, out []Record) error {
	type at struct {
		p string
		o int64
	}
	pos := make(map[at]struct{}, len(in))
	for i := range in {
		pos[at{in[i].Position.Partition, in[i].Position.Offset}] = struct{}{}
	}
	for i := range out {
		p := out[i].Position
		if _, ok := pos[at{p.Partition, p.Offset}]; !ok {
			return fmt.Errorf("output record %d is at %s@%d, the position of no input record (a record the processor adds takes the position of the input record it came from)", i, p.Partition, p.Offset)
		}
	}
	return nil
}
