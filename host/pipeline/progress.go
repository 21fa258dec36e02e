package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/sdk"
)

// Report describes one finished batch.
type Report struct {
	Pipeline  string
	Batch     int64
	Replay    bool  // the batch was replayed after a crash
	ReadAhead bool  // the batch was read while the previous one was written
	Records   int64 // read from the source
	Bytes     int64
	// Written is how many records the sink kept: Records after the
	// transforms, less what the sink rejected. Rejected counts the records
	// a transform, a processor or the sink rejected; DeadLetters those of
	// them written to the dead-letter sink.
	Written, Rejected, DeadLetters int64
	From                           sdk.Offsets
	Until                          sdk.Offsets
	Start                          time.Time
	Read                           time.Duration // asking the source (Read or Replay); a read ahead ran while the previous batch was written
	Plan                           time.Duration // appending offsets/N to the checkpoint
	Write                          time.Duration // the sink's Write
	Commit                         time.Duration // appending commits/N
	// PlanSync and CommitSync are the parts of Plan and Commit spent making
	// the append durable (fsync, or a PostgreSQL commit); 0 when the batch
	// had no such append (a replay is not planned again).
	PlanSync, CommitSync time.Duration
	Ack                  time.Duration // the source's Ack
	Total                time.Duration
	Source               string
	Sink                 string
	Delivered            int64 // records delivered by this run so far, this batch included
	// Drain is how far a drain is, when the run drains a source that tells
	// where its data ends (sdk.Ender); nil otherwise.
	Drain *Drain
}

// Drain is how far a drain is, by offsets: Total is the sum over the
// partitions of the source's end at the run's start minus the committed
// offset at the run's start (a partition without one counts from its first
// batch's start, or from 0 until it has one), Done the same sum up to the
// offsets committed now.
type Drain struct {
	Done, Total int64
	// ETA is how long the rest takes at this run's rate so far; 0 when
	// nothing is done yet.
	ETA time.Duration
}

// Percent is Done as a percentage of Total (100 when Total is 0).
func (d *Drain) Percent() float64 {
	if d.Total <= 0 {
		return 100
	}
	return 100 * float64(d.Done) / float64(d.Total)
}

// drainProgress computes a Drain from the offsets committed at the run's
// start (begin; a partition learns its start from the first batch that
// reads it: from, recorded in begin), the drain's end and the offsets
// committed now (until), after elapsed of the run.
func drainProgress(begin, end, from, until sdk.Offsets, elapsed time.Duration) *Drain {
	d := &Drain{}
	for p, e := range end {
		if e < 0 {
			continue
		}
		b, ok := begin[p]
		if !ok || b < 0 {
			if f, seen := from[p]; seen && f >= 0 {
				begin[p], b = f, f
			} else {
				b = 0
			}
		}
		d.Total += max(0, e-b)
		if u, ok := until[p]; ok && u >= 0 {
			d.Done += min(max(0, u-b), max(0, e-b))
		}
	}
	if d.Done > 0 && elapsed > 0 {
		d.ETA = time.Duration(float64(elapsed) * float64(d.Total-d.Done) / float64(d.Done))
	}
	return d
}

// Heartbeat is what a pipeline says when no batch finished for a while.
type Heartbeat struct {
	Pipeline  string
	State     State         // what the pipeline does: starting, recovering, running (waiting for records), paused or restarting
	Quiet     time.Duration // since the last batch finished (or the run started)
	Committed sdk.Offsets
}

// Heartbeater is a Progress that also shows heartbeats. Heartbeat reports
// whether it showed h; when no Progress shows it, the pipeline logs it.
type Heartbeater interface {
	Heartbeat(h Heartbeat) (shown bool)
}

// Rate is the batch's records per second over its whole duration.
func (r Report) Rate() float64 {
	if r.Total <= 0 {
		return 0
	}
	return float64(r.Records) / r.Total.Seconds()
}

// Progress receives a report after every batch, and Done once at the end.
type Progress interface {
	Batch(r Report)
	Done(pipeline string, batches, records int64, elapsed time.Duration)
}

// JSON writes one JSON object per batch, in the spirit of Spark's streaming
// query progress: batchId, numInputRows, rates, durationMs per phase, and the
// source's start and end offsets.
type JSON struct {
	mu sync.Mutex
	W  io.Writer
}

type jsonProgress struct {
	Name                   string           `json:"name"`
	Timestamp              string           `json:"timestamp"`
	BatchID                int64            `json:"batchId"`
	Replay                 bool             `json:"replay"`
	ReadAhead              bool             `json:"readAhead,omitempty"`
	NumInputRows           int64            `json:"numInputRows"`
	InputBytes             int64            `json:"inputBytes"`
	ProcessedRowsPerSecond float64          `json:"processedRowsPerSecond"`
	DurationMs             map[string]int64 `json:"durationMs"`
	Sources                []jsonSource     `json:"sources"`
	Sink                   jsonSink         `json:"sink"`
	Drain                  *jsonDrain       `json:"drain,omitempty"`
}

type jsonDrain struct {
	Done       int64   `json:"done"`
	Total      int64   `json:"total"`
	ETASeconds float64 `json:"etaSeconds"`
}

