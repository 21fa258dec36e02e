// Package generator owns the "generator" source: deterministic, replayable test and benchmark records.
package generator

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/connectd/connectd/sdk"
)

// Group is the group of every generator partition: partitions are named
// "generator/0" … "generator/<partitions-1>".
const Group = "generator"

// Plugin is the generator plugin: a source only.
var Plugin = sdk.Plugin{
	Source: &sdk.SourcePlugin{Spec: Spec, New: func() sdk.Source { return &Source{} }},
}

// Spec is the generator source's spec.
var Spec = sdk.Spec{
	Name:    "generator",
	Version: "0.1.0",
	Kind:    sdk.KindSource,
	Summary: "Deterministic, replayable records with unique ids, for tests, demos and benchmarks.",
	Capabilities: []sdk.Capability{
		sdk.CapReplayable, sdk.CapSplittable,
	},
	Params: []sdk.Param{
		{Name: "count", Type: sdk.TypeInt, Default: int64(0), Min: 0,
			Doc: "Total number of records across all partitions; 0 means unbounded (drain mode needs a count)."},
		{Name: "partitions", Type: sdk.TypeInt, Default: int64(1), Min: 1, Max: 1 << 20,
			Doc: `Number of partitions, named "generator/0" … "generator/<partitions-1>"; record i (0-based) goes to partition i % partitions at offset i / partitions. In a pipeline with parallelism N, task k reads the partitions p with p % N == k (a task with none reads nothing).`},
		{Name: "size", Type: sdk.TypeInt, Default: int64(100), Min: 0, Max: 64 << 20,
			Doc: `Length in bytes of each record's value, the JSON object {"id":"<partition>-<offset>","partition":p,"offset":o,"pad":"…"} padded to this length; a value never gets shorter than the object with an empty pad (45 bytes for the first record, more as offsets grow).`},
		{Name: "rate", Type: sdk.TypeInt, Default: int64(0), Min: 0,
			Doc: "Records per second across all partitions (with parallelism, each task takes its partitions' share); 0 means as fast as possible. After an idle stretch at most 100ms worth of records come at once."},
		{Name: "seed", Type: sdk.TypeInt, Default: int64(0),
			Doc: "Changes the padding bytes (ids, keys, positions and timestamps stay the same)."},
	},
}

// Source is the generator source. Record i (0-based, across partitions) lives
// in partition i % partitions at offset i / partitions; its key is its id
// "<partition>-<offset>", its value the JSON object described in Spec, its
// timestamp the Unix epoch plus i milliseconds (UTC). Reads return records in
// global index order, interleaving partitions, so a Replay of a range returns
// exactly what the Read of that range returned.
//
// Run as task k of N (sdk.Config.Task, Tasks), it owns the partitions p
// with p % N == k: it reads, replays and ends only those, and refuses
// offsets that name another task's partition (the pipeline's parallelism
// changed since they were written).
//
// Records returned by one Read share one buffer; nobody may modify them.
type Source struct {
	parts int64 // number of partitions
	count int64 // total records, 0 = unbounded
	size  int   // value length
	rate  float64
	fill  []byte   // padding table, see padLen
	names []string // partition names

	// task and tasks are the task the source runs for: it owns the
	// partitions p with p % tasks == task, listed in owned (ascending).
	task, tasks int64
	owned       []int64

	// rate limiting: records are paid for up to time paid.
	paid time.Time
}

var (
	_ sdk.Source   = (*Source)(nil)
	_ sdk.Replayer = (*Source)(nil)
	_ sdk.Ender    = (*Source)(nil)
)

// fillWindow is how many different starting points the padding table offers;
// record i's padding starts at a position derived from i.
const fillWindow = 4093 // prime

// maxPrealloc bounds the value buffer allocated up front for one batch; past
// it, append grows the buffer (records already sliced from it stay valid).
const maxPrealloc = 256 << 20

// fillAlphabet holds the padding characters: none needs JSON escaping.
const fillAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Open reads the configuration.
func (s *Source) Open(_ context.Context, cfg sdk.Config) error {
	s.count = cfg.Int("count")
	s.parts = cfg.Int("partitions")
	size := cfg.Int("size")
	rate := cfg.Int("rate")
	seed := cfg.Int("seed")
	// The spec's rules bound count, partitions, size and rate.
	s.size = int(size)
	s.rate = float64(rate)
	s.names = make([]string, s.parts)
	for p := range s.names {
		s.names[p] = sdk.JoinPartition(Group, strconv.Itoa(p))
	}
	s.task, s.tasks = int64(cfg.Task), int64(max(cfg.Tasks, 1))
	s.owned = s.owned[:0]
	for p := s.task; p < s.parts; p += s.tasks {
		s.owned = append(s.owned, p)
	}
	if s.tasks > 1 {
		s.rate = s.rate * float64(len(s.owned)) / float64(s.parts) // 0 without partitions: nothing to pace
	}
	// A padding table of size+fillWindow characters drawn by a seeded
	// xorshift: record i's pad is a slice of it, so generating one is a copy.
	s.fill = make([]byte, s.size+fillWindow)
	x := uint64(seed)*0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D
	for i := range s.fill {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		s.fill[i] = fillAlphabet[(x>>32)%uint64(len(fillAlphabet))]
	}
	s.paid = time.Time{}
	return nil
}

