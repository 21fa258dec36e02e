package elasticsearch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	es8 "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/connectd/connectd/sdk"
)

// Sink is the elasticsearch sink. The host calls Open once, then Write from
// one goroutine at a time, then Close; List may be called in between.
type Sink struct {
	mu        sync.Mutex // serialises Write and List
	es        *es8.Client
	transport *http.Transport
	tmpl      Template
	pipeline  string
	log       *slog.Logger

	byKey       bool
	auto        bool // document = "auto"
	refresh     string
	onError     string // on_record_error: OnErrorReject, OnErrorFail or OnErrorSkip
	user        string
	apiKey      bool
	maxBytes    int
	concurrency int
	timeout     time.Duration
	backoff     func() backoff.BackOff
	// body is the bulk buffer of the last Write that succeeded, reused by
	// the next (no request reads it any more then).
	body []byte
	// rejects are the records the current Write rejected, with
	// on_record_error = "reject".
	rejects []sdk.Rejection

	// Counters since Open, for logs and tests.
	requests    atomic.Int64 // bulk requests sent
	itemRetries atomic.Int64 // documents sent again after a retryable rejection
	skipped     atomic.Int64 // records rejected and skipped
}

var (
	_ sdk.Sink   = (*Sink)(nil)
	_ sdk.Lister = (*Sink)(nil)
)

// Open checks the configuration, builds the client and asks the cluster who
// it is: wrong credentials, or a server that is not Elasticsearch, fail Open;
// a cluster that cannot be reached only logs a warning (Write retries).
func (s *Sink) Open(ctx context.Context, cfg sdk.Config) error {
	s.pipeline = cfg.Pipeline
	s.log = newTextLogger(os.Stderr).With("sink", "elasticsearch", "pipeline", cfg.Pipeline)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("elasticsearch sink: "+format, args...)
	}
	var err error
	if s.tmpl, err = ParseTemplate(cfg.String("index")); err != nil {
		return sdk.Configf("index: %v", err)
	}
	// The spec's rules check id, document, on_record_error, refresh and the
	// bounds of the numbers and durations; what is left are rules between
	// parameters and the addresses.
	s.byKey = cfg.String("id") == IDKey
	s.auto = cfg.String("document") == DocumentAuto
	s.onError = cfg.String("on_record_error")
	s.refresh = cfg.String("refresh")
	s.maxBytes = int(cfg.Int("bulk_max_bytes"))
	s.concurrency = int(cfg.Int("bulk_concurrency"))
	s.timeout = cfg.Duration("request_timeout")
	initial, most, total := cfg.Duration("retry_backoff"), cfg.Duration("retry_backoff_max"), cfg.Duration("retry_timeout")
	if most < initial {
		return sdk.Configf("retry_backoff %v is more than retry_backoff_max %v", initial, most)
	}
	s.backoff = func() backoff.BackOff {
		return backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(initial),
			backoff.WithMaxInterval(most),
			backoff.WithMaxElapsedTime(total),
			backoff.WithRandomizationFactor(0.5),
			backoff.WithMultiplier(2),
		)
	}

	addrs := cfg.Strings("addresses")
	if len(addrs) == 0 {
		return sdk.Configf("addresses is empty")
	}
	for _, a := range addrs {
		u, err := url.Parse(a)
		switch {
		case err != nil:
			return sdk.Configf("address %q is not a URL", a)
		case u.User != nil:
			return sdk.Configf("address %q holds credentials; give them in username/password or api_key", u.Redacted())
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return sdk.Configf("address %q is not an http:// or https:// URL with a host", a)
		}
	}
	s.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   s.concurrency + 1,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if f := cfg.String("tls_ca_file"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return fail("tls_ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fail("tls_ca_file %s holds no PEM certificate", f)
		}
		s.transport.TLSClientConfig.RootCAs = pool
	}
	ec := es8.Config{
		Addresses:           addrs,
		Username:            cfg.String("username"),
		Password:            cfg.String("password"),
		APIKey:              cfg.String("api_key"),
		CompressRequestBody: cfg.Bool("compress"),
		DisableRetry:        true, // Write retries, per item, with backoff
		Transport:           s.transport,
	}
	s.user, s.apiKey = ec.Username, ec.APIKey != ""
	if ec.Password != "" && ec.Username == "" {
		return sdk.Configf("password is set but username is empty")
	}
	if s.es, err = es8.NewClient(ec); err != nil {
		return fail("%v", err)
	}
	return s.probe(ctx)
}

