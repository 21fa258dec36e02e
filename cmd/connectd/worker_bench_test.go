//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/pg/pgtest"
)

// BenchmarkWorkers measures 4 kafka → postgres pipelines (exactly-once,
// insert mode) that each read the same topic of 2 × 10,000 records into a
// table of their own, run by 1, 2 and 3 workers: records/s is all four
// tables' rows over the time from the workers' start to the last row. On a
// machine with fewer cores than processes (each worker runs a host, a
// source and a sink process per pipeline it holds) the figure shows the
// workers' overhead, not scaling. Run with -benchtime=1x:
//
//	go test -run '^$' -bench Workers -benchtime=1x ./cmd/connectd/
func BenchmarkWorkers(b *testing.B) {
	const units, perTopic = 4, 20000
	pgURL := pgForTest(b)
	root, err := pgtest.Root()
	if err != nil {
		b.Fatal(err)
	}
	brokers := e2e.KafkaBrokers(b, root)
	brokersHCL := `["` + strings.Join(brokers, `", "`) + `"]`
	dir := b.TempDir()
	env := []string{pgtest.Env + "=" + pgURL}
	topic := pgtest.Name("bench")
	fill := filepath.Join(dir, "fill.hcl")
	if err := os.WriteFile(fill, []byte(fmt.Sprintf(`
pipeline "fill" {
  delivery = "at-least-once"
  source "generator" {
    count      = %d
    partitions = 2
    size       = 64
  }
  sink "kafka" {
    brokers          = %s
    topic            = %q
    create_topics    = true
    topic_partitions = 2
  }
  batch { max_records = 5000 }
  checkpoint { dir = "state/fill" }
}
`, perTopic, brokersHCL, topic)), 0o644); err != nil {
		b.Fatal(err)
	}
	if r := connectd(b, dir, env, "run", "--drain", fill); r.Code != 0 {
		b.Fatalf("filling the topic: exit %d\n%s", r.Code, r.Stderr)
	}
	c := pgtest.Conn(b, pgURL)
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			for range b.N {
				schema := pgtest.Schema(b, pgURL, "wbench")
				var hcl strings.Builder
				for i := range units {
					table := fmt.Sprintf("%s.events%d", schema, i)
					if _, err := c.Exec(context.Background(), fmt.Sprintf(eventsDDL, table)); err != nil {
						b.Fatal(err)
					}
					fmt.Fprintf(&hcl, `
pipeline "read%d" {
  delivery = "exactly-once"
  source "kafka" {
    brokers          = %s
    topics           = [%q]
    starting_offsets = "earliest"
  }
  sink "postgres" {
    url   = env("PG_URL")
    table = %q
    mode  = "insert"
  }
  batch {
    max_records = 5000
    max_wait    = "200ms"
  }
  %s
}
`, i, brokersHCL, topic, table, pgCheckpoint(schema))
				}
				cfg := filepath.Join(dir, schema+".hcl")
				if err := os.WriteFile(cfg, []byte(hcl.String()), 0o644); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				var ws []*workerProc
				for i := range n {
					ws = append(ws, startWorker(b, dir, fmt.Sprintf("w%d", i), env, "--lease-ttl", "4s", cfg))
				}
				for i := range units {
					waitRows(b, c, fmt.Sprintf("%s.events%d", schema, i), perTopic, 5*time.Minute)
				}
				elapsed := time.Since(start)
				b.ReportMetric(float64(units*perTopic)/elapsed.Seconds(), "records/s")
				b.ReportMetric(elapsed.Seconds(), "s/drain")
				for _, w := range ws {
					w.stop()
				}
			}
		})
	}
}
