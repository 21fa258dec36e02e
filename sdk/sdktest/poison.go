package sdktest

import (
	"bytes"
	"context"
	"fmt"

	"github.com/connectd/connectd/internal/poison"
	"github.com/connectd/connectd/sdk"
)

// A batch's records are valid until Write (Process) returns (sdk.Batch).
// sdktest lends a plugin a copy of every batch, in memory of its own, and
// overwrites that memory with poison.Pattern as soon as the call returns, as
// the sdk does in a plugin process with sdk.PoisonEnv=1: a plugin that keeps
// references past the call writes out, lists or returns "connectd poison: …"
// instead of its records.

// lent is a batch's records copied into one buffer for one call.
type lent struct {
	buf        []byte
	recs       []sdk.Record
	keys, vals [][]byte // the records' keys and values as lent
	released   bool
}

// lend copies recs into memory of its own.
func lend(recs []sdk.Record) *lent {
	n, hs := 0, 0
	for i := range recs {
		n += recs[i].Size()
		hs += len(recs[i].Headers)
	}
	l := &lent{buf: make([]byte, 0, n), recs: make([]sdk.Record, len(recs)),
		keys: make([][]byte, len(recs)), vals: make([][]byte, len(recs))}
	headers := make([]sdk.Header, 0, hs)
	for i, r := range recs {
		c := r // every field (a tombstone's flag too), then the bytes in lent memory
		c.Key, c.Value, c.Headers = l.copy(r.Key), l.copy(r.Value), nil
		l.keys[i], l.vals[i] = c.Key, c.Value
		if len(r.Headers) > 0 {
			first := len(headers)
			for _, h := range r.Headers {
				headers = append(headers, sdk.Header{Key: h.Key, Value: l.copy(h.Value)})
			}
			c.Headers = headers[first:len(headers):len(headers)]
		}
		l.recs[i] = c
	}
	return l
}

// copy appends b to the buffer and returns its copy there, capped at its
// length; nil stays nil.
func (l *lent) copy(b []byte) []byte {
	if b == nil {
		return nil
	}
	start := len(l.buf)
	l.buf = append(l.buf, b...)
	return l.buf[start:len(l.buf):len(l.buf)]
}

// release overwrites the lent memory: the whole buffer, each key and value
// from the start of poison.Pattern, and the records' positions.
func (l *lent) release() {
	if l.released {
		return
	}
	l.released = true
	poison.Fill(l.buf)
	for i := range l.recs {
		poison.Fill(l.keys[i])
		poison.Fill(l.vals[i])
		l.recs[i].Position = sdk.Position{Partition: poison.Pattern[:len("connectd poison")], Offset: -1}
	}
}

// own returns a copy of recs in fresh memory: records a processor returned,
// which may point into the batch it was lent.
func own(recs []sdk.Record) []sdk.Record {
	if recs == nil {
		return nil
	}
	out := make([]sdk.Record, len(recs))
	for i, r := range recs {
		out[i] = r
		out[i].Key, out[i].Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
		if r.Headers != nil {
			out[i].Headers = make([]sdk.Header, len(r.Headers))
			for j, h := range r.Headers {
				out[i].Headers[j] = sdk.Header{Key: h.Key, Value: bytes.Clone(h.Value)}
			}
		}
	}
	return out
}

// poisoned is a sink whose every Write is given a lent batch, poisoned when
// Write returns.
type poisoned struct{ sdk.Sink }

func (p poisoned) Write(ctx context.Context, b sdk.Batch) error {
	l := lend(b.Records)
	defer l.release()
	b.Records = l.recs
	return p.Sink.Write(ctx, b)
}

// list is sdk.Lister's List of the sink, failing on a value that holds
// poison.
func (p poisoned) list(ctx context.Context) ([][]byte, error) {
	vals, err := p.Sink.(sdk.Lister).List(ctx)
	if err != nil {
		return vals, err
	}
	for i, v := range vals {
		if poison.In(v) {
			return vals, fmt.Errorf("sdktest: value %d of the sink's List reads %.60q…: the sink kept a reference to a batch's records past Write, and sdktest overwrote them when Write returned; a sink copies what it keeps (see sdk.Batch)", i, v)
		}
	}
	return vals, nil
}

// The four shapes of a poisoned sink: sdk.Lister and sdk.Transactional stay
// reachable by type assertion exactly when the sink implements them.
type (
	poisonedLister   struct{ poisoned }
	poisonedTx       struct{ poisoned }
	poisonedTxLister struct{ poisoned }
)

func (p poisonedLister) List(ctx context.Context) ([][]byte, error)   { return p.list(ctx) }
func (p poisonedTxLister) List(ctx context.Context) ([][]byte, error) { return p.list(ctx) }

func (p poisonedTx) LastCommitted(ctx context.Context) (sdk.Committed, error) {
	return p.Sink.(sdk.Transactional).LastCommitted(ctx)
}

func (p poisonedTxLister) LastCommitted(ctx context.Context) (sdk.Committed, error) {
	return p.Sink.(sdk.Transactional).LastCommitted(ctx)
}

// poisonSink wraps sk so that its batches are lent and poisoned.
func poisonSink(sk sdk.Sink) sdk.Sink {
	p := poisoned{sk}
	_, lister := sk.(sdk.Lister)
	_, tx := sk.(sdk.Transactional)
	switch {
	case lister && tx:
		return poisonedTxLister{p}
	case lister:
		return poisonedLister{p}
	case tx:
		return poisonedTx{p}
	}
	return p
}

// UnwrapSink returns the plugin's own sink of a sink Sink returned, for what
// a test reaches of its type; its Write is not lent poisoned batches.
func UnwrapSink(s sdk.Sink) sdk.Sink {
	switch p := s.(type) {
	case poisoned:
		return p.Sink
	case poisonedLister:
		return p.Sink
	case poisonedTx:
		return p.Sink
	case poisonedTxLister:
		return p.Sink
	}
	return s
}
