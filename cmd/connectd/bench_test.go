//go:build unix

// The benchmarks read CPU time with getrusage, which Windows does not have.

package main

import (
	"context"
	"fmt"
	"os"
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
