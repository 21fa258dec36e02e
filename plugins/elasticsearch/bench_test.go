//go:build unix

// The benchmarks read CPU time with getrusage, which Windows does not have.

package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	es8 "github.com/elastic/go-elasticsearch/v8"

	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// Benchmark: generator → elasticsearch through the whole framework (the
// connectd binary, `run --drain`: host, generator and elasticsearch plugin
// processes, a checkpoint fsync per batch) against a plain go-elasticsearch
// bulk loop that generates the same records in-process and sends the same
// bulk bodies (same ids, same documents, one request per batch, the same
// filter_path) on the same server. Documents are 1 KiB generator values.
// Each iteration runs the legs one after the other (starting at another leg
// each time, after one uncounted warm-up run of the loop), each into a fresh index
// that, outside the clock, the server finishes indexing, is counted and is
// deleted, so that legs do not slow each other down. Reported per leg:
// records/s, CPU seconds used by connectd's processes (or the loop) and by
// the server (when it is the test server, which says its pid); and the ratio
// connectd / loop.
//
//	go test -run '^$' -bench GeneratorToElasticsearch -benchtime 1x ./plugins/elasticsearch
//
// ES_BENCH_RECORDS changes the number of records per run (default 50000).

const (
	benchSize       = 1024
	benchPartitions = 4
	benchBatch      = 5000 // about 5.3 MB: one bulk request per batch
)

