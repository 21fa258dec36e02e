package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/pipeline"
	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/plugins/discard"
	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/sdk"
)

// The test binary serves the generator and discard plugins when the loader
// re-executes it, as connectd serves its bundled plugins.
var bundled = map[string]sdk.Plugin{"generator": generator.Plugin, "discard": discard.Plugin}

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == plugin.ServeArg {
		if p, ok := bundled[os.Args[2]]; ok {
			sdk.Serve(p)
		}
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// load writes a generator → discard pipeline with the generator's params
// into a temporary directory and loads it with real plugin processes.
func load(t *testing.T, gen string) (*config.Pipeline, *plugin.Loader) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.hcl")
	hcl := `pipeline "p" {
  delivery = "at-least-once"
  source "generator" {
    ` + gen + `
  }
  sink "discard" {}
  batch {
    max_records = 10
    max_wait    = "50ms"
  }
  checkpoint { dir = "` + filepath.Join(dir, "state") + `" }
}
`
	if err := os.WriteFile(path, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l := &plugin.Loader{Exe: exe, Bundled: bundled, Stderr: os.Stderr}
	f, diags := config.Load(path, l.Spec)
	if diags.HasErrors() {
		t.Fatal(f.Format(diags))
	}
	return f.Pipelines[0], l
}

// TestHeartbeat: a pipeline with nothing to read says so every Heartbeat,
// with its state and committed offsets, instead of staying silent.
func TestHeartbeat(t *testing.T) {
	p, l := load(t, "count = 20\n    partitions = 2")
	var out e2e.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- pipeline.Run(ctx, pipeline.Options{Pipeline: p, Loader: l, Progress: &pipeline.Text{W: &out, Every: time.Hour}, Heartbeat: 300 * time.Millisecond})
	}()
	want := regexp.MustCompile(`pipeline "p": running, no batch for \d+s; committed \{"generator":\{"0":10,"1":10\}\}\n`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && len(want.FindAllString(out.String(), -1)) < 2 {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(want.FindAllString(out.String(), -1)); n < 2 {
		t.Fatalf("want at least two heartbeats matching %s, got %d:\n%s", want, n, out.String())
	}
}

// TestHeartbeatOff: a negative Heartbeat shows none.
func TestHeartbeatOff(t *testing.T) {
	p, l := load(t, "count = 20")
	var out e2e.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := pipeline.Run(ctx, pipeline.Options{Pipeline: p, Loader: l, Progress: &pipeline.Text{W: &out, Every: time.Hour}, Heartbeat: -1}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Contains(out.String(), "no batch for") {
		t.Errorf("heartbeats shown with Heartbeat < 0:\n%s", out.String())
	}
}

// recorder keeps every batch report.
type recorder struct {
	mu      sync.Mutex
	reports []pipeline.Report
}

func (r *recorder) Batch(rep pipeline.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, rep)
}

func (r *recorder) Done(string, int64, int64, time.Duration) {}

// TestDrainProgress: a drain of a source with an end reports done/total by
// offsets, rising to total, with an ETA until the end; a run without a drain
// reports none.
func TestDrainProgress(t *testing.T) {
	p, l := load(t, "count = 100\n    partitions = 2")
	rec := &recorder{}
	if err := pipeline.Run(context.Background(), pipeline.Options{Pipeline: p, Loader: l, Drain: true, Progress: rec}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rec.reports) != 10 {
		t.Fatalf("%d batches, want 10", len(rec.reports))
	}
	for i, r := range rec.reports {
		if r.Drain == nil {
			t.Fatalf("batch %d has no drain progress", r.Batch)
		}
		if want := int64(10 * (i + 1)); r.Drain.Done != want || r.Drain.Total != 100 {
			t.Errorf("batch %d: drained %d/%d, want %d/100", r.Batch, r.Drain.Done, r.Drain.Total, want)
		}
	}
	if last := rec.reports[9].Drain; last.Percent() != 100 || last.ETA != 0 {
		t.Errorf("last batch: %.0f%%, ETA %s; want 100%% and no ETA", last.Percent(), last.ETA)
	}
	if mid := rec.reports[4].Drain; mid.ETA <= 0 {
		t.Errorf("batch 5 of 10: ETA %s, want > 0", mid.ETA)
	}
	// Without a drain there is no total to show.
	rec2 := &recorder{}
	p2, l2 := load(t, "count = 30")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := pipeline.Run(ctx, pipeline.Options{Pipeline: p2, Loader: l2, Progress: rec2}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, r := range rec2.reports {
		if r.Drain != nil {
			t.Errorf("batch %d of a run without --drain has drain progress %+v", r.Batch, *r.Drain)
		}
	}
}

// TestRestartPolicy: a source whose every read passes its deadline (1ns:
// the call cannot answer in time) is killed and restarted as the
// pipeline's restart block says, twice, and then the run fails saying why.
func TestRestartPolicy(t *testing.T) {
	p, l := load(t, "count = 20")
	p.Timeouts = config.Timeouts{config.PhaseRead: time.Nanosecond}
	p.Restart = config.Restart{Attempts: 2, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	c := pipeline.NewControl(p.Name)
	start := time.Now()
	var log e2e.Buffer
	err := pipeline.Run(context.Background(), pipeline.Options{Pipeline: p, Loader: l, Drain: true, Control: c, Heartbeat: -1, Log: slog.New(slog.NewTextHandler(&log, nil))})
	took := time.Since(start)
	if err == nil {
		t.Fatal("Run succeeded with reads that cannot answer in time")
	}
	for _, want := range []string{"giving up after 2 restarts", `source "generator" did not answer read of batch 1 within 1ns; killed and restarted`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := c.Status().Restarts["source"]; n != 2 {
		t.Errorf("source restarted %d times, want 2", n)
	}
	// The waits are the policy's: 10ms, then 20ms, each ±50% (jitter).
	waits := regexp.MustCompile(`backoff=(\S+)`).FindAllStringSubmatch(log.String(), -1)
	if len(waits) != 2 {
		t.Fatalf("%d restarts logged, want 2:\n%s", len(waits), log.String())
	}
	for i, w := range waits {
		d, err := time.ParseDuration(w[1])
		if limit := time.Duration(15*(i+1)) * time.Millisecond; err != nil || d > limit {
			t.Errorf("wait %d before a restart: %s, want at most %s", i+1, w[1], limit)
		}
	}
	t.Logf("gave up after %s", took)
}

// TestStopWhileCheckpointOpens: a stop that comes while the checkpoint is
// still opening (a database connection cut short by the cancelled context)
// is a clean stop, as a stop at any later point is, not a failure: Run
// returns nil, and for a drain *Interrupted. (A worker told to stop just
// after it took a lease exited 1 with "connecting to …: context canceled".)
func TestStopWhileCheckpointOpens(t *testing.T) {
	p, l := load(t, "count = 20\n    partitions = 2")
	opener := func(ctx context.Context, _ *config.Pipeline) (*checkpoint.Store, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("connecting to the checkpoint's database: %w", ctx.Err())
	}
	for _, drain := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			errc <- pipeline.Run(ctx, pipeline.Options{Pipeline: p, Loader: l, Drain: drain, Checkpoint: opener})
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		err := <-errc
		var stopped *pipeline.Interrupted
		if drain && !errors.As(err, &stopped) || !drain && err != nil {
			t.Errorf("drain %v: Run = %v, want a clean stop", drain, err)
		}
	}
	// A checkpoint that fails to open without a stop is still a failure.
	failing := func(context.Context, *config.Pipeline) (*checkpoint.Store, error) {
		return nil, errors.New("connection refused")
	}
	if err := pipeline.Run(context.Background(), pipeline.Options{Pipeline: p, Loader: l, Checkpoint: failing}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Run with a checkpoint that cannot open = %v, want its error", err)
	}
}
