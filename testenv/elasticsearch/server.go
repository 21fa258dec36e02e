package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zincsearch/zincsearch/pkg/core"
	"github.com/zincsearch/zincsearch/pkg/meta"
)

// maxContentLength is Elasticsearch's default http.max_content_length.
const maxContentLength = 100 << 20

// maxResultWindow is Elasticsearch's default index.max_result_window.
const maxResultWindow = 10000

// timestampKey is where a document's own @timestamp is kept: ZincSearch
// takes @timestamp out of the stored source (it is its time field) and adds
// its own to every hit, so the server renames it on the way in and back.
const timestampKey = "connectd_testenv_at_timestamp"

// server is the HTTP layer over ZincSearch's core.
type server struct {
	user, pass, apiKey string
	verbose            bool
	mux                *http.ServeMux

	mu     sync.Mutex
	blocks map[string]bool // indexes with the read_only_allow_delete block
	faults struct {
		status int
		count  int
	}

	seq       atomic.Int64 // _seq_no of the last written document
	bulks     atomic.Int64 // bulk requests received
	bulkItems atomic.Int64 // bulk items received
	injected  atomic.Int64 // items failed by /_testenv/bulk_faults
	pits      atomic.Int64
}

func newServer(user, pass, apiKey string, verbose bool) *server {
	s := &server{user: user, pass: pass, apiKey: apiKey, verbose: verbose, blocks: map[string]bool{}}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", s.info)
	m.HandleFunc("HEAD /{$}", s.info)
	m.HandleFunc("GET /_cluster/health", s.health)
	m.HandleFunc("POST /_bulk", s.bulk)
	m.HandleFunc("PUT /_bulk", s.bulk)
	m.HandleFunc("POST /{index}/_bulk", s.bulk)
	m.HandleFunc("PUT /{index}/_bulk", s.bulk)
	m.HandleFunc("GET /_search", s.search)
	m.HandleFunc("POST /_search", s.search)
	m.HandleFunc("GET /{index}/_search", s.search)
	m.HandleFunc("POST /{index}/_search", s.search)
	m.HandleFunc("GET /{index}/_count", s.count)
	m.HandleFunc("POST /{index}/_count", s.count)
	m.HandleFunc("GET /{index}/_doc/{id}", s.getDoc)
	m.HandleFunc("POST /_refresh", s.refresh)
	m.HandleFunc("GET /_refresh", s.refresh)
	m.HandleFunc("POST /{index}/_refresh", s.refresh)
	m.HandleFunc("GET /{index}/_refresh", s.refresh)
	m.HandleFunc("POST /{index}/_pit", s.openPIT)
	m.HandleFunc("DELETE /_pit", s.closePIT)
	m.HandleFunc("PUT /{index}", s.createIndex)
	m.HandleFunc("DELETE /{index}", s.deleteIndex)
	m.HandleFunc("GET /{index}", s.getIndex) // and HEAD: does it exist
	m.HandleFunc("PUT /{index}/_settings", s.putSettings)
	m.HandleFunc("POST /_testenv/bulk_faults", s.setFaults)
	m.HandleFunc("GET /_testenv/stats", s.stats)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		esError(w, http.StatusBadRequest, "illegal_argument_exception",
			fmt.Sprintf("request [%s %s] is not supported by the connectd test server", r.Method, r.URL.Path))
	})
	s.mux = m
	return s
}

// ServeHTTP authenticates, marks the response as Elasticsearch's (the v8
// client checks X-Elastic-Product) and routes.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if s.authenticated(r) {
		s.mux.ServeHTTP(rw, r)
	} else {
		w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8"`)
		esError(rw, http.StatusUnauthorized, "security_exception",
			fmt.Sprintf("unable to authenticate user for REST request [%s]", r.URL.Path))
	}
	if s.verbose {
		log.Printf("%s %s -> %d (%s)", r.Method, r.URL.RequestURI(), rw.status, time.Since(start).Round(time.Microsecond))
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *server) authenticated(r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok {
		return subtle.ConstantTimeCompare([]byte(u), []byte(s.user)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(s.pass)) == 1
	}
	// The scheme is case-insensitive: the Go client sends "APIKey".
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "ApiKey") && s.apiKey != "" {
		return subtle.ConstantTimeCompare([]byte(key), []byte(s.apiKey)) == 1
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// esErr is Elasticsearch's error object.
type esErr struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
	Index  string `json:"index,omitempty"`
}

