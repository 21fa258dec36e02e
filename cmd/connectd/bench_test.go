//go:build unix

// The benchmarks read CPU time with getrusage, which Windows does not have.

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/host/plugin"
	"github.com/connectd/connectd/plugins"
	"github.com/connectd/connectd/sdk"
)

// BenchmarkBoundary measures records/s through one plugin boundary: the
// generator plugin process reads 100-byte records and sends them over
// connector.v1 gRPC (mTLS) to the host, in batches of 10,000.
func BenchmarkBoundary(b *testing.B) {
	l := &plugin.Loader{Exe: bin, Bundled: plugins.Bundled(), Stderr: os.Stderr}
	ctx := context.Background()
	p, err := l.Start(ctx, sdk.KindSource, "generator", os.Environ())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Kill()
	if err := p.Source.Open(ctx, "bench", map[string]any{"size": int64(100), "partitions": int64(4)}); err != nil {
		b.Fatal(err)
	}
	from := sdk.Offsets{}
	lim := sdk.Limits{MaxRecords: 10000, MaxWait: time.Second}
	var records int64
	b.SetBytes(100 * 10000)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		d, err := p.Source.Read(ctx, int64(i+1), from, lim)
		if err != nil {
			b.Fatal(err)
		}
		records += d.Records
		from = from.Merge(d.Until)
	}
	b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkEndToEnd measures generator → discard, exactly-once, through two
// plugin processes and the checkpoint: one iteration is a whole
// `connectd run --drain` of 1,000,000 100-byte records (process start-up
// included). cpu-s/run is the CPU time of the three processes together.
func BenchmarkEndToEnd(b *testing.B) { endToEnd(b, "", false) }

// BenchmarkEndToEndHTTP is BenchmarkEndToEnd with `--http 127.0.0.1:0`: the
// pipeline reports to its Control and the metrics' Progress once per batch
// (docs/benchmarks.md compares the two).
func BenchmarkEndToEndHTTP(b *testing.B) { endToEnd(b, "", false, "--http", "127.0.0.1:0") }

// BenchmarkEndToEndTransforms is BenchmarkEndToEnd through a filter that
// keeps every record and a set that adds a field to each JSON value: the
// host decodes, transforms and encodes every record (docs/benchmarks.md
// compares the two; issue 13's target is at most 30% of the throughput).
func BenchmarkEndToEndTransforms(b *testing.B) { endToEnd(b, benchTransforms, false) }

// BenchmarkEndToEndReadAhead and BenchmarkEndToEndTransformsReadAhead are
// the two above with read_ahead = true: the host reads (and transforms)
// batch N+1 while the sink writes batch N.
func BenchmarkEndToEndReadAhead(b *testing.B) { endToEnd(b, "", true) }

func BenchmarkEndToEndTransformsReadAhead(b *testing.B) {
	endToEnd(b, benchTransforms, true)
}

// benchTransforms is BenchmarkEndToEndTransforms' chain.
const benchTransforms = `
  transform "filter" { where = "value.offset >= 0" }
  transform "set" {
    fields = { "source" = "position.partition" }
  }`

// endToEnd runs generator → transforms → discard over a million records,
// with read ahead or not.
func endToEnd(b *testing.B, transforms string, readAhead bool, args ...string) {
	const count = 1000000
	var records int64
	var elapsed, cpu time.Duration
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		cfg := dir + "/bench.hcl"
		if err := os.WriteFile(cfg, []byte(`
pipeline "bench" {
  delivery = "exactly-once"
  source "generator" {
    count      = 1000000
    partitions = 4
    size       = 100
  }`+transforms+`
  sink "discard" {}
  batch {
    max_records = 20000
    read_ahead  = `+fmt.Sprint(readAhead)+`
  }
  checkpoint { dir = "state" }
}
`), 0o644); err != nil {
			b.Fatal(err)
		}
		start, cpu0 := time.Now(), childCPU(b)
		r := connectd(b, dir, nil, append(append([]string{"run", "--drain"}, args...), cfg)...)
		elapsed += time.Since(start)
		cpu += childCPU(b) - cpu0
		if r.Code != 0 {
			b.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
		}
		records += count
	}
	b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/run")
}

// childCPU returns the user + system CPU time of every child process this
// test has waited for, their own waited-for children included: for a
// `connectd run`, the host and its plugin processes.
func childCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGeneratorToFile measures generator → file, exactly-once, with the
// default batches (no batch block): one iteration is a whole `connectd run
// --drain` of 1,000,000 100-byte records into the file sink's default mode
// (a file per batch, fsynced), start-up included. Besides records/s and
// cpu-s/run it reports peak memory: peak-MiB is the VmHWM of the host and
// every plugin process summed (the highest of the iterations), host-MiB and
// plugins-MiB its two parts. Each process's is its /proc/<pid>/status VmHWM
// read every 10 ms while it runs, so growth in its last 10 ms would be missed
// (VmHWM only grows; the rusage of a waited-for process would not do: its
// maxrss is the largest of the process and its children). VmHWM
// counts the pages of the connectd executable each process touched, the
// same file pages in all three; anon-MiB is the anonymous part alone: the
// sum of each process's highest RssAnon seen in those samples.
// BenchmarkGeneratorToFileReadAhead is the same with read_ahead = true.
func BenchmarkGeneratorToFile(b *testing.B) { toFile(b, "") }

func BenchmarkGeneratorToFileReadAhead(b *testing.B) {
	toFile(b, "\n  batch { read_ahead = true }")
}

