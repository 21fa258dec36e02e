package elasticsearch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/connectd/connectd/internal/e2e"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// These tests talk to a real Elasticsearch-API server. With ES_URL set
// (and ES_USERNAME, ES_PASSWORD; ES_CA_CERT for a private CA, as
// Elasticsearch 8's http_ca.crt; ES_API_KEY for the API key test) they use
// that server: a real Elasticsearch 8 works unchanged. Without it, TestMain
// builds and starts the test server of testenv/elasticsearch (ZincSearch
// behind Elasticsearch's API) on 127.0.0.1 and stops it at the end.

// env is the server the tests use.
var env struct {
	url, user, pass, caFile, apiKey string
	own                             bool   // started by TestMain: the test knobs exist
	server                          string // the test server's executable, when built
	connectd                        string // the connectd binary, for end-to-end tests
	scratch                         string
	root                            string // the repository
}

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		env.scratch, err = os.MkdirTemp("", "connectd-es-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(env.scratch)
		root, err := filepath.Abs("../..")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		env.root = root
		env.url = os.Getenv("ES_URL")
		// Build connectd (end-to-end tests) and, without ES_URL, the test
		// server, at the same time: the server's first build takes minutes.
		var wg sync.WaitGroup
		var cerr, serr error
		env.connectd = filepath.Join(env.scratch, "connectd")
		wg.Add(1)
		go func() {
			defer wg.Done()
			cerr = goBuild(root, env.connectd, "./cmd/connectd")
		}()
		if env.url == "" {
			env.server = filepath.Join(env.scratch, "es-testenv")
			wg.Add(1)
			go func() {
				defer wg.Done()
				serr = goBuild(filepath.Join(root, "testenv", "elasticsearch"), env.server, ".")
			}()
		}
		wg.Wait()
		if err := errors.Join(cerr, serr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if env.url != "" {
			env.user, env.pass = os.Getenv("ES_USERNAME"), os.Getenv("ES_PASSWORD")
			env.caFile, env.apiKey = os.Getenv("ES_CA_CERT"), os.Getenv("ES_API_KEY")
			fmt.Fprintf(os.Stderr, "elasticsearch tests: using ES_URL=%s\n", env.url)
		} else {
			// A password that cannot appear by chance, so that tests can
			// check that it is never logged.
			srv, err := startServer(env.scratch, "main", "-password", fmt.Sprintf("pw-%d", time.Now().UnixNano()))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer srv.stop()
			env.url, env.user, env.pass, env.own = srv.url, srv.user, srv.pass, true
		}
		return m.Run()
	}()
	os.Exit(code)
}

func goBuild(dir, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o %s %s (in %s): %v\n%s", out, pkg, dir, err, b)
	}
	return nil
}

// testServer is one running test server process.
type testServer struct {
	cmd             *exec.Cmd
	exited          chan error // gets Wait's result
	url, user, pass string
	log             *e2e.Buffer
}

// startServer starts the test server with extra flags and waits until it
// serves.
func startServer(dir, name string, flags ...string) (*testServer, error) {
	addr := filepath.Join(dir, name+".addr")
	args := append([]string{"-addr-file", addr, "-exit-with-parent"}, flags...)
	serverMu.Lock()
	exe := env.server
	serverMu.Unlock()
	cmd := exec.Command(exe, args...)
	log := &e2e.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	s := &testServer{cmd: cmd, log: log, exited: exited}
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(addr); err == nil && len(b) > 0 {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				k, v, _ := strings.Cut(sc.Text(), "=")
				switch k {
				case "ES_URL":
					s.url = v
				case "ES_USERNAME":
					s.user = v
				case "ES_PASSWORD":
					s.pass = v
				}
			}
			return s, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("test server exited at start (%v):\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return nil, fmt.Errorf("test server did not start within 60s:\n%s", log.String())
		}
	}
}

func (s *testServer) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// serverBinary returns the test server's executable, building it when
// TestMain did not (ES_URL given); serverMu guards the lazy build.
func serverBinary(t *testing.T) string {
	t.Helper()
	serverMu.Lock()
	defer serverMu.Unlock()
	if env.server == "" {
		exe := filepath.Join(env.scratch, "es-testenv")
		if err := goBuild(filepath.Join(env.root, "testenv", "elasticsearch"), exe, "."); err != nil {
			t.Fatal(err)
		}
		env.server = exe
	}
	return env.server
}

var serverMu sync.Mutex

// ---- helpers

// baseConfig is the sink configuration that reaches the test server.
func baseConfig(index string) map[string]any {
	c := map[string]any{
		"addresses": []string{env.url},
		"index":     index,
		"username":  env.user,
		"password":  env.pass,
	}
	if env.caFile != "" {
		c["tls_ca_file"] = env.caFile
	}
	return c
}

