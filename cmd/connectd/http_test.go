package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/fault"
)

// host is a `connectd run --http` process started by serve.
type host struct{ *e2e.Host }

// serve starts `connectd run --http 127.0.0.1:0 args...` in dir.
func serve(t *testing.T, dir string, env []string, args ...string) *host {
	t.Helper()
	return &host{e2e.Serve(t, bin, dir, env, args...)}
}

func (s *host) log() string { return s.Log() }

// call makes an HTTP request and returns the status and body.
func call(t *testing.T, method, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// pipeStatus is the part of GET /v1/pipelines/{name} the tests read.
type pipeStatus struct {
	State          string                      `json:"state"`
	Committed      map[string]map[string]int64 `json:"committed"`
	Lag            map[string]int64            `json:"lag"`
	RecordsWritten int64                       `json:"recordsWritten"`
	Batches        int64                       `json:"batches"`
	LastBatch      *struct {
		BatchID int64 `json:"batchId"`
	} `json:"lastBatch"`
}

func (s *host) status(t *testing.T, name string) pipeStatus {
	t.Helper()
	code, b := call(t, "GET", s.URL+"/v1/pipelines/"+name, "")
	if code != http.StatusOK {
		t.Fatalf("GET pipeline %q: %d %s", name, code, b)
	}
	var st pipeStatus
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return st
}

func (s *host) waitFor(t *testing.T, what string, cond func() bool) { s.WaitFor(t, what, cond) }

func scrape(t *testing.T, url string) map[string]float64 { return e2e.Scrape(t, url) }

// TestHTTPMetricsFileToFile scrapes /metrics while a file → file pipeline
// runs and checks its counters against what the sink holds.
func TestHTTPMetricsFileToFile(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for f := 0; f < 3; f++ {
		var b strings.Builder
		for i := 0; i < 300; i++ {
			id := fmt.Sprintf("f%d-line%d", f, i)
			want = append(want, id)
			b.WriteString(id + "\n")
		}
		write(t, dir, filepath.Join("in", fmt.Sprintf("part%d.txt", f)), b.String())
	}
	cfg := write(t, dir, "p.hcl", `
pipeline "files" {
  delivery = "exactly-once"
  source "file" { paths = ["in/*.txt"] }
  sink "file"   { dir = "out", mode = "batch" }
  batch         { max_records = 70, max_wait = "100ms" }
  checkpoint    { dir = "state/files" }
}
`)
	start := time.Now()
	s := serve(t, dir, nil, cfg)
	var m map[string]float64
	const p = `{pipeline="files"}`
	s.waitFor(t, "900 records written", func() bool {
		m = scrape(t, s.URL)
		return m["connectd_records_written_total"+p] >= float64(len(want))
	})
	checkDelivery(t, "exactly-once", want, ids(t, dir))
	batches, _ := filepath.Glob(filepath.Join(dir, "out", "batch-*"))
	wants := map[string]float64{
		"connectd_records_written_total" + p:                                     900,
		"connectd_records_read_total" + p:                                        900,
		`connectd_batches_total{outcome="committed",pipeline="files"}`:           float64(len(batches)),
		`connectd_batches_total{outcome="replayed",pipeline="files"}`:            0,
		`connectd_batches_total{outcome="failed",pipeline="files"}`:              0,
		`connectd_batch_phase_seconds_count{phase="write",pipeline="files"}`:     float64(len(batches)),
		`connectd_batch_phase_seconds_count{phase="ack",pipeline="files"}`:       float64(len(batches)),
		`connectd_checkpoint_sync_seconds_count{log="offsets",pipeline="files"}`: float64(len(batches)),
		`connectd_checkpoint_sync_seconds_count{log="commits",pipeline="files"}`: float64(len(batches)),
		`connectd_plugin_restarts_total{pipeline="files",role="source"}`:         0,
		`connectd_pipeline_state{pipeline="files",state="running"}`:              1,
		`connectd_pipeline_state{pipeline="files",state="paused"}`:               0,
	}
	for k, v := range wants {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if len(batches) < 900/70 {
		t.Errorf("%d batch files, want at least %d", len(batches), 900/70)
	}
	if rb, wb := m["connectd_read_bytes_total"+p], m["connectd_written_bytes_total"+p]; wb < float64(900*len("f0-line0")) || rb != wb {
		t.Errorf("bytes read %v, written %v; want equal and at least the lines' bytes", rb, wb)
	}
	if ts := m["connectd_last_commit_timestamp_seconds"+p]; ts < float64(start.Unix()) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("last commit at %v, want between %d and now", ts, start.Unix())
	}
	if _, ok := m["go_goroutines{}"]; !ok {
		t.Errorf("no Go runtime collector (go_goroutines)")
	}
	if _, ok := m["process_cpu_seconds_total{}"]; !ok {
		t.Errorf("no process collector (process_cpu_seconds_total)")
	}
	// The file source tells its end: once everything is committed the lag
	// of every partition is 0, in /metrics and in the API.
	s.waitFor(t, "the lag to be measured after the last commit", func() bool {
		st := s.status(t, "files")
		return len(st.Lag) == 3
	})
	m = scrape(t, s.URL)
	for _, f := range []string{"in/part0.txt", "in/part1.txt", "in/part2.txt"} {
		k := fmt.Sprintf(`connectd_partition_lag{partition=%q,pipeline="files"}`, f)
		if got, ok := m[k]; !ok || got != 0 {
			t.Errorf("%s = %v (present %v), want 0; series: %v", k, got, ok, keysWith(m, "lag"))
		}
	}
	// The JSON API agrees with /metrics.
	st := s.status(t, "files")
	if st.State != "running" || st.RecordsWritten != 900 || st.LastBatch == nil || st.LastBatch.BatchID != int64(len(batches)) {
		t.Errorf("API status = %+v, want running, 900 written, last batch %d", st, len(batches))
	}
	if code, b := call(t, "GET", s.URL+"/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz = %d %s, want 200", code, b)
	}
	if code, _ := call(t, "GET", s.URL+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}

	// connectd status shows the same as a table and as JSON.
	addr := strings.TrimPrefix(s.URL, "http://")
	r := connectd(t, dir, nil, "status", "--addr", addr)
	row := regexp.MustCompile(fmt.Sprintf(`(?m)^files +running +exactly-once +file → file +%d +900 +0 +0 +\d+s ago$`, len(batches)))
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "PIPELINE ") || !row.MatchString(r.Stdout) {
		t.Errorf("status: exit %d, want a row matching %s:\n%s%s", r.Code, row, r.Stdout, r.Stderr)
	}
	r = connectd(t, dir, nil, "status", "--addr", addr, "--json")
	var list struct{ Pipelines []pipeStatus }
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || r.Code != 0 || len(list.Pipelines) != 1 || list.Pipelines[0].RecordsWritten != 900 {
		t.Errorf("status --json: exit %d, %v: %s", r.Code, err, r.Stdout)
	}
	_ = s.Cmd.Process.Kill()
	<-s.Done
	if r := connectd(t, dir, nil, "status", "--addr", addr); r.Code != 1 || !strings.Contains(r.Stderr, "is connectd running with --http at") {
		t.Errorf("status of a stopped host: exit %d, want 1 and a hint:\n%s", r.Code, r.Stderr)
	}
}