// newTextLogger returns the sink's logger: text lines on w (a plugin's
// stderr reaches the host's).
func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// probe asks the cluster for its info: refused credentials and a server
// that is not Elasticsearch are errors; an unreachable cluster is not (yet).
func (s *Sink) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := s.es.Info(s.es.Info.WithContext(ctx))
	if err != nil {
		if strings.Contains(err.Error(), "not Elasticsearch") {
			return fmt.Errorf("elasticsearch sink: %v", err)
		}
		s.log.Warn("Elasticsearch does not answer yet; writes will retry", "error", err.Error())
		return nil
	}
	defer drain(res.Body)
	if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
		return fmt.Errorf("elasticsearch sink: %s", s.authError(res))
	}
	return nil
}

// authError describes a 401 or 403 without the secret that caused it.
func (s *Sink) authError(res *esapi.Response) string {
	who := "without credentials"
	switch {
	case s.apiKey:
		who = "with the API key in api_key"
	case s.user != "":
		who = fmt.Sprintf("as user %q", s.user)
	}
	return fmt.Sprintf("Elasticsearch refused the request %s (HTTP %d): %s", who, res.StatusCode, errorReason(res.Body))
}

// Close releases the client's connections.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.es != nil {
		s.transport.CloseIdleConnections()
		if n := s.skipped.Load(); n > 0 {
			s.log.Warn("records rejected and skipped since the sink opened", "skipped", n)
		}
	}
	return nil
}

// item is one document to index: the record it comes from (b.Records[n])
// and its bulk lines (action and document) at buf[start:end].
type item struct {
	rec        *sdk.Record
	n          int
	index, id  string
	start, end int
	del        bool // a "delete" action: the record is a tombstone, in key mode
}

// Write indexes every record of b and returns once Elasticsearch has
// acknowledged each document or rejected it for good. A record rejected for
// good (a 4xx other than 429, an index template or key that cannot be
// filled) is, by on_record_error: "reject", listed in the *sdk.Rejected
// Write returns (every other record is written); "fail", an error that fails
// the batch; "skip", logged and left out. Writing the same batch again
// converges to the same documents, and rejects the same records: a
// rejection depends on the record and the index's mapping only. Any other
// error leaves some documents written and others not.
//
// In key mode a tombstone (sdk.Record.Tombstone) deletes the document of
// its key instead; a delete of a document (or index) that is not there
// succeeds, so a replay deletes nothing twice. In position mode a
// tombstone is a record like any other: its envelope, with "tombstone":
// true, is indexed under its own position.
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.es == nil {
		return errors.New("elasticsearch sink: not open")
	}
	s.rejects = s.rejects[:0]
	buf, items, err := s.prepare(b, s.body)
	s.body = nil
	if err != nil {
		return err
	}
	if err := s.deliver(ctx, b.ID, buf, items); err != nil {
		return err
	}
	s.body = buf[:0]
	if len(s.rejects) == 0 {
		return nil
	}
	rs := append([]sdk.Rejection(nil), s.rejects...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Index < rs[j].Index })
	return sdk.Reject(rs...)
}

// prepare renders the bulk lines of every record into one buffer. In key
// mode only the last record per index and id is kept, and only it is
// rendered: it is the one that would win, and one document per id makes
// concurrent requests safe.
func (s *Sink) prepare(b sdk.Batch, buf []byte) ([]byte, []item, error) {
	items := make([]item, 0, len(b.Records))
	size := 0
	for i := range b.Records {
		r := &b.Records[i]
		var id string
		if !s.byKey {
			id = PositionID(r.Position)
		}
		index, err := s.tmpl.Render(r)
		if err != nil {
			if err := s.rejected(b.ID, item{rec: r, n: i, id: id}, err.Error()); err != nil {
				return nil, nil, err
			}
			continue
		}
		if s.byKey {
			if id, err = KeyID(r); err != nil {
				if err := s.rejected(b.ID, item{rec: r, n: i, index: index}, err.Error()); err != nil {
					return nil, nil, err
				}
				continue
			}
		}
		items = append(items, item{rec: r, n: i, index: index, id: id, del: s.byKey && r.Tombstone})
		size += len(r.Value) + 96
	}
	if s.byKey {
		items = lastPerID(items)
	}
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	buf = buf[:0]
	for i := range items {
		it := &items[i]
		it.start = len(buf)
		if it.del {
			buf = appendDelete(buf, it.index, it.id)
			it.end = len(buf)
			continue
		}
		buf = appendAction(buf, it.index, it.id)
		var err error
		if buf, err = appendDocument(buf, it.rec, s.auto); err != nil {
			return nil, nil, fmt.Errorf("elasticsearch sink: batch %d: record %s: %w", b.ID, it.rec.Position, err)
		}
		buf = append(buf, '\n')
		it.end = len(buf)
	}
	return buf, items, nil
}