func esError(w http.ResponseWriter, status int, typ, reason string) {
	e := esErr{Type: typ, Reason: reason}
	writeJSON(w, status, map[string]any{
		"error":  map[string]any{"root_cause": []esErr{e}, "type": typ, "reason": reason},
		"status": status,
	})
}

func notFound(w http.ResponseWriter, index string) {
	e := esErr{Type: "index_not_found_exception", Reason: "no such index [" + index + "]", Index: index}
	writeJSON(w, http.StatusNotFound, map[string]any{
		"error":  map[string]any{"root_cause": []esErr{e}, "type": e.Type, "reason": e.Reason, "index": index},
		"status": http.StatusNotFound,
	})
}

// gzipBodies counts gzip-encoded request bodies (reported by /_testenv/stats).
var gzipBodies atomic.Int64

// queryBody reads an optional JSON object body (a search or count request);
// an empty body is an empty request.
func queryBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	b, ok := body(w, r)
	if !ok {
		return nil, false
	}
	req := map[string]any{}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &req); err != nil {
			esError(w, http.StatusBadRequest, "parsing_exception", "request body is not a JSON object: "+err.Error())
			return nil, false
		}
	}
	return req, true
}

// body reads a request body (gzip-encoded or not) up to Elasticsearch's limit.
func body(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	var rd io.Reader = http.MaxBytesReader(w, r.Body, maxContentLength)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(rd)
		if err != nil {
			esError(w, http.StatusBadRequest, "parse_exception", "request body is not gzip: "+err.Error())
			return nil, false
		}
		rd = io.LimitReader(gz, maxContentLength+1)
		gzipBodies.Add(1)
	}
	b, err := io.ReadAll(rd)
	if err == nil && len(b) > maxContentLength {
		err = &http.MaxBytesError{Limit: maxContentLength}
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			esError(w, http.StatusRequestEntityTooLarge, "content_too_long_exception", "request body is larger than http.max_content_length (100mb)")
		} else {
			esError(w, http.StatusBadRequest, "parse_exception", "reading the request body: "+err.Error())
		}
		return nil, false
	}
	return b, true
}

func (s *server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":         "connectd-testenv",
		"cluster_name": "connectd-testenv (ZincSearch v0.4.10)",
		"cluster_uuid": "connectd-testenv",
		"version": map[string]any{
			"number":                              "8.15.0",
			"build_flavor":                        "default",
			"build_type":                          "connectd-testenv",
			"lucene_version":                      "9.11.1",
			"minimum_wire_compatibility_version":  "7.17.0",
			"minimum_index_compatibility_version": "7.0.0",
		},
		"tagline": "You Know, for Search",
	})
}

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"cluster_name": "connectd-testenv", "status": "green", "timed_out": false,
		"number_of_nodes": 1, "number_of_data_nodes": 1,
	})
}

// validIndexName applies Elasticsearch's rules for index names.
func validIndexName(name string) string {
	switch {
	case name == "" || name == "." || name == "..":
		return "must not be empty, '.' or '..'"
	case strings.ToLower(name) != name:
		return "must be lowercase"
	case strings.ContainsAny(name, `\/*?"<>| ,#:`):
		return `must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?, #, :]`
	case strings.HasPrefix(name, "_") || strings.HasPrefix(name, "-") || strings.HasPrefix(name, "+"):
		return "must not start with '_', '-', or '+'"
	case len(name) > 255:
		return "index name is too long, (" + strconv.Itoa(len(name)) + " > 255)"
	}
	return ""
}

