// Package pgstore keeps pipelines' checkpoints in PostgreSQL instead of a
// directory (checkpoint { store = "postgres" }), for hosts without durable
// local disks. It is a checkpoint.Medium: the lines, checksums, history,
// compaction and rules are those of package checkpoint.
//
// # Tables
//
// Two tables in the configured schema hold every pipeline's checkpoint; Open
// creates them (and the schema) when missing:
//
//	connectd_checkpoint      pipeline text PRIMARY KEY, format int, created timestamptz
//	connectd_checkpoint_log  pipeline text, log text ('offsets'|'commits'), seq bigint, line text
//	                         PRIMARY KEY (pipeline, log, seq)
//
// A log row's line is exactly a line of the directory store's offsets.log or
// commits.log, without its newline: "v1 <crc32c> <json>". seq numbers a log's
// lines from 1, as a file numbers its lines; every append is one INSERT that
// is durable when it returns, and a compaction rewrites a pipeline's rows in
// one transaction.
//
// # Locking
//
// Open takes a session-level advisory lock keyed by schema and pipeline,
// pg_try_advisory_lock, on the connection that then does every write; a
// second Open anywhere fails with checkpoint.ErrLocked, naming the holder's
// application_name ("connectd host pid 4242 on web-3"). The server drops the
// lock when the holder's session ends, even when its host was killed, and a
// host whose session ended can write nothing more: its writes went through
// that session.
//
// # Fencing
//
// OpenFenced opens a checkpoint for a connectd worker that holds a lease on
// the pipeline (package cluster) with an epoch. It takes the advisory lock
// in shared mode, so that workers do not exclude each other (the lease does)
// while a plain Open (connectd run) and a worker still do. Every write of a
// fenced store (each append, each compaction) reads the lease's row in
// LeaseTable FOR SHARE in the same statement or transaction and is refused,
// with an error that matches checkpoint.ErrFenced, when the row's epoch is no
// longer the store's: a worker that lost its lease without knowing it (it was
// stopped, its network cut) cannot plan or commit a batch after the takeover.
// The row lock orders a write and a takeover: a write that passed the check
// is in the table before the new holder opens the checkpoint.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"time"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/internal/pg"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Table names inside the schema, and the format version in the meta table.
const (
	MetaTable = "connectd_checkpoint"
	LogTable  = "connectd_checkpoint_log"
	// LeaseTable holds the workers' leases, one row per pipeline (package
	// cluster creates and writes it); a fenced store reads its columns name
	// (the pipeline) and epoch.
	LeaseTable = "connectd_lease"

	formatVersion = 1
)

// Timeout bounds each write (one append, one compaction) of an open store: a
// write that takes longer fails, and the store must be opened again.
var Timeout = 30 * time.Second

// ddlLock is the advisory lock key that serialises the creation of schemas
// and tables between hosts starting at the same time.
const ddlLock = int64(0x636f6e6e65637464) // "connectd"

// store is one open checkpoint: a checkpoint.Medium over one connection.
type store struct {
	conn     *pgx.Conn
	log      string // sanitized schema-qualified log table
	pipeline string
	next     map[string]int64 // next seq per log
	lease    string           // sanitized lease table when fenced, else ""
	epoch    int64            // the lease epoch a fenced store writes under
}

type target struct {
	cfg      *pgx.ConnConfig
	schema   string
	pipeline string
	where    string
	meta     string // sanitized tables
	log      string
	lease    string
	epoch    int64 // > 0: a fenced store (OpenFenced)
}

