package postgres

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/connectd/connectd/internal/tally"
)

// TestDeadLetters: generator → postgres (insert, transactional), exactly
// once, with on_record_error = "dead_letter" and a file sink for dead
// letters. The table refuses every row whose offset % 7 = 3 (a CHECK
// constraint): the sink rejects those records, and the host writes them to
// the dead-letter sink before the batch commits. Crashed at every fault
// point in batch 3 and drained: every generated id is in the table or in the
// dead-letter files, once, and each in the right one. A crash after the sink
// committed a batch but before its dead letters were written is recovered by
// replaying the batch: the sink answers with the rejections it committed.
func TestDeadLetters(t *testing.T) {
	const count, parts = 300, 2
	var cases []subtest
	for _, p := range append([]fault.Point{{Name: "none"}}, fault.Points...) {
		if strings.HasPrefix(p.Name, "source.replay") {
			continue // needs a crash first to be reached; TestFaultPoints covers it
		}
		if strings.HasPrefix(p.Name, "processor.") {
			continue // the pipeline has no processor to crash
		}
		cases = append(cases, subtest{p.Name, func(t *testing.T) {
			dir := t.TempDir()
			schema := pgtest.Schema(t, pgURL, "dl")
			table := schema + ".events"
			sqlExec(t, "CREATE TABLE "+table+` (id text, partition int, "offset" bigint CHECK ("offset" % 7 <> 3), pad text)`)
			cfg := filepath.Join(dir, "p.hcl")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
pipeline "p" {
  delivery        = "exactly-once"
  on_record_error = "dead_letter"
  source "generator" {
    count      = %d
    partitions = %d
    size       = 80
  }
  sink "postgres" {
    url   = env("PG_URL")
    table = %q
    mode  = "insert"
  }
  dead_letter "file" {
    dir  = "rejected"
    mode = "batch"
  }
  batch {
    max_records = 50
    max_wait    = "100ms"
  }
  checkpoint { dir = "state" }
}
`, count, parts, table)), 0o644); err != nil {
				t.Fatal(err)
			}
			if p.Name != "none" {
				first := connectd(t, dir, []string{fault.Env + "=" + p.Name + "@3"}, "run", "--drain", cfg)
				if strings.HasPrefix(p.Name, "host.") && !first.Killed {
					t.Fatalf("host fault point %s did not kill the host (exit %d):\n%s", p.Name, first.Code, first.Stderr)
				}
			}
			if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 0 {
				t.Fatalf("run: exit %d:\n%s", r.Code, r.Stderr)
			}
			var good, bad []string
			for i := 0; i < count; i++ {
				id := fmt.Sprintf("%d-%d", i%parts, i/parts)
				if (i/parts)%7 == 3 {
					bad = append(bad, id)
				} else {
					good = append(good, id)
				}
			}
			inTable := map[string]int{}
			rows, err := pgtest.Conn(t, pgURL).Query(ctx, "SELECT id FROM "+table)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				inTable[id]++
			}
			rows.Close()
			letters := map[string]int{}
			files, _ := filepath.Glob(filepath.Join(dir, "rejected", "*"))
			for _, f := range files {
				if strings.HasPrefix(filepath.Base(f), ".") {
					continue
				}
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					if l == "" {
						continue
					}
					var v struct{ ID string }
					if err := json.Unmarshal([]byte(l), &v); err != nil {
						t.Fatalf("dead letter %q: %v", l, err)
					}
					letters[v.ID]++
				}
			}
			if lost, dup, extra := tally.Tally(good, inTable); lost != 0 || dup != 0 || len(extra) != 0 {
				t.Errorf("table: %d lost, %d duplicated, %d not expected %v", lost, dup, len(extra), extra)
			}
			if lost, dup, extra := tally.Tally(bad, letters); lost != 0 || dup != 0 || len(extra) != 0 {
				t.Errorf("dead letters: %d lost, %d duplicated, %d not expected %v", lost, dup, len(extra), extra)
			}
		}})
	}
	runAll(t, 4, cases)
}
