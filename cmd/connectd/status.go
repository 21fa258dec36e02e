package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/connectd/connectd/host/api"
)

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	f := newFlags("status", "status [--addr ADDR] [--json]", stderr)
	addr := f.String("addr", "127.0.0.1:8083", "host:port (or URL) of a connectd run serving HTTP (run --http)")
	asJSON := f.Bool("json", false, "print GET /v1/pipelines as JSON")
	if code, ok := f.parse(args, 0); !ok {
		return code
	}
	base := *addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pipes, body, err := api.List(ctx, base)
	if err != nil {
		fmt.Fprintf(stderr, "connectd status: %v\n", err)
		return exitRuntime
	}
	if *asJSON {
		_, _ = stdout.Write(body)
		return exitOK
	}
	api.WriteTable(stdout, pipes, time.Now())
	return exitOK
}
