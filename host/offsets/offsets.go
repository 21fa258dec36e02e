// Package offsets shows a pipeline's committed offsets and recent batches,
// and moves its offsets (`connectd offsets show` and `offsets reset`).
package offsets

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/sdk"
)

// Batch is one batch as shown to a user.
type Batch struct {
	Batch     int64       `json:"batch"`
	Kind      string      `json:"kind"`
	Time      time.Time   `json:"time"`
	Records   int64       `json:"records"`
	Committed bool        `json:"committed"`
	From      sdk.Offsets `json:"from"`
	Until     sdk.Offsets `json:"until"`
	Note      string      `json:"note,omitempty"`
}

// State is what `offsets show` prints for one pipeline, or for one task of
// a pipeline that runs as several (Pipeline is then the task's name).
type State struct {
	Pipeline string `json:"pipeline"`
	// Task says which task of which pipeline block Pipeline is; nil for a
	// pipeline that runs as one task.
	Task       *Task       `json:"task,omitempty"`
	Checkpoint string      `json:"checkpoint"`
	Committed  sdk.Offsets `json:"committed"`
	LastBatch  int64       `json:"last_committed_batch"`
	Pending    *Batch      `json:"uncommitted_batch"`
	Batches    []Batch     `json:"batches"`
	// Owner is the connectd worker that holds the pipeline's lease (see
	// package cluster); nil when no worker ever ran it.
	Owner *Owner `json:"owner,omitempty"`
}

// Owner is who runs a pipeline among connectd workers.
type Owner struct {
	Worker string    `json:"worker"` // "" when the lease is free
	Epoch  int64     `json:"epoch"`  // one more at every takeover
	Since  time.Time `json:"since"`  // when Worker took it (or it was released)
	Live   bool      `json:"live"`   // the holder is a live worker and the lease has not expired
}

// Task is one task of a pipeline that runs as several (its parallelism).
type Task struct {
	Group string `json:"group"` // the pipeline block's name
	Index int    `json:"index"` // in [0, Count)
	Count int    `json:"count"` // the pipeline's parallelism
}

// Show reads the state of the checkpoint, keeping the last n batches.
func Show(cp *checkpoint.Store, pipeline string, n int) State {
	planned, ok, committed := cp.Last()
	st := State{Pipeline: pipeline, Checkpoint: cp.Where(), Committed: cp.Committed(), LastBatch: committed, Batches: []Batch{}}
	hist := cp.History()
	if n < 0 {
		n = 0 // --last -1 must not slice past the end
	}
	if len(hist) > n {
		hist = hist[len(hist)-n:]
	}
	for _, b := range hist {
		st.Batches = append(st.Batches, Batch{Batch: b.Batch, Kind: b.Kind, Time: b.Time, Records: b.Records, Committed: b.Committed, From: b.From, Until: b.Until, Note: b.Note})
	}
	if ok && planned.Batch > committed {
		st.Pending = &Batch{Batch: planned.Batch, Kind: planned.Kind, Time: planned.Time, Records: planned.Records, From: planned.From, Until: planned.Until, Note: planned.Note}
	}
	return st
}

// WriteJSON writes states as one JSON object (one pipeline) or an array.
func WriteJSON(w io.Writer, states []State) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(states) == 1 {
		return enc.Encode(states[0])
	}
	return enc.Encode(states)
}

