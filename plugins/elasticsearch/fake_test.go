package elasticsearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/connectd/connectd/sdk"
)

// These tests put the sink in front of a scripted fake server, to check how
// it reads answers no real server gives on demand (5xx items, short answers).

// reply is the fake server's answer to one bulk request: an HTTP status
// and, for 200, one item status per document.
type reply struct {
	http  int
	items []int
}

// fake is a scripted bulk endpoint that records the ids of every request.
type fake struct {
	mu       sync.Mutex
	script   []reply
	requests [][]string // ids per request
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/" {
		fmt.Fprint(w, `{"version":{"number":"8.15.0"}}`)
		return
	}
	var ids []string
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for i := 0; sc.Scan(); i++ {
		if i%2 == 0 {
			var a struct {
				Index struct {
					ID string `json:"_id"`
				} `json:"index"`
			}
			_ = json.Unmarshal(sc.Bytes(), &a)
			ids = append(ids, a.Index.ID)
		}
	}
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, ids)
	rp := reply{http: 200}
	if n < len(f.script) {
		rp = f.script[n]
	}
	f.mu.Unlock()
	if rp.http != 200 {
		w.WriteHeader(rp.http)
		fmt.Fprintf(w, `{"error":{"type":"fake_exception","reason":"scripted HTTP %d"},"status":%d}`, rp.http, rp.http)
		return
	}
	if rp.items == nil {
		for range ids {
			rp.items = append(rp.items, 201)
		}
	}
	var items []string
	for _, st := range rp.items {
		if st < 300 {
			items = append(items, fmt.Sprintf(`{"index":{"status":%d}}`, st))
		} else {
			items = append(items, fmt.Sprintf(`{"index":{"status":%d,"error":{"type":"fake_%d_exception","reason":"scripted","caused_by":{"type":"cause","reason":"deeper"}}}}`, st, st))
		}
	}
	fmt.Fprintf(w, `{"errors":true,"items":[%s]}`, strings.Join(items, ","))
}

// sent returns the ids of every request so far.
func (f *fake) sent() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.requests...)
}

