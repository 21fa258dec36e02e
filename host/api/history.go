package api

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// HistoryWindow is how far back GET /v1/pipelines/{name}/history reaches:
// the status page plots this much as soon as it opens.
const HistoryWindow = 5 * time.Minute

// Sample is one point of a pipeline's history: the records it had written and
// its total lag (nil when its source cannot tell its end) at Time.
type Sample struct {
	Time           time.Time `json:"t"`
	RecordsWritten int64     `json:"recordsWritten"`
	TotalLag       *int64    `json:"totalLag,omitempty"`
}

// history holds the samples of every pipeline, oldest first.
type history struct {
	mu      sync.Mutex
	samples map[string][]Sample
}

// Sample records one sample of every pipeline at now and forgets those older
// than HistoryWindow. Run calls it every second.
func (s *Server) Sample(now time.Time) {
	s.hist.mu.Lock()
	defer s.hist.mu.Unlock()
	if s.hist.samples == nil {
		s.hist.samples = map[string][]Sample{}
	}
	for _, p := range s.Pipelines {
		st := statusOf(p)
		h := append(s.hist.samples[st.Name], Sample{Time: now.UTC(), RecordsWritten: st.RecordsWritten, TotalLag: st.TotalLag})
		old := 0
		for old < len(h) && now.Sub(h[old].Time) > HistoryWindow {
			old++
		}
		s.hist.samples[st.Name] = append(h[:0:0], h[old:]...)
	}
}

// Run samples the pipelines every interval until ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	s.Sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.Sample(now)
		}
	}
}

// historyOf answers GET /v1/pipelines/{name}/history: the samples of the last
// HistoryWindow, oldest first.
func (s *Server) historyOf(w http.ResponseWriter, r *http.Request) {
	p, ok := s.find(w, r.PathValue("name"))
	if !ok {
		return
	}
	s.hist.mu.Lock()
	out := append([]Sample{}, s.hist.samples[p.Config.Name]...)
	s.hist.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Samples []Sample `json:"samples"`
	}{out})
}