func keysWith(m map[string]float64, sub string) []string {
	var out []string
	for k := range m {
		if strings.Contains(k, sub) {
			out = append(out, k)
		}
	}
	return out
}

// TestHTTPTokenRefused: a non-loopback address without a token is refused
// with exit 2; with one, mutating calls need it (401 without, 403 wrong).
func TestHTTPTokenRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 0, 1, 10, "rate = 100"))
	r := connectd(t, dir, []string{"CONNECTD_TOKEN="}, "run", "--http", "0.0.0.0:0", cfg)
	if r.Code != 2 || !strings.Contains(r.Stderr, "not a loopback address and needs a token") {
		t.Fatalf("exit %d, want 2 and why:\n%s", r.Code, r.Stderr)
	}
	cfg = write(t, dir, "q.hcl", `http {
  addr  = "0.0.0.0:0"
  token = env("TEST_TOKEN")
}
`+genPipeline("exactly-once", "batch", 0, 1, 10, "rate = 100"))
	s := serve(t, dir, []string{"TEST_TOKEN=letmein"}, cfg) // --http 127.0.0.1:0 wins over addr; the token stays
	pause := s.URL + "/v1/pipelines/p/pause"
	if code, b := call(t, "POST", pause, ""); code != http.StatusUnauthorized {
		t.Errorf("pause without a token: %d %s, want 401", code, b)
	}
	if code, b := call(t, "POST", pause, "wrong"); code != http.StatusForbidden {
		t.Errorf("pause with a wrong token: %d %s, want 403", code, b)
	}
	if code, _ := call(t, "GET", s.URL+"/v1/pipelines/p", ""); code != http.StatusOK {
		t.Errorf("a read without a token: %d, want 200", code)
	}
	if code, b := call(t, "POST", pause, "letmein"); code != http.StatusAccepted {
		t.Errorf("pause with the token: %d %s, want 202", code, b)
	}
	if strings.Contains(s.log(), "letmein") {
		t.Errorf("the token is in the log:\n%s", s.log())
	}
	// A paused pipeline stops cleanly on SIGTERM.
	s.waitFor(t, "the paused state", func() bool { return s.status(t, "p").State == "paused" })
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.Done:
		if code := s.Cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("SIGTERM while paused: exit %d, want 0:\n%s", code, s.log())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("SIGTERM while paused: still running after 20s:\n%s", s.log())
	}

	// The file's address without a token: refused, naming the http block.
	cfg = write(t, dir, "r.hcl", "http { addr = \"0.0.0.0:0\" }\n"+genPipeline("exactly-once", "batch", 0, 1, 10, "rate = 100"))
	r = connectd(t, dir, []string{"CONNECTD_TOKEN="}, "run", cfg)
	if r.Code != 2 || !strings.Contains(r.Stderr, "r.hcl:1:1: refusing to serve HTTP") {
		t.Errorf("exit %d, want 2 naming r.hcl:1:1:\n%s", r.Code, r.Stderr)
	}
	r = connectd(t, dir, []string{"CONNECTD_TOKEN="}, "validate", cfg)
	if r.Code != 2 || !strings.Contains(r.Stderr, "r.hcl:1:1: http address") {
		t.Errorf("validate: exit %d, want 2 naming r.hcl:1:1:\n%s", r.Code, r.Stderr)
	}
}

