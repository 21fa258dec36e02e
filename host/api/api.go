// Package api is the host's HTTP API: /healthz, /readyz, Prometheus'
// /metrics, the JSON API under /v1/ that shows each pipeline's run and
// pauses, resumes and restarts it (mutating calls need the bearer token
// when one is set), and the status page at / that draws it.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/pipeline"
	"github.com/connectd/connectd/sdk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pipeline is one pipeline the server shows: its configuration and the
// Control of its run.
type Pipeline struct {
	Config  *config.Pipeline
	Control *pipeline.Control
	// Owner, when not nil, says which connectd worker holds the pipeline's
	// lease now (connectd worker); nil under connectd run.
	Owner func() *Owner
}

// Owner is the connectd worker that holds a pipeline's lease.
type Owner struct {
	Worker string    `json:"worker"` // "" when the lease is free
	Epoch  int64     `json:"epoch"`  // one more at every takeover
	Since  time.Time `json:"since"`  // when Worker took it
	Here   bool      `json:"here"`   // the worker serving this API runs it
}

// Server serves the API of the pipelines of one connectd run.
type Server struct {
	Pipelines []Pipeline
	// Token, when not "", must come as "Authorization: Bearer <Token>" with
	// every mutating call (POST); reads need none.
	Token string
	// Metrics is served at /metrics; nil serves no /metrics.
	Metrics *prometheus.Registry

	hist history // what Run samples for /v1/pipelines/{name}/history
}

// ErrNeedsToken is returned by CheckAddr for an address other than loopback
// without a token.
var ErrNeedsToken = errors.New("needs a token")

// CheckAddr refuses to serve addr (host:port) without a token unless its
// host is a loopback address or "localhost": anyone who can reach the port
// could otherwise pause or restart the pipelines.
func CheckAddr(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("http address %q: want host:port, such as 127.0.0.1:8083: %v", addr, err)
	}
	if token != "" || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("http address %q is not a loopback address and %w for pause, resume and restart: set http { token = env(\"CONNECTD_TOKEN\") } in the pipeline file (or CONNECTD_TOKEN with --http), or bind to 127.0.0.1", addr, ErrNeedsToken)
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /{$}", s.page)
	mux.Handle("GET /ui/", http.FileServerFS(ui))
	if s.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{Registry: s.Metrics}))
	}
	mux.HandleFunc("GET /v1/pipelines", s.list)
	mux.HandleFunc("GET /v1/pipelines/{name}", s.get)
	mux.HandleFunc("GET /v1/pipelines/{name}/history", s.historyOf)
	mux.HandleFunc("POST /v1/pipelines/{name}/{action}", s.act)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API route %s %s; see docs/api.md", r.Method, r.URL.Path))
	})
	return mux
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

// Status is a pipeline as GET /v1/pipelines/{name} returns it.
type Status struct {
	Name           string           `json:"name"`
	State          pipeline.State   `json:"state"`
	Error          string           `json:"error,omitempty"`
	PauseRequested bool             `json:"pauseRequested"`
	Delivery       string           `json:"delivery"`
	Source         string           `json:"source"`
	Sink           string           `json:"sink"`
	Checkpoint     string           `json:"checkpoint"`
	Committed      sdk.Offsets      `json:"committed"`
	LastCommit     *time.Time       `json:"lastCommit,omitempty"`
	LastBatch      json.RawMessage  `json:"lastBatch,omitempty"` // a pipeline.Report as --progress json prints it
	End            sdk.Offsets      `json:"end,omitempty"`
	Lag            map[string]int64 `json:"lag,omitempty"`
	TotalLag       *int64           `json:"totalLag,omitempty"`
	Restarts       map[string]int64 `json:"restarts"`
	Failures       int              `json:"failuresInARow"`
	RecordsRead    int64            `json:"recordsRead"`
	RecordsWritten int64            `json:"recordsWritten"`
	// RecordsRejected counts records a transform, a processor or the sink
	// rejected in committed batches; DeadLetters those of them written to
	// the dead-letter sink.
	RecordsRejected int64 `json:"recordsRejected"`
	DeadLetters     int64 `json:"deadLetters"`
	Batches         int64 `json:"batches"`
	Replayed        int64 `json:"replayedBatches"`
	FailedBatches   int64 `json:"failedBatches"`
	// Owner is the worker that runs the pipeline, under connectd worker
	// (the other fields are this worker's last run of it); absent under
	// connectd run.
	Owner *Owner `json:"owner,omitempty"`
}

