package conformance

import (
	"context"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/fault"
)

// rejecting is a chain of built-ins: a filter that drops every fifth
// offset, a set that tags every record, and a set whose expression fails
// (reads a field that is not there) on every seventh offset, so those
// records are rejected into the dead-letter sink.
var rejecting = []Plugin{
	{Name: "filter", HCL: `where = "value.offset % 5 != 1"`},
	{Name: "set", HCL: `fields = { "tag" = "'p' + string(value.partition)" }`},
	{Name: "set", HCL: `fields = { "checked" = "value.offset % 7 == 3 ? value.missing : true" }`},
}

// TestTransformChain runs generator → filter + set + a rejecting set →
// file sink (batch mode), with a file dead-letter sink, through the rows
// where the chain and the dead letters are in play (a crash while the host
// sends the transformed batch, before and after the dead letters, after the
// commit, the sink's crash after its write, the random kills): every cell
// must hold the reference run's output, the rejected records in the
// dead-letter sink, once.
func TestTransformChain(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "batch"}}
	o.Transforms = rejecting
	o.DeadLetter = Plugin{Name: "file", Config: map[string]any{"dir": "dead", "mode": "batch"}}
	o.Points = []string{PointNone, fault.HostWritePartial, fault.HostDeadLetter, fault.HostWriteAfter, fault.HostCommitAfter, fault.SinkWriteAfter, PointSoak}
	rep := Test(t, o)
	claims(t, rep, ExactlyOnce, AtLeastOnce, AtMostOnce)
	expectRows(t, rep, fault.HostWritePartial, fault.HostDeadLetter, fault.HostWriteAfter, fault.HostCommitAfter, fault.SinkWriteAfter)
	if rep.Transforms != "filter → set → set" || !strings.Contains(rep.DeadLetter, `"file"`) {
		t.Errorf("report names chain %q, dead letters %q", rep.Transforms, rep.DeadLetter)
	}
	// 120 records, offsets 0..59 in 2 partitions: the filter drops offsets
	// 1, 6, …; of the rest, offsets 3, 10, … are rejected.
	wantDead := 0
	for off := 0; off < 60; off++ {
		if off%5 != 1 && off%7 == 3 {
			wantDead += 2
		}
	}
	for _, row := range []string{PointNone, fault.HostDeadLetter + "@2", fault.HostWriteAfter + "@2"} {
		if r, ok := rep.Find(row, ExactlyOnce); !ok || r.DeadLetters != wantDead {
			t.Errorf("%s: %d dead letters, want %d (present %v)", row, r.DeadLetters, wantDead, ok)
		}
	}
}

// TestSplitProcessor puts the bundled split processor under test behind a
// set that turns most records' id into an array of two ids (and leaves the
// others a string, which split rejects): its fault points are rows, and its
// deterministic contract holds.
func TestSplitProcessor(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Transforms = []Plugin{{Name: "set", HCL: `fields = { "id" = "value.offset % 6 == 2 ? dyn(value.id) : dyn([value.id + '-a', value.id + '-b'])" }`}}
	o.Processor = Plugin{Name: "split", Config: map[string]any{"field": "id"}}
	o.Points = []string{PointNone, fault.ProcessorBefore, fault.ProcessorAfter, PointContract}
	rep := run(t, o)
	if !rep.Passed() {
		t.Errorf("failed: %+v", rep.Failed())
	}
	claims(t, rep, ExactlyOnce, AtLeastOnce, AtMostOnce)
	for _, p := range []string{fault.ProcessorBefore, fault.ProcessorAfter} {
		if _, ok := rep.Find(p+"@2", ExactlyOnce); !ok {
			t.Errorf("no row for %s@2", p)
		}
	}
	r, ok := rep.Find(PointContract, "deterministic")
	if !ok || !r.Pass || !strings.Contains(r.Detail, "after a restart") {
		t.Errorf("deterministic contract: %+v (present %v)", r, ok)
	}
	if r, _ := rep.Find(PointNone, ExactlyOnce); r.DeadLetters == 0 {
		t.Errorf("no record rejected by split reached the dead-letter sink: %+v", r)
	}
}

