package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/connectd/connectd/host/api"
	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/host/checkpoint/pgstore"
	"github.com/connectd/connectd/host/cluster"
	"github.com/connectd/connectd/host/config"
	"github.com/connectd/connectd/host/offsets"
	"github.com/connectd/connectd/host/pipeline"
	"github.com/connectd/connectd/host/plugin"
)

const workerSynopsis = "worker [--id ID] [--lease-ttl DURATION] [--http ADDR] [--progress text|json] [--log-format text|json] [--log-level LEVEL] [--plugin-dir DIR] FILE"

const workerHelp = `Runs the pipelines of FILE together with every other 'connectd worker' started
with the same FILE (or one with the same pipelines) on any machine: each
pipeline (each task, with parallelism) is run by one live worker at a time,
under a lease in the PostgreSQL database of the pipelines' checkpoint; they
spread evenly; a dead worker's are taken over after --lease-ttl (at the next
tick, a quarter of it, when its connection to PostgreSQL closed); a joining
worker gets its share at batch boundaries. Every pipeline needs
checkpoint { store = "postgres" }, all in one database and schema.
A worker that lost a lease without knowing it cannot plan or commit a batch:
its checkpoint writes and a transactional sink's commit are fenced by the
lease's epoch. SIGINT/SIGTERM: finish the batches in flight, release the
leases (others take them at once), exit 0. See docs/cluster.md.

`

func cmdWorker(args []string, stdout, stderr io.Writer) int {
	f := newFlags("worker", workerSynopsis, stderr)
	f.FlagSet.Usage = func() {
		fmt.Fprintf(stderr, "Usage: connectd %s\n\n%s", workerSynopsis, workerHelp)
		f.PrintDefaults()
	}
	id := f.String("id", "", "this worker's name in the lease tables (default <host>-<pid>-<random>; must be unique among live workers)")
	ttl := f.Duration("lease-ttl", cluster.DefaultTTL, "how long a lease lasts without renewal: the bound on a stopped or unreachable worker's units moving (renewed every quarter of it)")
	progress := f.String("progress", "text", "progress output: text (a line per batch or per second, on stderr) or json (one object per batch, on stdout)")
	dir := f.String("plugin-dir", "", "directory of third-party plugins (connectd-plugin-<name>); overrides plugin_dir in FILE")
	logFormat := f.String("log-format", "text", "log format on stderr: text (key=value lines) or json (one object per line)")
	logLevel := f.String("log-level", "info", "least severe log level shown: debug, info, warn or error")
	httpAddr := f.String("http", "", "serve the status page, /metrics and the API /v1/ at host:port as run --http does, for every pipeline of FILE: each says which worker holds it (owner), the rest is this worker's last run of it")
	grace := f.Duration("grace", 30*time.Second, "when a pipeline stops here (SIGINT/SIGTERM, or it moves to another worker), how long to let its batch in flight finish before abandoning it (the next holder replays it)")
	if code, ok := f.parse(args, 1); !ok {
		return code
	}
	st, code := start("worker", *progress, *logFormat, *logLevel, f.pos[0], *dir, stderr)
	if code != exitOK {
		return code
	}
	log, file, loader := st.log, st.file, st.loader
	defer loader.Close() // removes the plugin socket directory
	units := config.Tasks(file.Pipelines)
	where, err := sharedStore(units)
	if err != nil {
		fmt.Fprintf(stderr, "connectd worker: %s: %v\n", f.pos[0], err)
		return exitUsage
	}
	byName := map[string]*config.Pipeline{}
	names := make([]string, len(units))
	for i, u := range units {
		byName[u.Name], names[i] = u, u.Name
	}
	var prog pipeline.Progress = &pipeline.Text{W: stderr, Every: time.Second}
	if *progress == "json" {
		prog = &pipeline.JSON{W: stdout}
	}

	var srv *served // set before w.Run calls Run
	w, err := cluster.New(cluster.Options{URL: where.URL, Schema: where.Schema, Units: names, ID: *id, TTL: *ttl, Log: log,
		Run: func(ctx context.Context, l cluster.Lease) error {
			p := byName[l.Name]
			log.Info("starting pipeline", "pipeline", p.Name, "epoch", l.Epoch, "delivery", string(p.Delivery), "source", p.Source.Name, "sink", p.Sink.Name, "checkpoint", p.Checkpoint.Where())
			open := func(ctx context.Context, p *config.Pipeline) (*checkpoint.Store, error) {
				return pgstore.OpenFenced(ctx, p.Checkpoint.URL, p.Checkpoint.Schema, p.Name, l.Epoch)
			}
			c := srv.controls[p.Name] // nil without --http
			if c != nil {
				c.Reopen() // it may have run here before
			}
			err := pipeline.Run(ctx, pipeline.Options{Pipeline: p, Loader: loader, Progress: prog, Log: log, Grace: *grace, Checkpoint: open, Epoch: l.Epoch, Control: c})
			if err != nil && plugin.Fenced(err) && !errors.Is(err, checkpoint.ErrFenced) {
				err = fmt.Errorf("%w: %w", checkpoint.ErrFenced, err) // the sink fenced it
			}
			return err
		}})
	if err != nil {
		fmt.Fprintf(stderr, "connectd worker: %v\n", err)
		return exitUsage
	}
	owner := func(name string) *api.Owner {
		l, ok := w.Owners()[name]
		if !ok || l.Epoch == 0 {
			return nil
		}
		if !l.Live {
			return &api.Owner{Epoch: l.Epoch, Since: l.Since} // free: no live holder
		}
		return &api.Owner{Worker: l.Worker, Epoch: l.Epoch, Since: l.Since, Here: l.Worker == w.ID()}
	}
	srv, code = serveHTTP(file, units, *httpAddr, owner, stderr)
	if srv == nil {
		return code
	}
	defer srv.stop()
	prog = pipeline.Tee(prog, srv.progress)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		log.Info("stopping: finishing the batches in flight, then releasing the leases (signal again to exit at once)", "signal", s.String())
		cancel()
		<-sigs
		fmt.Fprintln(stderr, "connectd: second signal, exiting at once; the batches in flight are replayed by the next holders, after the leases expire")
		_ = loader.Close() // os.Exit runs no deferred call; the plugins die with the host
		os.Exit(exitRuntime)
	}()
	if err := w.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "connectd worker: %v\n", err)
		return exitCode(err)
	}
	return exitOK
}