type jsonSource struct {
	Description  string      `json:"description"`
	StartOffset  sdk.Offsets `json:"startOffset"`
	EndOffset    sdk.Offsets `json:"endOffset"`
	NumInputRows int64       `json:"numInputRows"`
}

type jsonSink struct {
	Description   string `json:"description"`
	NumOutputRows int64  `json:"numOutputRows"`
}

// Batch writes r as one line of JSON.
func (j *JSON) Batch(r Report) {
	b, _ := json.Marshal(r)
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.W, "%s\n", b)
}

// MarshalJSON renders r as `--progress json` prints it.
func (r Report) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	p := jsonProgress{
		Name: r.Pipeline, Timestamp: r.Start.UTC().Format(time.RFC3339Nano), BatchID: r.Batch, Replay: r.Replay, ReadAhead: r.ReadAhead,
		NumInputRows: r.Records, InputBytes: r.Bytes, ProcessedRowsPerSecond: r.Rate(),
		DurationMs: map[string]int64{"read": ms(r.Read), "plan": ms(r.Plan), "write": ms(r.Write), "commit": ms(r.Commit), "ack": ms(r.Ack), "triggerExecution": ms(r.Total)},
		Sources:    []jsonSource{{Description: r.Source, StartOffset: r.From, EndOffset: r.Until, NumInputRows: r.Records}},
		Sink:       jsonSink{Description: r.Sink, NumOutputRows: r.Records},
	}
	if d := r.Drain; d != nil {
		p.Drain = &jsonDrain{Done: d.Done, Total: d.Total, ETASeconds: d.ETA.Seconds()}
	}
	return json.Marshal(p)
}

// Done does nothing: the per-batch objects say everything.
func (j *JSON) Done(string, int64, int64, time.Duration) {}

// Text writes a line per batch, or, when batches come faster than Every, one
// summary line per Every covering the batches since the last line.
type Text struct {
	W     io.Writer
	Every time.Duration

	mu      sync.Mutex
	last    time.Time
	first   int64
	batches int64
	records int64
	elapsed time.Duration
	report  Report
}

// Batch accounts for r and prints when a line is due.
func (t *Text) Batch(r Report) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.batches == 0 {
		t.first = r.Batch
	}
	t.batches++
	t.records += r.Records
	t.elapsed += r.Total
	t.report = r
	now := time.Now()
	if now.Sub(t.last) < t.Every && !r.Replay {
		return
	}
	t.flush(now)
}

func (t *Text) flush(now time.Time) {
	if t.batches == 0 {
		return
	}
	r := t.report
	ids := fmt.Sprintf("batch %d", r.Batch)
	if t.batches > 1 {
		ids = fmt.Sprintf("batches %d-%d", t.first, r.Batch)
	}
	rate := 0.0
	if t.elapsed > 0 {
		rate = float64(t.records) / t.elapsed.Seconds()
	}
	replay := ""
	if r.Replay {
		replay = " (replayed after a crash)"
	}
	drain := ""
	if d := r.Drain; d != nil {
		drain = fmt.Sprintf(", drained %d/%d (%.0f%%)", d.Done, d.Total, d.Percent())
		if d.Done < d.Total && d.ETA > 0 {
			drain += fmt.Sprintf(", ETA %s", d.ETA.Round(time.Second))
		}
	}
	fmt.Fprintf(t.W, "pipeline %q: %s%s: %d records, %.0f records/s, %d delivered in this run%s; last: %s\n",
		r.Pipeline, ids, replay, t.records, rate, r.Delivered, drain, ranges(r.From, r.Until, 3))
	t.last, t.batches, t.records, t.elapsed = now, 0, 0, 0
}

// Heartbeat prints that the pipeline is quiet, its state and its committed
// offsets.
func (t *Text) Heartbeat(h Heartbeat) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush(time.Now())
	fmt.Fprintf(t.W, "pipeline %q: %s, no batch for %s; committed %s\n", h.Pipeline, h.State, h.Quiet.Round(time.Second), h.Committed)
	return true
}

// Done prints what is left and a final summary.
func (t *Text) Done(pipeline string, batches, records int64, elapsed time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush(time.Now())
	rate := 0.0
	if elapsed > 0 {
		rate = float64(records) / elapsed.Seconds()
	}
	fmt.Fprintf(t.W, "pipeline %q: stopped after %d batches, %d records in %s (%.0f records/s)\n",
		pipeline, batches, records, elapsed.Round(time.Millisecond), rate)
}

// ranges renders the partitions a batch moved as "p from→until", at most max of them.
func ranges(from, until sdk.Offsets, max int) string {
	var parts []string
	more := 0
	for _, rg := range sdk.RangesOf(from, until) {
		if rg.From == rg.Until {
			continue
		}
		if len(parts) == max {
			more++
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d→%d", rg.Partition, rg.From, rg.Until))
	}
	if len(parts) == 0 {
		return "no ranges"
	}
	s := strings.Join(parts, ", ")
	if more > 0 {
		s += fmt.Sprintf(" (+%d partitions)", more)
	}
	return s
}