func benchRecords() int {
	if n, err := strconv.Atoi(os.Getenv("ES_BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 50000
}

func BenchmarkGeneratorToElasticsearch(b *testing.B) {
	n := benchRecords()
	legs := []struct {
		name  string
		write func(b *testing.B, index string) (ownCPU time.Duration)
	}{
		{"connectd", func(b *testing.B, index string) time.Duration { return runConnectd(b, n, index, "", "") }},
		{"loop", func(b *testing.B, index string) time.Duration {
			before := selfCPU()
			bulkLoop(b, index, n)
			return selfCPU() - before
		}},
		// Not like for like with the loop: each batch goes out as two bulk
		// requests at once, which lets a server with a spare core hide the
		// framework's own time per batch.
		{"connectd-concurrency-2", func(b *testing.B, index string) time.Duration {
			return runConnectd(b, n, index, "bulk_concurrency = 2\n    bulk_max_bytes = 3000000", "")
		}},
		// The driver reading batch N+1 while batch N is written.
		{"connectd-read-ahead", func(b *testing.B, index string) time.Duration {
			return runConnectd(b, n, index, "", "read_ahead = true")
		}},
	}
	// The legs alternate within each iteration, so that a change in the
	// load of a shared machine hits them alike.
	elapsed := make([]time.Duration, len(legs))
	own := make([]time.Duration, len(legs))
	server := make([]time.Duration, len(legs))
	// A first run of the loop, not counted, warms the server up; and each
	// iteration starts at another leg, so that no leg always follows the same one.
	warm := fmt.Sprintf("bench-warmup-%d", time.Now().UnixNano()%1e9)
	bulkLoop(b, warm, n)
	settle(b, warm, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range legs {
			j := (i + k) % len(legs)
			leg := legs[j]
			index := fmt.Sprintf("bench-%s-%d-%d", leg.name, time.Now().UnixNano()%1e9, i)
			s0 := serverCPU(b)
			start := time.Now()
			own[j] += leg.write(b, index)
			elapsed[j] += time.Since(start)
			server[j] += serverCPU(b) - s0
			b.StopTimer()
			settle(b, index, n)
			b.StartTimer()
		}
	}
	runs := float64(b.N)
	rate := func(j int) float64 { return float64(n) * runs / elapsed[j].Seconds() }
	for j, leg := range legs {
		b.ReportMetric(rate(j), leg.name+"-records/s")
		b.ReportMetric(own[j].Seconds()/runs, leg.name+"-cpu-s/run")
		if server[j] > 0 {
			b.ReportMetric(server[j].Seconds()/runs, leg.name+"-server-cpu-s/run")
		}
	}
	b.ReportMetric(rate(0)/rate(1), "ratio")
}

// runConnectd runs the pipeline with the connectd binary and returns the
// CPU time connectd and its plugin processes used; extra goes into the sink
// block, batchExtra into the batch block.
func runConnectd(b *testing.B, n int, index, extra, batchExtra string) time.Duration {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "p.hcl")
	tls := ""
	if env.caFile != "" {
		tls = `tls_ca_file = env("ES_CA_CERT")`
	}
	hcl := fmt.Sprintf(`pipeline "bench" {
  delivery = "exactly-once"
  source "generator" {
    count      = %d
    partitions = %d
    size       = %d
  }
  sink "elasticsearch" {
    addresses = [env("ES_URL")]
    index     = %q
    username  = env("ES_USERNAME")
    password  = env("ES_PASSWORD")
    %s
    %s
  }
  batch {
    max_records = %d
    max_wait    = "1s"
    %s
  }
  checkpoint { dir = "state" }
}
`, n, benchPartitions, benchSize, index, tls, extra, benchBatch, batchExtra)
	if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(env.connectd, "run", "--drain", cfg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), connectdEnv()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	before := childrenCPU()
	if err := cmd.Run(); err != nil {
		b.Fatalf("connectd run: %v\n%s", err, stderr.String())
	}
	return childrenCPU() - before
}

// bulkLoop is the plain client: generate a batch, render it, send it with
// the Bulk API, check every item, repeat.
func bulkLoop(b *testing.B, index string, n int) {
	cfg := es8.Config{Addresses: []string{env.url}, Username: env.user, Password: env.pass}
	if env.caFile != "" {
		ca, err := os.ReadFile(env.caFile)
		if err != nil {
			b.Fatal(err)
		}
		cfg.CACert = ca
	}
	es, err := es8.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	src := sdktest.Source(b, generator.Plugin, "loop", map[string]any{"count": n, "partitions": benchPartitions, "size": benchSize})
	from := sdk.Offsets{}
	var body []byte
	for {
		rd, err := src.Read(context.Background(), from, sdk.Limits{MaxRecords: benchBatch})
		if err != nil {
			b.Fatal(err)
		}
		if len(rd.Records) == 0 {
			return
		}
		from = from.Merge(rd.Until)
		body = body[:0]
		for i := range rd.Records {
			r := &rd.Records[i]
			body = append(body, `{"index":{"_index":"`...)
			body = append(body, index...)
			body = append(body, `","_id":"`...)
			body = append(body, r.Position.Partition...)
			body = append(body, '@')
			body = strconv.AppendInt(body, r.Position.Offset, 10)
			body = append(body, "\"}}\n"...)
			body = append(body, r.Value...)
			body = append(body, '\n')
		}
		res, err := es.Bulk(bytes.NewReader(body), es.Bulk.WithFilterPath("errors", "items.*.status", "items.*.error"))
		if err != nil {
			b.Fatal(err)
		}
		var br bulkResponse
		err = json.NewDecoder(res.Body).Decode(&br)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || br.Errors || len(br.Items) != len(rd.Records) {
			b.Fatalf("bulk: HTTP %d, errors %v, %d items for %d documents, %v", res.StatusCode, br.Errors, len(br.Items), len(rd.Records), err)
		}
	}
}

// settle lets the server index what it acknowledged, checks the count and
// deletes the index, so that the next leg starts on an idle server.
func settle(b *testing.B, index string, n int) {
	mustDo(b, "POST", "/"+index+"/_refresh", nil)
	var c struct{ Count int }
	if err := json.Unmarshal(mustDo(b, "GET", "/"+index+"/_count", nil), &c); err != nil || c.Count != n {
		b.Fatalf("index %s holds %d documents after the run, want %d (%v)", index, c.Count, n, err)
	}
	esDo(b, "DELETE", "/"+index, nil)
}

// serverCPU returns the CPU time the test server used so far, when the
// server is the test server on this machine (it says its pid); else 0.
func serverCPU(b *testing.B) time.Duration {
	st, body := esDo(b, "GET", "/_testenv/stats", nil)
	if st != 200 {
		return 0
	}
	var s struct{ Pid int }
	if json.Unmarshal(body, &s) != nil || s.Pid == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stime) * time.Second / 100 // USER_HZ
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childrenCPU is the CPU time of this process's waited-for children and
// their descendants (connectd and its plugin processes).
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
