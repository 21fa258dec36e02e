package conformance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// failures matches a run's report of plugins that failed and were restarted.
var failures = regexp.MustCompile(`[1-9][0-9]* plugin failures`)

// TestNetworkRow runs the network row with faults in the file sink's
// system, the file system: once the sink has written a batch, for two
// seconds its output directory is a plain file, so every write fails and the runs fail until it is back. The row
// must start the failed runs again and end with every guarantee kept; a
// Network that fails fails the row; without Network there is no row.
func TestNetworkRow(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "batch"}}
	o.Points = []string{PointNone, PointNetwork}
	o.Network = func(ctx context.Context, p Pipeline) (string, error) {
		out := filepath.Join(p.Dir, "out")
		for { // until the sink has written a batch: processes start slowly under load
			if files, _ := os.ReadDir(out); len(files) > 1 {
				break
			}
			select {
			case <-ctx.Done():
				return "", nil
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err := os.Rename(out, out+".away"); err != nil {
			return "", err
		}
		if err := os.WriteFile(out, nil, 0o644); err != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		if err := os.Remove(out); err != nil {
			return "", err
		}
		return "output directory replaced by a file for 2s", os.Rename(out+".away", out)
	}
	rep := run(t, o)
	if !rep.Passed() {
		t.Errorf("failed: %+v", rep.Failed())
	}
	retried := false
	for _, g := range rep.Claimed {
		r, ok := rep.Find(PointNetwork, g)
		if !ok || !strings.Contains(r.Detail, "network faults: output directory replaced") {
			t.Errorf("network / %s: %+v (present %v); want the faults named in the detail", g, r, ok)
		}
		t.Logf("network / %s: %s", g, r.Detail)
		retried = retried || strings.Contains(r.Detail, "failed under the faults") || failures.MatchString(r.Detail)
	}
	if !retried {
		t.Error("no network cell saw a plugin fail or started a failed run again: the faults did not reach the pipeline")
	}

	o.Network = func(context.Context, Pipeline) (string, error) { return "", errors.New("no proxy") }
	o.Points = []string{PointNetwork}
	for _, r := range run(t, o).Results {
		if r.Pass || !strings.Contains(r.Error, "Options.Network failed: no proxy") {
			t.Errorf("%s / %s: %+v; want a failure naming Options.Network", r.FaultPoint, r.Guarantee, r)
		}
	}

	o.Network = nil
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "no cell to run") {
		t.Errorf("network row without Options.Network: %v, want no cell to run", err)
	}
}
