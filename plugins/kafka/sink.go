package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/sdk"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// The headers the sink adds to every record in mode "dedupe". A record that
// arrives with headers of these names (read from a topic another connectd
// pipeline wrote in that mode) has them replaced.
const (
	// HeaderPipeline holds the name of the pipeline that wrote the record.
	HeaderPipeline = "connectd-pipeline"
	// HeaderBatch holds "<batch id>:<hash of the batch's offset ranges>": the
	// hash tells a batch N of this run from a batch N written before the
	// pipeline's checkpoint was deleted.
	HeaderBatch = "connectd-batch"
	// HeaderSeq holds the record's index in its batch, from 0.
	HeaderSeq = "connectd-seq"
)

// SinkSpec is the kafka sink's spec.
var SinkSpec = sdk.Spec{
	Name:    "kafka",
	Version: Version,
	Kind:    sdk.KindSink,
	Summary: `Produces records to Kafka with acks=all and Java's murmur2 key partitioning; idempotent in mode "dedupe".`,
	When: []sdk.Conditional{
		{Capability: sdk.CapIdempotent, Param: "mode", Values: []string{"dedupe"}},
	},
	Params: append([]sdk.Param{
		brokersParam,
		{Name: "topic", Type: sdk.TypeString, Default: "", Pattern: `[a-zA-Z0-9._-]{0,249}`,
			Doc: "Topic to write to, unless topic_header names another for a record. A missing topic is an error unless create_topics is set."},
		{Name: "topic_header", Type: sdk.TypeString, Default: "",
			Doc: "Name of a record header whose value is the topic to write that record to; records without it go to topic."},
		{Name: "mode", Type: sdk.TypeString, Default: "plain", Enum: []string{"plain", "dedupe"},
			Doc: `"plain": at-least-once, a batch written again after a crash is written twice. "dedupe": exactly-once without transactions: every record carries the headers connectd-pipeline, connectd-batch and connectd-seq, and a batch written again first reads the tail of its target partitions and skips the records it already wrote. This assumes connectd is the only writer of those partitions.`},
		{Name: "compression", Type: sdk.TypeString, Default: "none", Enum: []string{"none", "gzip", "snappy", "lz4", "zstd"},
			Doc: `Compression of produced record batches: "none", "gzip", "snappy", "lz4" or "zstd".`},
		{Name: "create_topics", Type: sdk.TypeBool, Default: false,
			Doc: "Create a missing target topic with topic_partitions partitions and topic_replication replicas; otherwise a missing topic is an error."},
		{Name: "topic_partitions", Type: sdk.TypeInt, Default: int64(1), Min: 1,
			Doc: "Partitions of a topic created by create_topics."},
		{Name: "topic_replication", Type: sdk.TypeInt, Default: int64(-1), Min: -1,
			Doc: "Replication factor of a topic created by create_topics; -1 is the brokers' default."},
		{Name: "batch_bytes", Type: sdk.TypeInt, Default: int64(900 << 10), Min: 1024, Max: 1 << 30,
			Doc: "Most bytes of records (900 KiB by default) in one produce request per partition; keep it under the topic's max.message.bytes (1 MiB by default). A larger record goes alone."},
	}, connParams()...),
}

// Sink is the kafka sink. Records of a batch keep their order within each
// partition. A record with a key goes to partition murmur2(key) % partitions,
// as Java clients put it; records without a key are spread round-robin.
// Write returns once the brokers have acknowledged every record with
// acks=all.
//
// The host calls it from one goroutine at a time.
type Sink struct {
	c           *conn
	pipeline    string
	topic       string
	topicHeader string
	dedupe      bool
	compression kafkago.Compression
	batchBytes  int
	partBytes   int32
	failed      map[int64]bool // batches whose Write failed: scan before writing them again
	create      bool           // create_topics
	newParts    int
	newRepl     int
}

var (
	_ sdk.Sink   = (*Sink)(nil)
	_ sdk.Lister = (*Sink)(nil)
)