// resolve turns an index expression (comma-separated names, * anywhere,
// _all) into the existing indexes it names. A concrete name that does not
// exist is returned as missing.
func resolve(expr string) (names []string, missing string) {
	all := core.ZINC_INDEX_LIST.ListName()
	seen := map[string]bool{}
	for _, part := range strings.Split(expr, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "":
		case part == "_all" || strings.Contains(part, "*"):
			if part == "_all" {
				part = "*"
			}
			for _, n := range all {
				if match(part, n) && !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		default:
			if _, ok := core.GetIndex(part); !ok {
				return nil, part
			}
			if !seen[part] {
				seen[part] = true
				names = append(names, part)
			}
		}
	}
	sort.Strings(names)
	return names, ""
}

// match reports whether name matches pattern, where * matches any run of characters.
func match(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return len(parts) > 1 && strings.HasSuffix(name, last) || len(parts) == 1 && name == ""
}

// ---- bulk

type bulkMeta struct {
	Index string `json:"_index"`
	ID    string `json:"_id"`
}

type itemShards struct {
	Total      int `json:"total"`
	Successful int `json:"successful"`
	Failed     int `json:"failed"`
}

type bulkItem struct {
	Index       string      `json:"_index"`
	ID          string      `json:"_id"`
	Version     int64       `json:"_version,omitempty"`
	Result      string      `json:"result,omitempty"`
	Shards      *itemShards `json:"_shards,omitempty"`
	SeqNo       *int64      `json:"_seq_no,omitempty"`
	PrimaryTerm int64       `json:"_primary_term,omitempty"`
	Status      int         `json:"status"`
	Error       *esErr      `json:"error,omitempty"`
}

// bulk implements POST /_bulk: every item is handled on its own and answered
// in order with Elasticsearch's statuses.
func (s *server) bulk(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	b, ok := body(w, r)
	if !ok {
		return
	}
	s.bulks.Add(1)
	defIndex := r.PathValue("index")
	var items []map[string]bulkItem
	touched := map[string]bool{}
	settled := map[string]bool{} // indexes without a write of this request since a delete waited
	errorsSeen := false
	lines := bytes.Split(b, []byte("\n"))
	for i := 0; i < len(lines); i++ {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 {
			continue
		}
		var action map[string]bulkMeta
		if err := json.Unmarshal(line, &action); err != nil || len(action) != 1 {
			esError(w, http.StatusBadRequest, "illegal_argument_exception",
				fmt.Sprintf("Malformed action/metadata line [%d], expected a simple object with one action", i+1))
			return
		}
		var op string
		var m bulkMeta
		for op, m = range action {
		}
		if m.Index == "" {
			m.Index = defIndex
		}
		if m.Index == "" {
			esError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
			return
		}
		var doc []byte
		switch op {
		case "index", "create", "update":
			settled[m.Index] = false
			i++
			if i >= len(lines) || len(bytes.TrimSpace(lines[i])) == 0 {
				esError(w, http.StatusBadRequest, "illegal_argument_exception",
					fmt.Sprintf("The bulk request must be terminated by a newline [\\n]; action line [%d] has no document", i))
				return
			}
			doc = lines[i]
		case "delete":
			// Elasticsearch applies the operations on one id in order; the
			// documents ZincSearch still holds in its write-ahead log would
			// be indexed after this delete and outlive it.
			if _, exists := core.GetIndex(m.Index); exists && !settled[m.Index] {
				if err := waitIndexed(r.Context(), []string{m.Index}); err != nil {
					esError(w, http.StatusServiceUnavailable, "refresh_failed", err.Error())
					return
				}
				settled[m.Index] = true
			}
		default:
			esError(w, http.StatusBadRequest, "illegal_argument_exception",
				fmt.Sprintf("Malformed action/metadata line [%d], expected one of [create, delete, index, update] but found [%s]", i+1, op))
			return
		}
		s.bulkItems.Add(1)
		it := s.bulkOne(op, m, doc)
		if it.Error != nil {
			errorsSeen = true
		} else {
			touched[m.Index] = true
		}
		items = append(items, map[string]bulkItem{op: it})
	}
	if refreshWanted(r) {
		if err := waitIndexed(r.Context(), keys(touched)); err != nil {
			esError(w, http.StatusServiceUnavailable, "refresh_failed", err.Error())
			return
		}
	}
	if items == nil {
		esError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"took":   time.Since(start).Milliseconds(),
		"errors": errorsSeen,
		"items":  items,
	})
}

