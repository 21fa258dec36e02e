package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectd/connectd/sdk"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchapi "github.com/segmentio/kafka-go/protocol/fetch"
)

// span is a range [from, until) of one partition.
type span struct {
	tp
	from, until int64
}

// got is what fetching one span brought: records in offset order, and next,
// the offset below which every offset of the span was looked at (records,
// control records and gaps). next == until when the span is complete.
type got struct {
	recs  []sdk.Record
	next  int64
	size  int64 // sum of Record.Size of recs
	arena []byte
}

// lossError says that a partition no longer holds an offset: the broker
// answered OFFSET_OUT_OF_RANGE (retention or DeleteRecords removed it, or
// the partition was recreated and is shorter now).
type lossError struct {
	p      tp
	offset int64
}

func (e *lossError) Error() string {
	return fmt.Sprintf("partition %s no longer holds offset %d", e.p.name(), e.offset)
}

// fetchSpans fetches every span exactly: records at offsets in [from, until),
// nothing before or after. It fetches in rounds, one request per leader per
// round, partBytes per partition (doubled for a partition that makes no
// progress). With budget > 0 it starts no new round once the records fetched
// weigh budget bytes or more; spans may then be incomplete (next < until).
//
// An offset the broker no longer holds is a *lossError. A span past the
// partition's high watermark is an error naming the partition and offsets.
// Retriable errors are retried until request_timeout passes without progress.
func (c *conn) fetchSpans(ctx context.Context, spans []span, budget int64, partBytes int32) (map[tp]*got, error) {
	res := make(map[tp]*got, len(spans))
	limit := map[tp]int32{}
	var active []span
	for _, s := range spans {
		res[s.tp] = &got{next: s.from, recs: make([]sdk.Record, 0, min(max(s.until-s.from, 0), 1<<16))}
		if s.from < s.until {
			active = append(active, s)
			limit[s.tp] = partBytes
		}
	}
	var total atomic.Int64
	stalls := map[tp]int{}
	lastProgress := time.Now()
	wait := 20 * time.Millisecond
	for len(active) > 0 {
		if budget > 0 && total.Load() >= budget {
			break
		}
		topics := map[string]bool{}
		for _, s := range active {
			topics[s.topic] = true
		}
		l, err := c.metadata(ctx, keys(topics))
		if err != nil {
			return nil, err
		}
		byLeader := map[int][]span{}
		var unknown []span
		for _, s := range active {
			if id, ok := l.leaders[s.tp]; ok && id >= 0 {
				byLeader[id] = append(byLeader[id], s)
			} else {
				unknown = append(unknown, s)
			}
		}
		type outcome struct {
			s        span
			progress bool
			err      error
			again    bool // retriable
		}
		var mu sync.Mutex
		var outs []outcome
		var wg sync.WaitGroup
		for _, group := range byLeader {
			wg.Add(1)
			go func(group []span) {
				defer wg.Done()
				o := c.fetchRound(ctx, group, res, limit, &total)
				mu.Lock()
				for i, s := range group {
					outs = append(outs, outcome{s: s, progress: o[i].progress, err: o[i].err, again: o[i].again})
				}
				mu.Unlock()
			}(group)
		}
		wg.Wait()
		for _, s := range unknown {
			outs = append(outs, outcome{s: s, again: true, err: c.errorf("partition %s: no leader known yet", s.name())})
		}
		next := active[:0:0]
		progress := false
		var lastErr error
		for _, o := range outs {
			g := res[o.s.tp]
			switch {
			case o.err != nil && !o.again:
				return nil, o.err
			case o.err != nil:
				lastErr = o.err
			case o.progress:
				progress = true
				stalls[o.s.tp] = 0
			default:
				// The partition has the offsets but sent none at or after
				// next: a batch larger than the limit, or a compacted batch
				// that ends before its last offset. Ask for more bytes.
				stalls[o.s.tp]++
				if stalls[o.s.tp] > 8 {
					return nil, c.errorf("partition %s: fetching offset %d returns no record at or after it (tried up to %d bytes)", o.s.name(), g.next, limit[o.s.tp])
				}
				limit[o.s.tp] = int32(min(int64(limit[o.s.tp])*2, 1<<30))
			}
			if g.next < o.s.until {
				next = append(next, o.s)
			}
		}
		active = next
		if progress {
			lastProgress = time.Now()
			wait = 20 * time.Millisecond
			continue
		}
		if lastErr == nil {
			continue // stalls: asked again with more bytes
		}
		if time.Since(lastProgress) > c.timeout {
			return nil, fmt.Errorf("%w (no progress for request_timeout %v)", lastErr, c.timeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
	return res, nil
}

// roundResult is one partition's part of a fetch round.
type roundResult struct {
	progress bool
	again    bool
	err      error
}

// fetchRound sends one fetch request for spans (all led by one broker) and
// adds what it brings to res.
func (c *conn) fetchRound(ctx context.Context, spans []span, res map[tp]*got, limit map[tp]int32, total *atomic.Int64) []roundResult {
	out := make([]roundResult, len(spans))
	req := &fetchapi.Request{ReplicaID: -1, MaxWaitTime: 500, MinBytes: 1, SessionID: -1, SessionEpoch: -1}
	index := map[tp]int{}
	var sum int64
	for i, s := range spans {
		index[s.tp] = i
		ti := -1
		for j := range req.Topics {
			if req.Topics[j].Topic == s.topic {
				ti = j
			}
		}
		if ti < 0 {
			req.Topics = append(req.Topics, fetchapi.RequestTopic{Topic: s.topic})
			ti = len(req.Topics) - 1
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, fetchapi.RequestPartition{
			Partition:          s.part,
			CurrentLeaderEpoch: -1,
			FetchOffset:        res[s.tp].next,
			LogStartOffset:     -1,
			PartitionMaxBytes:  limit[s.tp],
		})
		sum += int64(limit[s.tp])
	}
	req.MaxBytes = int32(min(sum, 1<<30))
	cctx, cancel := c.call(ctx)
	defer cancel()
	m, err := c.transport.RoundTrip(cctx, c.client.Addr, req)
	if err != nil {
		for i, s := range spans {
			out[i] = roundResult{again: retriable(err), err: c.brokerErr("fetch "+s.name(), err)}
		}
		return out
	}
	resp := m.(*fetchapi.Response)
	answered := make([]bool, len(spans))
	for _, t := range resp.Topics {
		for pi := range t.Partitions {
			rp := &t.Partitions[pi]
			p := tp{topic: t.Topic, part: rp.Partition}
			i, ok := index[p]
			if !ok {
				continue
			}
			answered[i] = true
			s, g := spans[i], res[p]
			if rp.ErrorCode != 0 {
				ke := kafkago.Error(rp.ErrorCode)
				if ke == kafkago.OffsetOutOfRange {
					out[i] = roundResult{err: &lossError{p: p, offset: g.next}}
				} else {
					out[i] = roundResult{again: retriable(ke), err: c.errorf("fetch partition %s at offset %d: %w", p.name(), g.next, ke)}
				}
				continue
			}
			before, size := g.next, g.size
			if err := g.add(rp.RecordSet.Records, s.until, p.name()); err != nil {
				out[i] = roundResult{err: c.errorf("fetch partition %s at offset %d: decoding records: %w", p.name(), before, err)}
				continue
			}
			total.Add(g.size - size)
			if g.next > before {
				out[i].progress = true
				continue
			}
			if rp.HighWatermark <= g.next {
				out[i] = roundResult{err: c.errorf("partition %s ends at offset %d (high watermark), but offsets up to %d are wanted: were records removed by an unclean leader election, or the topic recreated?", p.name(), rp.HighWatermark, s.until)}
			}
		}
	}
	for i, s := range spans {
		if !answered[i] && out[i].err == nil {
			out[i] = roundResult{again: true, err: c.errorf("fetch partition %s: the broker did not answer for it", s.name())}
		}
	}
	return out
}

// add appends the records of rr at offsets in [g.next, until) to g, as
// records of partition name, and moves g.next past every offset it looked at.
func (g *got) add(rr protocol.RecordReader, until int64, name string) error {
	if rr == nil {
		return nil
	}
	batches := []protocol.RecordReader{rr}
	if st, ok := rr.(*protocol.RecordStream); ok {
		batches = st.Records
	}
	for _, b := range batches {
		_, control := b.(*protocol.ControlBatch)
		for {
			r, err := b.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			off := r.Offset
			switch {
			case off < g.next:
				closeRecord(r)
				continue
			case off >= until:
				closeRecord(r)
				g.next = until
				return nil
			case control:
				closeRecord(r)
				g.next = off + 1
				continue
			}
			// A null value (not an empty one) is a tombstone.
			rec := sdk.Record{Position: sdk.Position{Partition: name, Offset: off}, Tombstone: r.Value == nil}
			if rec.Key, err = g.copyBytes(r.Key); err != nil {
				return err
			}
			if rec.Value, err = g.copyBytes(r.Value); err != nil {
				return err
			}
			if len(r.Headers) > 0 {
				rec.Headers = make([]sdk.Header, len(r.Headers))
				for i, h := range r.Headers {
					rec.Headers[i] = sdk.Header{Key: h.Key, Value: g.copySlice(h.Value)}
				}
			}
			if ms := r.Time.UnixMilli(); ms >= 0 && !r.Time.IsZero() {
				rec.Timestamp = time.UnixMilli(ms).UTC()
			}
			g.recs = append(g.recs, rec)
			g.size += int64(rec.Size())
			g.next = off + 1
		}
	}
	return nil
}

func closeRecord(r *protocol.Record) {
	if r.Key != nil {
		r.Key.Close()
	}
	if r.Value != nil {
		r.Value.Close()
	}
}

// alloc returns n bytes of g's arena.
func (g *got) alloc(n int) []byte {
	if cap(g.arena)-len(g.arena) < n {
		g.arena = make([]byte, 0, max(n, 256<<10))
	}
	at := len(g.arena)
	g.arena = g.arena[:at+n]
	return g.arena[at : at+n : at+n]
}

// copyBytes copies a record's key or value into g's arena and closes it; a
// null stays nil.
func (g *got) copyBytes(b protocol.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	dst := g.alloc(b.Len())
	if _, err := io.ReadFull(b, dst); err != nil {
		return nil, err
	}
	return dst, nil
}

func (g *got) copySlice(b []byte) []byte {
	if b == nil {
		return nil
	}
	dst := g.alloc(len(b))
	copy(dst, b)
	return dst
}

// await returns once some partition of at may hold records at or after its
// offset in at (a fetch long-poll, one per leader, that returns as soon as
// the broker has a byte for it), or once d has passed. It reports no errors:
// the caller looks at the partitions again either way.
func (c *conn) await(ctx context.Context, at map[tp]int64, d time.Duration) {
	if len(at) == 0 || d <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, d+c.timeout)
	defer cancel()
	topics := map[string]bool{}
	for p := range at {
		topics[p.topic] = true
	}
	l, err := c.metadata(ctx, keys(topics))
	if err != nil {
		sleep(ctx, min(d, 100*time.Millisecond))
		return
	}
	byLeader := map[int]*fetchapi.Request{}
	for p, off := range at {
		id, ok := l.leaders[p]
		if !ok {
			continue
		}
		req := byLeader[id]
		if req == nil {
			req = &fetchapi.Request{ReplicaID: -1, MaxWaitTime: int32(max(d.Milliseconds(), 1)), MinBytes: 1, MaxBytes: 1, SessionID: -1, SessionEpoch: -1}
			byLeader[id] = req
		}
		ti := -1
		for j := range req.Topics {
			if req.Topics[j].Topic == p.topic {
				ti = j
			}
		}
		if ti < 0 {
			req.Topics = append(req.Topics, fetchapi.RequestTopic{Topic: p.topic})
			ti = len(req.Topics) - 1
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, fetchapi.RequestPartition{
			Partition: p.part, CurrentLeaderEpoch: -1, FetchOffset: off, LogStartOffset: -1, PartitionMaxBytes: 1,
		})
	}
	if len(byLeader) == 0 {
		sleep(ctx, min(d, 100*time.Millisecond))
		return
	}
	start := time.Now()
	done := make(chan bool, len(byLeader))
	for _, req := range byLeader {
		go func(req *fetchapi.Request) {
			m, err := c.transport.RoundTrip(ctx, c.client.Addr, req)
			if err != nil {
				done <- false
				return
			}
			for _, t := range m.(*fetchapi.Response).Topics {
				for _, rp := range t.Partitions {
					if rp.ErrorCode != 0 || rp.HighWatermark > at[tp{topic: t.Topic, part: rp.Partition}] {
						done <- true
						return
					}
				}
			}
			done <- false
		}(req)
	}
	for range byLeader {
		select {
		case woke := <-done:
			if woke {
				return
			}
		case <-ctx.Done():
			return
		}
	}
	// Every poll came back empty or failed: do not spin when they failed fast.
	if rest := min(d, 100*time.Millisecond) - time.Since(start); rest > 0 {
		sleep(ctx, rest)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
