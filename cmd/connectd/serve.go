package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/connectd/connectd/host/api"
	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/metrics"
	"github.com/connectd/connectd/host/pipeline"
)

// tokenEnv is where `run --http` takes the API token from when the file has
// no http block with a token.
const tokenEnv = "CONNECTD_TOKEN"

// served is the HTTP server of one run: the pipelines' Controls, the
// Progress that feeds the metrics, and how to stop it.
type served struct {
	controls map[string]*pipeline.Control
	progress pipeline.Progress
	stop     func()
}

// serveHTTP starts the HTTP server when flagAddr or the file's http block
// asks for one; otherwise it returns a served with nil controls. It prints
// the URL it serves. The int is an exit code when it cannot start. owner,
// when not nil (connectd worker), says who holds each pipeline's lease.
func serveHTTP(file *config.File, pipes []*config.Pipeline, flagAddr string, owner func(name string) *api.Owner, stderr io.Writer) (*served, int) {
	s := &served{stop: func() {}}
	addr, token := flagAddr, ""
	if file.HTTP != nil {
		token = file.HTTP.Token
		if addr == "" {
			addr = file.HTTP.Addr
		}
	}
	if addr == "" {
		return s, exitOK
	}
	if token == "" {
		token = os.Getenv(tokenEnv)
	}
	if err := api.CheckAddr(addr, token); err != nil {
		where := "--http"
		if flagAddr == "" {
			where = httpBlock(file)
		}
		fmt.Fprintf(stderr, "connectd run: %s: refusing to serve HTTP: %v\n", where, err)
		return nil, exitUsage
	}
	s.controls = map[string]*pipeline.Control{}
	var apiPipes []api.Pipeline
	var controls []*pipeline.Control
	for _, p := range pipes {
		c := pipeline.NewControl(p.Name)
		s.controls[p.Name] = c
		controls = append(controls, c)
		ap := api.Pipeline{Config: p, Control: c}
		if owner != nil {
			ap.Owner = func() *api.Owner { return owner(p.Name) }
		}
		apiPipes = append(apiPipes, ap)
	}
	m := metrics.New(controls)
	s.progress = m.Progress()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "connectd run: cannot serve HTTP: %v\n", err)
		return nil, exitUsage
	}
	as := &api.Server{Pipelines: apiPipes, Token: token, Metrics: m.Registry}
	srv := &http.Server{Handler: as.Handler(), ReadHeaderTimeout: 10 * time.Second}
	sampling, stopSampling := context.WithCancel(context.Background())
	go as.Run(sampling, time.Second)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "connectd: HTTP server: %v\n", err)
		}
	}()
	auth := "no token: reads and writes open to whoever reaches the port"
	if token != "" {
		auth = "mutating calls need the token"
	}
	fmt.Fprintf(stderr, "connectd: serving http://%s/ (status page /, metrics /metrics, health /healthz /readyz, API /v1/pipelines; %s)\n", ln.Addr(), auth)
	s.stop = func() {
		stopSampling()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return s, exitOK
}

// checkHTTP refuses, for validate, the file's http block that run would
// refuse: an address other than loopback without a token.
func checkHTTP(file *config.File, stderr io.Writer) int {
	if file.HTTP == nil {
		return exitOK
	}
	token := file.HTTP.Token
	if token == "" {
		token = os.Getenv(tokenEnv)
	}
	if err := api.CheckAddr(file.HTTP.Addr, token); err != nil {
		fmt.Fprintf(stderr, "connectd validate: %s: %v\n", httpBlock(file), err)
		return exitUsage
	}
	return exitOK
}

// httpBlock is the file:line:column of the file's http block.
func httpBlock(file *config.File) string {
	r := file.HTTP.Range
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}