// TestHTTPPauseResume pauses a running pipeline through the API: no record
// moves while it is paused, it moves again when resumed, a restart through
// the API keeps it going, and after a kill -9 during a pause a drain still
// delivers every record exactly once.
func TestHTTPPauseResume(t *testing.T) {
	dir := t.TempDir()
	const count, parts = 6000, 2
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", count, parts, 50, "rate = 1500"))
	s := serve(t, dir, nil, cfg)
	s.waitFor(t, "a first batch", func() bool { return s.status(t, "p").RecordsWritten > 0 })

	pause := func() pipeStatus {
		t.Helper()
		if code, b := call(t, "POST", s.URL+"/v1/pipelines/p/pause", ""); code != http.StatusAccepted {
			t.Fatalf("pause: %d %s", code, b)
		}
		s.waitFor(t, "the paused state", func() bool { return s.status(t, "p").State == "paused" })
		return s.status(t, "p")
	}
	paused := pause()
	held := len(ids(t, dir))
	if int64(held) != paused.RecordsWritten {
		t.Errorf("paused with %d records written by the API's count, %d in the sink", paused.RecordsWritten, held)
	}
	time.Sleep(1500 * time.Millisecond) // 2000 records at the source's rate
	after := s.status(t, "p")
	if got := len(ids(t, dir)); got != held || after.RecordsWritten != paused.RecordsWritten || after.State != "paused" {
		t.Fatalf("records moved while paused: sink %d → %d, API %d → %d (state %s)", held, got, paused.RecordsWritten, after.RecordsWritten, after.State)
	}
	if code, b := call(t, "POST", s.URL+"/v1/pipelines/p/pause", ""); code != http.StatusConflict {
		t.Errorf("pausing a paused pipeline: %d %s, want 409", code, b)
	}

	if code, b := call(t, "POST", s.URL+"/v1/pipelines/p/resume", ""); code != http.StatusAccepted {
		t.Fatalf("resume: %d %s", code, b)
	}
	s.waitFor(t, "records after resume", func() bool { return s.status(t, "p").RecordsWritten > paused.RecordsWritten })
	if code, b := call(t, "POST", s.URL+"/v1/pipelines/p/resume", ""); code != http.StatusConflict {
		t.Errorf("resuming a running pipeline: %d %s, want 409", code, b)
	}

	before := s.status(t, "p").RecordsWritten
	children := func() []int { c := e2e.Children(s.Cmd.Process.Pid); slices.Sort(c); return c }
	kids := children()
	if len(kids) != 2 {
		t.Fatalf("want 2 plugin processes before the restart, found %v", kids)
	}
	if code, b := call(t, "POST", s.URL+"/v1/pipelines/p/restart", ""); code != http.StatusAccepted {
		t.Fatalf("restart: %d %s", code, b)
	}
	s.waitFor(t, "new plugin processes", func() bool {
		now := children()
		return len(now) == 2 && !slices.Contains(now, kids[0]) && !slices.Contains(now, kids[1])
	})
	s.waitFor(t, "records after the restart", func() bool { return s.status(t, "p").RecordsWritten > before+100 })

	pause()
	if err := s.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.Done
	if got := len(ids(t, dir)); got == 0 || got >= count {
		t.Fatalf("killed after %d of %d records; want a kill in the middle", got, count)
	}
	if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 0 {
		t.Fatalf("drain after kill -9 while paused: exit %d:\n%s", r.Code, r.Stderr)
	}
	checkDelivery(t, "exactly-once", e2e.GenIDs(count, parts), ids(t, dir))
}