// Open checks the configuration. It does not contact the brokers.
func (s *Sink) Open(_ context.Context, cfg sdk.Config) error {
	s.pipeline = cfg.Pipeline
	s.topic = cfg.String("topic")
	s.topicHeader = cfg.String("topic_header")
	if s.topic == "" && s.topicHeader == "" {
		return sdk.Configf("set topic, topic_header or both")
	}
	// The spec's rules check topic's form, mode, compression, batch_bytes
	// and the bounds of topic_partitions and topic_replication.
	s.dedupe = cfg.String("mode") == "dedupe"
	if s.dedupe && cfg.Tasks > 1 {
		return sdk.Configf(`mode = "dedupe" assumes connectd is the only writer of the target partitions, but this pipeline runs as %d tasks (parallelism) that write them at once: a task writing a batch again would stop reading back at another task's records and write some twice; use mode = "dedupe" with parallelism = 1, or mode = "plain" (at-least-once)`, cfg.Tasks)
	}
	switch cfg.String("compression") {
	case "none":
		s.compression = 0
	case "gzip":
		s.compression = kafkago.Gzip
	case "snappy":
		s.compression = kafkago.Snappy
	case "lz4":
		s.compression = kafkago.Lz4
	case "zstd":
		s.compression = kafkago.Zstd
	}
	s.batchBytes = int(cfg.Int("batch_bytes"))
	s.create = cfg.Bool("create_topics")
	s.newParts, s.newRepl = int(cfg.Int("topic_partitions")), int(cfg.Int("topic_replication"))
	if s.newRepl == 0 {
		return sdk.Configf("topic_replication is 0; want 1 or more replicas, or -1 for the brokers' default")
	}
	s.partBytes = 1 << 20
	var topics []string
	if s.topicHeader == "" {
		topics = []string{s.topic}
	}
	c, err := dial(cfg, "kafka sink", topics, 5*time.Second)
	if err != nil {
		return err
	}
	s.c = c
	s.failed = map[int64]bool{}
	return nil
}

// route is where each record of a batch goes.
type route struct {
	topics  []string       // distinct target topics, in first-use order
	topicOf []string       // per record
	partOf  []int32        // per record
	count   map[tp]int     // records per target partition
	nparts  map[string]int // partitions per topic
}

// route picks every record's topic and partition.
func (s *Sink) route(ctx context.Context, b *sdk.Batch) (*route, error) {
	rt := &route{topicOf: make([]string, len(b.Records)), partOf: make([]int32, len(b.Records)), count: map[tp]int{}, nparts: map[string]int{}}
	seen := map[string]bool{}
	for i := range b.Records {
		t := s.topic
		if s.topicHeader != "" {
			if v := b.Records[i].Header(s.topicHeader); len(v) > 0 {
				t = string(v)
			}
		}
		if t == "" {
			return nil, s.c.errorf("batch %d: record %d (%s) has no %q header, and no topic is set", b.ID, i, b.Records[i].Position, s.topicHeader)
		}
		rt.topicOf[i] = t
		if !seen[t] {
			seen[t] = true
			rt.topics = append(rt.topics, t)
		}
	}
	l, err := s.c.metadata(ctx, rt.topics)
	if err != nil {
		return nil, err
	}
	if s.create && len(l.missing) > 0 {
		if l, err = s.createTopics(ctx, rt.topics, l); err != nil {
			return nil, err
		}
	}
	all := map[string][]int{}
	for _, t := range rt.topics {
		if e := l.missing[t]; e != nil {
			return nil, s.c.errorf("batch %d: topic %q: %v (brokers %s); the sink does not create topics", b.ID, t, e, strings.Join(s.c.brokers, ","))
		}
		n := len(l.parts[t])
		rt.nparts[t] = n
		ids := make([]int, n)
		for i := range ids {
			ids[i] = i
		}
		all[t] = ids
	}
	keyless := map[string]int64{}
	var bal kafkago.Murmur2Balancer
	for i := range b.Records {
		t := rt.topicOf[i]
		var p int
		if k := b.Records[i].Key; k != nil {
			p = bal.Balance(kafkago.Message{Key: k}, all[t]...)
		} else {
			// Round-robin, starting where the batch id says: deterministic,
			// so a batch written again lands where it landed before.
			p = int((b.ID + keyless[t]) % int64(rt.nparts[t]))
			keyless[t]++
		}
		rt.partOf[i] = int32(p)
		rt.count[tp{topic: t, part: int32(p)}]++
	}
	return rt, nil
}

