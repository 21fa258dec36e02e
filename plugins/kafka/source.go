package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/connectd/connectd/sdk"
	kafkago "github.com/segmentio/kafka-go"
)

// SourceSpec is the kafka source's spec.
var SourceSpec = sdk.Spec{
	Name:    "kafka",
	Version: Version,
	Kind:    sdk.KindSource,
	Summary: "Reads Kafka topics as planned offset ranges (Spark's Direct approach): replayable, never joins a consumer group.",
	Capabilities: []sdk.Capability{
		sdk.CapReplayable, sdk.CapSplittable,
	},
	Params: append([]sdk.Param{
		brokersParam,
		{Name: "topics", Type: sdk.TypeStrings, Required: true, Pattern: topicPattern,
			Doc: `Topics to read. Their partitions are named "topic/partition" in offsets and checkpoints. In a pipeline with parallelism N, partition n of topic t belongs to task (FNV-1a(t) + n) mod N, partitions added later included.`},
		{Name: "starting_offsets", Type: sdk.TypeString, Default: "latest", Pattern: `(?s)\s*(earliest|latest|group|\{.*\})\s*`,
			Doc: `Where a pipeline with nothing in its checkpoint starts: "earliest", "latest", "group" (the committed offsets of group_id, so an existing consumer moves onto connectd without reprocessing; partitions the group has no offset for start at earliest), or Spark's JSON form {"topic":{"0":23,"1":-1}} with -2 = earliest and -1 = latest (partitions it leaves out start at earliest). Used only when the checkpoint holds no partition of the topics; partitions added later always start at earliest.`},
		{Name: "group_id", Type: sdk.TypeString, Default: "",
			Doc: `Consumer group to which ACK commits each finished batch's until offsets (a standalone commit: the source never joins the group), so Kafka's tools show the pipeline's lag. Empty: no commits. Correctness never depends on these commits.`},
		{Name: "on_data_loss", Type: sdk.TypeString, Default: "fail", Enum: []string{"fail", "earliest"},
			Doc: `What to do when the offset to read next is gone (removed by retention or DeleteRecords, or past the end of a recreated topic): "fail" stops with an error naming the partition, the wanted offset and the earliest available one; "earliest" logs a warning and goes on from the earliest offset.`},
		{Name: "discovery_interval", Type: sdk.TypeDuration, Default: "5s", Min: "1ms",
			Doc: "How often the topics' partitions are looked up again; added partitions are read from their earliest offset."},
		{Name: "fetch_max_bytes", Type: sdk.TypeInt, Default: int64(1 << 20), Min: 1024, Max: 1 << 30,
			Doc: "Most bytes asked for per partition in one fetch request (the broker sends at least one record batch whatever its size)."},
	}, connParams()...),
}

// Source is the kafka source. It reads the partitions of its topics as
// ranges planned from their end offsets and never joins a consumer group.
//
// Records come in a fixed order that depends only on each partition's range:
// partitions sorted by topic then number, records taken round-robin from
// them, one at a time, in offset order. A Replay of a batch's ranges thus
// returns exactly the records, in the order, that the Read returned, as long
// as Kafka still holds them (retention and compaction may remove them; a
// replay then fails and says so).
//
// Run as one of several tasks (sdk.Config.Tasks > 1), it reads, ends and
// replays only the partitions taskOf gives its task, and refuses offsets
// that name another task's partition.
//
// The host calls it from one goroutine at a time.
type Source struct {
	c          *conn
	topics     []string
	topicSet   map[string]bool
	starting   string      // earliest, latest, group or json
	startJSON  sdk.Offsets // when starting is json
	group      string
	toEarliest bool // on_data_loss = earliest
	partBytes  int32

	// task and tasks are sdk.Config's Task and Tasks: taskOf says which
	// partitions are this task's.
	task, tasks int

	// pins keeps, for partitions whose start the checkpoint does not hold
	// yet (or holds as -2/-1), the real offset it was resolved to, so that
	// "latest" stays where it was first resolved until a batch is planned.
	pins map[tp]pin
	// jumps keeps the on_data_loss = "earliest" decisions: wanted → earliest.
	jumps map[tp]jump
	// groupFound is set once starting_offsets = "group" found offsets: a
	// partition added later without one is no error.
	groupFound bool
	rr         int     // rotates which partitions get the records a quota cannot split evenly
	avg        float64 // average bytes per record on the wire, to size fetches
	warn       warner
}

