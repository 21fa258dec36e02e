// Package metrics exposes the host's pipelines to Prometheus: per pipeline,
// records and bytes read and written, batches by outcome, a histogram per
// protocol phase, plugin restarts, state, the last commit's time and the lag
// per partition, plus the Go runtime and process collectors.
package metrics

import (
	"sort"
	"time"

	"github.com/connectd/connectd/host/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// States lists every pipeline state, for connectd_pipeline_state.
var States = []pipeline.State{
	pipeline.StateStarting, pipeline.StateRecovering, pipeline.StateRunning, pipeline.StatePaused,
	pipeline.StateRestarting, pipeline.StateFailed, pipeline.StateFinished,
}

// Metrics holds the registry served at /metrics. Its Progress observes the
// phases of every batch; everything else is read from the pipelines'
// Controls when Prometheus scrapes.
type Metrics struct {
	// Registry has the connectd collectors and the Go and process collectors.
	Registry *prometheus.Registry
	phases   *prometheus.HistogramVec
	syncs    *prometheus.HistogramVec
}

// New returns the metrics of the pipelines whose Controls are given.
func New(controls []*pipeline.Control) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "connectd_batch_phase_seconds",
			Help:    "Time a batch spent in each protocol phase: read (the source's Read or Replay), plan (offsets/N appended and fsynced), write (the sink's Write), commit (commits/N appended and fsynced), ack (the source's Ack).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), // 0.5ms … ~131s
		}, []string{"pipeline", "phase"}),
		syncs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "connectd_checkpoint_sync_seconds",
			Help:    "Time an append to the checkpoint took to become durable: the fsync of the offset log (log=offsets, at PLAN) or the commit log (log=commits, at COMMIT) of a directory checkpoint, or the append's transaction in PostgreSQL.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 0.1ms … ~26s
		}, []string{"pipeline", "log"}),
	}
	m.Registry.MustRegister(m.phases, m.syncs, &collector{controls: controls},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Progress returns a pipeline.Progress that observes each finished batch's
// phases; it is called once per batch, never per record.
func (m *Metrics) Progress() pipeline.Progress { return progress{m} }

type progress struct{ m *Metrics }

func (p progress) Batch(r pipeline.Report) {
	for _, ph := range []struct {
		name string
		d    time.Duration
	}{{"read", r.Read}, {"plan", r.Plan}, {"write", r.Write}, {"commit", r.Commit}, {"ack", r.Ack}} {
		p.m.phases.WithLabelValues(r.Pipeline, ph.name).Observe(ph.d.Seconds())
	}
	if r.PlanSync > 0 {
		p.m.syncs.WithLabelValues(r.Pipeline, "offsets").Observe(r.PlanSync.Seconds())
	}
	if r.CommitSync > 0 {
		p.m.syncs.WithLabelValues(r.Pipeline, "commits").Observe(r.CommitSync.Seconds())
	}
}

func (progress) Done(string, int64, int64, time.Duration) {}

var (
	descRecordsRead    = prometheus.NewDesc("connectd_records_read_total", "Records the source returned (batches that later failed included).", []string{"pipeline"}, nil)
	descBytesRead      = prometheus.NewDesc("connectd_read_bytes_total", "Bytes of record data the source returned (batches that later failed included).", []string{"pipeline"}, nil)
	descRecordsWritten = prometheus.NewDesc("connectd_records_written_total", "Records of committed batches, written by the sink.", []string{"pipeline"}, nil)
	descBytesWritten   = prometheus.NewDesc("connectd_written_bytes_total", "Bytes of record data of committed batches, written by the sink.", []string{"pipeline"}, nil)
	descRejected       = prometheus.NewDesc("connectd_records_rejected_total", "Records of committed batches that a transform, a processor or the sink rejected (on_record_error skip or dead_letter).", []string{"pipeline"}, nil)
	descDeadLetters    = prometheus.NewDesc("connectd_dead_letters_total", "Rejected records of committed batches written to the dead-letter sink.", []string{"pipeline"}, nil)
	descBatches        = prometheus.NewDesc("connectd_batches_total", "Batches by outcome: committed (new batches), replayed (uncommitted batches recovered and committed), failed (a plugin failed during the batch; it is retried).", []string{"pipeline", "outcome"}, nil)
	descRestarts       = prometheus.NewDesc("connectd_plugin_restarts_total", "Plugin processes restarted after they died, by role.", []string{"pipeline", "role"}, nil)
	descState          = prometheus.NewDesc("connectd_pipeline_state", "1 for the pipeline's current state, 0 for the others.", []string{"pipeline", "state"}, nil)
	descLastCommit     = prometheus.NewDesc("connectd_last_commit_timestamp_seconds", "Unix time of the last batch commit (absent before the first).", []string{"pipeline"}, nil)
	descCommitted      = prometheus.NewDesc("connectd_committed_offset", "The committed offset (the next to read) per partition.", []string{"pipeline", "partition"}, nil)
	descLag            = prometheus.NewDesc("connectd_partition_lag", "The source's end minus the committed offset, per partition, for sources that can tell their end (sdk.Ender); asked at most once a second.", []string{"pipeline", "partition"}, nil)
)

type collector struct{ controls []*pipeline.Control }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecordsRead, descBytesRead, descRecordsWritten, descBytesWritten, descRejected, descDeadLetters, descBatches, descRestarts, descState, descLastCommit, descCommitted, descLag} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, ctl := range c.controls {
		s := ctl.Status()
		n := s.Name
		counter(descRecordsRead, s.RecordsRead, n)
		counter(descBytesRead, s.BytesRead, n)
		counter(descRecordsWritten, s.RecordsWritten, n)
		counter(descBytesWritten, s.BytesWritten, n)
		counter(descRejected, s.RecordsRejected, n)
		counter(descDeadLetters, s.DeadLetters, n)
		counter(descBatches, s.Batches, n, "committed")
		counter(descBatches, s.Replayed, n, "replayed")
		counter(descBatches, s.FailedBatches, n, "failed")
		for _, role := range []string{"source", "processor", "sink", "dead_letter"} {
			counter(descRestarts, s.Restarts[role], n, role)
		}
		for _, st := range States {
			v := 0.0
			if s.State == st {
				v = 1
			}
			gauge(descState, v, n, string(st))
		}
		if !s.LastCommit.IsZero() {
			gauge(descLastCommit, float64(s.LastCommit.UnixNano())/1e9, n)
		}
		for _, p := range sortedKeys(s.Committed) {
			gauge(descCommitted, float64(s.Committed[p]), n, p)
		}
		for _, p := range sortedKeys(s.Lag) {
			gauge(descLag, float64(s.Lag[p]), n, p)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
