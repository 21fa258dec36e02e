// Package netfault puts a TCP proxy between a plugin and the system it talks
// to, and injects network faults through it while a conformance pipeline
// runs: latency, connection resets, stalled connections and a partition
// that lasts longer than the plugin's request timeout. The proxy is
// toxiproxy (github.com/Shopify/toxiproxy/v2) used as a library, in the
// test's own process.
//
// A test starts a Proxy in front of the server, points the plugin's
// settings at Proxy.Addr, and gives Proxy.Faults to conformance.Options.Network:
//
//	px, err := netfault.Start("127.0.0.1:0", serverAddr)
//	defer px.Close()
//	o.Sink = conformance.Plugin{Name: "kafka", HCL: `brokers = ["` + px.Addr() + `"]` + ...}
//	o.Network = px.Faults(netfault.Schedule{RequestTimeout: 2 * time.Second})
//
// Package conformance does not import this package, so a plugin author's
// conformance test links toxiproxy only when it uses it.
package netfault

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/connectd/connectd/conformance"
	"github.com/rs/zerolog"
)

// Proxy is a TCP proxy from a local address to one upstream server.
type Proxy struct {
	p *toxiproxy.Proxy

	mu     sync.Mutex
	users  int                // pipelines inside Faults
	cancel context.CancelFunc // ends the running schedule
	done   chan struct{}      // closed when the running schedule ended
	doneOf []string           // what the running or last schedule applied
	err    error
}

// Start starts a proxy that listens on listen (host:port; port 0 picks a
// free one) and forwards every connection to upstream (host:port). It
// forwards faithfully until a fault is injected.
func Start(listen, upstream string) (*Proxy, error) {
	log := zerolog.New(io.Discard)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), log)
	p := toxiproxy.NewProxy(srv, "netfault", listen, upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("netfault: proxy %s → %s: %w", listen, upstream, err)
	}
	return &Proxy{p: p}, nil
}

// Addr is the address the proxy listens on (host:port).
func (x *Proxy) Addr() string {
	x.p.Lock()
	defer x.p.Unlock()
	return x.p.Listen
}

// Close stops the proxy and closes every connection through it.
func (x *Proxy) Close() { x.p.Stop() }

// toxic adds a toxiproxy toxic to both directions and returns a function
// that removes it.
func (x *Proxy) toxic(kind string, attrs map[string]any) (func(), error) {
	var names []string
	for _, stream := range []string{"upstream", "downstream"} {
		name := kind + "_" + stream
		b, _ := json.Marshal(map[string]any{"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attrs})
		if _, err := x.p.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
			for _, n := range names {
				_ = x.p.Toxics.RemoveToxic(context.Background(), n)
			}
			return nil, fmt.Errorf("netfault: toxic %s: %w", name, err)
		}
		names = append(names, name)
	}
	return func() {
		for _, n := range names {
			_ = x.p.Toxics.RemoveToxic(context.Background(), n)
		}
	}, nil
}

// Schedule says which faults Faults injects, in order, each for its time,
// with Gap of clean forwarding after each. A zero duration leaves a fault out.
type Schedule struct {
	// RequestTimeout is the plugin's own timeout for one request: the
	// partition lasts 1.5 times as long plus a second, so that requests
	// time out inside it. Zero: 2 s.
	RequestTimeout time.Duration
	// Latency delays every chunk of data both ways by 200 ms ± 100 ms for
	// this long. Zero: 2 s.
	Latency time.Duration
	// Reset resets (TCP RST) every connection as soon as data flows on it,
	// for this long. Zero: 1 s.
	Reset time.Duration
	// Stall stops all data both ways and closes each connection after
	// 500 ms, for this long. Zero: 1.5 s.
	Stall time.Duration
	// Refuse makes the partition refuse new connections and cut the open
	// ones (the proxy is down), instead of dropping all data of accepted
	// connections (a black hole, which only a request timeout gets out of).
	// Use it for plugins that have no request timeout.
	Refuse bool
	// Gap is the clean time after each fault. Zero: 1 s.
	Gap time.Duration
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Faults returns a conformance.Options.Network that runs s once on this
// proxy while the pipeline drains: latency, resets, stalls, then the
// partition, each followed by Gap of clean forwarding. The proxy is shared:
// every connection through it suffers the faults, whichever pipeline made
// it, and pipelines that call it at the same time share one run of s, which
// stops (leaving the proxy clean) when the last of them has drained. It says
// which faults were applied while the pipeline ran.
func (x *Proxy) Faults(s Schedule) func(ctx context.Context, p conformance.Pipeline) (string, error) {
	return func(ctx context.Context, _ conformance.Pipeline) (string, error) {
		x.mu.Lock()
		if x.users == 0 {
			sctx, cancel := context.WithCancel(context.Background())
			x.cancel, x.done, x.doneOf, x.err = cancel, make(chan struct{}), nil, nil
			go x.run(sctx, s, x.done)
		}
		x.users++
		done := x.done
		x.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-done:
		}
		x.mu.Lock()
		x.users--
		if x.users == 0 {
			x.cancel()
			x.mu.Unlock()
			<-done // the proxy is clean again
			x.mu.Lock()
		}
		defer x.mu.Unlock()
		return strings.Join(x.doneOf, ", "), x.err
	}
}

// note records a fault the running schedule applied.
func (x *Proxy) note(what string) {
	x.mu.Lock()
	x.doneOf = append(x.doneOf, what)
	x.mu.Unlock()
}

// run applies the faults of s in turn until they are all done or ctx ends,
// then closes done.
func (x *Proxy) run(ctx context.Context, s Schedule, done chan struct{}) {
	defer close(done)
	partition := or(s.RequestTimeout, 2*time.Second)*3/2 + time.Second
	gap := or(s.Gap, time.Second)
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	kind := "black hole"
	if s.Refuse {
		kind = "connections refused and cut"
	}
	steps := []struct {
		what  string
		d     time.Duration
		apply func() (func(), error)
	}{
		{"latency 200±100ms", or(s.Latency, 2*time.Second), func() (func(), error) {
			return x.toxic("latency", map[string]any{"latency": 200, "jitter": 100})
		}},
		{"resets", or(s.Reset, time.Second), func() (func(), error) {
			return x.toxic("reset_peer", map[string]any{"timeout": 0})
		}},
		{"stalls closed after 500ms", or(s.Stall, 1500*time.Millisecond), func() (func(), error) {
			return x.toxic("timeout", map[string]any{"timeout": 500})
		}},
		{"partition (" + kind + ")", partition, func() (func(), error) {
			if s.Refuse {
				x.p.Stop()
				return func() { _ = x.p.Start() }, nil
			}
			return x.toxic("timeout", map[string]any{"timeout": 0})
		}},
	}
	for _, st := range steps {
		if ctx.Err() != nil {
			return
		}
		undo, err := st.apply()
		if err != nil {
			x.mu.Lock()
			x.err = err
			x.mu.Unlock()
			return
		}
		ok := wait(st.d)
		undo()
		if !ok {
			x.note(fmt.Sprintf("%s (cut short after less than %s: the pipeline drained)", st.what, st.d))
			return
		}
		x.note(fmt.Sprintf("%s for %s", st.what, st.d))
		if !wait(gap) {
			return
		}
	}
}