type pin struct{ want, got int64 }

type jump struct{ from, to int64 }

// absent is the pin.want of a partition missing from the from map.
const absent = -100

var (
	_ sdk.Source   = (*Source)(nil)
	_ sdk.Replayer = (*Source)(nil)
	_ sdk.Ender    = (*Source)(nil)
)

// Open checks the configuration. It does not contact the brokers.
func (s *Source) Open(_ context.Context, cfg sdk.Config) error {
	s.task, s.tasks = cfg.Task, max(cfg.Tasks, 1)
	s.topics = cfg.Strings("topics")
	s.topicSet = map[string]bool{}
	if len(s.topics) == 0 {
		return sdk.Configf("topics is empty; give at least one topic")
	}
	for _, t := range s.topics { // their form is checked by the spec's rules
		if s.topicSet[t] {
			return sdk.Configf("topic %q is listed twice", t)
		}
		s.topicSet[t] = true
	}
	s.group = cfg.String("group_id")
	switch st := strings.TrimSpace(cfg.String("starting_offsets")); {
	case st == "earliest" || st == "latest":
		s.starting = st
	case st == "group":
		if s.group == "" {
			return sdk.Configf(`starting_offsets = "group" needs group_id, the consumer group to take the offsets from`)
		}
		s.starting = st
	case strings.HasPrefix(st, "{"):
		var o sdk.Offsets
		if err := json.Unmarshal([]byte(st), &o); err != nil {
			return sdk.Configf("starting_offsets: %w", err)
		}
		for name := range o {
			p, ok := parseTP(name)
			if !ok {
				return sdk.Configf("starting_offsets: %q is not a topic and a partition number", name)
			}
			if !s.topicSet[p.topic] {
				return sdk.Configf("starting_offsets names topic %q, which is not in topics %q", p.topic, s.topics)
			}
		}
		s.starting, s.startJSON = "json", o
	default: // the spec's pattern lets nothing else through
		return sdk.Configf(`starting_offsets is %q; want "earliest", "latest", "group" or JSON such as {"topic":{"0":23,"1":-1}}`, st)
	}
	// on_data_loss, discovery_interval and fetch_max_bytes are checked by
	// the spec's rules.
	s.toEarliest = cfg.String("on_data_loss") == "earliest"
	disc := cfg.Duration("discovery_interval")
	s.partBytes = int32(cfg.Int("fetch_max_bytes"))
	c, err := dial(cfg, "kafka source", s.topics, disc)
	if err != nil {
		return err
	}
	s.c = c
	s.pins = map[tp]pin{}
	s.jumps = map[tp]jump{}
	return nil
}

// partitions returns every partition of the topics that belongs to this
// task (all of them for a single task), sorted.
func (s *Source) partitions(ctx context.Context) ([]tp, error) {
	if s.c == nil {
		return nil, fmt.Errorf("kafka source: not open")
	}
	l, err := s.c.metadata(ctx, s.topics)
	if err != nil {
		return nil, err
	}
	var out []tp
	for _, t := range s.topics {
		if e := l.missing[t]; e != nil {
			return nil, s.c.errorf("topic %q: %v (brokers %s)", t, e, strings.Join(s.c.brokers, ","))
		}
		for _, p := range l.parts[t] {
			if s.owns(p) {
				out = append(out, p)
			}
		}
	}
	sortTPs(out)
	return out, nil
}

