package conformance

import (
	"strings"
	"testing"
)

// TestCatchesKeptReferences: a sink that keeps references to a batch's
// records past Write (testdata/keeper writes the last batch again on Close
// from the records it kept) is durable and idempotent, and would pass every
// row if the memory it kept were left alone; the suite runs plugins with
// CONNECTD_POISON=1, so it writes "connectd poison: …" over the last batch,
// and the row without a fault fails naming that value.
func TestCatchesKeptReferences(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Sink = Plugin{Name: liars["keeper"], Config: map[string]any{"dir": "out"}}
	o.Points = []string{PointNone}
	rep := run(t, o)
	if rep.Passed() {
		t.Fatal("the suite passed a sink that keeps references to a batch's records past Write")
	}
	for _, g := range rep.Claimed {
		r, ok := rep.Find(PointNone, g)
		switch {
		case !ok:
			t.Errorf("no cell %s / %s", PointNone, g)
		case r.Pass && !r.Informational || r.Unexpected == 0 || r.Lost == 0:
			t.Errorf("%s / %s: %+v; want the last batch lost and poison held", PointNone, g, r)
		case !strings.Contains(r.Detail, "connectd poison: record kept past Write; copy what you keep."):
			t.Errorf("%s / %s: detail %q does not show the poison the sink holds", PointNone, g, r.Detail)
		}
	}
}
