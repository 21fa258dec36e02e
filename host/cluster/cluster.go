package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/host/checkpoint/pgstore"
	"github.com/connectd/connectd/internal/pg"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// WorkerTable is the table of workers and their heartbeats; the lease table
// is pgstore.LeaseTable, which fenced checkpoints read.
const WorkerTable = "connectd_worker"

// DefaultTTL is how long a lease lasts without renewal unless Options.TTL
// says otherwise.
const DefaultTTL = 10 * time.Second

// ddlLock serialises the creation of the tables between workers starting at
// the same time.
var ddlLock = int64(fnvKey("connectd cluster ddl"))

// Lease is one unit held by one worker.
type Lease struct {
	Name   string    // the unit (config.Pipeline.Name)
	Worker string    // the holder's id; "" when free
	Epoch  int64     // one more at every takeover; 0 before the first
	Since  time.Time // when the holder took it (or released it)
	// Expires is when the lease ends unless renewed; Live is false when
	// the holder is not a live worker (the lease is free or about to be).
	Expires time.Time
	Live    bool
}

// Options configure a Worker.
type Options struct {
	// URL and Schema name the database and schema of the pipelines'
	// PostgreSQL checkpoint, where the tables live.
	URL, Schema string
	// Units are the names of the units to share, the same list in every
	// worker (config.Tasks of the same files).
	Units []string
	// ID names the worker in the tables and in messages; "" means
	// "<host>-<pid>-<random>", new for every process.
	ID string
	// TTL is how long a lease lasts without renewal (default DefaultTTL);
	// the worker renews every TTL/4. A dead worker's units move after at
	// most TTL plus a tick, or after a tick when its session ended.
	TTL time.Duration
	Log *slog.Logger
	// Run runs one unit under lease l until ctx is cancelled (the lease was
	// lost, the unit moves to another worker, the worker stops); then it
	// finishes the batch in flight and returns nil. An error that matches
	// checkpoint.ErrFenced drops the unit (another worker holds it now), as
	// does any error of a unit stopped because its lease was lost or could
	// not be renewed; any other error stops the worker: Worker.Run stops
	// every unit and returns it. Run is called in its own goroutine, once
	// per lease.
	Run func(ctx context.Context, l Lease) error
}

// Worker is one member of the group of workers that share Options.Units.
// Its methods are safe for concurrent use.
type Worker struct {
	o       Options
	cfg     *pgx.ConnConfig
	workers string // sanitized tables
	leases  string
	key     int64 // the worker's session lock
	host    string

	conn      *pgx.Conn // nil while disconnected; used by Run's goroutine only
	units     map[string]*unit
	results   chan result
	lastRenew time.Time // when the last successful renewal was sent

	mu   sync.Mutex
	held map[string]Lease // for Leases
	all  map[string]Lease // for Owners, as of the last round
	live int
}

type unit struct {
	lease    Lease
	cancel   context.CancelFunc
	stopping string // why it was asked to stop; "" while it runs
	lost     bool   // stopped because the lease is, or may be, another's
}

type result struct {
	name string
	err  error
}