func toFile(b *testing.B, extra string) {
	const count = 1000000
	var elapsed, cpu time.Duration
	var peak, host, plugins, anon int64
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		cfg := filepath.Join(dir, "bench.hcl")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
pipeline "bench" {
  delivery = "exactly-once"
  source "generator" {
    count      = %d
    partitions = 4
    size       = 100
  }
  sink "file" { dir = "out" }%s
  checkpoint { dir = "state" }
}
`, count, extra)), 0o644); err != nil {
			b.Fatal(err)
		}
		r := runMeasured(b, dir, "run", "--drain", cfg)
		if !strings.Contains(r.stderr, fmt.Sprintf(" %d records in ", count)) {
			b.Fatalf("connectd did not move %d records:\n%s", count, r.stderr)
		}
		if n := lines(b, filepath.Join(dir, "out")); n != count {
			b.Fatalf("the file sink holds %d records, want %d", n, count)
		}
		elapsed += r.elapsed
		cpu += r.cpu
		if t := r.hostKiB + r.pluginsKiB; t > peak {
			peak, host, plugins = t, r.hostKiB, r.pluginsKiB
		}
		anon = max(anon, r.anonKiB)
	}
	b.ReportMetric(float64(count)*float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/run")
	if peak > 0 {
		b.ReportMetric(float64(peak)/1024, "peak-MiB")
		b.ReportMetric(float64(host)/1024, "host-MiB")
		b.ReportMetric(float64(plugins)/1024, "plugins-MiB")
		b.ReportMetric(float64(anon)/1024, "anon-MiB")
	}
}

// lines counts the newline-terminated records in the files of dir (its
// hidden bookkeeping files left out).
func lines(b *testing.B, dir string) int {
	files, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasPrefix(f.Name(), ".") || f.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			b.Fatal(err)
		}
		n += bytes.Count(data, []byte{'\n'})
	}
	return n
}

// measured is one connectd run as runMeasured saw it.
type measured struct {
	stderr  string
	elapsed time.Duration
	// cpu is the user + system time of the host and its plugin processes.
	cpu time.Duration
	// hostKiB is the host's VmHWM and pluginsKiB the sum of its child
	// processes' VmHWM, as last sampled (0 where /proc cannot be read).
	hostKiB, pluginsKiB int64
	// anonKiB is the sum, over the host and its children, of the highest
	// RssAnon sampled.
	anonKiB int64
}

// runMeasured runs connectd with args in dir and measures it (see
// measured). It fails b when connectd exits with a status other than 0.
func runMeasured(b *testing.B, dir string, args ...string) measured {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start, cpu0 := time.Now(), childCPU(b)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := watchChildren(cmd.Process.Pid, 10*time.Millisecond)
	err := cmd.Wait()
	m := measured{stderr: stderr.String(), elapsed: time.Since(start), cpu: childCPU(b) - cpu0}
	hwm, anon := w.stop()
	m.hostKiB = hwm[cmd.Process.Pid]
	for pid, kib := range hwm {
		if pid != cmd.Process.Pid {
			m.pluginsKiB += kib
		}
	}
	m.anonKiB = anon
	if err != nil {
		b.Fatalf("connectd %s: %v\n%s", strings.Join(args, " "), err, m.stderr)
	}
	return m
}

// watcher samples the VmHWM of a process and its children (see watchChildren).
type watcher struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	hwm  map[int]int64 // pid (the process's and its children's) → VmHWM in KiB, last read
	anon map[int]int64 // pid → highest RssAnon in KiB
}

// watchChildren reads, every period until stop, pid's VmHWM and RssAnon,
// which processes it has started (/proc/<pid>/task/*/children) and theirs. Where /proc
// does not say (not Linux), it finds nothing.
func watchChildren(pid int, period time.Duration) *watcher {
	w := &watcher{done: make(chan struct{}), hwm: map[int]int64{}, anon: map[int]int64{}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			w.sample(pid)
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *watcher) sample(pid int) {
	if kib, anon, ok := memStatus(pid); ok {
		w.mu.Lock()
		w.hwm[pid] = max(w.hwm[pid], kib)
		w.anon[pid] = max(w.anon[pid], anon)
		w.mu.Unlock()
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		data, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(data)) {
			c, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if kib, anon, ok := memStatus(c); ok {
				w.mu.Lock()
				w.hwm[c] = max(w.hwm[c], kib)
				w.anon[c] = max(w.anon[c], anon)
				w.mu.Unlock()
			}
		}
	}
}

// stop ends the sampling and returns each process's peak by pid, and the
// sum of every process's highest RssAnon.
func (w *watcher) stop() (hwm map[int]int64, anon int64) {
	close(w.done)
	w.wg.Wait()
	for _, kib := range w.anon {
		anon += kib
	}
	return w.hwm, anon
}

// memStatus reads a process's peak resident set (VmHWM) and its anonymous
// resident memory now (RssAnon), in KiB, from /proc/<pid>/status; ok is
// false when it cannot (the process is gone or a zombie, or not Linux).
func memStatus(pid int) (hwm, anon int64, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, false
	}
	found := 0
	for _, l := range strings.Split(string(data), "\n") {
		for name, to := range map[string]*int64{"VmHWM:": &hwm, "RssAnon:": &anon} {
			if v, ok := strings.CutPrefix(l, name); ok {
				kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err == nil {
					*to = kib
					found++
				}
			}
		}
	}
	return hwm, anon, found == 2
}