// WriteText writes states for a person: committed offsets in Spark's JSON
// form, then the recent batches with their ranges.
func WriteText(w io.Writer, states []State) {
	for i, st := range states {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if t := st.Task; t != nil {
			fmt.Fprintf(w, "pipeline %q, task %d of %d: %q (checkpoint %s)\n", t.Group, t.Index, t.Count, st.Pipeline, st.Checkpoint)
		} else {
			fmt.Fprintf(w, "pipeline %q (checkpoint %s)\n", st.Pipeline, st.Checkpoint)
		}
		fmt.Fprintf(w, "committed offsets: %s\n", st.Committed)
		if o := st.Owner; o != nil {
			switch {
			case o.Worker == "":
				fmt.Fprintf(w, "owner: none, lease free since %s (epoch %d)\n", o.Since.Local().Format("2006-01-02 15:04:05"), o.Epoch)
			case o.Live:
				fmt.Fprintf(w, "owner: worker %q since %s (lease epoch %d)\n", o.Worker, o.Since.Local().Format("2006-01-02 15:04:05"), o.Epoch)
			default:
				fmt.Fprintf(w, "owner: worker %q since %s (lease epoch %d), not live: another worker takes it over\n", o.Worker, o.Since.Local().Format("2006-01-02 15:04:05"), o.Epoch)
			}
		}
		if st.LastBatch == 0 {
			fmt.Fprintln(w, "no batch committed yet")
		} else {
			fmt.Fprintf(w, "last committed batch: %d\n", st.LastBatch)
		}
		if st.Pending != nil {
			fmt.Fprintf(w, "uncommitted batch %d (replayed at the next start): %s\n", st.Pending.Batch, describe(st.Pending.From, st.Pending.Until))
		}
		if len(st.Batches) == 0 {
			continue
		}
		fmt.Fprintf(w, "last %d batches:\n", len(st.Batches))
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  BATCH\tSTATE\tRECORDS\tTIME\tRANGES")
		for _, b := range st.Batches {
			state := "committed"
			if !b.Committed {
				state = "uncommitted"
			}
			if b.Kind == "reset" {
				state = "reset"
			}
			what := describe(b.From, b.Until)
			if b.Kind == "reset" {
				what = "moved to " + b.Until.String()
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%s\n", b.Batch, state, b.Records, b.Time.Local().Format("2006-01-02 15:04:05"), what)
		}
		tw.Flush()
	}
}

func describe(from, until sdk.Offsets) string {
	var parts []string
	for _, r := range sdk.RangesOf(from, until) {
		if r.From == r.Until {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s [%d,%d)", r.Partition, r.From, r.Until))
	}
	if len(parts) == 0 {
		return "to " + until.String()
	}
	if len(parts) > 4 {
		parts = append(parts[:4], fmt.Sprintf("+%d more", len(parts)-4))
	}
	return strings.Join(parts, ", ")
}

// UnknownPartitionError is a reset to offsets naming a partition the
// pipeline has never had: the source would refuse it at the next run, so the
// reset is refused instead.
type UnknownPartitionError struct {
	Partitions []string // the partitions named in --to the checkpoint does not know, sorted
	Known      []string // the partitions the checkpoint knows, sorted
}

// Error names the unknown partitions and lists the known ones.
func (e *UnknownPartitionError) Error() string {
	q := func(names []string) string {
		s := make([]string, len(names))
		for i, n := range names {
			s[i] = strconv.Quote(n)
		}
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("--to: unknown partition(s) %s: the pipeline has never had them; it knows %s", q(e.Partitions), q(e.Known))
}

// Target resolves what `offsets reset --to` accepts into the offsets the
// pipeline continues from:
//
//	earliest     every partition the checkpoint knows starts at its earliest offset (-2)
//	latest       every partition the checkpoint knows starts at its latest offset (-1)
//	{"t":{"0":5}} Spark's JSON form: the partitions named move there, the others keep their committed offsets
//	batch:<id>   the start of batch <id>, so it and every later batch run again
//
// The partitions the checkpoint knows are those of its committed offsets and
// of its last planned batch. Offsets naming a partition outside them are
// refused with an *UnknownPartitionError, unless the checkpoint knows no
// partition yet (a pipeline that never ran: nothing to check against).
func Target(cp *checkpoint.Store, to string) (sdk.Offsets, error) {
	known := func() sdk.Offsets {
		o := cp.Committed().Clone()
		if o == nil {
			o = sdk.Offsets{}
		}
		if p, ok, _ := cp.Last(); ok {
			for k := range p.Until {
				if _, c := o[k]; !c {
					o[k] = sdk.Earliest // never committed: it starts where the source's config says
				}
			}
		}
		return o
	}
	switch {
	case to == "earliest" || to == "latest":
		v := sdk.Earliest
		if to == "latest" {
			v = sdk.Latest
		}
		o := known()
		for k := range o {
			o[k] = v
		}
		return o, nil
	case strings.HasPrefix(to, "batch:"):
		id, err := strconv.ParseInt(strings.TrimPrefix(to, "batch:"), 10, 64)
		if err != nil || id < 1 {
			return nil, fmt.Errorf("--to %q: want batch:<id> with a batch id >= 1", to)
		}
		b, ok := cp.Find(id)
		if !ok {
			h := cp.History()
			if len(h) == 0 {
				return nil, fmt.Errorf("--to %q: the checkpoint holds no batches", to)
			}
			return nil, fmt.Errorf("--to %q: batch %d is not in the checkpoint's history (it keeps batches %d to %d)", to, id, h[0].Batch, h[len(h)-1].Batch)
		}
		return b.From.Clone(), nil
	case strings.HasPrefix(strings.TrimSpace(to), "{"):
		var named sdk.Offsets
		if err := named.UnmarshalJSON([]byte(to)); err != nil { // its error shows the expected form
			return nil, fmt.Errorf("--to: %w", err)
		}
		k := known()
		if len(k) == 0 {
			return named, nil
		}
		var unknown []string
		for p := range named {
			if _, ok := k[p]; !ok {
				unknown = append(unknown, p)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return nil, &UnknownPartitionError{Partitions: unknown, Known: k.Partitions()}
		}
		o := cp.Committed().Clone()
		if o == nil {
			o = sdk.Offsets{}
		}
		for p, v := range named {
			o[p] = v
		}
		return o, nil
	}
	return nil, fmt.Errorf(`--to %q: want earliest, latest, batch:<id> or offsets as JSON such as '{"topic":{"0":23}}'`, to)
}

// Change is one partition's move by a reset.
type Change struct {
	Partition string
	From, To  int64 // sdk.Earliest or sdk.Latest for the source's ends
	Was, Is   bool  // the partition has a committed offset before, after the reset
}

// Changes lists the partitions whose committed offset differs between before
// and after a reset, sorted by partition. A partition in only one of them has
// no committed offset on the other side: there the source's config decides
// where it starts.
func Changes(before, after sdk.Offsets) []Change {
	var out []Change
	for _, p := range before.Merge(after).Partitions() {
		b, was := before[p]
		a, is := after[p]
		if was == is && b == a {
			continue
		}
		out = append(out, Change{Partition: p, From: b, To: a, Was: was, Is: is})
	}
	return out
}

// WriteChanges prints what a reset changed, one partition per line as
// "  gen/0: 12 → 5", or that no committed offset changed.
func WriteChanges(w io.Writer, changes []Change) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "  no committed offset changed")
		return
	}
	name := func(o int64, ok bool) string {
		if !ok {
			return "none (the source's config decides)"
		}
		return offsetName(o)
	}
	for _, c := range changes {
		fmt.Fprintf(w, "  %s: %s → %s\n", c.Partition, name(c.From, c.Was), name(c.To, c.Is))
	}
}

// offsetName renders an offset, naming the source's two ends.
func offsetName(o int64) string {
	switch o {
	case sdk.Earliest:
		return "earliest"
	case sdk.Latest:
		return "latest"
	}
	return strconv.FormatInt(o, 10)
}