// lastPerID keeps, in place and in order, the last item of each index and id.
func lastPerID(items []item) []item {
	last := make(map[[2]string]int, len(items))
	for i, it := range items {
		last[[2]string{it.index, it.id}] = i
	}
	if len(last) == len(items) {
		return items
	}
	kept := items[:0]
	for i, it := range items {
		if last[[2]string{it.index, it.id}] == i {
			kept = append(kept, it)
		}
	}
	return kept
}

// rejected handles a record rejected for good, by on_record_error: a
// rejection of the Write and nil ("reject"), an error that fails the batch
// ("fail"), or a log line and nil ("skip").
func (s *Sink) rejected(batch int64, it item, reason string) error {
	switch s.onError {
	case OnErrorReject:
		// The reason names the document (the host adds the record's
		// position), e.g. `index "orders", id "orders/3@1042": status 400
		// document_parsing_exception: …`.
		var where []string
		if it.index != "" {
			where = append(where, fmt.Sprintf("index %q", it.index))
		}
		if it.id != "" {
			where = append(where, fmt.Sprintf("id %q", it.id))
		}
		if len(where) > 0 {
			reason = strings.Join(where, ", ") + ": " + reason
		}
		s.rejects = append(s.rejects, sdk.Rejection{Index: it.n, Reason: reason})
		return nil
	case OnErrorFail:
		where := fmt.Sprintf("record %s", it.rec.Position)
		if it.index != "" {
			where += fmt.Sprintf(" (index %q, id %q)", it.index, it.id)
		}
		return fmt.Errorf("elasticsearch sink: batch %d: %s rejected: %s", batch, where, reason)
	}
	n := s.skipped.Add(1)
	s.log.Warn("record rejected and skipped (on_record_error = \"skip\")", "batch", batch,
		"position", it.rec.Position.String(), "index", it.index, "id", it.id, "reason", reason, "skipped", n)
	return nil
}

// outcome is what became of one item in one attempt.
type outcome struct {
	status int    // HTTP status of the item; 0 when the request failed
	reason string // why it failed
}

func (o outcome) ok() bool { return o.status >= 200 && o.status < 300 }

// retryable: throttled (429), a server-side failure (5xx) or no answer.
func (o outcome) retryable() bool { return o.status == 0 || o.status == 429 || o.status >= 500 }

// retryError says how many documents are still waiting after an attempt.
type retryError struct {
	n    int
	last string
}

func (e *retryError) Error() string {
	return fmt.Sprintf("%d documents not written yet; last rejection: %s", e.n, e.last)
}

// deliver sends items until each is acknowledged or rejected for good,
// resending the retryable ones with exponential backoff and jitter.
func (s *Sink) deliver(ctx context.Context, batch int64, buf []byte, items []item) error {
	pending := items
	attempt := func() error {
		out, err := s.sendAll(ctx, buf, pending)
		if err != nil {
			return backoff.Permanent(fmt.Errorf("elasticsearch sink: batch %d: %w", batch, err))
		}
		var next []item
		var last string
		for i, it := range pending {
			o := out[i]
			switch {
			case o.ok():
			case o.retryable():
				next = append(next, it)
				last = fmt.Sprintf("record %s (index %q, id %q): %s", it.rec.Position, it.index, it.id, o.reason)
			default:
				if err := s.rejected(batch, it, o.reason); err != nil {
					return backoff.Permanent(err)
				}
			}
		}
		pending = next
		if len(pending) == 0 {
			return nil
		}
		s.itemRetries.Add(int64(len(pending)))
		return &retryError{n: len(pending), last: last}
	}
	started := time.Now()
	notify := func(err error, wait time.Duration) {
		s.log.Warn("retrying documents", "batch", batch, "error", err.Error(), "wait", wait.Round(time.Millisecond).String())
	}
	err := backoff.RetryNotify(attempt, backoff.WithContext(s.backoff(), ctx), notify)
	var re *retryError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return fmt.Errorf("elasticsearch sink: batch %d: gave up after retrying for %s (retry_timeout): %w",
			batch, time.Since(started).Round(time.Millisecond), err)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return fmt.Errorf("elasticsearch sink: batch %d: %w", batch, err)
	}
	return err // already says what failed
}