// TestCatchesNondeterministicProcessor: a processor that declares
// deterministic but drops records by a per-process counter fails the
// contract check, and the crash after a write, whose replay it transforms
// differently; without the claim, exactly-once is not claimed, and the
// report says why.
func TestCatchesNondeterministicProcessor(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Processor = Plugin{Name: liars["counter"]}
	o.Points = []string{PointNone, fault.HostWriteAfter, PointContract}
	rep := run(t, o)
	claims(t, rep, ExactlyOnce, AtLeastOnce, AtMostOnce)
	passes(t, rep, PointNone, ExactlyOnce)
	failsWith(t, rep, "host.write.after@2", ExactlyOnce, true, false)
	r, ok := rep.Find(PointContract, "deterministic")
	if !ok || r.Pass || !strings.Contains(r.Error, "differs from its first processing") {
		t.Errorf("deterministic contract: %+v (present %v); want a failure saying what differs", r, ok)
	}

	// Without the claim: the probe (and the reference run) only.
	o.Processor = Plugin{Name: liars["counter"], Config: map[string]any{"claim": false}}
	o.Points = []string{PointNone, PointContract}
	s, err := newSuite(o)
	if err != nil {
		t.Fatal(err)
	}
	s.work = t.TempDir()
	s.o.WorkDir = s.work
	if err := s.setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.probe.Claimed, ",") != AtLeastOnce+","+AtMostOnce || !strings.Contains(s.probe.NotClaimed, `does not declare capability "deterministic"`) {
		t.Errorf("claimed %q, not claimed %q; want no exactly-once, for want of a deterministic processor", s.probe.Claimed, s.probe.NotClaimed)
	}
	for _, c := range s.matrix() {
		if c.kind == PointContract {
			t.Errorf("a %s check for a processor that does not claim it", c.guarantees)
		}
	}
}

// TestCatchesAppendingDeadLetterSink: a dead-letter sink that claims
// idempotence but appends holds a replayed batch's dead letters twice.
func TestCatchesAppendingDeadLetterSink(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "batch"}}
	o.Transforms = rejecting
	o.DeadLetter = Plugin{Name: liars["appender"], Config: map[string]any{"dir": "dead"}}
	o.Points = []string{PointNone, fault.HostWriteAfter}
	rep := run(t, o)
	passes(t, rep, PointNone, ExactlyOnce)
	failsWith(t, rep, "host.write.after@2", ExactlyOnce, false, true)
	passes(t, rep, "host.write.after@2", AtLeastOnce)
	if r, _ := rep.Find("host.write.after@2", ExactlyOnce); !strings.Contains(r.Detail, "dead-letter sink") {
		t.Errorf("the failure does not say it is in the dead-letter sink: %+v", r)
	}
}

// TestJudge: the reference run's counts are the expectation in both sinks;
// an id in the wrong sink is lost from one and unexpected in the other.
func TestJudge(t *testing.T) {
	want := &listed{Records: 3, IDs: map[string]int{"a": 1, "b": 2}, DeadRecords: 1, Dead: map[string]int{"c": 1}}
	for _, c := range []struct {
		name             string
		got              *listed
		lost, dup, unexp int
		note             string
	}{
		{"same", &listed{Records: 3, IDs: map[string]int{"a": 1, "b": 2}, DeadRecords: 1, Dead: map[string]int{"c": 1}}, 0, 0, 0, ""},
		{"split record lost once", &listed{IDs: map[string]int{"a": 1, "b": 1}, Dead: map[string]int{"c": 1}}, 1, 0, 0, ""},
		{"dead letter twice", &listed{IDs: map[string]int{"a": 1, "b": 2}, DeadRecords: 2, Dead: map[string]int{"c": 2}}, 0, 1, 0, "dead-letter sink holds 2"},
		{"wrong sink", &listed{IDs: map[string]int{"a": 1, "b": 2, "c": 1}}, 1, 0, 1, `id "c" is in the sink`},
		{"filtered record written", &listed{IDs: map[string]int{"a": 1, "b": 2, "z": 1}, Dead: map[string]int{"c": 1}}, 0, 0, 1, ""},
	} {
		lost, dup, unexp, note := judge(want, c.got)
		if lost != c.lost || dup != c.dup || len(unexp) != c.unexp || !strings.Contains(note, c.note) {
			t.Errorf("%s: %d lost %d dup %q unexpected, note %q; want %d, %d, %d, %q", c.name, lost, dup, unexp, note, c.lost, c.dup, c.unexp, c.note)
		}
	}
}
