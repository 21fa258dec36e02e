package conformance

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestHungPlugins runs the hang row on generator → file: the suite stops
// the source and then the sink with SIGSTOP mid-drain, the host (with the
// row's short deadlines) kills and restarts each, and every guarantee holds.
// A host without deadlines leaves the stopped plugin hung and fails the row.
func TestHungPlugins(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the hang row runs on Linux only")
	}
	t.Parallel()
	o := options(t)
	o.Source = Plugin{Name: "generator", Config: map[string]any{}}
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "batch"}}
	o.Points = []string{PointHang}
	start := time.Now()
	rep := run(t, o)
	t.Logf("hang row: %s", time.Since(start).Round(100*time.Millisecond))
	for _, role := range []string{"source", "sink"} {
		for _, g := range []string{ExactlyOnce, AtLeastOnce} {
			r, ok := rep.Find(PointHang+":"+role, g)
			if !ok || !r.Pass || !strings.Contains(r.Detail, role+" stopped (SIGSTOP); the host killed it") {
				t.Errorf("%s:%s / %s: %+v (present %v); want a pass after the host killed the stopped %s", PointHang, role, g, r, ok, role)
			}
		}
	}
}