// chunk is a run of pending items sent as one bulk request.
type chunk struct{ from, to int }

// sendAll sends pending in bulk requests of at most maxBytes, concurrency
// of them at a time, and returns each item's outcome. An error is a failure
// no retry can fix (credentials, request too large).
func (s *Sink) sendAll(ctx context.Context, buf []byte, pending []item) ([]outcome, error) {
	var chunks []chunk
	size := 0
	for i, it := range pending {
		n := it.end - it.start
		if len(chunks) == 0 || size+n > s.maxBytes {
			chunks = append(chunks, chunk{from: i, to: i})
			size = 0
		}
		chunks[len(chunks)-1].to = i + 1
		size += n
	}
	out := make([]outcome, len(pending))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fatal error
		slots = make(chan struct{}, s.concurrency)
	)
	for _, c := range chunks {
		slots <- struct{}{}
		wg.Add(1)
		go func(c chunk) {
			defer func() { <-slots; wg.Done() }()
			if err := s.send(ctx, body(buf, pending[c.from:c.to]), out[c.from:c.to]); err != nil {
				mu.Lock()
				fatal = errors.Join(fatal, err)
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	return out, fatal
}

// body returns the bulk body of items: a slice of buf when they lie there
// one after the other (a first attempt), else a copy.
func body(buf []byte, items []item) []byte {
	contiguous := true
	n := 0
	for i, it := range items {
		n += it.end - it.start
		if i > 0 && it.start != items[i-1].end {
			contiguous = false
		}
	}
	if contiguous {
		return buf[items[0].start:items[len(items)-1].end]
	}
	b := make([]byte, 0, n)
	for _, it := range items {
		b = append(b, buf[it.start:it.end]...)
	}
	return b
}

// bulkResponse is the part of a bulk answer the sink reads (filter_path
// asks Elasticsearch for no more).
type bulkResponse struct {
	Errors bool                       `json:"errors"`
	Items  []map[string]bulkItemReply `json:"items"`
}

type bulkItemReply struct {
	Status int         `json:"status"`
	Error  *errorReply `json:"error"`
}

type errorReply struct {
	Type     string      `json:"type"`
	Reason   string      `json:"reason"`
	CausedBy *errorReply `json:"caused_by"`
}

func (e *errorReply) String() string {
	if e == nil {
		return "no reason given"
	}
	s := e.Type + ": " + e.Reason
	if e.CausedBy != nil {
		s += " (caused by " + e.CausedBy.String() + ")"
	}
	return s
}

// send sends one bulk request and fills out, one outcome per document. A
// request that fails as a whole gives every document the same outcome; the
// error is kept for failures no retry can fix.
func (s *Sink) send(ctx context.Context, body []byte, out []outcome) error {
	all := func(o outcome) {
		for i := range out {
			out[i] = o
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	opts := []func(*esapi.BulkRequest){s.es.Bulk.WithContext(rctx), s.es.Bulk.WithFilterPath("errors", "items.*.status", "items.*.error")}
	if s.refresh != "false" {
		opts = append(opts, s.es.Bulk.WithRefresh(s.refresh))
	}
	s.requests.Add(1)
	res, err := s.es.Bulk(bytes.NewReader(body), opts...)
	if err != nil {
		if ctx.Err() != nil {
			all(outcome{reason: ctx.Err().Error()})
			return nil
		}
		if strings.Contains(err.Error(), "not Elasticsearch") {
			return err
		}
		all(outcome{reason: "bulk request failed: " + err.Error()})
		return nil
	}
	defer drain(res.Body)
	switch st := res.StatusCode; {
	case st == http.StatusOK:
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return errors.New(s.authError(res))
	case st == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("a bulk request of %d bytes is larger than Elasticsearch accepts (http.max_content_length): lower bulk_max_bytes", len(body))
	case st == http.StatusTooManyRequests || st >= 500:
		all(outcome{status: st, reason: fmt.Sprintf("bulk request answered HTTP %d: %s", st, errorReason(res.Body))})
		return nil
	default:
		return fmt.Errorf("bulk request answered HTTP %d: %s", st, errorReason(res.Body))
	}
	var br bulkResponse
	if err := json.NewDecoder(res.Body).Decode(&br); err != nil {
		all(outcome{reason: "reading the bulk answer: " + err.Error()})
		return nil
	}
	if len(br.Items) != len(out) {
		all(outcome{reason: fmt.Sprintf("the bulk answer holds %d items for %d documents", len(br.Items), len(out))})
		return nil
	}
	for i, m := range br.Items {
		var r bulkItemReply
		var action string
		for action, r = range m { // one action per item
		}
		out[i] = outcome{status: r.Status}
		if action == "delete" && r.Status == http.StatusNotFound {
			// The document, or its index, is not there: what a delete
			// wants (not_found, index_not_found_exception).
			out[i].status = http.StatusOK
		}
		if !out[i].ok() {
			out[i].reason = fmt.Sprintf("status %d %s", r.Status, r.Error)
		}
	}
	return nil
}

// errorReason reads an Elasticsearch error body into one line.
func errorReason(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && len(e.Error) > 0 {
		var r errorReply
		if json.Unmarshal(e.Error, &r) == nil && r.Type != "" {
			return r.String()
		}
		var s string
		if json.Unmarshal(e.Error, &s) == nil {
			return s
		}
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		return s
	}
	return "no reason given"
}

// drain reads what is left of a response body and closes it, so that its
// connection can be reused.
func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
	rc.Close()
}

// List returns the record value of every document in the indexes the sink
// writes to (every index the template can produce): the document itself, or
// the value an envelope holds. It refreshes them first, then pages through a
// point in time in _shard_doc order. It is for the conformance suite.
func (s *Sink) List(ctx context.Context) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.es == nil {
		return nil, errors.New("elasticsearch sink: not open")
	}
	pattern := s.tmpl.Pattern()
	fail := func(what string, err error) ([][]byte, error) {
		return nil, fmt.Errorf("elasticsearch sink: listing %q: %s: %w", pattern, what, err)
	}
	res, err := s.es.Indices.Refresh(s.es.Indices.Refresh.WithContext(ctx), s.es.Indices.Refresh.WithIndex(pattern))
	if err != nil {
		return fail("refresh", err)
	}
	drain(res.Body)
	if res.StatusCode == http.StatusNotFound {
		return [][]byte{}, nil
	}
	res, err = s.es.OpenPointInTime([]string{pattern}, "2m", s.es.OpenPointInTime.WithContext(ctx))
	if err != nil {
		return fail("opening a point in time", err)
	}
	if res.StatusCode == http.StatusNotFound {
		drain(res.Body)
		return [][]byte{}, nil
	}
	var pit struct {
		ID string `json:"id"`
	}
	err = readJSON(res, &pit)
	if err != nil {
		return fail("opening a point in time", err)
	}
	defer func() {
		b, _ := json.Marshal(map[string]string{"id": pit.ID})
		if res, err := s.es.ClosePointInTime(s.es.ClosePointInTime.WithBody(bytes.NewReader(b))); err == nil {
			drain(res.Body)
		}
	}()
	out := [][]byte{}
	var after []any
	for {
		q := map[string]any{
			"size":             1000,
			"pit":              map[string]string{"id": pit.ID, "keep_alive": "2m"},
			"sort":             []any{map[string]string{"_shard_doc": "asc"}},
			"track_total_hits": false,
		}
		if after != nil {
			q["search_after"] = after
		}
		b, _ := json.Marshal(q)
		res, err := s.es.Search(s.es.Search.WithContext(ctx), s.es.Search.WithBody(bytes.NewReader(b)))
		if err != nil {
			return fail("search", err)
		}
		var page struct {
			PitID string `json:"pit_id"`
			Hits  struct {
				Hits []struct {
					Source json.RawMessage `json:"_source"`
					Sort   []any           `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := readJSON(res, &page); err != nil {
			return fail("search", err)
		}
		if len(page.Hits.Hits) == 0 {
			return out, nil
		}
		for _, h := range page.Hits.Hits {
			v, err := recordValueOf(h.Source, !s.auto)
			if err != nil {
				return fail("reading a document", err)
			}
			out = append(out, v)
		}
		after = page.Hits.Hits[len(page.Hits.Hits)-1].Sort
		if page.PitID != "" {
			pit.ID = page.PitID
		}
	}
}

// readJSON decodes a 2xx answer into v; any other answer is an error with
// Elasticsearch's reason.
func readJSON(res *esapi.Response, v any) error {
	defer drain(res.Body)
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("HTTP %d: %s", res.StatusCode, errorReason(res.Body))
	}
	dec := json.NewDecoder(res.Body)
	dec.UseNumber()
	return dec.Decode(v)
}