func newTarget(url, schema, pipeline string) (*target, error) {
	if schema == "" {
		schema = "public"
	}
	if pipeline == "" {
		return nil, errors.New("postgres checkpoint: no pipeline name given")
	}
	cfg, err := pg.Config(url, "host")
	if err != nil {
		return nil, fmt.Errorf("postgres checkpoint: %w", err)
	}
	// The server probes the session, so that the lock of a host that vanished
	// (a dead machine, a network partition) is released within about a
	// minute instead of the operating system's two hours. The URL may say
	// otherwise.
	for k, v := range map[string]string{"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"} {
		if _, ok := cfg.RuntimeParams[k]; !ok {
			cfg.RuntimeParams[k] = v
		}
	}
	t := &target{cfg: cfg, schema: schema, pipeline: pipeline,
		meta:  pgx.Identifier{schema, MetaTable}.Sanitize(),
		log:   pgx.Identifier{schema, LogTable}.Sanitize(),
		lease: pgx.Identifier{schema, LeaseTable}.Sanitize()}
	t.where = fmt.Sprintf("%s schema %q pipeline %q", pg.Describe(cfg), schema, pipeline)
	return t, nil
}

// connect parses url and opens the connection of Open or Inspect.
func connect(ctx context.Context, url, schema, pipeline string) (*target, *pgx.Conn, error) {
	t, err := newTarget(url, schema, pipeline)
	if err != nil {
		return nil, nil, err
	}
	conn, err := pg.Connect(ctx, t.cfg)
	if err != nil {
		return nil, nil, t.errorf("%w", err)
	}
	return t, conn, nil
}

func (t *target) errorf(format string, args ...any) error {
	return fmt.Errorf("checkpoint %s: "+format, append([]any{t.where}, args...)...)
}

// lockKey is the advisory lock of one pipeline's checkpoint in one schema.
func (t *target) lockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("connectd checkpoint\x00" + t.schema + "\x00" + t.pipeline))
	return int64(h.Sum64())
}

// Open opens the checkpoint of pipeline in schema of the database at url,
// creating the schema and tables when missing, and locks it for as long as
// the Store is open: a second Open, from any host, fails with an error that
// matches checkpoint.ErrLocked and names the holder. It fails, naming the
// table and row, when a row is damaged (checkpoint.ErrCorrupt), and when the
// checkpoint was written by a newer format. Errors never show the URL's
// password.
func Open(ctx context.Context, url, schema, pipeline string) (*checkpoint.Store, error) {
	return openStore(ctx, url, schema, pipeline, 0)
}

// OpenFenced is Open for a worker that holds the lease of pipeline at epoch
// (> 0) in LeaseTable of schema: it takes the lock in shared mode (a plain
// Open elsewhere fails, other fenced ones do not), and it, and every later
// write, fails with an error that matches checkpoint.ErrFenced once the
// lease's epoch is not epoch (see Fencing).
func OpenFenced(ctx context.Context, url, schema, pipeline string, epoch int64) (*checkpoint.Store, error) {
	if epoch <= 0 {
		return nil, fmt.Errorf("postgres checkpoint: pipeline %q: lease epoch %d is not valid (want > 0)", pipeline, epoch)
	}
	return openStore(ctx, url, schema, pipeline, epoch)
}

func openStore(ctx context.Context, url, schema, pipeline string, epoch int64) (*checkpoint.Store, error) {
	t, conn, err := connect(ctx, url, schema, pipeline)
	if err != nil {
		return nil, err
	}
	t.epoch = epoch
	s, err := t.open(ctx, conn)
	if err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return s, nil
}

