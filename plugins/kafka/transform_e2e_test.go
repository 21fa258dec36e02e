package kafka

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/connectd/connectd/internal/tally"
)

// TestEndToEndTransforms: kafka → filter + set → file, exactly-once, crashed
// (as kill -9 would) in the host and in each plugin process at every crash
// point, holds exactly the expected output: every record the filter keeps,
// once, reshaped; none of those it drops. A replayed batch is transformed
// into the same records, and filtered records still advance the offsets (the
// drain ends at the topic's end).
func TestEndToEndTransforms(t *testing.T) {
	for _, point := range crashPoints {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			topic := newTopic(t, 3)
			var want []string
			for p := 0; p < 3; p++ {
				ms := make([]msg, 100)
				for i := range ms {
					id := fmt.Sprintf("%s-%d-%d", topic, p, i)
					ms[i] = msg{key: id, value: fmt.Sprintf(`{"id":%q,"n":%d}`, id, i)}
					if i >= 30 {
						want = append(want, id)
					}
				}
				produce(t, topic, p, ms...)
			}
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "p.hcl"), fmt.Sprintf(`
pipeline "shape" {
  delivery = "exactly-once"
  source "kafka" {
    brokers          = %s
    topics           = [%q]
    starting_offsets = "earliest"
  }
  transform "filter" { where = "value.n >= 30" }
  transform "set" {
    fields = {
      "copy"      = "value.id"
      "meta.part" = "position.partition"
    }
  }
  sink "file" {
    dir  = "out"
    mode = "batch"
  }
  batch {
    max_records = 40
    max_wait    = "200ms"
  }
  checkpoint { dir = "state" }
}
`, brokersHCL(), topic))
			crashAndDrain(t, dir, point)
			seen := map[string]int{}
			for line, n := range fileIDs(t, dir) {
				var v struct {
					ID   string
					N    int
					Copy string
					Meta struct{ Part string }
				}
				if err := json.Unmarshal([]byte(line), &v); err != nil {
					t.Fatalf("output line %q: %v", line, err)
				}
				if v.Copy != v.ID || v.Meta.Part == "" || v.N < 30 {
					t.Errorf("output line %q: want copy = id, meta.part set, n >= 30", line)
				}
				seen[v.ID] += n
			}
			if lost, dup, extra := tally.Tally(want, seen); lost != 0 || dup != 0 || len(extra) != 0 {
				t.Fatalf("exactly-once through transforms broken at %s: %d lost, %d duplicated, %d not expected (%v)", point, lost, dup, len(extra), extra)
			}
		})
	}
}