// createTopics creates the topics l says are missing and returns the layout
// of topics once they are there.
func (s *Sink) createTopics(ctx context.Context, topics []string, l layout) (layout, error) {
	req := &kafkago.CreateTopicsRequest{}
	for t := range l.missing {
		req.Topics = append(req.Topics, kafkago.TopicConfig{Topic: t, NumPartitions: s.newParts, ReplicationFactor: s.newRepl})
	}
	cctx, cancel := s.c.call(ctx)
	defer cancel()
	resp, err := s.c.client.CreateTopics(cctx, req)
	if err != nil {
		return l, s.c.brokerErr("create topics", err)
	}
	for t, e := range resp.Errors {
		if e != nil && !errors.Is(e, kafkago.TopicAlreadyExists) {
			return l, s.c.errorf("create topic %q: %w", t, e)
		}
	}
	err = s.c.retry(ctx, "metadata of created topics", func(cctx context.Context) (bool, error) {
		l, err = s.c.metadata(cctx, topics)
		if err == nil && len(l.missing) > 0 {
			for t, e := range l.missing {
				err = s.c.errorf("topic %q was created but is not in the metadata yet: %v", t, e)
			}
			return true, err
		}
		return false, err
	})
	return l, err
}

// Partition returns the partition a record with key goes to in a topic of n
// partitions: murmur2(key) & 0x7fffffff % n, as Java's default partitioner
// computes it. A nil key returns -1 (such records are spread round-robin).
func Partition(key []byte, n int) int {
	if key == nil || n <= 0 {
		return -1
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return kafkago.Murmur2Balancer{}.Balance(kafkago.Message{Key: key}, ids...)
}

// batchID is the value of HeaderBatch for b.
func batchID(b *sdk.Batch) string {
	h := fnv.New32a()
	h.Write([]byte(b.From.String()))
	h.Write([]byte{'|'})
	h.Write([]byte(b.Until.String()))
	return fmt.Sprintf("%d:%08x", b.ID, h.Sum32())
}

// Write produces the batch's records, partition by partition in batch
// order, and returns when every one is acknowledged by all in-sync
// replicas. In mode "dedupe", a batch that may have been written before
// (b.Replay, or a failed Write of it in this process) is first looked for at
// the tail of its target partitions, and the records found there are not
// written again. An error names the batch, the partition and the records
// that failed.
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	if s.c == nil {
		return fmt.Errorf("kafka sink: not open")
	}
	if len(b.Records) == 0 {
		return nil
	}
	rt, err := s.route(ctx, &b)
	if err != nil {
		return err
	}
	id := batchID(&b)
	deadline := time.Now().Add(s.c.timeout)
	wait := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var skip map[int]bool
		if s.dedupe && (b.Replay || s.failed[b.ID] || attempt > 0) {
			if skip, err = s.written(ctx, &b, rt, id); err != nil {
				s.failed[b.ID] = true
				return err
			}
		}
		err = s.produce(ctx, &b, rt, id, skip)
		if err == nil {
			delete(s.failed, b.ID)
			return nil
		}
		if s.dedupe {
			s.failed[b.ID] = true
		}
		// In dedupe mode a retriable failure is retried here, after looking
		// at what made it: a produce that timed out may have been written.
		if !s.dedupe || !retriable(err) || time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			return err
		}
		sleep(ctx, wait)
		wait = min(2*wait, time.Second)
	}
}

