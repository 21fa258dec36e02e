package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
	"github.com/jackc/pgx/v5"
)

// BenchmarkThroughput compares, on the same server and the same rows, the
// postgres sink's insert and COPY methods
//
//	framework  `connectd run --drain` generator → postgres: host, two plugin
//	           processes, gRPC, the checkpoint fsync'ed per batch, one
//	           transaction per batch with the offsets (process start-up included)
//	sink       the sink in-process (Sink.Write), batches made beforehand
//	pgx        a plain pgx loop: one transaction per batch, rows as Go values
//	           made beforehand, CopyFrom (binary) for "copy", a pgx.Batch of one
//	           INSERT per row for "insert"
//
// One iteration moves benchRecords records of benchSize bytes
// ({"id":"<p>-<o>","partition":p,"offset":o,"pad":"…"}, 4 partitions) in
// batches of benchBatch into a table (id text, partition int, offset bigint,
// pad text), emptied before each iteration outside the clock.
//
//	go test -run '^$' -bench BenchmarkThroughput -benchtime 3x ./plugins/postgres
func BenchmarkThroughput(b *testing.B) {
	for _, method := range []string{MethodInsert, MethodCopy} {
		b.Run("framework/"+method, func(b *testing.B) { benchFramework(b, method) })
		b.Run("sink/"+method, func(b *testing.B) { benchSink(b, method) })
		b.Run("pgx/"+method, func(b *testing.B) { benchPgx(b, method) })
	}
}

const (
	benchRecords = 200_000
	benchParts   = 4
	benchSize    = 100
	benchBatch   = 10_000
)

// benchTable creates the benchmark's table in a fresh schema and returns its
// name and a function that empties it.
func benchTable(b *testing.B) (string, func()) {
	schema := pgtest.Schema(b, pgURL, "bench")
	table := schema + ".events"
	c := pgtest.Conn(b, pgURL)
	if _, err := c.Exec(ctx, "CREATE TABLE "+table+` (id text, partition int, "offset" bigint, pad text)`); err != nil {
		b.Fatal(err)
	}
	return table, func() {
		if _, err := c.Exec(ctx, "TRUNCATE "+table+"; DROP TABLE IF EXISTS "+schema+".connectd_offsets"); err != nil {
			b.Fatal(err)
		}
	}
}

// benchValue is record i's value, as the generator makes it.
func benchValue(i int) (id string, part, off int, value []byte) {
	part, off = i%benchParts, i/benchParts
	id = fmt.Sprintf("%d-%d", part, off)
	v := fmt.Sprintf(`{"id":%q,"partition":%d,"offset":%d,"pad":""}`, id, part, off)
	if n := benchSize - len(v); n > 0 {
		v = v[:len(v)-2] + strings.Repeat("x", n) + `"}`
	}
	return id, part, off, []byte(v)
}

func report(b *testing.B, elapsed time.Duration, check func() int) {
	if n := check(); n != benchRecords {
		b.Fatalf("the table holds %d rows, want %d", n, benchRecords)
	}
	b.ReportMetric(float64(benchRecords*b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(benchRecords*benchSize*b.N)/elapsed.Seconds()/1e6, "MB/s")
}

func benchFramework(b *testing.B, method string) {
	table, empty := benchTable(b)
	dir := b.TempDir()
	cfg := filepath.Join(dir, "bench.hcl")
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		empty()
		os.RemoveAll(filepath.Join(dir, "state"))
		hcl := fmt.Sprintf(`
pipeline "bench" {
  delivery = "exactly-once"
  source "generator" {
    count      = %d
    partitions = %d
    size       = %d
  }
  sink "postgres" {
    url    = env("PG_URL")
    table  = %q
    method = %q
  }
  batch { max_records = %d }
  checkpoint { dir = "state" }
}
`, benchRecords, benchParts, benchSize, table, method, benchBatch)
		if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		r := connectd(b, dir, nil, "run", "--drain", cfg)
		elapsed += time.Since(start)
		if r.Code != 0 {
			b.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
		}
	}
	report(b, elapsed, func() int { return count(b, table) })
}

func benchSink(b *testing.B, method string) { benchSinkBatches(b, method, benchRecords, benchBatch) }

// BenchmarkSmallBatches is where method "auto" switches from INSERT to COPY
// (copyMin): the sink in-process, 20,000 records in batches of n.
//
//	go test -run '^$' -bench BenchmarkSmallBatches -benchtime 3x ./plugins/postgres
func BenchmarkSmallBatches(b *testing.B) {
	for _, n := range []int{4, 16, 32, 64, 256} {
		for _, method := range []string{MethodInsert, MethodCopy} {
			b.Run(fmt.Sprintf("batch=%d/%s", n, method), func(b *testing.B) { benchSinkBatches(b, method, 20_000, n) })
		}
	}
}

func benchSinkBatches(b *testing.B, method string, records, size int) {
	table, empty := benchTable(b)
	var batches []sdk.Batch
	until := sdk.Offsets{}
	for i := 0; i < records; i += size {
		bt := sdk.Batch{ID: int64(len(batches) + 1), From: until.Clone()}
		for j := i; j < min(i+size, records); j++ {
			_, p, o, v := benchValue(j)
			part := fmt.Sprintf("generator/%d", p)
			bt.Records = append(bt.Records, sdk.Record{Key: v[7:12], Value: v, Position: sdk.Position{Partition: part, Offset: int64(o)}, Timestamp: time.UnixMilli(int64(j))})
			until[part] = int64(o + 1)
		}
		bt.Until = until.Clone()
		batches = append(batches, bt)
	}
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		empty()
		s := sdktest.Sink(b, Plugin, fmt.Sprintf("bench-%d", i), map[string]any{"url": pgURL, "table": table, "method": method})
		start := time.Now()
		for _, bt := range batches {
			if err := s.Write(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
		s.Close(ctx)
	}
	if n := count(b, table); n != records {
		b.Fatalf("the table holds %d rows, want %d", n, records)
	}
	b.ReportMetric(float64(records*b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(records*benchSize*b.N)/elapsed.Seconds()/1e6, "MB/s")
}

func benchPgx(b *testing.B, method string) {
	table, empty := benchTable(b)
	conn := pgtest.Conn(b, pgURL)
	ident := pgx.Identifier(strings.Split(table, "."))
	var batches [][][]any // made beforehand, as the sink's batches are
	for from := 0; from < benchRecords; from += benchBatch {
		rows := make([][]any, 0, benchBatch)
		for j := from; j < min(from+benchBatch, benchRecords); j++ {
			id, p, o, v := benchValue(j)
			pad := string(v[strings.LastIndex(string(v), `"pad":"`)+7 : len(v)-2])
			rows = append(rows, []any{id, int32(p), int64(o), pad})
		}
		batches = append(batches, rows)
	}
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		empty()
		start := time.Now()
		for _, rows := range batches {
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if method == MethodCopy {
					_, err := tx.CopyFrom(ctx, ident, []string{"id", "partition", "offset", "pad"}, pgx.CopyFromRows(rows))
					return err
				}
				var batch pgx.Batch
				for _, r := range rows {
					batch.Queue("INSERT INTO "+ident.Sanitize()+` (id, partition, "offset", pad) VALUES ($1, $2, $3, $4)`, r...)
				}
				return tx.SendBatch(context.Background(), &batch).Close()
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
	}
	report(b, elapsed, func() int { return count(b, table) })
}
