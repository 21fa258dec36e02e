package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/pipeline"
)

func newServer(token string) (*Server, *pipeline.Control) {
	c := pipeline.NewControl("orders")
	cfg := &config.Pipeline{Name: "orders", Delivery: config.ExactlyOnce, Source: config.Plugin{Name: "kafka"}, Sink: config.Plugin{Name: "file"}}
	return &Server{Pipelines: []Pipeline{{Config: cfg, Control: c}}, Token: token}, c
}

func do(t *testing.T, h http.Handler, method, path, token string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, w.Body.String())
	}
	return w.Code, body
}

func TestErrors(t *testing.T) {
	s, c := newServer("")
	h := s.Handler()
	tests := []struct {
		method, path string
		code         int
		want         string // in the error
	}{
		{"GET", "/v1/pipelines/nope", 404, `no pipeline "nope" in this run; it has "orders"`},
		{"POST", "/v1/pipelines/nope/pause", 404, `no pipeline "nope"`},
		{"POST", "/v1/pipelines/orders/resume", 409, "is not paused"},
		{"POST", "/v1/pipelines/orders/stop", 404, `no action "stop"`},
		{"GET", "/v1/nothing", 404, "no API route"},
	}
	for _, tc := range tests {
		code, body := do(t, h, tc.method, tc.path, "")
		if code != tc.code || !strings.Contains(body["error"].(string), tc.want) {
			t.Errorf("%s %s = %d %v, want %d with %q", tc.method, tc.path, code, body, tc.code, tc.want)
		}
	}
	if code, _ := do(t, h, "POST", "/v1/pipelines/orders/pause", ""); code != 202 {
		t.Fatalf("pause = %d, want 202", code)
	}
	if code, body := do(t, h, "POST", "/v1/pipelines/orders/pause", ""); code != 409 || !strings.Contains(body["error"].(string), "already paused") {
		t.Errorf("second pause = %d %v, want 409", code, body)
	}
	if code, body := do(t, h, "GET", "/v1/pipelines/orders", ""); code != 200 || body["pauseRequested"] != true || body["delivery"] != "exactly-once" || body["source"] != "kafka" {
		t.Errorf("status = %d %v", code, body)
	}
	if code, _ := do(t, h, "POST", "/v1/pipelines/orders/resume", ""); code != 202 {
		t.Errorf("resume = %d, want 202", code)
	}
	c.End(nil)
	for _, a := range []string{"pause", "restart"} {
		if code, body := do(t, h, "POST", "/v1/pipelines/orders/"+a, ""); code != 409 || !strings.Contains(body["error"].(string), "has ended") {
			t.Errorf("%s after the end = %d %v, want 409", a, code, body)
		}
	}
}

func TestToken(t *testing.T) {
	s, _ := newServer("sesame")
	h := s.Handler()
	if code, _ := do(t, h, "POST", "/v1/pipelines/orders/pause", ""); code != 401 {
		t.Errorf("no token = %d, want 401", code)
	}
	if code, _ := do(t, h, "POST", "/v1/pipelines/orders/pause", "sesam"); code != 403 {
		t.Errorf("wrong token = %d, want 403", code)
	}
	if code, _ := do(t, h, "GET", "/v1/pipelines", ""); code != 200 {
		t.Errorf("a read without token = %d, want 200", code)
	}
	if code, _ := do(t, h, "POST", "/v1/pipelines/orders/pause", "sesame"); code != 202 {
		t.Errorf("right token = %d, want 202", code)
	}
}

func TestReady(t *testing.T) {
	s, c := newServer("")
	h := s.Handler()
	if code, body := do(t, h, "GET", "/readyz", ""); code != 503 || !strings.Contains(body["problems"].([]any)[0].(string), `pipeline "orders" is starting`) {
		t.Errorf("starting: /readyz = %d %v, want 503", code, body)
	}
	if code, _ := do(t, h, "GET", "/healthz", ""); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	c.End(nil)
	if code, _ := do(t, h, "GET", "/readyz", ""); code != 200 {
		t.Errorf("finished: /readyz = %d, want 200", code)
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8083", "", true},
		{"[::1]:8083", "", true},
		{"localhost:8083", "", true},
		{"0.0.0.0:8083", "", false},
		{":8083", "", false},
		{"10.1.2.3:8083", "", false},
		{"0.0.0.0:8083", "t", true},
		{"127.0.0.1", "", false},
	} {
		if err := CheckAddr(tc.addr, tc.token); (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q, %q) = %v, want ok %v", tc.addr, tc.token, err, tc.ok)
		}
	}
}