// produce writes the records of b not in skip. Partitions are written
// concurrently, each one's records in order, batch_bytes at a time.
func (s *Sink) produce(ctx context.Context, b *sdk.Batch, rt *route, id string, skip map[int]bool) error {
	byPart := map[tp][]int{}
	var order []tp
	for i := range b.Records {
		if skip[i] {
			continue
		}
		p := tp{topic: rt.topicOf[i], part: rt.partOf[i]}
		if _, ok := byPart[p]; !ok {
			order = append(order, p)
		}
		byPart[p] = append(byPart[p], i)
	}
	errs := make([]error, len(order))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for n, p := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func(n int, p tp) {
			defer wg.Done()
			defer func() { <-sem }()
			errs[n] = s.producePartition(ctx, b, p, byPart[p], id)
		}(n, p)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// producePartition writes the records idx of b to partition p.
func (s *Sink) producePartition(ctx context.Context, b *sdk.Batch, p tp, idx []int, id string) error {
	now := time.Now()
	for len(idx) > 0 {
		n, size := 0, 0
		for n < len(idx) && (n == 0 || size+b.Records[idx[n]].Size() <= s.batchBytes) {
			size += b.Records[idx[n]].Size()
			n++
		}
		chunk := idx[:n]
		idx = idx[n:]
		recs := make([]protocol.Record, len(chunk))
		arena := make([]byte, 0, size) // the records' bytes, which the request may read after Write returned (detach)
		for j, i := range chunk {
			r := detach(&b.Records[i], &arena)
			recs[j] = s.record(&r, i, id, now)
		}
		what := func() string {
			return fmt.Sprintf("batch %d: producing records %d to %d of the batch (%d records, the first from %s) to partition %s",
				b.ID, chunk[0], chunk[len(chunk)-1], len(chunk), b.Records[chunk[0]].Position, p.name())
		}
		send := func(cctx context.Context) (bool, error) {
			resp, err := s.c.client.Produce(cctx, &kafkago.ProduceRequest{
				Topic:        p.topic,
				Partition:    int(p.part),
				RequiredAcks: kafkago.RequireAll,
				Records:      protocol.NewRecordReader(recs...),
				Compression:  s.compression,
			})
			if err == nil && resp != nil && resp.Error != nil {
				err = resp.Error
			}
			if err == nil && resp != nil {
				for i, e := range resp.RecordErrors {
					err = fmt.Errorf("record %d: %w", chunk[min(i, len(chunk)-1)], e)
					break
				}
			}
			if err != nil {
				return retriable(err), s.c.brokerErr(what(), err)
			}
			return false, nil
		}
		var err error
		if s.dedupe {
			// No blind retry: Write looks at the partition before trying again.
			cctx, cancel := s.c.call(ctx)
			_, err = send(cctx)
			cancel()
		} else {
			err = s.c.retry(ctx, "produce", send)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// record turns the i-th record of a batch into a Kafka record: key, value,
// headers and timestamp (now when the record has none), plus the dedupe
// headers in mode "dedupe". A tombstone gets Kafka's null value (what log
// compaction deletes a key for); any other record a value, empty or not.
func (s *Sink) record(r *sdk.Record, i int, id string, now time.Time) protocol.Record {
	ts := r.Timestamp
	if ts.IsZero() {
		ts = now
	}
	out := protocol.Record{Time: ts, Key: protocol.NewBytes(r.Key)}
	switch {
	case r.Tombstone:
		// out.Value stays nil: Kafka's null value.
	case r.Value == nil:
		out.Value = protocol.NewBytes([]byte{}) // empty, not null
	default:
		out.Value = protocol.NewBytes(r.Value)
	}
	if len(r.Headers) > 0 || s.dedupe {
		hs := make([]protocol.Header, 0, len(r.Headers)+3)
		for _, h := range r.Headers {
			if s.dedupe && (h.Key == HeaderPipeline || h.Key == HeaderBatch || h.Key == HeaderSeq) {
				continue
			}
			hs = append(hs, protocol.Header{Key: h.Key, Value: h.Value})
		}
		if s.dedupe {
			hs = append(hs,
				protocol.Header{Key: HeaderPipeline, Value: []byte(s.pipeline)},
				protocol.Header{Key: HeaderBatch, Value: []byte(id)},
				protocol.Header{Key: HeaderSeq, Value: strconv.AppendInt(nil, int64(i), 10)},
			)
		}
		out.Headers = hs
	}
	return out
}

// written returns the indexes of the records of b that are already in Kafka.
// For every partition of the target topics it reads back from the end over
// the records this pipeline wrote for b (its name and b's HeaderBatch) and
// for later batches, collecting the HeaderSeq of b's, and stops at the first
// record of an earlier batch or of another writer: the records of b come
// after those of earlier batches as long as connectd is the only writer of
// the partition. (The host only writes the last planned batch again; reading
// past later batches is for a sink asked to rewrite an older one, up to
// maxSkip records of later batches per partition.)
func (s *Sink) written(ctx context.Context, b *sdk.Batch, rt *route, id string) (map[int]bool, error) {
	var parts []tp
	for _, t := range rt.topics {
		for p := 0; p < rt.nparts[t]; p++ {
			parts = append(parts, tp{topic: t, part: int32(p)})
		}
	}
	bnd, err := s.c.offsets(ctx, parts, true)
	if err != nil {
		return nil, s.c.errorf("batch %d: looking for what an earlier attempt wrote: %w", b.ID, err)
	}
	found := map[int]bool{}
	window := map[tp]int64{}
	for _, p := range parts {
		window[p] = int64(rt.count[p]) + 1
	}
	maxSkip := max(int64(16*len(b.Records)), 100000)
	for len(parts) > 0 {
		spans := make([]span, 0, len(parts))
		for _, p := range parts {
			bd := bnd[p]
			if bd.last > bd.first {
				spans = append(spans, span{tp: p, from: max(bd.first, bd.last-window[p]), until: bd.last})
			}
		}
		got, err := s.c.fetchSpans(ctx, spans, 0, s.partBytes)
		if err != nil {
			return nil, s.c.errorf("batch %d: reading back the tail of the target partitions: %w", b.ID, err)
		}
		var again []tp
		for _, sp := range spans {
			recs := got[sp.tp].recs
			var skipped int64
			j := len(recs) - 1
		walk:
			for ; j >= 0; j-- {
				r := &recs[j]
				if string(r.Header(HeaderPipeline)) != s.pipeline {
					break
				}
				switch v := string(r.Header(HeaderBatch)); {
				case v == id:
					seq, err := strconv.Atoi(string(r.Header(HeaderSeq)))
					if err != nil || seq < 0 {
						break walk
					}
					if seq >= len(b.Records) {
						// A record of this batch past the ones this Write
						// holds: an earlier attempt wrote more of the batch
						// than this one carries (a fault point's partial
						// write of a replay gets a prefix). Walk on: the
						// records of this Write are further back.
						skipped++
						continue
					}
					found[seq] = true
				case laterBatch(v, b.ID):
					skipped++
				default:
					break walk
				}
			}
			if j < 0 && sp.from > bnd[sp.tp].first && skipped < maxSkip {
				window[sp.tp] *= 2 // the run may go on before the window
				again = append(again, sp.tp)
			}
		}
		parts = again
	}
	if len(found) > 0 {
		s.c.log.Info("batch written again: skipping the records an earlier attempt wrote",
			"batch", b.ID, "records", len(b.Records), "already written", len(found))
	}
	return found, nil
}

// laterBatch reports whether a HeaderBatch value names a batch after id.
func laterBatch(v string, id int64) bool {
	n, _, ok := strings.Cut(v, ":")
	if !ok {
		return false
	}
	x, err := strconv.ParseInt(n, 10, 64)
	return err == nil && x > id
}

// List returns the value of every record in topic (the topic parameter),
// from the earliest offset to the end; in mode "dedupe" only the records
// this pipeline wrote. It is for the conformance suite.
func (s *Sink) List(ctx context.Context) ([][]byte, error) {
	if s.c == nil {
		return nil, fmt.Errorf("kafka sink: not open")
	}
	if s.topic == "" {
		return nil, s.c.errorf("List needs the topic parameter")
	}
	l, err := s.c.metadata(ctx, []string{s.topic})
	if err != nil {
		return nil, err
	}
	if e := l.missing[s.topic]; e != nil {
		return nil, s.c.errorf("topic %q: %v", s.topic, e)
	}
	bnd, err := s.c.offsets(ctx, l.parts[s.topic], true)
	if err != nil {
		return nil, err
	}
	var spans []span
	for _, p := range l.parts[s.topic] {
		spans = append(spans, span{tp: p, from: bnd[p].first, until: bnd[p].last})
	}
	got, err := s.c.fetchSpans(ctx, spans, 0, 4<<20)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, sp := range spans {
		for _, r := range got[sp.tp].recs {
			if s.dedupe && string(r.Header(HeaderPipeline)) != s.pipeline {
				continue
			}
			out = append(out, r.Value)
		}
	}
	return out, nil
}

// Close closes the connections to the brokers.
func (s *Sink) Close(context.Context) error {
	s.c.close()
	return nil
}
