package conformance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Pipeline names one of the pipelines the suite runs, for a Reader.
type Pipeline struct {
	// Name is the pipeline's name, unique to it: the value of CellEnv in its
	// processes, so also the topic, index or table its settings derive from it.
	Name string
	// Dir is the pipeline's working directory: its plugins run there, so a
	// relative path in their settings is relative to it.
	Dir string
}

// Reader reads back what the sink of one of the suite's pipelines stores,
// without the sink: through the system's own client (a Kafka consumer, a
// search request, a SQL SELECT) or the files the sink writes. It returns
// every stored value, one per stored copy, so that a record stored twice is
// returned twice; the suite takes each value's id with ID. It is called in
// the process that calls Run, after the pipeline's processes have ended, and
// may be called from several goroutines at once (one per pipeline).
type Reader func(ctx context.Context, p Pipeline) ([][]byte, error)

// ReadBackPrefix starts the Error of every cell whose output Options.Reader
// found different from what the sink's List said, or could not read.
const ReadBackPrefix = "read-back: "

// readBack reads a pipeline's output through Options.Reader and compares it
// with what the sink's List said (got). It returns what the reader found,
// which the cell is judged by, and an error when the two disagree or the
// reader failed (then got is returned unchanged).
func (s *suite) readBack(ctx context.Context, dir, name string, got *listed) (*listed, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	vals, err := s.o.Reader(ctx, Pipeline{Name: name, Dir: dir})
	if err != nil {
		return got, fmt.Errorf("%sthe Reader failed: %w", ReadBackPrefix, err)
	}
	read := &listed{Records: len(vals), IDs: Count(vals), DeadRecords: got.DeadRecords, Dead: got.Dead}
	if d := disagree(got, read); d != "" {
		return read, fmt.Errorf("%sList disagrees with the Reader: %s (Options.Reader reads the system without the sink; the cell is judged by what it found)", ReadBackPrefix, d)
	}
	return read, nil
}

// disagree says how what List said (list) and what the Reader found (read)
// differ, or "" when they hold the same ids, each as many times.
func disagree(list, read *listed) string {
	var diff []string
	keys := slices.Sorted(maps.Keys(list.IDs))
	for id := range read.IDs {
		if _, ok := list.IDs[id]; !ok {
			keys = append(keys, id)
		}
	}
	for _, id := range keys {
		if list.IDs[id] != read.IDs[id] {
			diff = append(diff, id)
		}
	}
	if len(diff) == 0 && list.Records == read.Records {
		return ""
	}
	out := fmt.Sprintf("%d records by List, %d by the Reader", list.Records, read.Records)
	if len(diff) > 0 {
		id := diff[0]
		out += fmt.Sprintf("; %d ids held a different number of times, such as %q: %d by List, %d by the Reader", len(diff), id, list.IDs[id], read.IDs[id])
	}
	return out
}

// readBackContract compares List with the Reader after a contract check of
// a sink, which leaves the batches it wrote in the pipeline's sink.
func (s *suite) readBackContract(ctx context.Context, dir, name string, res *Result) {
	l, err := s.list(ctx, dir, name)
	if err == nil {
		_, err = s.readBack(ctx, dir, name, l)
	}
	if err != nil {
		res.Pass = false
		res.Error = strings.TrimSpace(res.Error + "\n" + err.Error())
	}
}