func fakeSink(t *testing.T, script ...reply) (*Sink, *fake) {
	t.Helper()
	f := &fake{script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg, err := sdk.NewConfig(Spec, "test", map[string]any{
		"addresses": []string{srv.URL}, "index": "fake", "retry_backoff": "1ms", "retry_backoff_max": "5ms", "retry_timeout": "5s",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := Plugin.Sink.New().(*Sink)
	if err := s.Open(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	s.log = newTextLogger(io.Discard)
	return s, f
}

func fourRecords() sdk.Batch {
	return sdk.Batch{ID: 5, Records: []sdk.Record{
		rec("p/0", 0, "", `{"n":0}`), rec("p/0", 1, "", `{"n":1}`), rec("p/0", 2, "", `{"n":2}`), rec("p/0", 3, "", `{"n":3}`),
	}}
}

func TestFakeRetriesOnlyFailedItems(t *testing.T) {
	s, f := fakeSink(t, reply{http: 200, items: []int{201, 429, 503, 200}}, reply{http: 200, items: []int{502, 201}})
	if err := s.Write(context.Background(), fourRecords()); err != nil {
		t.Fatal(err)
	}
	want := []string{"p/0@0,p/0@1,p/0@2,p/0@3", "p/0@1,p/0@2", "p/0@1"}
	if len(f.sent()) != len(want) {
		t.Fatalf("%d requests %v, want %v", len(f.sent()), f.sent(), want)
	}
	for i, w := range want {
		if got := strings.Join(f.sent()[i], ","); got != w {
			t.Errorf("request %d sent %s, want %s", i, got, w)
		}
	}
	if n := s.itemRetries.Load(); n != 3 {
		t.Errorf("itemRetries %d, want 3", n)
	}
}

func TestFakeWholeRequestRetried(t *testing.T) {
	for _, st := range []int{429, 500, 502, 503, 504} {
		s, f := fakeSink(t, reply{http: st})
		if err := s.Write(context.Background(), fourRecords()); err != nil {
			t.Fatalf("HTTP %d then success: %v", st, err)
		}
		if len(f.sent()) != 2 || len(f.sent()[1]) != 4 {
			t.Errorf("HTTP %d: requests %v, want the 4 documents twice", st, f.sent())
		}
	}
}

func TestFakeShortAnswerRetried(t *testing.T) {
	s, f := fakeSink(t, reply{http: 200, items: []int{201, 201}})
	if err := s.Write(context.Background(), fourRecords()); err != nil {
		t.Fatal(err)
	}
	if len(f.sent()) != 2 || len(f.sent()[1]) != 4 {
		t.Errorf("requests %v: an answer with 2 items for 4 documents must resend all 4", f.sent())
	}
}

func TestFakeRejectedItemFails(t *testing.T) {
	s, f := fakeSink(t, reply{http: 200, items: []int{201, 201, 400, 409}})
	s.onError = OnErrorFail
	err := s.Write(context.Background(), fourRecords())
	if err == nil {
		t.Fatal("an item rejected with 400 did not fail the batch")
	}
	for _, want := range []string{"batch 5", "record p/0@2", `index "fake"`, `id "p/0@2"`, "status 400 fake_400_exception: scripted (caused by cause: deeper)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(f.sent()) != 1 {
		t.Errorf("%d requests: a rejected item must not be retried", len(f.sent()))
	}
}

func TestFakeRejectedItemsSkipped(t *testing.T) {
	s, f := fakeSink(t, reply{http: 200, items: []int{201, 404, 400, 429}})
	s.onError = OnErrorSkip
	var logs bytes.Buffer
	s.log = newTextLogger(&logs)
	if err := s.Write(context.Background(), fourRecords()); err != nil {
		t.Fatal(err)
	}
	if n := s.skipped.Load(); n != 2 {
		t.Errorf("skipped %d, want 2", n)
	}
	if len(f.sent()) != 2 || strings.Join(f.sent()[1], ",") != "p/0@3" {
		t.Errorf("requests %v: only the throttled document goes again", f.sent())
	}
	for _, want := range []string{"position=p/0@1", "position=p/0@2", "fake_404_exception", "skipped=2"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs.String())
		}
	}
}

// With on_record_error = "reject" (the default) items answered with a 4xx
// other than 429 are listed in the *sdk.Rejected Write returns, by index in
// the batch, with the error's type and reason; the 429 item is retried and
// written; nothing is logged as skipped.
func TestFakeRejectedItemsReported(t *testing.T) {
	s, f := fakeSink(t, reply{http: 200, items: []int{201, 404, 429, 400}})
	if s.onError != OnErrorReject {
		t.Fatalf("default on_record_error is %q, want %q", s.onError, OnErrorReject)
	}
	err := s.Write(context.Background(), fourRecords())
	var rj *sdk.Rejected
	if !errors.As(err, &rj) {
		t.Fatalf("Write: %v, want an *sdk.Rejected", err)
	}
	if len(rj.Records) != 2 || rj.Records[0].Index != 1 || rj.Records[1].Index != 3 {
		t.Fatalf("rejected %+v, want records 1 and 3", rj.Records)
	}
	for i, want := range []string{`index "fake", id "p/0@1": status 404 fake_404_exception: scripted (caused by cause: deeper)`, `id "p/0@3": status 400 fake_400_exception`} {
		if !strings.Contains(rj.Records[i].Reason, want) {
			t.Errorf("reason %q does not say %q", rj.Records[i].Reason, want)
		}
	}
	if len(f.sent()) != 2 || strings.Join(f.sent()[1], ",") != "p/0@2" {
		t.Errorf("requests %v: only the throttled document goes again", f.sent())
	}
	if n := s.skipped.Load(); n != 0 {
		t.Errorf("skipped %d, want 0: rejected records are not skipped", n)
	}
	// The next Write starts with no rejections of its own.
	if err := s.Write(context.Background(), fourRecords()); err != nil {
		t.Errorf("a batch written without rejections: %v", err)
	}
}

func TestFakePermanentRequestErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		want   string
	}{
		{413, "lower bulk_max_bytes"},
		{401, "refused"},
		{400, "HTTP 400: fake_exception: scripted HTTP 400"},
	} {
		s, f := fakeSink(t, reply{http: c.status})
		err := s.Write(context.Background(), fourRecords())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "batch 5") {
			t.Errorf("HTTP %d: error %v, want one saying %q", c.status, err, c.want)
		}
		if len(f.sent()) != 1 {
			t.Errorf("HTTP %d: %d requests, want no retry", c.status, len(f.sent()))
		}
	}
}

func TestFakeCancelStopsRetries(t *testing.T) {
	s, _ := fakeSink(t, reply{http: 503}, reply{http: 503}, reply{http: 503}, reply{http: 503}, reply{http: 503}, reply{http: 503})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, fourRecords()); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("Write with a cancelled context: %v, want a cancellation error", err)
	}
}

func TestFakeNotElasticsearch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	cfg, err := sdk.NewConfig(Spec, "test", map[string]any{"addresses": []string{srv.URL}, "index": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Plugin.Sink.New().Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Errorf("Open against a server that is not Elasticsearch: %v", err)
	}
}

// Key mode sends one document per id and batch: the last record's.
func TestFakeKeyModeSendsLastPerID(t *testing.T) {
	s, f := fakeSink(t)
	s.byKey = true
	if err := s.Write(context.Background(), sdk.Batch{ID: 1, Records: []sdk.Record{
		rec("p/0", 0, "a", `{"v":1}`), rec("p/0", 1, "b", `{"v":1}`), rec("p/0", 2, "a", `{"v":2}`),
	}}); err != nil {
		t.Fatal(err)
	}
	if len(f.sent()) != 1 || strings.Join(f.sent()[0], ",") != "b,a" {
		t.Errorf("requests %v, want one with b then a", f.sent())
	}
}
