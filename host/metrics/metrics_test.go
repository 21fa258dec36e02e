package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/host/pipeline"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLint checks every series against Prometheus' naming and help rules.
func TestLint(t *testing.T) {
	c := pipeline.NewControl("orders")
	m := New([]*pipeline.Control{c})
	m.Progress().Batch(pipeline.Report{Pipeline: "orders", Batch: 1, Records: 10, Read: time.Millisecond})
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "connectd_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
	n, err := testutil.GatherAndCount(m.Registry, "connectd_pipeline_state", "connectd_batch_phase_seconds", "connectd_batches_total")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(States) + 5 + 3; n != want {
		t.Errorf("%d series of state, phases and batches, want %d", n, want)
	}
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(`
# HELP connectd_pipeline_state 1 for the pipeline's current state, 0 for the others.
# TYPE connectd_pipeline_state gauge
connectd_pipeline_state{pipeline="orders",state="failed"} 0
connectd_pipeline_state{pipeline="orders",state="finished"} 0
connectd_pipeline_state{pipeline="orders",state="paused"} 0
connectd_pipeline_state{pipeline="orders",state="recovering"} 0
connectd_pipeline_state{pipeline="orders",state="restarting"} 0
connectd_pipeline_state{pipeline="orders",state="running"} 0
connectd_pipeline_state{pipeline="orders",state="starting"} 1
`), "connectd_pipeline_state"); err != nil {
		t.Error(err)
	}
}