// starts returns where every partition of parts starts for a read from from,
// as real offsets. See the starting_offsets parameter for partitions missing
// from from.
func (s *Source) starts(ctx context.Context, from sdk.Offsets, parts []tp) (map[tp]int64, error) {
	fresh := true
	for _, p := range parts {
		if _, ok := from[p.name()]; ok {
			fresh = false
			break
		}
	}
	out := make(map[tp]int64, len(parts))
	var unpinned, initial []tp
	for _, p := range parts {
		off, ok := from[p.name()]
		switch {
		case ok && off >= 0:
			delete(s.pins, p)
			out[p] = off
			continue
		case !ok:
			off = absent
		}
		if pn, ok := s.pins[p]; ok && pn.want == off {
			out[p] = pn.got
			continue
		}
		unpinned = append(unpinned, p)
		if off == absent {
			initial = append(initial, p)
		} else {
			out[p] = off
		}
	}
	if len(initial) > 0 {
		if fresh {
			init, err := s.initial(ctx, initial, parts)
			if err != nil {
				return nil, err
			}
			for p, off := range init {
				out[p] = off
			}
		} else {
			for _, p := range initial {
				out[p] = sdk.Earliest // added since the pipeline started
			}
		}
	}
	var special []tp
	for _, p := range unpinned {
		if out[p] < 0 {
			special = append(special, p)
		}
	}
	if len(special) > 0 {
		b, err := s.c.offsets(ctx, special, true)
		if err != nil {
			return nil, err
		}
		for _, p := range special {
			if out[p] == sdk.Earliest {
				out[p] = b[p].first
			} else {
				out[p] = b[p].last
			}
		}
	}
	for _, p := range unpinned {
		want, ok := from[p.name()]
		if !ok {
			want = absent
		}
		s.pins[p] = pin{want: want, got: out[p]}
	}
	for p, j := range s.jumps {
		if off, ok := out[p]; ok && off == j.from {
			out[p] = j.to
		}
	}
	return out, nil
}

// initial returns the starting_offsets of partitions ps of a fresh pipeline
// whose topics have the partitions all, possibly -2 or -1.
func (s *Source) initial(ctx context.Context, ps, all []tp) (map[tp]int64, error) {
	out := make(map[tp]int64, len(ps))
	switch s.starting {
	case "earliest", "latest":
		v := sdk.Earliest
		if s.starting == "latest" {
			v = sdk.Latest
		}
		for _, p := range ps {
			out[p] = v
		}
	case "json":
		known := map[string]bool{}
		for _, p := range all {
			known[p.name()] = true
		}
		for _, p := range ps {
			out[p] = sdk.Earliest
			if v, ok := s.startJSON[p.name()]; ok {
				out[p] = v
			}
		}
		for name := range s.startJSON {
			if p, _ := parseTP(name); !known[name] && s.owns(p) { // the owner of a missing partition says so
				return nil, s.c.errorf("starting_offsets names partition %q, which does not exist", name)
			}
		}
	case "group":
		topics := map[string][]int{}
		for _, p := range ps {
			topics[p.topic] = append(topics[p.topic], int(p.part))
		}
		var resp *kafkago.OffsetFetchResponse
		err := s.c.retry(ctx, "offset fetch", func(cctx context.Context) (bool, error) {
			var err error
			resp, err = s.c.client.OffsetFetch(cctx, &kafkago.OffsetFetchRequest{GroupID: s.group, Topics: topics})
			if err == nil {
				err = resp.Error
			}
			if errors.Is(err, kafkago.GroupIdNotFound) {
				resp, err = &kafkago.OffsetFetchResponse{}, nil // no commits: said below
			}
			if err != nil {
				return retriable(err), s.c.brokerErr(fmt.Sprintf("starting_offsets = \"group\": fetching the offsets of consumer group %q", s.group), err)
			}
			return false, nil
		})
		if err != nil {
			return nil, err
		}
		found := 0
		for _, p := range ps {
			out[p] = sdk.Earliest
		}
		for topic, parts := range resp.Topics {
			for _, po := range parts {
				p := tp{topic: topic, part: int32(po.Partition)}
				if _, want := out[p]; !want {
					continue
				}
				if po.Error != nil {
					return nil, s.c.errorf("starting_offsets = \"group\": offset of consumer group %q for partition %s: %v", s.group, p.name(), po.Error)
				}
				if po.CommittedOffset >= 0 {
					out[p] = po.CommittedOffset
					found++
					s.groupFound = true
				}
			}
		}
		if found == 0 && !s.groupFound {
			return nil, s.c.errorf(`starting_offsets = "group": consumer group %q has no committed offset for any partition of %q; check group_id, or start with "earliest" or "latest"`, s.group, s.topics)
		}
	}
	return out, nil
}