// partLen returns how many records partition p holds (MaxInt64 when unbounded).
func (s *Source) partLen(p int64) int64 {
	if s.count == 0 {
		return math.MaxInt64
	}
	if p >= s.count {
		return 0
	}
	return (s.count - p + s.parts - 1) / s.parts
}

// partition parses a partition name into its number.
func (s *Source) partition(name string) (int64, error) {
	g, part := sdk.SplitPartition(name)
	if g == Group {
		if p, err := strconv.ParseInt(part, 10, 64); err == nil && p >= 0 && p < s.parts && strconv.FormatInt(p, 10) == part {
			if p%s.tasks != s.task {
				return 0, sdk.Configf("partition %q belongs to task %d of %d, not to this task %d: were these offsets written with another parallelism? Move the pipeline's tasks with \"connectd offsets reset\"",
					name, p%s.tasks, s.tasks, s.task)
			}
			return p, nil
		}
	}
	// A configuration error: offsets naming it fail again on every retry, until
	// the partitions or the offsets are changed.
	return 0, sdk.Configf("unknown partition %q: this generator has %d partition(s), %q to %q",
		name, s.parts, s.names[0], s.names[s.parts-1])
}

// resolve turns a from offset into a real one: -2 → 0, -1 → the end of a
// bounded partition (0 for an unbounded one, which has no end).
func (s *Source) resolve(name string, p, off int64) (int64, error) {
	switch {
	case off == sdk.Earliest:
		return 0, nil
	case off == sdk.Latest:
		if s.count == 0 {
			return 0, nil
		}
		return s.partLen(p), nil
	case off < 0:
		return 0, fmt.Errorf("generator: offset %d for %q: want >= 0, -2 (earliest) or -1 (latest)", off, name)
	}
	return off, nil
}

// cursor is one partition's place in a merge: next offset, end (exclusive).
type cursor struct {
	p, next, end int64
}

// merger yields records of several partitions' ranges in global index order
// (index = offset*parts + partition), using a binary min-heap of cursors.
type merger struct {
	parts int64
	h     []cursor
}

func (m *merger) key(c cursor) int64 { return c.next*m.parts + c.p }

func (m *merger) push(c cursor) {
	if c.next >= c.end {
		return
	}
	m.h = append(m.h, c)
	i := len(m.h) - 1
	for i > 0 {
		up := (i - 1) / 2
		if m.key(m.h[up]) <= m.key(m.h[i]) {
			break
		}
		m.h[up], m.h[i] = m.h[i], m.h[up]
		i = up
	}
}

// top returns the cursor holding the smallest global index.
func (m *merger) top() (cursor, bool) {
	if len(m.h) == 0 {
		return cursor{}, false
	}
	return m.h[0], true
}

// advance moves the top cursor one record on.
func (m *merger) advance() {
	m.h[0].next++
	if m.h[0].next >= m.h[0].end {
		last := len(m.h) - 1
		m.h[0] = m.h[last]
		m.h = m.h[:last]
	}
	if len(m.h) > 1 {
		m.down(0)
	}
}

func (m *merger) down(i int) {
	n := len(m.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		small := l
		if r := l + 1; r < n && m.key(m.h[r]) < m.key(m.h[l]) {
			small = r
		}
		if m.key(m.h[i]) <= m.key(m.h[small]) {
			return
		}
		m.h[i], m.h[small] = m.h[small], m.h[i]
		i = small
	}
}