func (s *server) bulkOne(op string, m bulkMeta, doc []byte) bulkItem {
	it := bulkItem{Index: m.Index, ID: m.ID}
	fail := func(status int, typ, reason string) bulkItem {
		it.Status, it.Error = status, &esErr{Type: typ, Reason: reason, Index: m.Index}
		return it
	}
	s.mu.Lock()
	injected := 0
	if s.faults.count > 0 {
		s.faults.count--
		injected = s.faults.status
	}
	blocked := s.blocks[m.Index]
	s.mu.Unlock()
	if injected != 0 {
		s.injected.Add(1)
		typ := "es_rejected_execution_exception"
		if injected != http.StatusTooManyRequests {
			typ = "unavailable_shards_exception"
		}
		return fail(injected, typ, fmt.Sprintf("injected by POST /_testenv/bulk_faults (status %d)", injected))
	}
	if why := validIndexName(m.Index); why != "" {
		return fail(http.StatusBadRequest, "invalid_index_name_exception", "Invalid index name ["+m.Index+"], "+why)
	}
	if blocked {
		return fail(http.StatusTooManyRequests, "cluster_block_exception",
			"index ["+m.Index+"] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];")
	}
	if op == "update" {
		return fail(http.StatusBadRequest, "illegal_argument_exception", "the connectd test server does not support update actions")
	}
	idx, _, err := core.GetOrCreateIndex(m.Index, "", 0)
	if err != nil {
		return fail(http.StatusInternalServerError, "exception", err.Error())
	}
	if op == "delete" {
		if m.ID == "" {
			return fail(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
		}
		if err := idx.DeleteDocument(m.ID); err != nil {
			it.Status, it.Result = http.StatusNotFound, "not_found"
			return it
		}
		return s.written(it, "deleted", http.StatusOK)
	}
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	err = dec.Decode(&fields)
	if err == nil && dec.InputOffset() < int64(len(bytes.TrimSpace(doc))) {
		err = errors.New("content after the end of the document")
	}
	if err != nil || fields == nil {
		reason := "failed to parse"
		if err != nil {
			reason += ": " + err.Error()
		} else {
			reason += ": the document is not a JSON object"
		}
		return fail(http.StatusBadRequest, "document_parsing_exception", reason)
	}
	for _, f := range []string{"_id", "_index", "_source", "_routing", "_version", "_seq_no", "_primary_term", "_ignored", "_field_names", "_doc_count", "_tier"} {
		if _, ok := fields[f]; ok {
			return fail(http.StatusBadRequest, "document_parsing_exception",
				"[1:1] failed to parse: Field ["+f+"] is a metadata field and cannot be added inside a document. Use the index API request parameters.")
		}
	}
	if ts, ok := fields["@timestamp"]; ok {
		delete(fields, "@timestamp")
		fields[timestampKey] = ts
	}
	numbersToFloat(fields)
	update := m.ID != ""
	if !update {
		it.ID = autoID()
	}
	if err := idx.CreateDocument(it.ID, fields, update); err != nil {
		// ZincSearch's mapping checks all start with "field [": the
		// document does not fit the index's mapping. Anything else is the
		// server's own failure.
		if strings.HasPrefix(err.Error(), "field [") {
			return fail(http.StatusBadRequest, "document_parsing_exception", "[1:1] failed to parse: "+err.Error())
		}
		return fail(http.StatusInternalServerError, "exception", err.Error())
	}
	return s.written(it, "created", http.StatusCreated)
}

func (s *server) written(it bulkItem, result string, status int) bulkItem {
	seq := s.seq.Add(1)
	it.Version, it.Result, it.Status = 1, result, status
	it.Shards = &itemShards{Total: 1, Successful: 1}
	it.SeqNo, it.PrimaryTerm = &seq, 1
	return it
}

// numbersToFloat turns json.Number values into the float64 values ZincSearch
// expects from a decoded document (it was decoded with UseNumber only to
// detect what is not an object).
func numbersToFloat(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbersToFloat(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbersToFloat(e)
		}
	}
	return v
}