// lost decides what happens when partition p no longer holds offset want:
// an error naming the partition, the wanted and the earliest offsets, or
// (on_data_loss = "earliest") the earliest offset to go on from.
func (s *Source) lost(ctx context.Context, p tp, want int64) (int64, error) {
	b, err := s.c.offsets(ctx, []tp{p}, true)
	if err != nil {
		return 0, err
	}
	first, last := b[p].first, b[p].last
	if want >= first && want <= last {
		return want, nil // it came back (a leader moved); go on
	}
	if !s.toEarliest {
		if want < first {
			return 0, s.c.errorf(`partition %s: offset %d is no longer available, the earliest offset is %d (retention or DeleteRecords removed offsets %d to %d); set on_data_loss = "earliest" to skip them, or move the pipeline with "connectd offsets reset"`, p.name(), want, first, want, first-1)
		}
		return 0, s.c.errorf(`partition %s: offset %d is past the partition's end %d (earliest %d): was the topic deleted and recreated? set on_data_loss = "earliest" to read from the earliest offset, or move the pipeline with "connectd offsets reset"`, p.name(), want, last, first)
	}
	s.warn.warn(s.c.log, "loss "+p.name(), "offset gone: going on from the earliest offset, as on_data_loss = \"earliest\" asks",
		"partition", p.name(), "wanted", want, "earliest", first, "end", last)
	s.jumps[p] = jump{from: want, to: first}
	return first, nil
}

// Read returns the next batch: it asks for every partition's end offset,
// plans a range per partition (at most limits.MaxRecords offsets in all,
// shared evenly among the partitions that have records), fetches exactly
// those ranges, and cuts the result at limits.MaxBytes. With nothing to read
// it waits for records (a fetch long-poll) until limits.MaxWait has passed,
// or returns at once in drain mode (limits.Stop set), where partitions
// missing from Stop are not read.
//
// From and Until hold every partition of the topics, so that the checkpoint
// keeps where "latest" and added partitions were resolved to.
func (s *Source) Read(ctx context.Context, from sdk.Offsets, limits sdk.Limits) (sdk.Read, error) {
	if err := s.foreign("the batch's start", from); err != nil {
		return sdk.Read{}, err
	}
	deadline := time.Now().Add(limits.MaxWait)
	for {
		parts, err := s.partitions(ctx)
		if err != nil {
			return sdk.Read{}, err
		}
		starts, err := s.starts(ctx, from, parts)
		if err != nil {
			return sdk.Read{}, err
		}
		b, err := s.c.offsets(ctx, parts, false)
		if err != nil {
			return sdk.Read{}, err
		}
		for _, p := range parts {
			if starts[p] > b[p].last {
				if starts[p], err = s.lost(ctx, p, starts[p]); err != nil {
					return sdk.Read{}, err
				}
			}
		}
		end := make(map[tp]int64, len(parts))
		idle := map[tp]int64{}
		var avail int64
		for _, p := range parts {
			e := b[p].last
			if limits.Stop != nil {
				if stop, ok := limits.Stop[p.name()]; ok {
					e = min(e, stop)
				} else {
					e = starts[p] // drain mode: only what End saw
				}
			}
			e = max(e, starts[p])
			end[p] = e
			avail += e - starts[p]
			if e == starts[p] {
				idle[p] = starts[p]
			}
		}
		if avail == 0 {
			if limits.Stop != nil || !time.Now().Before(deadline) {
				return s.result(parts, starts, nil, 0), nil
			}
			s.c.await(ctx, idle, time.Until(deadline))
			if err := ctx.Err(); err != nil {
				return sdk.Read{}, err
			}
			continue
		}
		spans := s.plan(parts, starts, end, limits.MaxRecords)
		got, err := s.c.fetchSpans(ctx, spans, limits.MaxBytes, s.fetchBytes(spans))
		var le *lossError
		if errors.As(err, &le) {
			if _, err := s.lost(ctx, le.p, le.offset); err != nil {
				return sdk.Read{}, err
			}
			continue
		}
		if err != nil {
			return sdk.Read{}, err
		}
		s.learn(got)
		return s.result(parts, starts, got, limits.MaxBytes), nil
	}
}