// digits returns the number of decimal digits of n >= 0.
func digits(n int64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// fixedLen is the length of a value with an empty pad:
// {"id":"P-O","partition":P,"offset":O,"pad":""}.
func fixedLen(p, o int64) int {
	return len(`{"id":"-","partition":,"offset":,"pad":""}`) + 2*digits(p) + 2*digits(o)
}

// valueLen is the length of the value of record (p, o).
func (s *Source) valueLen(p, o int64) int {
	return max(s.size, fixedLen(p, o))
}

// recordSize is the Record.Size of record (p, o): key (the id) plus value.
func (s *Source) recordSize(p, o int64) int {
	return digits(p) + 1 + digits(o) + s.valueLen(p, o)
}

// gen appends record (p, o)'s value to buf, fills *r with the record (in
// place: a Record is large and holds pointers) and returns buf.
func (s *Source) gen(r *sdk.Record, buf []byte, p, o int64) []byte {
	start := len(buf)
	buf = append(buf, `{"id":"`...)
	idStart := len(buf)
	buf = strconv.AppendInt(buf, p, 10)
	buf = append(buf, '-')
	buf = strconv.AppendInt(buf, o, 10)
	idEnd := len(buf)
	buf = append(buf, `","partition":`...)
	buf = strconv.AppendInt(buf, p, 10)
	buf = append(buf, `,"offset":`...)
	buf = strconv.AppendInt(buf, o, 10)
	buf = append(buf, `,"pad":"`...)
	i := o*s.parts + p
	if pad := s.size - (len(buf) - start) - 2; pad > 0 {
		at := int(uint64(i) * 0x9E3779B97F4A7C15 >> 33 % fillWindow)
		buf = append(buf, s.fill[at:at+pad]...)
	}
	buf = append(buf, '"', '}')
	v := buf[start:len(buf):len(buf)]
	*r = sdk.Record{
		Key:       v[idStart-start : idEnd-start : idEnd-start],
		Value:     v,
		Timestamp: time.UnixMilli(i).UTC(),
		Position:  sdk.Position{Partition: s.names[p], Offset: o},
	}
	return buf
}

// Read returns the next records at from, in global index order, within limits.
//
// A partition missing from from, or at -2, starts at 0; -1 means the end of a
// bounded generator (nothing more to read) and 0 for an unbounded one. From
// and Until hold every partition. When a bounded generator has nothing left
// before its end, Read waits MaxWait (nothing will come: this keeps a host
// from spinning) and returns an empty Read; when limits.Stop is set (drain
// mode) it returns at once.
func (s *Source) Read(ctx context.Context, from sdk.Offsets, limits sdk.Limits) (sdk.Read, error) {
	start, err := s.starts(from)
	if err != nil {
		return sdk.Read{}, err
	}
	deadline := time.Now().Add(limits.MaxWait)
	maxRecords := limits.MaxRecords
	if maxRecords <= 0 {
		maxRecords = 1
	}
	if s.rate > 0 {
		maxRecords = min(maxRecords, s.allowance(deadline))
	}

	m := merger{parts: s.parts, h: make([]cursor, 0, s.parts)}
	throttled := maxRecords == 0
	exhausted := true // every partition at its end (as opposed to held back by Stop)
	var remaining int64
	for _, p := range s.owned {
		end := s.partLen(p)
		if start[p] < end {
			exhausted = false
		}
		if stop, ok := limits.Stop[s.names[p]]; ok && stop < end {
			end = stop
		} else if !ok && limits.Stop != nil {
			end = start[p] // drain mode reads only the partitions Stop names
		}
		if start[p] < end {
			m.push(cursor{p: p, next: start[p], end: end})
			remaining += end - start[p]
			if remaining < 0 {
				remaining = math.MaxInt64
			}
		}
	}

	// Size the batch buffer once: n records of at most the largest value.
	n := int64(maxRecords)
	if remaining < n {
		n = remaining
	}
	if limits.MaxBytes > 0 && s.size > 0 {
		n = min(n, limits.MaxBytes/int64(s.size)+1)
	}

	n = min(n, 1<<20) // only sizes the preallocation; append grows past it

	rd := sdk.Read{From: make(sdk.Offsets, len(s.owned)), Until: make(sdk.Offsets, len(s.owned))}
	for _, p := range s.owned {
		rd.From[s.names[p]] = start[p]
		rd.Until[s.names[p]] = start[p]
	}

	if n > 0 {
		// No record of this batch has an offset past any cursor's next + n.
		var maxOff int64
		for _, c := range m.h {
			maxOff = max(maxOff, min(c.end-1, c.next+n))
		}
		buf := make([]byte, 0, min(n*int64(s.valueLen(s.parts-1, maxOff)), maxPrealloc))
		rd.Records = make([]sdk.Record, 0, n)
		until := append([]int64(nil), start...) // per partition; into rd.Until at the end
		var bytes int64
		for len(rd.Records) < maxRecords {
			c, ok := m.top()
			if !ok {
				break
			}
			if limits.MaxBytes > 0 {
				sz := int64(s.recordSize(c.p, c.next))
				if len(rd.Records) > 0 && bytes+sz > limits.MaxBytes {
					break
				}
				bytes += sz
			}
			rd.Records = append(rd.Records, sdk.Record{})
			buf = s.gen(&rd.Records[len(rd.Records)-1], buf, c.p, c.next)
			until[c.p] = c.next + 1
			m.advance()
		}
		for _, p := range s.owned {
			rd.Until[s.names[p]] = until[p]
		}
	}

	switch {
	case s.rate > 0 && len(rd.Records) > 0:
		s.paid = s.paid.Add(time.Duration(float64(len(rd.Records)) / s.rate * float64(time.Second)))
		if err := sleepUntil(ctx, s.paid); err != nil {
			return sdk.Read{}, err
		}
	case len(rd.Records) == 0 && ((exhausted && limits.Stop == nil) || throttled):
		if err := sleepUntil(ctx, deadline); err != nil {
			return sdk.Read{}, err
		}
	}
	return rd, nil
}

// allowance returns how many records the rate lets Read return by deadline,
// and moves the paid-up time forward over idle time (at most 100ms worth of
// records, and at least one, may come at once after idling).
func (s *Source) allowance(deadline time.Time) int {
	now := time.Now()
	burst := max(100*time.Millisecond, time.Duration(float64(time.Second)/s.rate))
	if floor := now.Add(-burst); s.paid.Before(floor) {
		s.paid = floor
	}
	n := math.Floor(deadline.Sub(s.paid).Seconds() * s.rate)
	if n < 0 {
		return 0
	}
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// starts resolves from into a starting offset per partition.
func (s *Source) starts(from sdk.Offsets) ([]int64, error) {
	if s.names == nil {
		return nil, fmt.Errorf("generator: source is not open")
	}
	start := make([]int64, s.parts)
	for name, off := range from {
		p, err := s.partition(name)
		if err != nil {
			return nil, err
		}
		if start[p], err = s.resolve(name, p, off); err != nil {
			return nil, err
		}
	}
	return start, nil
}

// Replay returns the records of [from, until) in global index order: the
// same records, in the same order, as the Read that returned that range.
// A partition missing from from is an empty range; until must hold real
// offsets within the generator's count.
func (s *Source) Replay(_ context.Context, from, until sdk.Offsets) ([]sdk.Record, error) {
	if s.names == nil {
		return nil, fmt.Errorf("generator: source is not open")
	}
	m := merger{parts: s.parts}
	var total int64
	for _, r := range sdk.RangesOf(from, until) {
		p, err := s.partition(r.Partition)
		if err != nil {
			return nil, err
		}
		f, err := s.resolve(r.Partition, p, r.From)
		if err != nil {
			return nil, err
		}
		switch {
		case r.Until < 0:
			return nil, fmt.Errorf("generator: replay of %q: until %d is not a real offset", r.Partition, r.Until)
		case r.Until < f:
			return nil, fmt.Errorf("generator: replay of %q: until %d is before from %d", r.Partition, r.Until, f)
		case r.Until > s.partLen(p):
			return nil, fmt.Errorf("generator: replay of %q: until %d is past the partition's end %d (count %d)", r.Partition, r.Until, s.partLen(p), s.count)
		}
		m.push(cursor{p: p, next: f, end: r.Until})
		total += r.Until - f
	}
	if total > 1<<30 {
		return nil, fmt.Errorf("generator: replay of %d records is too large", total)
	}
	recs := make([]sdk.Record, 0, total)
	buf := make([]byte, 0, min(total*int64(s.size+2), maxPrealloc))
	for {
		c, ok := m.top()
		if !ok {
			return recs, nil
		}
		recs = append(recs, sdk.Record{})
		buf = s.gen(&recs[len(recs)-1], buf, c.p, c.next)
		m.advance()
	}
}

// End returns every partition's record count when count is set; an
// unbounded generator has no end.
func (s *Source) End(context.Context) (sdk.Offsets, error) {
	if s.names == nil {
		return nil, fmt.Errorf("generator: source is not open")
	}
	if s.count == 0 {
		return nil, fmt.Errorf("generator: unbounded (count = 0) has no end; drain needs count set to the number of records")
	}
	end := make(sdk.Offsets, len(s.owned))
	for _, p := range s.owned {
		end[s.names[p]] = s.partLen(p)
	}
	return end, nil
}

// Ack does nothing: the generator keeps no state a commit could release.
func (s *Source) Ack(context.Context, sdk.Offsets) error { return nil }

// Close does nothing.
func (s *Source) Close(context.Context) error { return nil }