// TestHTTPUnboundedSourceHasNoLag: a source that cannot tell its end now
// (an unbounded generator answers End with an error) runs on without lag,
// never failing or restarting for it.
func TestHTTPUnboundedSourceHasNoLag(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 0, 1, 50, "rate = 500"))
	s := serve(t, dir, nil, cfg)
	start := time.Now()
	s.waitFor(t, "3 seconds of batches", func() bool {
		return time.Since(start) > 3*time.Second && s.status(t, "p").RecordsWritten > 0
	})
	code, b := call(t, "GET", s.URL+"/v1/pipelines/p", "")
	var st struct {
		State         string
		Lag           map[string]int64
		FailedBatches int64 `json:"failedBatches"`
		Error         string
	}
	if err := json.Unmarshal(b, &st); err != nil || code != http.StatusOK {
		t.Fatalf("%d %v: %s", code, err, b)
	}
	if st.State != "running" || st.FailedBatches != 0 || st.Lag != nil || st.Error != "" {
		t.Errorf("status %+v, want running, no failures, no lag, no error; log:\n%s", st, s.log())
	}
	if n := strings.Count(s.log(), "lag unknown"); n != 1 {
		t.Errorf("%d warnings about the unknown lag, want 1:\n%s", n, s.log())
	}
}

// TestHTTPMetricsAfterPluginCrash: a sink that dies in the middle of batch 3
// shows in /metrics as one sink restart, one failed batch and one replayed
// batch, and the records written still match what the sink holds.
func TestHTTPMetricsAfterPluginCrash(t *testing.T) {
	dir := t.TempDir()
	const count, parts = 1000, 2
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", count, parts, 100, ""))
	s := serve(t, dir, []string{fault.Env + "=" + fault.SinkWritePartial + "@3"}, cfg)
	var m map[string]float64
	s.waitFor(t, "every record written", func() bool {
		m = scrape(t, s.URL)
		return m[`connectd_records_written_total{pipeline="p"}`] >= count
	})
	checkDelivery(t, "exactly-once", e2e.GenIDs(count, parts), ids(t, dir))
	for k, v := range map[string]float64{
		`connectd_records_written_total{pipeline="p"}`:                 count,
		`connectd_plugin_restarts_total{pipeline="p",role="sink"}`:     1,
		`connectd_plugin_restarts_total{pipeline="p",role="source"}`:   0,
		`connectd_batches_total{outcome="failed",pipeline="p"}`:        1,
		`connectd_batches_total{outcome="replayed",pipeline="p"}`:      1,
		`connectd_batches_total{outcome="committed",pipeline="p"}`:     count/100 - 1,
		`connectd_pipeline_state{pipeline="p",state="running"}`:        1,
		`connectd_partition_lag{partition="generator/0",pipeline="p"}`: 0,
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}