// New checks o and returns a Worker that has not joined yet (Run joins).
func New(o Options) (*Worker, error) {
	if o.Run == nil {
		return nil, errors.New("cluster: no Run function")
	}
	if len(o.Units) == 0 {
		return nil, errors.New("cluster: no units to share")
	}
	if o.Schema == "" {
		o.Schema = "public"
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.TTL < 400*time.Millisecond {
		return nil, fmt.Errorf("cluster: lease TTL %s is too short (want at least 400ms)", o.TTL)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	host, _ := os.Hostname()
	if o.ID == "" {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		o.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	cfg, err := pg.Config(o.URL, "worker")
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// As pgstore: the server notices a vanished machine within about a
	// minute, not the operating system's two hours.
	for k, v := range map[string]string{"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"} {
		if _, ok := cfg.RuntimeParams[k]; !ok {
			cfg.RuntimeParams[k] = v
		}
	}
	return &Worker{o: o, cfg: cfg, host: host,
		workers: pgx.Identifier{o.Schema, WorkerTable}.Sanitize(),
		leases:  pgx.Identifier{o.Schema, pgstore.LeaseTable}.Sanitize(),
		key:     int64(fnvKey("connectd worker\x00" + o.Schema + "\x00" + o.ID)),
		units:   map[string]*unit{}, results: make(chan result), held: map[string]Lease{}}, nil
}

// ID is the worker's id in the tables.
func (w *Worker) ID() string { return w.o.ID }

// Leases returns the leases the worker holds now, sorted by unit.
func (w *Worker) Leases() []Lease {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Lease, 0, len(w.held))
	for _, l := range w.held {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Run joins the group and runs the units it leases until ctx is cancelled;
// then it stops them (each after its batch in flight), releases their leases
// so that others take them at once, leaves, and returns nil. It returns an
// error when a unit failed with an error other than a fenced one (after
// stopping the others), and when the tables cannot be made at start. A lost
// connection is not an error: it is retried every tick (see the package doc).
func (w *Worker) Run(ctx context.Context) error {
	if err := w.connect(ctx); err != nil {
		return err
	}
	w.o.Log.Info("joined the group of workers", "worker", w.o.ID, "units", len(w.o.Units), "lease_ttl", w.o.TTL.String(), "where", pg.Describe(w.cfg), "schema", w.o.Schema)
	tick := time.NewTicker(w.o.TTL / 4)
	defer tick.Stop()
	for {
		w.tick(ctx)
		select {
		case <-ctx.Done():
			return w.leave()
		case r := <-w.results:
			if err := w.ended(r); err != nil {
				w.stopAll("the worker stops: another unit failed")
				w.leave()
				return err
			}
		case <-tick.C:
		}
	}
}

// connect opens the worker's connection, takes its session lock, creates the
// tables when missing, registers the worker and the units.
func (w *Worker) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.TTL)
	defer cancel()
	conn, err := pg.Connect(ctx, w.cfg)
	if err != nil {
		return w.errorf("%w", err)
	}
	err = w.setup(ctx, conn)
	if err != nil {
		conn.Close(context.Background())
		return err
	}
	w.conn = conn
	return nil
}

func (w *Worker) setup(ctx context.Context, conn *pgx.Conn) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLock); err != nil {
			return err
		}
		if err := pg.CreateSchema(ctx, tx, w.o.Schema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS `+w.workers+` (
	id        text PRIMARY KEY,
	host      text NOT NULL,
	pid       integer NOT NULL,
	started   timestamptz NOT NULL,
	heartbeat timestamptz NOT NULL,
	lock_hi   bigint NOT NULL,
	lock_lo   bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS `+w.leases+` (
	name    text PRIMARY KEY,
	worker  text NOT NULL DEFAULT '',
	epoch   bigint NOT NULL DEFAULT 0,
	since   timestamptz NOT NULL DEFAULT now(),
	expires timestamptz NOT NULL DEFAULT '-infinity'
);
COMMENT ON TABLE `+w.workers+` IS 'connectd workers and their heartbeats (see docs/cluster.md)';
COMMENT ON TABLE `+w.leases+` IS 'connectd leases: which worker runs which pipeline or task, under which epoch (see docs/cluster.md)'`)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO "+w.leases+" (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING", w.o.Units)
		return err
	})
	if err != nil {
		return w.errorf("creating tables %s and %s: %w", w.workers, w.leases, err)
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", w.key).Scan(&got); err != nil {
		return w.errorf("taking the worker's lock: %w", err)
	}
	if !got {
		return w.errorf("another session holds the lock of worker %q: is a worker with this id running?", w.o.ID)
	}
	return w.heartbeat(ctx, conn)
}

// heartbeat says the worker is alive.
func (w *Worker) heartbeat(ctx context.Context, conn *pgx.Conn) error {
	k := uint64(w.key)
	_, err := conn.Exec(ctx, "INSERT INTO "+w.workers+" (id, host, pid, started, heartbeat, lock_hi, lock_lo) VALUES ($1, $2, $3, now(), now(), $4, $5) "+
		"ON CONFLICT (id) DO UPDATE SET heartbeat = now(), lock_hi = $4, lock_lo = $5",
		w.o.ID, w.host, os.Getpid(), int64(k>>32), int64(uint32(k)))
	if err != nil {
		return w.errorf("heartbeat: %w", err)
	}
	return nil
}

func (w *Worker) errorf(format string, args ...any) error {
	return fmt.Errorf("worker %q: "+format, append([]any{w.o.ID}, args...)...)
}

// ms is d in milliseconds, for "$n * interval '1 millisecond'".
func ms(d time.Duration) int64 { return d.Milliseconds() }

// liveLock is the SQL condition "worker row w holds its session lock".
const liveLock = `EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
	AND k.classid::bigint = w.lock_hi AND k.objid::bigint = w.lock_lo
	AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`

// tick does one round: heartbeat, renew, count the live workers, and move
// units to reach ceil(units / live) here. A database error ends the round;
// the next one reconnects.
func (w *Worker) tick(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if err := w.round(ctx); err != nil {
		if ctx.Err() != nil {
			return
		}
		w.o.Log.Warn("cannot reach the lease tables; retrying", "worker", w.o.ID, "error", err.Error())
		if w.conn != nil {
			w.conn.Close(context.Background())
			w.conn = nil
		}
		if len(w.running()) > 0 && time.Since(w.lastRenew) > w.o.TTL {
			// Another worker may hold them now; whatever they still write is
			// fenced, but they must not go on believing they own them.
			for _, u := range w.units {
				u.lost = true
			}
			w.stopAll("its lease could not be renewed for longer than the TTL")
		}
	}
}

func (w *Worker) round(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.TTL/2)
	defer cancel()
	if w.conn == nil {
		if err := w.connect(ctx); err != nil {
			return err
		}
		w.o.Log.Info("reconnected to the lease tables", "worker", w.o.ID)
	}
	if err := w.heartbeat(ctx, w.conn); err != nil {
		return err
	}
	if err := w.renew(ctx); err != nil {
		return err
	}
	var live int
	if err := w.conn.QueryRow(ctx, "SELECT count(*) FROM "+w.workers+" w WHERE w.heartbeat > now() - $1 * interval '1 millisecond' AND "+liveLock, ms(w.o.TTL)).Scan(&live); err != nil {
		return w.errorf("counting live workers: %w", err)
	}
	live = max(live, 1)
	w.mu.Lock()
	w.live = live
	w.mu.Unlock()
	target := (len(w.o.Units) + live - 1) / live
	run := w.running()
	switch {
	case len(run) > target:
		sort.Strings(run)
		for _, name := range run[target:] {
			w.stop(name, fmt.Sprintf("rebalance: %d live workers, %d units each at most", live, target))
		}
	case len(run) < target && len(run) == len(w.units): // none still stopping
		if err := w.acquire(ctx, target-len(run)); err != nil {
			return err
		}
	}
	all, err := readLeases(ctx, w.conn, w.workers, w.leases)
	if err != nil {
		return w.errorf("%w", err)
	}
	w.mu.Lock()
	w.all = all
	w.mu.Unlock()
	// Old rows of workers long gone.
	_, err = w.conn.Exec(ctx, "DELETE FROM "+w.workers+" w WHERE w.heartbeat < now() - $1 * interval '1 millisecond' AND NOT "+liveLock, ms(max(10*w.o.TTL, time.Minute)))
	return err
}

// running returns the units that run and were not asked to stop.
func (w *Worker) running() []string {
	var out []string
	for name, u := range w.units {
		if u.stopping == "" {
			out = append(out, name)
		}
	}
	return out
}

// renew extends the leases of the running units; a unit whose lease is not
// its epoch's any more is stopped (what it still writes is fenced).
func (w *Worker) renew(ctx context.Context) error {
	run := w.running()
	if len(run) == 0 {
		w.lastRenew = time.Now()
		return nil
	}
	sent := time.Now()
	names, epochs := make([]string, len(run)), make([]int64, len(run))
	for i, name := range run {
		names[i], epochs[i] = name, w.units[name].lease.Epoch
	}
	rows, err := w.conn.Query(ctx, "UPDATE "+w.leases+" l SET expires = now() + $2 * interval '1 millisecond' "+
		"FROM unnest($3::text[], $4::bigint[]) AS u(n, e) WHERE l.name = u.n AND l.epoch = u.e AND l.worker = $1 RETURNING l.name, l.expires",
		w.o.ID, ms(w.o.TTL), names, epochs)
	if err != nil {
		return w.errorf("renewing leases: %w", err)
	}
	kept := map[string]time.Time{}
	for rows.Next() {
		var name string
		var exp time.Time
		if err := rows.Scan(&name, &exp); err != nil {
			rows.Close()
			return w.errorf("renewing leases: %w", err)
		}
		kept[name] = exp
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return w.errorf("renewing leases: %w", err)
	}
	w.lastRenew = sent
	for _, name := range run {
		exp, ok := kept[name]
		if !ok {
			w.units[name].lost = true
			w.stop(name, "its lease was taken over by another worker")
			continue
		}
		w.mu.Lock()
		l := w.held[name]
		l.Expires = exp
		w.held[name] = l
		w.mu.Unlock()
	}
	return nil
}

// acquire takes up to n free leases and starts their units.
func (w *Worker) acquire(ctx context.Context, n int) error {
	mine := make([]string, 0, len(w.units))
	for name := range w.units {
		mine = append(mine, name)
	}
	rows, err := w.conn.Query(ctx, `
UPDATE `+w.leases+` l SET worker = $1, epoch = l.epoch + 1, since = now(), expires = now() + $2 * interval '1 millisecond'
WHERE l.name IN (
	SELECT c.name FROM `+w.leases+` c
	WHERE c.name = ANY($3) AND NOT c.name = ANY($4)
	  AND (c.worker = '' OR c.worker = $1 OR c.expires < now()
	       OR NOT EXISTS (SELECT 1 FROM `+w.workers+` w WHERE w.id = c.worker AND `+liveLock+`))
	ORDER BY random() LIMIT $5
	FOR UPDATE OF c SKIP LOCKED)
RETURNING l.name, l.epoch, l.since, l.expires`, w.o.ID, ms(w.o.TTL), w.o.Units, mine, n)
	if err != nil {
		return w.errorf("taking leases: %w", err)
	}
	var got []Lease
	for rows.Next() {
		l := Lease{Worker: w.o.ID, Live: true}
		if err := rows.Scan(&l.Name, &l.Epoch, &l.Since, &l.Expires); err != nil {
			rows.Close()
			return w.errorf("taking leases: %w", err)
		}
		got = append(got, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return w.errorf("taking leases: %w", err)
	}
	for _, l := range got {
		w.start(l)
	}
	return nil
}

// start runs the unit of l in its own goroutine.
func (w *Worker) start(l Lease) {
	ctx, cancel := context.WithCancel(context.Background())
	w.units[l.Name] = &unit{lease: l, cancel: cancel}
	w.mu.Lock()
	w.held[l.Name] = l
	w.mu.Unlock()
	w.o.Log.Info("took the lease", "worker", w.o.ID, "unit", l.Name, "epoch", l.Epoch)
	go func() {
		err := w.o.Run(ctx, l)
		cancel()
		w.results <- result{name: l.Name, err: err}
	}()
}

// stop asks a unit to stop after its batch in flight.
func (w *Worker) stop(name, why string) {
	u := w.units[name]
	if u == nil || u.stopping != "" {
		return
	}
	u.stopping = why
	w.o.Log.Info("stopping the unit after its batch in flight", "worker", w.o.ID, "unit", name, "epoch", u.lease.Epoch, "why", why)
	u.cancel()
}

func (w *Worker) stopAll(why string) {
	for name := range w.units {
		w.stop(name, why)
	}
}

// ended handles a unit whose Run returned: it releases the lease (when the
// worker still holds it at that epoch) and returns the unit's error unless
// it is nil or fenced.
func (w *Worker) ended(r result) error {
	u := w.units[r.name]
	delete(w.units, r.name)
	w.mu.Lock()
	delete(w.held, r.name)
	w.mu.Unlock()
	w.release(u.lease)
	switch {
	case r.err == nil:
		w.o.Log.Info("unit stopped", "worker", w.o.ID, "unit", r.name, "epoch", u.lease.Epoch, "why", u.stopping)
		return nil
	case errors.Is(r.err, checkpoint.ErrFenced):
		w.o.Log.Warn("unit fenced: another worker took it over; dropped", "worker", w.o.ID, "unit", r.name, "epoch", u.lease.Epoch, "error", r.err.Error())
		return nil
	case u.lost:
		// Its lease is, or may be, another's: a failure now (a checkpoint
		// write over a cut connection) is that unit's loss, not the worker's.
		w.o.Log.Warn("unit failed after losing its lease; dropped", "worker", w.o.ID, "unit", r.name, "epoch", u.lease.Epoch, "error", r.err.Error())
		return nil
	}
	return w.errorf("unit %q (lease epoch %d): %w", r.name, u.lease.Epoch, r.err)
}

// release frees a lease the worker holds, so that another takes it at its
// next tick; a lease taken over since is left alone.
func (w *Worker) release(l Lease) {
	if w.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.o.TTL/2)
	defer cancel()
	if _, err := w.conn.Exec(ctx, "UPDATE "+w.leases+" SET worker = '', since = now(), expires = '-infinity' WHERE name = $1 AND epoch = $2 AND worker = $3",
		l.Name, l.Epoch, w.o.ID); err != nil {
		w.o.Log.Warn("cannot release the lease; it expires by itself", "worker", w.o.ID, "unit", l.Name, "error", err.Error())
	}
}

// leave stops every unit, waits for them, releases their leases and removes
// the worker's row.
func (w *Worker) leave() error {
	w.stopAll("the worker stops")
	var failed error
	for len(w.units) > 0 {
		if err := w.ended(<-w.results); err != nil && failed == nil {
			failed = err
		}
	}
	if w.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), w.o.TTL/2)
		defer cancel()
		_, _ = w.conn.Exec(ctx, "DELETE FROM "+w.workers+" WHERE id = $1", w.o.ID)
		w.conn.Close(ctx)
		w.conn = nil
	}
	w.o.Log.Info("left the group of workers", "worker", w.o.ID)
	return failed
}

// Owners returns every unit's lease as the worker's last round read it
// (a tick ago at most): who holds it, since when, under which epoch.
func (w *Worker) Owners() map[string]Lease {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]Lease, len(w.all))
	for k, v := range w.all {
		out[k] = v
	}
	for k, v := range w.held { // fresher than the round's read
		out[k] = v
	}
	return out
}

// Owners reads every lease of the units in the tables of schema at url:
// who holds each, since when, under which epoch, and whether the holder is
// live. A unit without a row (never leased) is absent.
func Owners(ctx context.Context, url, schema string) (map[string]Lease, error) {
	if schema == "" {
		schema = "public"
	}
	cfg, err := pg.Config(url, "offsets")
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	conn, err := pg.Connect(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer conn.Close(context.Background())
	workers, leases := pgx.Identifier{schema, WorkerTable}.Sanitize(), pgx.Identifier{schema, pgstore.LeaseTable}.Sanitize()
	var have bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL", workers, leases).Scan(&have); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !have {
		return map[string]Lease{}, nil // no worker ever ran here
	}
	return readLeases(ctx, conn, workers, leases)
}

// readLeases reads the lease table.
func readLeases(ctx context.Context, conn *pgx.Conn, workers, leases string) (map[string]Lease, error) {
	rows, err := conn.Query(ctx, `SELECT c.name, c.worker, c.epoch, c.since, c.expires,
	c.worker <> '' AND c.expires > now() AND EXISTS (SELECT 1 FROM `+workers+` w WHERE w.id = c.worker AND `+liveLock+`)
FROM `+leases+` c`)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", leases, err)
	}
	defer rows.Close()
	out := map[string]Lease{}
	for rows.Next() {
		var l Lease
		var exp pgtype.Timestamptz
		if err := rows.Scan(&l.Name, &l.Worker, &l.Epoch, &l.Since, &exp, &l.Live); err != nil {
			return nil, fmt.Errorf("reading %s: %w", leases, err)
		}
		if exp.InfinityModifier == pgtype.Finite {
			l.Expires = exp.Time
		}
		out[l.Name] = l
	}
	return out, rows.Err()
}

func fnvKey(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
