package sdk

import (
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
// a transactional sink that already committed the batch must return the
// rejections it committed with it.
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