// openSink opens an elasticsearch sink with baseConfig(index) and extra
// values over it.
func openSink(t *testing.T, index string, extra map[string]any) *Sink {
	t.Helper()
	cfg := baseConfig(index)
	for k, v := range extra {
		cfg[k] = v
	}
	s := sdktest.UnwrapSink(sdktest.Sink(t, Plugin, "test", cfg)).(*Sink)
	s.log = newTextLogger(testWriter{t}).With("sink", "elasticsearch")
	return s
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var nameClean = regexp.MustCompile(`[^a-z0-9]+`)

// indexName returns an index name unique to the test, and deletes every
// index starting with it when the test ends.
func indexName(t *testing.T) string {
	t.Helper()
	base := nameClean.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(base) > 60 {
		base = base[:60]
	}
	name := fmt.Sprintf("ct-%s-%d", strings.Trim(base, "-"), time.Now().UnixNano()%1e9)
	t.Cleanup(func() { deleteIndexes(t, name+"*") })
	return name
}

// deleteIndexes deletes the indexes matching pattern, one by one
// (Elasticsearch 8 refuses wildcards in deletes by default).
func deleteIndexes(t *testing.T, pattern string) {
	st, b := esDo(t, "GET", "/"+pattern, nil)
	if st != 200 {
		return
	}
	var idx map[string]any
	_ = json.Unmarshal(b, &idx)
	for n := range idx {
		esDo(t, "DELETE", "/"+n, nil)
	}
}

var httpClient = sync.OnceValue(func() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if env.caFile != "" {
		pem, err := os.ReadFile(env.caFile)
		if err != nil {
			panic(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 3 * time.Minute}
})

// esDo sends a request to the server with the tests' credentials and
// returns the status and body. body may be nil, []byte, string or a value
// to encode as JSON.
func esDo(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, env.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(env.user, env.pass)
	req.Header.Set("Content-Type", "application/json")
	res, err := httpClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// mustDo is esDo that fails the test on a status other than 200.
func mustDo(t testing.TB, method, path string, body any) []byte {
	t.Helper()
	st, b := esDo(t, method, path, body)
	if st != 200 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, st, b)
	}
	return b
}

// doc is a stored document.
type doc struct {
	Index  string          `json:"_index"`
	ID     string          `json:"_id"`
	Source json.RawMessage `json:"_source"`
}

// docs refreshes the indexes matching pattern and returns every document
// they hold (at most 10000, Elasticsearch's result window), checking the
// total the server reports against what it returned.
func docs(t testing.TB, pattern string) []doc {
	t.Helper()
	st, b := esDo(t, "POST", "/"+pattern+"/_refresh", nil)
	if st == 404 {
		return nil
	}
	if st != 200 {
		t.Fatalf("refresh %s: HTTP %d: %s", pattern, st, b)
	}
	b = mustDo(t, "POST", "/"+pattern+"/_search", map[string]any{
		"size": 10000, "track_total_hits": true, "query": map[string]any{"match_all": map[string]any{}},
	})
	var res struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
			Hits []doc `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Hits.Total.Value != len(res.Hits.Hits) {
		t.Fatalf("%s holds %d documents but the search returned %d (more than 10000?)", pattern, res.Hits.Total.Value, len(res.Hits.Hits))
	}
	return res.Hits.Hits
}

// byID maps documents by index/id; a repeated index/id fails the test.
func byID(t testing.TB, ds []doc) map[string]doc {
	t.Helper()
	m := make(map[string]doc, len(ds))
	for _, d := range ds {
		k := d.Index + "/" + d.ID
		if _, dup := m[k]; dup {
			t.Errorf("document %s is stored twice", k)
		}
		m[k] = d
	}
	return m
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// write writes a batch and fails the test on an error.
func write(t *testing.T, s sdk.Sink, b sdk.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("write batch %d: %v", b.ID, err)
	}
}

// rec is a record at partition p, offset o with a value and a key.
func rec(p string, o int64, key, value string) sdk.Record {
	r := sdk.Record{Value: []byte(value), Position: sdk.Position{Partition: p, Offset: o}, Timestamp: time.UnixMilli(1700000000000 + o).UTC()}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}

// knobs reports whether the server has the test server's knobs, and skips
// the test if not (a real Elasticsearch).
func knobs(t *testing.T) {
	t.Helper()
	if !env.own {
		if st, _ := esDo(t, "GET", "/_testenv/stats", nil); st != 200 {
			t.Skip("needs the connectd test server's /_testenv knobs (ES_URL is a real Elasticsearch)")
		}
	}
}

// logTo sends the sink's log lines to a buffer the test can read.
func logTo(s *Sink) *e2e.Buffer {
	b := &e2e.Buffer{}
	s.log = newTextLogger(b).With("sink", "elasticsearch", "pipeline", s.pipeline)
	return b
}

// ServerForTest returns the Elasticsearch server the tests use: its URL,
// user, password and CA file ("" when none), for the external test package.
func ServerForTest() (url, user, pass, caFile string) {
	return env.url, env.user, env.pass, env.caFile
}

// ConnectdForTest returns the connectd binary TestMain built.
func ConnectdForTest() string { return env.connectd }

// DeleteIndexesForTest deletes the indexes matching pattern.
func DeleteIndexesForTest(t *testing.T, pattern string) { deleteIndexes(t, pattern) }