// plan shares maxRecords among the partitions with records between start
// and end: each gets an even share or all it has, whichever is less, what
// is left over goes to the others, and the last few records a share cannot
// split go to partitions in turn from one Read to the next.
func (s *Source) plan(parts []tp, start, end map[tp]int64, maxRecords int) []span {
	type want struct {
		p     tp
		avail int64
		q     int64
	}
	var ws []*want
	for _, p := range parts {
		if a := end[p] - start[p]; a > 0 {
			ws = append(ws, &want{p: p, avail: a})
		}
	}
	byAvail := append([]*want(nil), ws...)
	sort.SliceStable(byAvail, func(i, j int) bool { return byAvail[i].avail < byAvail[j].avail })
	left := int64(max(maxRecords, 1))
	for i, w := range byAvail {
		share := left / int64(len(byAvail)-i)
		w.q = min(w.avail, share)
		left -= w.q
	}
	if left > 0 && len(ws) > 0 {
		s.rr++
		for i := 0; i < len(ws) && left > 0; i++ {
			w := ws[(s.rr+i)%len(ws)]
			if w.q < w.avail {
				w.q++
				left--
			}
		}
	}
	spans := make([]span, 0, len(ws))
	for _, w := range ws {
		if w.q > 0 {
			spans = append(spans, span{tp: w.p, from: start[w.p], until: start[w.p] + w.q})
		}
	}
	return spans
}

// fetchBytes is how many bytes to ask for per partition to fetch spans in
// one round: what the longest span should weigh, within [16 KiB,
// fetch_max_bytes].
func (s *Source) fetchBytes(spans []span) int32 {
	if s.avg == 0 {
		return s.partBytes
	}
	var longest int64
	for _, sp := range spans {
		longest = max(longest, sp.until-sp.from)
	}
	want := float64(longest)*s.avg*1.25 + 16<<10
	return int32(min(want, float64(s.partBytes)))
}

// learn updates the average wire size of a record, which sizes fetches.
func (s *Source) learn(got map[tp]*got) {
	var n, size int64
	for _, g := range got {
		n += int64(len(g.recs))
		size += g.size
	}
	if n > 0 {
		avg := float64(size)/float64(n) + 24 // per-record overhead in a record batch
		if s.avg == 0 {
			s.avg = avg
		} else {
			s.avg = 0.8*s.avg + 0.2*avg
		}
	}
}

// interleave takes records round-robin from lists, one at a time, until
// they are exhausted or (maxBytes > 0) the next record would take the total
// past maxBytes. It returns the records and how many it took from each list.
func interleave(lists [][]sdk.Record, maxBytes int64) ([]sdk.Record, []int) {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make([]sdk.Record, 0, n)
	took := make([]int, len(lists))
	var size int64
	for {
		moved := false
		for i, l := range lists {
			if took[i] >= len(l) {
				continue
			}
			r := &l[took[i]]
			if maxBytes > 0 && len(out) > 0 && size+int64(r.Size()) > maxBytes {
				return out, took
			}
			size += int64(r.Size())
			out = append(out, *r)
			took[i]++
			moved = true
		}
		if !moved {
			return out, took
		}
	}
}

// result builds a Read from what was fetched.
func (s *Source) result(parts []tp, starts map[tp]int64, got map[tp]*got, maxBytes int64) sdk.Read {
	rd := sdk.Read{From: make(sdk.Offsets, len(parts)), Until: make(sdk.Offsets, len(parts))}
	lists := make([][]sdk.Record, len(parts))
	for i, p := range parts {
		if g := got[p]; g != nil {
			lists[i] = g.recs
		}
	}
	recs, took := interleave(lists, maxBytes)
	rd.Records = recs
	for i, p := range parts {
		rd.From[p.name()] = starts[p]
		until := starts[p]
		if g := got[p]; g != nil {
			if took[i] == len(g.recs) {
				until = g.next
			} else {
				until = g.recs[took[i]].Position.Offset
			}
		}
		rd.Until[p.name()] = until
	}
	return rd
}

