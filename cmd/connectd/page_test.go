package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome executable, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (Debian: apt-get install chromium): the status page is not tested in a browser")
	return ""
}

// TestStatusPage drives the status page in headless Chromium during a real
// run: it shows the pipeline's state, guarantee, plugins and records as the
// API does, plots throughput, and its Pause and Resume buttons pause and
// resume the pipeline. With CONNECTD_SCREENSHOT=FILE.png it saves a
// screenshot of the page there.
func TestStatusPage(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 1000000, 2, 100, "rate = 2000"))
	s := serve(t, dir, nil, cfg)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1000, 700))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	const card = `section[data-name="p"]`
	// eval runs JavaScript in the page; q is a query inside the pipeline's card.
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v\n%s", js, err, s.log())
		}
		return v
	}
	q := func(sel string) string { return "document.querySelector('" + card + " " + sel + "')" }
	text := func(sel string) string {
		return strings.TrimSpace(eval("(" + q(sel) + "||{textContent:''}).textContent"))
	}
	attr := func(sel, name string) string {
		return eval("(" + q(sel) + "||{dataset:{}}).dataset['" + name + "']||''")
	}
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for got := text(sel); got != want; got = text(sel) {
			if time.Now().After(deadline) {
				t.Fatalf("the page shows %s = %q, want %q", sel, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	click := func(sel string) {
		t.Helper()
		eval(q(sel) + ".click(), ''")
	}
	// The server keeps the last minutes: let it sample for a while before
	// the page opens, so that the page must draw what the server kept.
	const kept = 6
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, b := call(t, "GET", s.URL+"/v1/pipelines/p/history", "")
		var h struct{ Samples []json.RawMessage }
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("history: %v: %s", err, b)
		}
		if len(h.Samples) >= kept {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server kept %d samples in 30s, want %d", len(h.Samples), kept)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	waitText(".state", "running")
	// Right after it opens (before its own second refresh) the page plots
	// the server's history: kept-1 rates or more, not the one or two it
	// could have measured itself.
	time.Sleep(500 * time.Millisecond)
	if n, _ := strconv.Atoi(attr(".chart-rate", "points")); n < kept-1 {
		t.Errorf("the throughput chart has %d points right after the page opened, want >= %d from the server's history", n, kept-1)
	}
	if got := text(".delivery"); got != "exactly-once" {
		t.Errorf("delivery = %q", got)
	}
	if got := text(".plugins"); got != "generator → file" {
		t.Errorf("plugins = %q", got)
	}
	// Throughput is plotted: a few points, the last near the source's rate.
	deadline := time.Now().Add(30 * time.Second)
	for n, _ := strconv.Atoi(attr(".chart-rate", "points")); n < 3; n, _ = strconv.Atoi(attr(".chart-rate", "points")) {
		if time.Now().After(deadline) {
			t.Fatalf("the throughput chart has %d points after 30s", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The last point is near the source's rate. On a loaded machine one
	// second can pass without a commit (a point of 0), so the page gets a
	// few refreshes to plot a rate above 0; it never may plot one far above
	// what the source produces.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		v, _ := strconv.Atoi(attr(".chart-rate", "last"))
		if v > 20000 {
			t.Fatalf("last plotted throughput %d records/s, want about 2000", v)
		}
		if v > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page plotted no throughput above 0 in 10s (last %d records/s), want about 2000", v)
		}
	}
	// Pause with the button: the page and the API agree, and nothing moves.
	click(".pause")
	waitText(".state", "paused")
	st := s.status(t, "p")
	if st.State != "paused" {
		t.Fatalf("the page shows paused, the API %q", st.State)
	}
	time.Sleep(1500 * time.Millisecond) // the page refreshes every second
	shown := strings.ReplaceAll(text(".written"), ",", "")
	if shown != strconv.FormatInt(st.RecordsWritten, 10) || s.status(t, "p").RecordsWritten != st.RecordsWritten {
		t.Errorf("paused: the page shows %s records written, the API %d then %d", shown, st.RecordsWritten, s.status(t, "p").RecordsWritten)
	}
	if shot := os.Getenv("CONNECTD_SCREENSHOT"); shot != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	click(".resume")
	waitText(".state", "running")
	s.waitFor(t, "records after resume", func() bool { return s.status(t, "p").RecordsWritten > st.RecordsWritten })
}