func statusOf(p Pipeline) Status {
	s := p.Control.Status()
	out := Status{
		Name: s.Name, State: s.State, Error: s.Error, PauseRequested: s.PauseRequested,
		Delivery: string(p.Config.Delivery), Source: p.Config.Source.Name, Sink: p.Config.Sink.Name,
		Checkpoint: p.Config.Checkpoint.Where(), Committed: s.Committed, End: s.End, Lag: s.Lag,
		Restarts: s.Restarts, Failures: s.Failures, RecordsRead: s.RecordsRead, RecordsWritten: s.RecordsWritten,
		RecordsRejected: s.RecordsRejected, DeadLetters: s.DeadLetters,
		Batches: s.Batches, Replayed: s.Replayed, FailedBatches: s.FailedBatches,
	}
	if out.Committed == nil {
		out.Committed = sdk.Offsets{}
	}
	if p.Owner != nil {
		out.Owner = p.Owner()
	}
	if !s.LastCommit.IsZero() {
		t := s.LastCommit.UTC()
		out.LastCommit = &t
	}
	if s.Last.Batch != 0 {
		out.LastBatch, _ = json.Marshal(s.Last) // a Report always marshals
	}
	if s.Lag != nil {
		var total int64
		for _, v := range s.Lag {
			total += v
		}
		out.TotalLag = &total
	}
	return out
}

// LastBatchID is the id of the last finished batch, 0 before any.
func (s Status) LastBatchID() int64 {
	var b struct {
		BatchID int64 `json:"batchId"`
	}
	if len(s.LastBatch) == 0 || json.Unmarshal(s.LastBatch, &b) != nil {
		return 0
	}
	return b.BatchID
}

func (s *Server) find(w http.ResponseWriter, name string) (Pipeline, bool) {
	for _, p := range s.Pipelines {
		if p.Config.Name == name {
			return p, true
		}
	}
	names := make([]string, 0, len(s.Pipelines))
	for _, p := range s.Pipelines {
		names = append(names, fmt.Sprintf("%q", p.Config.Name))
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no pipeline %q in this run; it has %s", name, strings.Join(names, ", ")))
	return Pipeline{}, false
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Pipelines []Status `json:"pipelines"`
	}{Pipelines: []Status{}}
	for _, p := range s.Pipelines {
		out.Pipelines = append(out.Pipelines, statusOf(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if p, ok := s.find(w, r.PathValue("name")); ok {
		writeJSON(w, http.StatusOK, statusOf(p))
	}
}

// act takes pause, resume and restart. They take effect between two batches:
// the answer is 202 Accepted with the pipeline's status; poll it to see the
// state change.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	p, ok := s.find(w, r.PathValue("name"))
	if !ok {
		return
	}
	var err error
	switch r.PathValue("action") {
	case "pause":
		err = p.Control.Pause()
	case "resume":
		err = p.Control.Resume()
	case "restart":
		err = p.Control.Restart()
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no action %q: want pause, resume or restart", r.PathValue("action")))
		return
	}
	if err != nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("pipeline %q: %s: %v", p.Config.Name, r.PathValue("action"), err))
		return
	}
	writeJSON(w, http.StatusAccepted, statusOf(p))
}

// authorized checks the bearer token of a mutating call: 401 without one,
// 403 with a wrong one.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.Token == "" {
		return true
	}
	h := r.Header.Get("Authorization")
	got, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="connectd"`)
		writeError(w, http.StatusUnauthorized, "this call needs the header Authorization: Bearer <token>")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) != 1 {
		writeError(w, http.StatusForbidden, "wrong token")
		return false
	}
	return true
}

// ready answers 200 when every pipeline is running, paused by an operator
// or finished, and 503 with the reasons otherwise (starting, recovering,
// failed, or restarting after two or more failures in a row).
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	var problems []string
	for _, p := range s.Pipelines {
		st := p.Control.Status()
		switch {
		case st.State == pipeline.StateRunning, st.State == pipeline.StatePaused, st.State == pipeline.StateFinished:
		case st.State == pipeline.StateRestarting && st.Failures < 2:
		default:
			msg := fmt.Sprintf("pipeline %q is %s", st.Name, st.State)
			if st.Error != "" {
				msg += ": " + st.Error
			}
			problems = append(problems, msg)
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to tell it
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Error{Error: msg})
}