func (t *target) open(ctx context.Context, conn *pgx.Conn) (*checkpoint.Store, error) {
	if err := t.create(ctx, conn); err != nil {
		return nil, err
	}
	var got bool
	lock := "SELECT pg_try_advisory_lock($1)"
	if t.epoch > 0 {
		lock = "SELECT pg_try_advisory_lock_shared($1)"
	}
	if err := conn.QueryRow(ctx, lock, t.lockKey()).Scan(&got); err != nil {
		return nil, t.errorf("taking the lock: %w", err)
	}
	if !got {
		return nil, &lockedError{where: t.where, pipeline: t.pipeline, holder: t.holder(ctx, conn)}
	}
	var format int
	err := conn.QueryRow(ctx, "SELECT format FROM "+t.meta+" WHERE pipeline = $1", t.pipeline).Scan(&format)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.log+" WHERE pipeline = $1", t.pipeline).Scan(&n); err != nil {
			return nil, t.errorf("%w", err)
		}
		if n > 0 {
			return nil, &corruptError{where: fmt.Sprintf("%s table %s", pg.Describe(t.cfg), t.meta),
				problem: fmt.Sprintf("no row for pipeline %q, but %s holds %d rows of it", t.pipeline, t.log, n)}
		}
		if _, err := conn.Exec(ctx, "INSERT INTO "+t.meta+" (pipeline, format, created) VALUES ($1, $2, now())", t.pipeline, formatVersion); err != nil {
			return nil, t.errorf("creating the checkpoint: %w", err)
		}
	case err != nil:
		return nil, t.errorf("%w", err)
	default:
		if err := t.checkFormat(format); err != nil {
			return nil, err
		}
	}
	offs, coms, next, err := t.read(ctx, conn)
	if err != nil {
		return nil, err
	}
	m := &store{conn: conn, log: t.log, pipeline: t.pipeline, next: next}
	if t.epoch > 0 {
		m.lease, m.epoch = t.lease, t.epoch
		if err := m.fence(ctx, conn); err != nil {
			return nil, t.errorf("%w", err)
		}
	}
	return checkpoint.New(m, t.where, t.pipeline, offs, coms)
}

func (t *target) checkFormat(format int) error {
	switch {
	case format > formatVersion:
		return t.errorf("format %d is newer than this connectd reads (%d): upgrade connectd", format, formatVersion)
	case format < 1:
		return &corruptError{where: fmt.Sprintf("%s table %s row (pipeline %q)", pg.Describe(t.cfg), t.meta, t.pipeline),
			problem: fmt.Sprintf("format version %d is not valid", format)}
	}
	return nil
}

