package conformance

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/fault"
)

// TestCatchesSecondReplay: a sink whose bug lives only in a second recovery
// of the same batch (testdata/replayonce: it skips a batch it stored in full,
// and forgets that it did) passes the rows of the quick matrix that make the
// sink store a batch again after one crash or failed call, and the
// idempotence contract (every other row of the quick matrix passes too, but
// sends no batch twice), and is caught by the recovery row that crashes the
// host again after the replay was written: the last run replays the batch a
// second time and the sink appends it.
func TestCatchesSecondReplay(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Level = Quick
	o.Sink = Plugin{Name: liars["replayonce"], Config: map[string]any{"dir": "out"}}
	o.Points = []string{PointNone, fault.HostWriteAfter, fault.SinkWriteBefore, fault.SinkWritePartial, fault.SinkWriteAfter, PointContract, PointRecovery}
	rep := run(t, o)
	claims(t, rep, ExactlyOnce, AtLeastOnce, AtMostOnce)
	for _, p := range []string{"host.write.after@2", "sink.write.before@2", "sink.write.partial@2", "sink.write.after@2", "sink.write.partial@2/error"} {
		if _, ok := rep.Find(p, ExactlyOnce); !ok {
			t.Errorf("no cell %s under %s", p, ExactlyOnce)
		}
	}
	if _, ok := findPrefix(rep, "sink.write.partial%", ExactlyOnce); !ok {
		t.Error("no row of repeated sink.write.partial%N/error failures")
	}
	again := PointRecovery + ":host.write.after@2+host.write.after@2"
	sinkAgain := PointRecovery + ":host.write.after@2+sink.write.partial@2"
	for _, r := range rep.Results {
		if strings.HasPrefix(r.FaultPoint, PointRecovery+":") {
			continue
		}
		if !r.Pass {
			t.Errorf("%s / %s failed (%s): the liar's bug is meant to need a second replay", r.FaultPoint, r.Guarantee, r.Cell())
		}
	}
	failsWith(t, rep, again, ExactlyOnce, false, true)
	if r, _ := rep.Find(again, ExactlyOnce); r.Duplicated != 40 {
		t.Errorf("%s: %d duplicated; want batch 2's 40 records twice", again, r.Duplicated)
	}
	passes(t, rep, again, AtLeastOnce) // duplicates are what at-least-once allows
	if r, _ := rep.Find(again, ExactlyOnce); !strings.Contains(r.Detail, "host killed again at host.write.after@2") {
		t.Errorf("%s: detail %q does not say the host died again during the replay", again, r.Detail)
	}
	// The sink dies half-way through the replay; the replay of the replay
	// finds the part stored, cuts it and stores the batch again: right.
	passes(t, rep, sinkAgain, ExactlyOnce)
	if _, ok := rep.Find(again, AtMostOnce); ok {
		t.Errorf("a recovery row under at-most-once, which commits before it writes and never replays")
	}
}

// TestFullLevelCrashesInTheLastBatch: the full level counts the batches of
// the faultless reference run (300 generator records in batches of 50: 6)
// and crashes in the first, a middle and that last batch, each reached; and
// its recovery rows crash again in the replay of each.
func TestFullLevelCrashesInTheLastBatch(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Level = Full
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "batch"}}
	o.Points = []string{fault.HostAckAfter, PointRecovery}
	rep := run(t, o)
	if !rep.Passed() {
		t.Errorf("failed: %+v", rep.Failed())
	}
	for _, g := range rep.Claimed {
		for _, b := range []int{1, 3, 6} {
			p := fmt.Sprintf("host.ack.after@%d", b)
			r, ok := rep.Find(p, g)
			switch {
			case !ok:
				t.Errorf("no cell %s / %s", p, g)
			case r.NotReached || !strings.Contains(r.Detail, "host killed at "+p):
				t.Errorf("%s / %s: detail %q: the crash was not reached", p, g, r.Detail)
			}
		}
		if g == AtMostOnce {
			continue
		}
		for _, p := range []string{"host.write.after@1+host.write.after@1", "host.write.after@3+host.write.after@3", "host.write.after@6+host.write.after@6",
			"host.write.after@3+host.write.partial@3", "host.write.after@3+sink.write.partial@3"} {
			r, ok := rep.Find(PointRecovery+":"+p, g)
			switch {
			case !ok:
				t.Errorf("no cell %s:%s / %s", PointRecovery, p, g)
			case !strings.Contains(r.Detail, "replayed"):
				t.Errorf("%s / %s: detail %q does not show the second crash in the replay", r.FaultPoint, g, r.Detail)
			}
		}
	}
	if _, ok := rep.Find("host.ack.after@7", ExactlyOnce); ok {
		t.Error("a crash in batch 7 of a run of 6 batches")
	}
}

// TestLastBatchNotReached: a crash meant for the reference run's last batch
// that a run never reaches (the source cut the input into fewer batches) is
// judged as a run without a crash and says so; it does not fail a correct
// plugin. The suite is made to believe the reference had one batch more.
func TestLastBatchNotReached(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Level = Full
	o.WorkDir = t.TempDir()
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "batch"}}
	o.Points = []string{fault.HostAckAfter}
	s, err := newSuite(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.setup(ctx); err != nil {
		t.Fatal(err)
	}
	if s.last != 6 {
		t.Fatalf("the reference run of 300 records in batches of 50 counted %d batches; want 6", s.last)
	}
	s.last++
	point := fmt.Sprintf("%s@%d", fault.HostAckAfter, s.last)
	for i, c := range s.matrix() {
		if c.point != point || c.guarantees[0] != ExactlyOnce {
			continue
		}
		res := s.runCell(ctx, i, c, nil)[0]
		if !res.Pass || !res.NotReached || res.Cell() != "pass (not reached)" || !strings.Contains(res.Detail, "was not reached: this run drained in 6 batches, the reference run in 7") {
			t.Errorf("%s: %s %+v; want a pass that says the crash was not reached", point, res.Cell(), res)
		}
		return
	}
	t.Fatalf("no cell %s / %s", point, ExactlyOnce)
}