func autoID() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// refreshWanted reports whether ?refresh asks to wait for searchability
// (true, wait_for or the bare parameter).
func refreshWanted(r *http.Request) bool {
	q := r.URL.Query()
	if !q.Has("refresh") {
		return false
	}
	v := q.Get("refresh")
	return v == "" || v == "true" || v == "wait_for"
}

// ---- refresh

var gcMu sync.Mutex

// forcedGCs counts the runtime.GC calls made so far. ZincSearch's indexer
// makes one at the end of every round over all write-ahead logs, and nothing
// else in this program calls runtime.GC, so two more of them mean that a
// whole round ran after the count was taken.
func forcedGCs() uint32 {
	gcMu.Lock()
	defer gcMu.Unlock()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumForcedGC
}

// waitIndexed returns once every document written to the named indexes
// before the call is searchable: a whole indexing round has run since, and
// it left nothing behind (a round takes at most 10240 entries per log).
func waitIndexed(ctx context.Context, names []string) error {
	for {
		start := forcedGCs()
		deadline := time.Now().Add(2 * time.Minute) // per round: a slow machine may need many
		for forcedGCs() < start+2 {
			if time.Now().After(deadline) {
				return errors.New("ZincSearch's indexer did not run for 2 minutes")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
		done := true
		for _, n := range names {
			if idx, ok := core.GetIndex(n); ok && idx.GetWALSize() > uint64(idx.GetShardNum()) {
				done = false
			}
		}
		if done {
			return nil
		}
	}
}

func (s *server) refresh(w http.ResponseWriter, r *http.Request) {
	expr := r.PathValue("index")
	if expr == "" {
		expr = "_all"
	}
	names, missing := resolve(expr)
	if missing != "" {
		notFound(w, missing)
		return
	}
	if err := waitIndexed(r.Context(), names); err != nil {
		esError(w, http.StatusServiceUnavailable, "refresh_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"_shards": itemShards{Total: len(names), Successful: len(names)}})
}

// ---- search

type hit struct {
	Index  string         `json:"_index"`
	ID     string         `json:"_id"`
	Score  float64        `json:"_score"`
	Source map[string]any `json:"_source,omitempty"`
	Sort   []int64        `json:"sort,omitempty"`
}

type pitID struct {
	Index string `json:"index"`
	N     int64  `json:"n"`
}

// search implements _search with from/size, or a point in time with
// search_after. A point in time here is only a name for its indexes, and its
// sort values are ranks in _id order: it pages correctly over documents that
// do not change while it is open, which is what tests do.
func (s *server) search(w http.ResponseWriter, r *http.Request) {
	req, ok := queryBody(w, r)
	if !ok {
		return
	}
	expr := r.PathValue("index")
	var pit *pitID
	if p, ok := req["pit"].(map[string]any); ok {
		if expr != "" {
			esError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify any index with point in time.;")
			return
		}
		id, _ := p["id"].(string)
		raw, err := base64.RawURLEncoding.DecodeString(id)
		pit = &pitID{}
		if err != nil || json.Unmarshal(raw, pit) != nil {
			esError(w, http.StatusBadRequest, "illegal_argument_exception", "invalid id for point in time ["+id+"]")
			return
		}
		expr = pit.Index
	}
	if expr == "" {
		expr = "_all"
	}
	from, size := intParam(req, "from", 0), intParam(req, "size", 10)
	if v, ok := r.URL.Query()["size"]; ok && len(v) > 0 {
		size, _ = strconv.Atoi(v[0])
	}
	if pit != nil {
		from = 0
		if sa, ok := req["search_after"].([]any); ok && len(sa) == 1 {
			if f, ok := sa[0].(float64); ok {
				from = int(f) + 1
			}
		}
	} else if from+size > maxResultWindow {
		esError(w, http.StatusBadRequest, "illegal_argument_exception",
			fmt.Sprintf("Result window is too large, from + size must be less than or equal to: [%d] but was [%d]. See the scroll or point in time APIs to page through large data sets.", maxResultWindow, from+size))
		return
	}
	names, missing := resolve(expr)
	if missing != "" {
		notFound(w, missing)
		return
	}
	total, hits, err := query(names, req["query"], req["_source"], from, size, pit != nil)
	if err != nil {
		esError(w, http.StatusBadRequest, "search_phase_execution_exception", err.Error())
		return
	}
	if pit != nil {
		for i := range hits {
			hits[i].Sort = []int64{int64(from + i)}
		}
	}
	resp := map[string]any{
		"took": 1, "timed_out": false,
		"_shards": map[string]int{"total": len(names), "successful": len(names), "skipped": 0, "failed": 0},
		"hits": map[string]any{
			"total":     map[string]any{"value": total, "relation": "eq"},
			"max_score": nil,
			"hits":      hits,
		},
	}
	if pit != nil {
		resp["pit_id"] = req["pit"].(map[string]any)["id"]
	}
	writeJSON(w, http.StatusOK, resp)
}

func intParam(req map[string]any, name string, def int) int {
	if f, ok := req[name].(float64); ok {
		return int(f)
	}
	return def
}

// query runs a search on ZincSearch and returns the exact total and the hits
// with their sources as they were sent.
func query(names []string, q, source any, from, size int, byID bool) (int, []hit, error) {
	if len(names) == 0 {
		return 0, []hit{}, nil
	}
	if q == nil {
		q = map[string]any{"match_all": map[string]any{}}
	}
	zq := &meta.ZincQuery{Query: q, Source: source, From: from, Size: size, TrackTotalHits: true}
	if byID {
		zq.Sort = []any{"_id"}
	}
	if size == 0 {
		zq.Size = 0
	}
	res, err := core.MultiSearch(names, zq)
	if err != nil {
		return 0, nil, err
	}
	hits := make([]hit, 0, len(res.Hits.Hits))
	for _, h := range res.Hits.Hits {
		src, _ := h.Source.(map[string]any)
		if src != nil {
			delete(src, "@timestamp")
			if ts, ok := src[timestampKey]; ok {
				delete(src, timestampKey)
				src["@timestamp"] = ts
			}
		}
		hits = append(hits, hit{Index: h.Index, ID: h.ID, Score: h.Score, Source: src})
	}
	return res.Hits.Total.Value, hits, nil
}

func pitEncode(p pitID) string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *server) openPIT(w http.ResponseWriter, r *http.Request) {
	expr := r.PathValue("index")
	if _, missing := resolve(expr); missing != "" {
		notFound(w, missing)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": pitEncode(pitID{Index: expr, N: s.pits.Add(1)})})
}

func (s *server) closePIT(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"succeeded": true, "num_freed": 1})
}

func (s *server) count(w http.ResponseWriter, r *http.Request) {
	req, ok := queryBody(w, r)
	if !ok {
		return
	}
	names, missing := resolve(r.PathValue("index"))
	if missing != "" {
		notFound(w, missing)
		return
	}
	total, _, err := query(names, req["query"], nil, 0, 0, false)
	if err != nil {
		esError(w, http.StatusBadRequest, "search_phase_execution_exception", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": total, "_shards": itemShards{Total: len(names), Successful: len(names)}})
}

func (s *server) getDoc(w http.ResponseWriter, r *http.Request) {
	index, id := r.PathValue("index"), r.PathValue("id")
	if _, ok := core.GetIndex(index); !ok {
		notFound(w, index)
		return
	}
	_, hits, err := query([]string{index}, map[string]any{"ids": map[string]any{"values": []any{id}}}, nil, 0, 1, false)
	if err != nil {
		esError(w, http.StatusBadRequest, "search_phase_execution_exception", err.Error())
		return
	}
	if len(hits) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]any{"_index": index, "_id": id, "found": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"_index": index, "_id": id, "_version": 1, "found": true, "_source": hits[0].Source})
}

// ---- indexes

func (s *server) createIndex(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("index")
	if why := validIndexName(name); why != "" {
		esError(w, http.StatusBadRequest, "invalid_index_name_exception", "Invalid index name ["+name+"], "+why)
		return
	}
	if _, ok := core.GetIndex(name); ok {
		esError(w, http.StatusBadRequest, "resource_already_exists_exception", "index ["+name+"] already exists")
		return
	}
	if _, _, err := core.GetOrCreateIndex(name, "", 0); err != nil {
		esError(w, http.StatusInternalServerError, "exception", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": name})
}

func (s *server) deleteIndex(w http.ResponseWriter, r *http.Request) {
	expr := r.PathValue("index")
	if strings.Contains(expr, "*") || expr == "_all" {
		esError(w, http.StatusBadRequest, "illegal_argument_exception", "Wildcard expressions or all indices are not allowed")
		return
	}
	names, missing := resolve(expr)
	if missing != "" {
		notFound(w, missing)
		return
	}
	for _, n := range names {
		if err := core.DeleteIndex(n); err != nil {
			esError(w, http.StatusInternalServerError, "exception", err.Error())
			return
		}
		s.mu.Lock()
		delete(s.blocks, n)
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
}

func (s *server) getIndex(w http.ResponseWriter, r *http.Request) {
	names, missing := resolve(r.PathValue("index"))
	if missing != "" {
		notFound(w, missing)
		return
	}
	out := map[string]any{}
	for _, n := range names {
		out[n] = map[string]any{"aliases": map[string]any{}, "mappings": map[string]any{}, "settings": map[string]any{}}
	}
	writeJSON(w, http.StatusOK, out)
}

// putSettings understands one setting: index.blocks.read_only_allow_delete
// (flat or nested), which makes writes to the index fail with 429 as
// Elasticsearch does when a disk passes its flood-stage watermark.
func (s *server) putSettings(w http.ResponseWriter, r *http.Request) {
	b, ok := body(w, r)
	if !ok {
		return
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		esError(w, http.StatusBadRequest, "parsing_exception", err.Error())
		return
	}
	flat := map[string]any{}
	flatten("", v, flat)
	names, missing := resolve(r.PathValue("index"))
	if missing != "" {
		notFound(w, missing)
		return
	}
	for k, val := range flat {
		k = strings.TrimPrefix(k, "settings.")
		if k != "index.blocks.read_only_allow_delete" {
			continue
		}
		on := val == true || val == "true"
		s.mu.Lock()
		for _, n := range names {
			if on {
				s.blocks[n] = true
			} else {
				delete(s.blocks, n)
			}
		}
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
}

func flatten(prefix string, v map[string]any, out map[string]any) {
	for k, e := range v {
		if m, ok := e.(map[string]any); ok {
			flatten(prefix+k+".", m, out)
		} else {
			out[prefix+k] = e
		}
	}
}

// ---- test knobs

func (s *server) setFaults(w http.ResponseWriter, r *http.Request) {
	b, ok := body(w, r)
	if !ok {
		return
	}
	var f struct {
		Status int `json:"status"`
		Count  int `json:"count"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Count < 0 || (f.Status != http.StatusTooManyRequests && (f.Status < 500 || f.Status > 599)) {
		esError(w, http.StatusBadRequest, "illegal_argument_exception", `want {"status": 429 or 5xx, "count": n >= 0}`)
		return
	}
	s.mu.Lock()
	s.faults.status, s.faults.count = f.Status, f.Count
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
}

func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	left := s.faults.count
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"bulk_requests":  s.bulks.Load(),
		"bulk_items":     s.bulkItems.Load(),
		"injected":       s.injected.Load(),
		"faults_pending": left,
		"gzip_bodies":    gzipBodies.Load(),
		"pid":            os.Getpid(),
	})
}