// create makes the schema and tables when they are missing, one host at a
// time.
func (t *target) create(ctx context.Context, conn *pgx.Conn) error {
	var have bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL", t.meta, t.log).Scan(&have); err != nil {
		return t.errorf("%w", err)
	}
	if have {
		return nil
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLock); err != nil {
			return err
		}
		if err := pg.CreateSchema(ctx, tx, t.schema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS `+t.meta+` (
	pipeline text PRIMARY KEY,
	format   integer NOT NULL,
	created  timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS `+t.log+` (
	pipeline text NOT NULL,
	log      text NOT NULL CHECK (log IN ('offsets', 'commits')),
	seq      bigint NOT NULL,
	line     text NOT NULL,
	PRIMARY KEY (pipeline, log, seq)
);
COMMENT ON TABLE `+t.meta+` IS 'connectd checkpoints: one row per pipeline (see docs/checkpoint.md)';
COMMENT ON TABLE `+t.log+` IS 'connectd checkpoint logs: the lines of each pipeline''s offset and commit logs, "v1 <crc32c> <json>"'`)
		return err
	})
	if err != nil {
		return t.errorf("creating tables %s and %s: %w", t.meta, t.log, err)
	}
	return nil
}

// read returns both logs' lines and the next seq of each.
func (t *target) read(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) (offs, coms []checkpoint.Line, next map[string]int64, err error) {
	rows, err := q.Query(ctx, "SELECT log, seq, line FROM "+t.log+" WHERE pipeline = $1 ORDER BY log DESC, seq", t.pipeline)
	if err != nil {
		return nil, nil, nil, t.errorf("reading %s: %w", t.log, err)
	}
	defer rows.Close()
	next = map[string]int64{checkpoint.OffsetLog: 1, checkpoint.CommitLog: 1}
	for rows.Next() {
		var log, line string
		var seq int64
		if err := rows.Scan(&log, &seq, &line); err != nil {
			return nil, nil, nil, t.errorf("reading %s: %w", t.log, err)
		}
		l := checkpoint.Line{Text: []byte(line),
			Where: fmt.Sprintf("%s table %s row (pipeline %q, log %q, seq %d)", pg.Describe(t.cfg), t.log, t.pipeline, log, seq)}
		switch log {
		case checkpoint.OffsetLog:
			offs = append(offs, l)
		case checkpoint.CommitLog:
			coms = append(coms, l)
		}
		next[log] = seq + 1
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, t.errorf("reading %s: %w", t.log, err)
	}
	return offs, coms, next, nil
}

// holder describes the session that holds the pipeline's lock.
func (t *target) holder(ctx context.Context, conn *pgx.Conn) string {
	key := uint64(t.lockKey())
	var app, addr string
	var pid int32
	err := conn.QueryRow(ctx, `
SELECT coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'a local socket'), l.pid
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid = $1 AND l.objid = $2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LIMIT 1`, uint32(key>>32), uint32(key)).Scan(&app, &addr, &pid)
	if err != nil {
		return "another connectd host"
	}
	if app == "" {
		app = "another session"
	}
	return fmt.Sprintf("%q (server process %d, from %s)", app, pid, addr)
}

// Inspect reads the checkpoint of pipeline without taking the lock, for
// showing it while the pipeline runs: one consistent snapshot (a read-only,
// repeatable-read transaction), on which Plan, Commit and Reset fail. A
// checkpoint that does not exist is an error that wraps os.ErrNotExist.
func Inspect(ctx context.Context, url, schema, pipeline string) (*checkpoint.Store, error) {
	t, conn, err := connect(ctx, url, schema, pipeline)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var offs, coms []checkpoint.Line
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var have bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL", t.meta, t.log).Scan(&have); err != nil {
			return t.errorf("%w", err)
		}
		if !have {
			return fmt.Errorf("no checkpoint in %s: tables %s and %s do not exist (has the pipeline run yet?): %w", t.where, t.meta, t.log, os.ErrNotExist)
		}
		var format int
		err := tx.QueryRow(ctx, "SELECT format FROM "+t.meta+" WHERE pipeline = $1", t.pipeline).Scan(&format)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no checkpoint in %s: %s has no row for the pipeline (has it run yet?): %w", t.where, t.meta, os.ErrNotExist)
		}
		if err != nil {
			return t.errorf("%w", err)
		}
		if err := t.checkFormat(format); err != nil {
			return err
		}
		offs, coms, _, err = t.read(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return checkpoint.New(nil, t.where, t.pipeline, offs, coms)
}

// Append inserts one line as the next row of log; it is durable when the
// INSERT returns.
func (s *store) Append(log string, line []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	seq := s.next[log]
	text := strings.TrimSuffix(string(line), "\n")
	if s.epoch > 0 {
		// One statement: the lease row's lock orders it with a takeover.
		tag, err := s.conn.Exec(ctx, "WITH l AS (SELECT epoch FROM "+s.lease+" WHERE name = $1 FOR SHARE) "+
			"INSERT INTO "+s.log+" (pipeline, log, seq, line) SELECT $1, $2, $3, $4 FROM l WHERE l.epoch = $5",
			s.pipeline, log, seq, text, s.epoch)
		if err != nil {
			return explain(fmt.Errorf("insert %s row seq %d: %w", log, seq, err))
		}
		if tag.RowsAffected() == 0 {
			return s.fenced(ctx, s.conn)
		}
		s.next[log] = seq + 1
		return nil
	}
	_, err := s.conn.Exec(ctx, "INSERT INTO "+s.log+" (pipeline, log, seq, line) VALUES ($1, $2, $3, $4)",
		s.pipeline, log, seq, text)
	if err != nil {
		return explain(fmt.Errorf("insert %s row seq %d: %w", log, seq, err))
	}
	s.next[log] = seq + 1
	return nil
}

// Rewrite replaces the pipeline's rows in one transaction.
func (s *store) Rewrite(offsets, commits [][]byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var logs, lines []string
	var seqs []int64
	for _, l := range []struct {
		name  string
		lines [][]byte
	}{{checkpoint.CommitLog, commits}, {checkpoint.OffsetLog, offsets}} {
		for i, line := range l.lines {
			logs = append(logs, l.name)
			seqs = append(seqs, int64(i+1))
			lines = append(lines, strings.TrimSuffix(string(line), "\n"))
		}
	}
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if err := s.fence(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+s.log+" WHERE pipeline = $1", s.pipeline); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO "+s.log+" (pipeline, log, seq, line) SELECT $1, l, s, t FROM unnest($2::text[], $3::bigint[], $4::text[]) AS u(l, s, t)",
			s.pipeline, logs, seqs, lines)
		return err
	})
	if errors.Is(err, checkpoint.ErrFenced) {
		return err
	}
	if err != nil {
		return explain(fmt.Errorf("compacting %s: %w", s.log, err))
	}
	s.next = map[string]int64{checkpoint.OffsetLog: int64(len(offsets)) + 1, checkpoint.CommitLog: int64(len(commits)) + 1}
	return nil
}

// querier is a connection or a transaction.
type querier interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}

// fence returns nil when the store is not fenced or its lease still has its
// epoch, holding the lease row FOR SHARE until q's transaction ends; else an
// error that matches checkpoint.ErrFenced.
func (s *store) fence(ctx context.Context, q querier) error {
	if s.epoch == 0 {
		return nil
	}
	var epoch int64
	err := q.QueryRow(ctx, "SELECT epoch FROM "+s.lease+" WHERE name = $1 FOR SHARE", s.pipeline).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return &fencedError{pipeline: s.pipeline, epoch: s.epoch, holder: "nobody (the lease row is gone)"}
	}
	if err != nil {
		return fmt.Errorf("reading the lease of pipeline %q in %s: %w", s.pipeline, s.lease, err)
	}
	if epoch != s.epoch {
		return s.fenced(ctx, q)
	}
	return nil
}

// fenced returns the error of a write refused because the lease moved on,
// naming its holder and epoch now.
func (s *store) fenced(ctx context.Context, q querier) error {
	e := &fencedError{pipeline: s.pipeline, epoch: s.epoch, holder: "another worker"}
	var worker string
	var epoch int64
	if err := q.QueryRow(ctx, "SELECT worker, epoch FROM "+s.lease+" WHERE name = $1", s.pipeline).Scan(&worker, &epoch); err == nil {
		e.newer = epoch
		if worker != "" {
			e.holder = fmt.Sprintf("worker %q", worker)
		} else {
			e.holder = "nobody (released)"
		}
	}
	return e
}

// fencedError is checkpoint.ErrFenced: a write under an old lease epoch.
type fencedError struct {
	pipeline string
	epoch    int64 // the store's
	newer    int64 // the lease's now, 0 if unknown
	holder   string
}

func (e *fencedError) Error() string {
	now := ""
	if e.newer > 0 {
		now = fmt.Sprintf(" (epoch %d)", e.newer)
	}
	return fmt.Sprintf("fenced: pipeline %q: this worker's lease (epoch %d) was taken over by %s%s; the write was refused", e.pipeline, e.epoch, e.holder, now)
}

func (e *fencedError) Is(target error) bool { return target == checkpoint.ErrFenced }

// Close ends the session, which releases the lock.
func (s *store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.conn.Close(ctx)
}

// explain adds what a failed write means for the pipeline.
func explain(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%w (the session may have ended, and with it the lock; the write may or may not be stored: reopen the checkpoint)", err)
}

// lockedError is checkpoint.ErrLocked for a checkpoint in PostgreSQL.
type lockedError struct {
	where, pipeline, holder string
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("checkpoint %s is locked by %s: pipeline %q is already running", e.where, e.holder, e.pipeline)
}

func (e *lockedError) Is(target error) bool { return target == checkpoint.ErrLocked }

// corruptError is checkpoint.ErrCorrupt for the meta table.
type corruptError struct {
	where, problem string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("checkpoint %s: %s: the checkpoint is corrupt; restore it or reset offsets", e.where, e.problem)
}

func (e *corruptError) Is(target error) bool { return target == checkpoint.ErrCorrupt }
