// Command dropack is a lying source for the conformance suite's own tests: a
// spool of lines (one file, one partition "spool/0", offsets are line
// numbers) that reads a batch ahead and, on Ack, deletes from the spool
// everything it has fetched rather than what was acknowledged. Without a
// crash the read-ahead in memory hides the bug; after a crash the records
// that were fetched ahead but never delivered are gone.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/connectd/connectd/sdk"
)

const partition = "spool/0"

type source struct {
	mu    sync.Mutex
	path  string
	lines []string
	gone  int64            // lines before gone are deleted from the spool (kept in path + ".gone")
	ahead map[int64]string // lines fetched ahead, held in memory
	next  int64            // end of the read-ahead
}

func (s *source) Open(_ context.Context, cfg sdk.Config) error {
	s.path = cfg.String("path")
	b, err := os.ReadFile(s.path)
	if err != nil {
		return err
	}
	s.lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if g, err := os.ReadFile(s.path + ".gone"); err == nil {
		s.gone, _ = strconv.ParseInt(strings.TrimSpace(string(g)), 10, 64)
	}
	s.ahead = map[int64]string{}
	return nil
}

// line returns line i unless the spool deleted it.
func (s *source) line(i int64) (string, bool) {
	if v, ok := s.ahead[i]; ok {
		return v, true
	}
	if i < s.gone || i >= int64(len(s.lines)) {
		return "", false
	}
	return s.lines[i], true
}

func (s *source) records(from, until int64) []sdk.Record {
	var out []sdk.Record
	for i := from; i < until; i++ {
		if v, ok := s.line(i); ok {
			out = append(out, sdk.Record{Value: []byte(v), Position: sdk.Position{Partition: partition, Offset: i}})
		}
	}
	return out
}

func (s *source) Read(_ context.Context, from sdk.Offsets, lim sdk.Limits) (sdk.Read, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start, ok := from[partition]
	if !ok || start < 0 {
		start = 0
	}
	end := min(start+int64(lim.MaxRecords), int64(len(s.lines)))
	if stop, ok := lim.Stop[partition]; ok && lim.Stop != nil {
		end = min(end, stop)
	}
	end = max(end, start)
	recs := s.records(start, end)
	// Fetch the next batch ahead into memory.
	for i := end; i < min(end+int64(lim.MaxRecords), int64(len(s.lines))); i++ {
		if v, ok := s.line(i); ok {
			s.ahead[i] = v
		}
		s.next = i + 1
	}
	return sdk.Read{Records: recs, From: sdk.Offsets{partition: start}, Until: sdk.Offsets{partition: end}}, nil
}

func (s *source) Replay(_ context.Context, from, until sdk.Offsets) ([]sdk.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records(from[partition], until[partition]), nil
}

func (s *source) End(context.Context) (sdk.Offsets, error) {
	return sdk.Offsets{partition: int64(len(s.lines))}, nil
}

// Ack deletes what was fetched, not what was acknowledged: the bug.
func (s *source) Ack(_ context.Context, until sdk.Offsets) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone = max(s.gone, s.next, until[partition])
	return os.WriteFile(s.path+".gone", []byte(fmt.Sprintln(s.gone)), 0o644)
}

func (s *source) Close(context.Context) error { return nil }

func main() {
	spec := sdk.Spec{
		Name:         "dropack",
		Version:      "0.0.1",
		Kind:         sdk.KindSource,
		Summary:      "A spool that deletes read-ahead records on Ack (a liar).",
		Capabilities: []sdk.Capability{sdk.CapReplayable},
		Params:       []sdk.Param{{Name: "path", Type: sdk.TypeString, Required: true, Doc: "The spool file, one record per line."}},
	}
	sdk.Serve(sdk.Plugin{Source: &sdk.SourcePlugin{Spec: spec, New: func() sdk.Source { return &source{} }}})
}