// owner reads which worker holds p's lease, for a pipeline with a
// PostgreSQL checkpoint that workers ran; nil otherwise.
func owner(ctx context.Context, p *config.Pipeline) (*offsets.Owner, error) {
	if p.Checkpoint.Store != config.StorePostgres {
		return nil, nil
	}
	leases, err := cluster.Owners(ctx, p.Checkpoint.URL, p.Checkpoint.Schema)
	if err != nil {
		return nil, err
	}
	l, ok := leases[p.Name]
	if !ok || l.Epoch == 0 {
		return nil, nil
	}
	return &offsets.Owner{Worker: l.Worker, Epoch: l.Epoch, Since: l.Since, Live: l.Live}, nil
}

// sharedStore returns the PostgreSQL checkpoint every unit uses (the lease
// tables live next to it), or an error naming a unit that uses another.
func sharedStore(units []*config.Pipeline) (config.Checkpoint, error) {
	var first *config.Pipeline
	for _, u := range units {
		c := u.Checkpoint
		if c.Store != config.StorePostgres {
			return config.Checkpoint{}, fmt.Errorf("pipeline %q: checkpoint store %q: workers share pipelines through PostgreSQL: set checkpoint { store = \"postgres\" }", u.Name, c.Store)
		}
		if first == nil {
			first = u
			continue
		}
		if c.URL != first.Checkpoint.URL || c.Schema != first.Checkpoint.Schema {
			return config.Checkpoint{}, fmt.Errorf("pipeline %q keeps its checkpoint in %s, pipeline %q in %s: workers need one database and schema for all", u.Name, c.Where(), first.Name, first.Checkpoint.Where())
		}
	}
	if first == nil {
		return config.Checkpoint{}, errors.New("no pipeline to run")
	}
	return first.Checkpoint, nil
}