// Replay reads the ranges [from, until) again and returns their records in
// the order Read returned them. A range Kafka no longer holds fails with an
// error naming the partition, the range and the earliest offset left.
func (s *Source) Replay(ctx context.Context, from, until sdk.Offsets) ([]sdk.Record, error) {
	if s.c == nil {
		return nil, fmt.Errorf("kafka source: not open")
	}
	if err := s.foreign("the replayed batch", until); err != nil {
		return nil, err
	}
	var spans []span
	for _, r := range sdk.RangesOf(from, until) {
		p, ok := parseTP(r.Partition)
		if !ok {
			return nil, s.c.errorf("cannot replay %q: not a \"topic/partition\" name", r.Partition)
		}
		if r.From < 0 || r.Until < r.From {
			return nil, s.c.errorf("cannot replay %s [%d, %d): want real offsets, from <= until", r.Partition, r.From, r.Until)
		}
		if r.Until > r.From {
			spans = append(spans, span{tp: p, from: r.From, until: r.Until})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].less(spans[j].tp) })
	got, err := s.c.fetchSpans(ctx, spans, 0, s.partBytes)
	var le *lossError
	if errors.As(err, &le) {
		msg := fmt.Sprintf("cannot replay partition %s [%d, %d): offset %d is no longer available", le.p.name(), from[le.p.name()], until[le.p.name()], le.offset)
		if b, err := s.c.offsets(ctx, []tp{le.p}, true); err == nil {
			msg += fmt.Sprintf(" (the partition holds offsets %d to %d now)", b[le.p].first, b[le.p].last)
		}
		return nil, s.c.errorf("%s; retention or DeleteRecords removed records of a batch that was not committed", msg)
	}
	if err != nil {
		return nil, err
	}
	lists := make([][]sdk.Record, len(spans))
	for i, sp := range spans {
		lists[i] = got[sp.tp].recs
	}
	recs, _ := interleave(lists, 0)
	return recs, nil
}

// End returns every partition's end offset now (its high watermark): drain
// mode reads up to it.
func (s *Source) End(ctx context.Context) (sdk.Offsets, error) {
	parts, err := s.partitions(ctx)
	if err != nil {
		return nil, err
	}
	b, err := s.c.offsets(ctx, parts, false)
	if err != nil {
		return nil, err
	}
	out := make(sdk.Offsets, len(parts))
	for _, p := range parts {
		out[p.name()] = b[p].last
	}
	return out, nil
}

// Ack commits until (the partitions of the topics) to the consumer group
// group_id with a standalone offset commit (generation -1, no member id), so
// Kafka's tools show the pipeline's lag. Without group_id it does nothing.
// A failed commit (one attempt, at most 5s) is logged as a warning (at most
// once a minute) and not returned: nothing depends on it, and the next Ack
// commits again.
func (s *Source) Ack(ctx context.Context, until sdk.Offsets) error {
	if s.c == nil || s.group == "" {
		return nil
	}
	topics := map[string][]kafkago.OffsetCommit{}
	for name, off := range until {
		p, ok := parseTP(name)
		if !ok || !s.topicSet[p.topic] || off < 0 {
			continue
		}
		topics[p.topic] = append(topics[p.topic], kafkago.OffsetCommit{Partition: int(p.part), Offset: off})
	}
	if len(topics) == 0 {
		return nil
	}
	// One attempt, bounded: a lag commit must not hold the pipeline up,
	// and the next Ack commits again.
	cctx, cancel := context.WithTimeout(ctx, min(s.c.timeout, 5*time.Second))
	defer cancel()
	resp, err := s.c.client.OffsetCommit(cctx, &kafkago.OffsetCommitRequest{
		GroupID: s.group, GenerationID: -1, MemberID: "", Topics: topics,
	})
	if err == nil {
	check:
		for topic, parts := range resp.Topics {
			for _, p := range parts {
				if p.Error != nil {
					err = fmt.Errorf("partition %s/%d: %w", topic, p.Partition, p.Error)
					break check
				}
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		s.warn.warn(s.c.log, "ack", "committing offsets to the consumer group failed; lag tools show old offsets (the pipeline is not affected)",
			"group_id", s.group, "error", err.Error())
	}
	return nil
}

// Close closes the connections to the brokers.
func (s *Source) Close(context.Context) error {
	s.c.close()
	return nil
}
