package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/connectd/connectd/internal/pg"
	"github.com/connectd/connectd/sdk"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// ddlLock is the advisory lock key that serialises the sink's CREATE
// statements between processes starting at the same time.
const ddlLock = int64(0x636f6e6e73696e6b) // "connsink"

// Sink is the postgres sink. Every Write is one transaction: it locks the
// pipeline's row of the offsets table, refuses a batch of an older lease
// epoch than the row's (sdk.Batch.Epoch), checks that the batch is new, writes
// the rows, stores the batch id, its until offsets and the records it
// rejected, and commits. So a batch whose commit answer was lost is never
// written twice: written again, it is found committed and skipped, and
// Write returns the rejections it committed with it.
type Sink struct {
	mu       sync.Mutex
	conf     *pgx.ConnConfig
	conn     *pgx.Conn
	server   string // pg.Describe(conf), for messages
	pipeline string

	mode, method string
	reject       bool // on_record_error = "reject"
	key          []string
	maps         []mapping // nil: the default mapping (JSON fields to columns of the same name)
	create       bool

	name    string // the table as written, for messages
	table   string // sanitized, schema-qualified when written so
	offsets string // sanitized offsets table
	cols    []column
	byName  map[string]column
}

var (
	_ sdk.Sink          = (*Sink)(nil)
	_ sdk.Transactional = (*Sink)(nil)
	_ sdk.Lister        = (*Sink)(nil)
)

// errorf prefixes an error with the sink and its table.
func (s *Sink) errorf(format string, args ...any) error {
	return fmt.Errorf("postgres sink: table %s: "+format, append([]any{s.name}, args...)...)
}

// tablePattern is the form of table and offsets_table: "name" or
// "schema.name".
const tablePattern = `[^.]+(\.[^.]+)?`

// splitName splits "schema.name" or "name" into identifier parts.
func splitName(param, name string) (pgx.Identifier, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 || name == "" {
		return nil, sdk.Configf("%s %q: want \"name\" or \"schema.name\"", param, name)
	}
	for _, p := range parts {
		if p == "" {
			return nil, sdk.Configf("%s %q: empty name part", param, name)
		}
	}
	return pgx.Identifier(parts), nil
}

// Open checks the configuration, connects, creates the table when asked and
// the offsets table when missing, and reads the table's columns.
func (s *Sink) Open(ctx context.Context, cfg sdk.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pipeline = cfg.Pipeline
	s.mode, s.method = cfg.String("mode"), cfg.String("method")
	s.reject = cfg.String("on_record_error") == OnErrorReject
	s.key = cfg.Strings("key")
	s.create = cfg.Bool("create")
	s.name = cfg.String("table")
	table, err := splitName("table", s.name)
	if err != nil {
		return err
	}
	s.table = table.Sanitize()
	off, err := splitName("offsets_table", cfg.String("offsets_table"))
	if err != nil {
		return err
	}
	if len(off) == 1 && len(table) == 2 {
		off = pgx.Identifier{table[0], off[0]}
	}
	s.offsets = off.Sanitize()
	// mode and method are checked by the spec's rules; what is left are
	// rules between parameters.
	switch {
	case s.mode == ModeInsert && len(s.key) > 0:
		return sdk.Configf("key is for mode %q only; mode is %q", ModeUpsert, s.mode)
	case s.mode == ModeUpsert && len(s.key) == 0:
		return sdk.Configf("mode %q needs key, the columns of the upsert key", ModeUpsert)
	}
	if s.maps, err = parseColumns(cfg.Strings("columns")); err != nil {
		return sdk.Configf("%v", err)
	}
	if s.create && len(s.maps) == 0 {
		return sdk.Configf("create = true needs columns, to know the table's columns and types")
	}
	if s.conf, err = pg.Config(cfg.String("url"), "sink"); err != nil {
		return sdk.Configf("url: %w", err)
	}
	s.server = pg.Describe(s.conf)
	if err := s.connect(ctx); err != nil {
		return err
	}
	if err := s.setup(ctx, table); err != nil {
		s.conn.Close(context.Background())
		s.conn = nil
		return err
	}
	return nil
}

// connect (re)connects when there is no open connection.
func (s *Sink) connect(ctx context.Context) error {
	if s.conn != nil && !s.conn.IsClosed() {
		return nil
	}
	conn, err := pg.Connect(ctx, s.conf)
	if err != nil {
		return s.errorf("%w", err)
	}
	s.conn = conn
	return nil
}

// setup creates what is missing and reads the table's columns.
func (s *Sink) setup(ctx context.Context, table pgx.Identifier) error {
	var haveTable, haveOffsets, haveRejected, haveEpoch bool
	if err := s.conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL,
	EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'rejected' AND NOT attisdropped),
	EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'epoch' AND NOT attisdropped)`,
		s.table, s.offsets).Scan(&haveTable, &haveOffsets, &haveRejected, &haveEpoch); err != nil {
		return s.errorf("%s: %w", s.server, err)
	}
	if !haveOffsets || !haveRejected || !haveEpoch || (!haveTable && s.create) {
		err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLock); err != nil {
				return err
			}
			if !haveTable && s.create {
				if len(table) == 2 {
					if err := pg.CreateSchema(ctx, tx, table[0]); err != nil {
						return err
					}
				}
				if _, err := tx.Exec(ctx, s.createTable()); err != nil {
					return fmt.Errorf("creating the table: %w", err)
				}
			}
			if !haveOffsets {
				if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.offsets+` (
	pipeline text PRIMARY KEY,
	batch    bigint NOT NULL,
	until    jsonb NOT NULL,
	updated  timestamptz NOT NULL,
	rejected jsonb,
	epoch    bigint NOT NULL DEFAULT 0
)`); err != nil {
					return fmt.Errorf("creating the offsets table %s: %w", s.offsets, err)
				}
			}
			// An offsets table made before rejections existed gets their
			// column; its rows keep working (NULL: no rejection).
			if _, err := tx.Exec(ctx, "ALTER TABLE "+s.offsets+" ADD COLUMN IF NOT EXISTS rejected jsonb"); err != nil {
				return fmt.Errorf("adding column rejected to the offsets table %s: %w", s.offsets, err)
			}
			// The lease epoch of the last writer (connectd worker), for
			// fencing; 0 for rows written without a lease.
			if _, err := tx.Exec(ctx, "ALTER TABLE "+s.offsets+" ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0"); err != nil {
				return fmt.Errorf("adding column epoch to the offsets table %s: %w", s.offsets, err)
			}
			return nil
		})
		if err != nil {
			return s.errorf("%s: %w", s.server, err)
		}
		haveTable = haveTable || s.create
	}
	if !haveTable {
		return s.errorf("%s has no table %s: create it, or set create = true with columns", s.server, s.table)
	}
	rows, err := s.conn.Query(ctx, `
SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, a.attidentity = 'a' OR a.attgenerated <> ''
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, s.table)
	if err != nil {
		return s.errorf("reading its columns: %w", err)
	}
	s.cols, s.byName = nil, map[string]column{}
	for rows.Next() {
		var c column
		var typname string
		var generated bool
		if err := rows.Scan(&c.name, &c.typ, &typname, &generated); err != nil {
			return s.errorf("reading its columns: %w", err)
		}
		switch typname {
		case "json", "jsonb":
			c.kind = kindJSON
		case "bytea":
			c.kind = kindBytea
		}
		if !generated {
			s.cols = append(s.cols, c)
			s.byName[c.name] = c
		}
	}
	if err := rows.Err(); err != nil {
		return s.errorf("reading its columns: %w", err)
	}
	for _, m := range s.maps {
		if _, ok := s.byName[m.column]; !ok {
			return s.errorf("columns maps %q, which is not a writable column of the table (it has %s)", m.column, s.colNames())
		}
	}
	if s.mode == ModeUpsert {
		return s.checkKey(ctx)
	}
	return nil
}

// createTable is the CREATE TABLE statement made from the columns mapping.
func (s *Sink) createTable() string {
	defs := make([]string, 0, len(s.maps)+1)
	for _, m := range s.maps {
		typ := m.typ
		if typ == "" {
			typ = m.src.defaultType()
		}
		defs = append(defs, pgx.Identifier{m.column}.Sanitize()+" "+typ)
	}
	if len(s.key) > 0 {
		defs = append(defs, "PRIMARY KEY ("+quoteAll(s.key)+")")
	}
	return "CREATE TABLE IF NOT EXISTS " + s.table + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)"
}

// checkKey makes sure the key columns exist and have a unique index of
// their own, which ON CONFLICT needs.
func (s *Sink) checkKey(ctx context.Context) error {
	for _, k := range s.key {
		if _, ok := s.byName[k]; !ok {
			return s.errorf("key column %q is not a writable column of the table (it has %s)", k, s.colNames())
		}
		if s.maps != nil && !s.mapped(k) {
			return s.errorf("key column %q is not in columns", k)
		}
	}
	sorted := append([]string(nil), s.key...)
	sort.Strings(sorted)
	var ok bool
	err := s.conn.QueryRow(ctx, `
SELECT EXISTS (
	SELECT 1 FROM pg_index i
	WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indnkeyatts = cardinality($2::text[])
	  AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text COLLATE "C") FROM pg_attribute a
	       WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey[0:i.indnkeyatts-1])) = $2::text[])`, s.table, sorted).Scan(&ok)
	if err != nil {
		return s.errorf("looking for a unique index on the key: %w", err)
	}
	if !ok {
		return s.errorf("upsert needs a unique index or primary key on exactly the key columns (%s); add one: CREATE UNIQUE INDEX ON %s (%s)", strings.Join(s.key, ", "), s.table, quoteAll(s.key))
	}
	return nil
}

func (s *Sink) mapped(col string) bool {
	for _, m := range s.maps {
		if m.column == col {
			return true
		}
	}
	return false
}

func (s *Sink) colNames() string {
	if len(s.cols) == 0 {
		return "no writable columns"
	}
	names := make([]string, len(s.cols))
	for i, c := range s.cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// prepared is a batch turned into what one write method sends: one row
// per record that could be mapped (rec[i] is row i's record in the batch).
type prepared struct {
	cols []column
	copy []byte          // COPY text format, when copying
	ends []int           // COPY: where each row's line ends in copy
	arrs [][]pgtype.Text // one array per column, when inserting
	rec  []int           // the batch index of each row's record
	n    int             // rows
	del  *deletes        // upsert mode: the keys the batch's tombstones delete, or nil
}

// copyRows returns the COPY text of rows [lo, hi).
func (p *prepared) copyRows(lo, hi int) []byte {
	start := 0
	if lo > 0 {
		start = p.ends[lo-1]
	}
	return p.copy[start:p.ends[hi-1]]
}

// refuser handles a record that cannot become a row: in reject mode it
// becomes a rejection (and refuse returns nil), else an error that fails
// the batch.
type refuser struct {
	s       *Sink
	batch   int64
	recs    []record
	refused []bool
	rejects []sdk.Rejection
}

func (r *refuser) refuse(i int, reason string) error {
	if !r.s.reject {
		return r.s.errorf("batch %d: record %d (%s): %s", r.batch, i, r.recs[i].r.Position, reason)
	}
	r.refused[i] = true
	r.rejects = append(r.rejects, sdk.Rejection{Index: i, Reason: reason})
	return nil
}

// prepare turns a batch into rows for COPY (useCopy) or for the INSERT of
// unnest()ed arrays. A record that cannot become a row (a value that is not
// a JSON object, a field that is not valid JSON or holds a NUL byte, a NULL
// upsert key) is rejected in reject mode and fails the batch otherwise,
// with an error naming the batch, record and column.
func (s *Sink) prepare(b sdk.Batch, useCopy bool) (*prepared, []sdk.Rejection, error) {
	recs := make([]record, len(b.Records))
	const perRecord = 8 // members a record's slab holds before it grows
	slab := make([]member, len(recs)*perRecord)
	size := 0
	for i := range b.Records {
		recs[i].r = &b.Records[i]
		recs[i].members = slab[i*perRecord : i*perRecord : (i+1)*perRecord]
		size += len(b.Records[i].Value) + len(b.Records[i].Key)
	}
	rf := &refuser{s: s, batch: b.ID, recs: recs, refused: make([]bool, len(recs))}
	maps := s.maps
	if maps == nil {
		var err error
		if maps, err = s.defaultMapping(b, rf); err != nil {
			return nil, nil, err
		}
	}
	p := &prepared{cols: make([]column, len(maps)), rec: make([]int, 0, len(recs))}
	isKey := make([]bool, len(maps))
	for j, m := range maps {
		p.cols[j] = s.byName[m.column]
		isKey[j] = s.mode == ModeUpsert && contains(s.key, m.column)
	}
	if s.mode == ModeUpsert && len(recs) > 0 {
		for _, k := range s.key {
			found := false
			for _, m := range maps {
				found = found || m.column == k
			}
			if found {
				continue
			}
			if !s.reject {
				return nil, nil, s.errorf("batch %d: no record of the batch has the upsert key field %q", b.ID, k)
			}
			// No record has the key field: every key would be NULL.
			for i := range recs {
				if !rf.refused[i] {
					_ = rf.refuse(i, fmt.Sprintf("upsert key column %q would be NULL (the value has no field %q)", k, k))
				}
			}
		}
	}
	if useCopy {
		p.copy = make([]byte, 0, size+size/8+len(recs)*len(maps)*2)
		p.ends = make([]int, 0, len(recs))
	} else {
		p.arrs = make([][]pgtype.Text, len(maps))
		for j := range p.arrs {
			p.arrs[j] = make([]pgtype.Text, 0, len(recs))
		}
	}
	scratch := make([]byte, 0, 64)
	for i := range recs {
		if rf.refused[i] {
			continue
		}
		tomb := recs[i].r.Tombstone
		if tomb && s.mode == ModeUpsert {
			if err := s.addTombstone(p, maps, isKey, &recs[i], i, rf, scratch); err != nil {
				return nil, nil, err
			}
			continue
		}
		lineStart := len(p.copy)
		var reason string
		for j, m := range maps {
			var t []byte
			var null bool
			var err error
			if tomb && m.src.readsValue() {
				null = true // insert mode: a tombstone's value is NULL
			} else {
				t, null, err = recs[i].text(m.src, p.cols[j], scratch)
			}
			if err != nil {
				reason = fmt.Sprintf("column %q: %v", m.column, err)
				break
			}
			if null && isKey[j] {
				reason = fmt.Sprintf("upsert key column %q would be NULL (source %s)", m.column, m.src.text)
				break
			}
			if !useCopy {
				p.arrs[j] = append(p.arrs[j], pgtype.Text{String: string(t), Valid: !null})
				continue
			}
			if j > 0 {
				p.copy = append(p.copy, '\t')
			}
			p.copy = appendCopyText(p.copy, t, null)
		}
		if reason != "" {
			if err := rf.refuse(i, reason); err != nil {
				return nil, nil, err
			}
			// Take back what the record's row got so far.
			p.copy = p.copy[:lineStart]
			for j := range p.arrs {
				p.arrs[j] = p.arrs[j][:p.n]
			}
			continue
		}
		if useCopy {
			p.copy = append(p.copy, '\n')
			p.ends = append(p.ends, len(p.copy))
		}
		p.rec = append(p.rec, i)
		p.n++
	}
	p.supersede()
	return p, rf.rejects, nil
}

// defaultMapping maps every top-level field that some record of the batch
// has to the column of the same name (or, failing that, of its lower-case
// name); fields without a column are ignored. A record whose value is not a
// JSON object is refused.
func (s *Sink) defaultMapping(b sdk.Batch, rf *refuser) ([]mapping, error) {
	recs := rf.recs
	used := map[string]string{} // column → field
	objects := 0
	for i := range recs {
		if recs[i].r.Tombstone {
			if err := rf.refuse(i, s.unmappedTombstone()); err != nil {
				return nil, err
			}
			continue
		}
		ms, err := recs[i].object()
		if err != nil {
			if !s.reject {
				return nil, s.errorf("batch %d: record %d (%s): %v; map it with columns, such as [\"payload jsonb = value\"]", b.ID, i, recs[i].r.Position, err)
			}
			_ = rf.refuse(i, err.Error()+`; map it with columns, such as ["payload jsonb = value"]`)
			continue
		}
		objects++
		for _, m := range ms {
			c, ok := s.byName[string(m.name)] // a lookup: no allocation
			if !ok {
				if c, ok = s.byName[strings.ToLower(string(m.name))]; !ok {
					continue
				}
			}
			col := c.name
			prev, ok := used[col]
			switch {
			case !ok:
				used[col] = string(m.name)
			case prev != string(m.name):
				return nil, s.errorf("batch %d: record %d (%s): fields %q and %q both map to column %q", b.ID, i, recs[i].r.Position, prev, m.name, col)
			}
		}
	}
	var maps []mapping
	for _, c := range s.cols { // table order, for stable statements
		if f, ok := used[c.name]; ok {
			maps = append(maps, mapping{column: c.name, src: source{kind: srcField, path: []string{f}, text: "value." + f}})
		}
	}
	if len(maps) == 0 && objects > 0 {
		return nil, s.errorf("batch %d: no field of the records' JSON values names a column of the table (it has %s)", b.ID, s.colNames())
	}
	return maps, nil
}

// Write writes batch b, its until offsets and its rejections in one
// transaction. In reject mode (on_record_error = "reject") a record that
// cannot become a row, or whose row PostgreSQL refuses with a data exception
// (SQLSTATE class 22) or an integrity constraint violation (class 23), is
// left out and listed in the *sdk.Rejected Write returns once the others are
// committed; any other error fails the batch and leaves nothing behind. A
// batch that this sink already committed (its answer was lost) is not
// written again: Write then returns what it returned then (nil, or the same
// *sdk.Rejected) when b.Until matches what was committed.
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conf == nil {
		return fmt.Errorf("postgres sink: not open")
	}
	useCopy := s.mode == ModeInsert && (s.method == MethodCopy || (s.method == MethodAuto && len(b.Records) >= copyMin))
	rows, rejects, err := s.prepare(b, useCopy)
	if err != nil {
		return err
	}
	until, err := json.Marshal(b.Until)
	if err != nil {
		return s.errorf("batch %d: %w", b.ID, err)
	}
	if err := s.connect(ctx); err != nil {
		return err
	}
	w := &txWrite{b: b, until: until, rows: rows, useCopy: useCopy, rejects: rejects}
	err = s.transact(ctx, w)
	if errors.Is(err, errRowRefused) {
		// A row was refused: write the batch again, isolating such rows.
		w.careful = true
		err = s.transact(ctx, w)
	}
	if err != nil {
		return err
	}
	if len(w.rejects) > 0 {
		return sdk.Reject(w.rejects...)
	}
	return nil
}

// txWrite is one Write's transaction: its input and, once it committed, the
// batch's rejections.
type txWrite struct {
	b       sdk.Batch
	until   []byte
	rows    *prepared
	useCopy bool
	careful bool            // write rows in savepoints and reject the refused ones
	rejects []sdk.Rejection // mapping rejections, then those of the rows
}

// storedRejection is a rejection as the offsets table's rejected column
// holds it: [{"index": 3, "reason": "…"}, …].
type storedRejection struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
}

// errRowRefused is transact's answer when PostgreSQL refused a row in reject
// mode, outside careful mode: the transaction is rolled back, and Write runs
// it again carefully.
var errRowRefused = errors.New("a row was refused")

// rowRefused reports whether err is PostgreSQL refusing a row for its data:
// a data exception (SQLSTATE class 22) or an integrity constraint violation
// (class 23).
func rowRefused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

// transact runs w's transaction: lock the pipeline's offsets row, skip a
// batch committed before (taking its stored rejections), write the rows,
// store the offsets and rejections, commit.
func (s *Sink) transact(ctx context.Context, w *txWrite) error {
	b := w.b
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return s.errorf("batch %d: begin: %w", b.ID, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "INSERT INTO "+s.offsets+" (pipeline, batch, until, updated) VALUES ($1, 0, '{}', now()) ON CONFLICT (pipeline) DO NOTHING", s.pipeline); err != nil {
		return s.errorf("batch %d: offsets table %s: %w", b.ID, s.offsets, err)
	}
	var last, epoch int64
	var lastUntil sdk.Offsets
	var stored []byte
	if err := tx.QueryRow(ctx, "SELECT batch, until::text, rejected::text, epoch FROM "+s.offsets+" WHERE pipeline = $1 FOR UPDATE", s.pipeline).Scan(&last, jsonOffsets{&lastUntil}, &stored, &epoch); err != nil {
		return s.errorf("batch %d: offsets table %s: %w", b.ID, s.offsets, err)
	}
	switch {
	case b.Epoch > 0 && b.Epoch < epoch:
		// A worker that lost its lease: the row is locked, so no batch of
		// the new holder commits between this check and a commit.
		return s.errorf("batch %d: %w: the host's lease epoch %d is older than epoch %d, which committed batch %d in %s; nothing written",
			b.ID, sdk.ErrFenced, b.Epoch, epoch, last, s.offsets)
	case last == b.ID && lastUntil.Equal(b.Until):
		// Committed before; its answer was lost. Its rejections are the
		// ones committed with it.
		w.rejects = nil
		if len(stored) > 0 {
			var rs []storedRejection
			if err := json.Unmarshal(stored, &rs); err != nil {
				return s.errorf("batch %d: offsets table %s: reading the rejections of batch %d: %w", b.ID, s.offsets, last, err)
			}
			for _, r := range rs {
				w.rejects = append(w.rejects, sdk.Rejection(r))
			}
		}
		return nil
	case last >= b.ID:
		return s.errorf("batch %d: pipeline %q already committed batch %d (until %s) in %s; the host must not write batch %d now",
			b.ID, s.pipeline, last, lastUntil, s.offsets, b.ID)
	}
	rejects := append([]sdk.Rejection(nil), w.rejects...) // the mapping's, then the rows'
	if err := s.deleteTombstones(ctx, tx, w, &rejects); err != nil {
		if s.reject && !w.careful && rowRefused(err) {
			return errRowRefused
		}
		return s.errorf("batch %d: deleting the rows of tombstones: %w", b.ID, explain(err, w, 0))
	}
	if w.rows.n > 0 {
		if w.careful {
			// A deferred constraint is checked by each statement, so that
			// the row that violates it is found.
			if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL IMMEDIATE"); err != nil {
				return s.errorf("batch %d: %w", b.ID, err)
			}
			err = s.writeCarefully(ctx, tx, w, 0, w.rows.n, &rejects)
		} else {
			err = s.writeRows(ctx, tx, w, 0, w.rows.n)
		}
		if err != nil {
			if s.reject && !w.careful && rowRefused(err) {
				return errRowRefused
			}
			return s.errorf("batch %d: %w", b.ID, explain(err, w, 0))
		}
	}
	var rejected any // SQL NULL: none
	if len(rejects) > 0 {
		sort.Slice(rejects, func(i, j int) bool { return rejects[i].Index < rejects[j].Index })
		rs := make([]storedRejection, len(rejects))
		for i, r := range rejects {
			rs[i] = storedRejection(r)
		}
		j, err := json.Marshal(rs)
		if err != nil {
			return s.errorf("batch %d: %w", b.ID, err)
		}
		rejected = string(j)
	}
	if _, err := tx.Exec(ctx, "UPDATE "+s.offsets+" SET batch = $2, until = $3::jsonb, updated = now(), rejected = $4::jsonb, epoch = greatest(epoch, $5) WHERE pipeline = $1", s.pipeline, b.ID, string(w.until), rejected, b.Epoch); err != nil {
		return s.errorf("batch %d: offsets table %s: %w", b.ID, s.offsets, err)
	}
	if err := sdk.FaultBeforeCommit(ctx); err != nil { // sink.write.commit: crash inside the transaction
		return s.errorf("batch %d: %w", b.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		if s.reject && !w.careful && rowRefused(err) {
			return errRowRefused // a deferred constraint, checked at commit
		}
		return s.errorf("batch %d: commit: %w", b.ID, err)
	}
	w.rejects = rejects
	return nil
}

// writeRows writes rows [lo, hi) of w with COPY or with the INSERT.
func (s *Sink) writeRows(ctx context.Context, tx pgx.Tx, w *txWrite, lo, hi int) error {
	if w.useCopy {
		return s.copy(ctx, tx, w.rows, lo, hi)
	}
	return s.insert(ctx, tx, w.rows, lo, hi)
}

// writeCarefully writes rows [lo, hi) of w in a savepoint. When PostgreSQL
// refuses a row for its data (rowRefused), it rolls back to the savepoint
// and writes the range again in parts, down to single rows, which it
// rejects: the parts are the rows before the one a COPY error names, that
// row, and the rows after it; or else two halves. Rows are written in batch
// order, so of two rows that conflict the first is written.
func (s *Sink) writeCarefully(ctx context.Context, tx pgx.Tx, w *txWrite, lo, hi int, rejects *[]sdk.Rejection) error {
	sp, err := tx.Begin(ctx) // SAVEPOINT
	if err != nil {
		return err
	}
	err = s.writeRows(ctx, sp, w, lo, hi)
	if err == nil {
		return sp.Commit(ctx) // RELEASE SAVEPOINT
	}
	if !rowRefused(err) {
		return err
	}
	if err := sp.Rollback(ctx); err != nil { // ROLLBACK TO SAVEPOINT
		return err
	}
	if hi-lo == 1 {
		*rejects = append(*rejects, sdk.Rejection{Index: w.rows.rec[lo], Reason: refusal(err)})
		return nil
	}
	parts := [][2]int{{lo, lo + (hi-lo)/2}, {lo + (hi-lo)/2, hi}}
	if line := copyLineOf(err); w.useCopy && line >= 1 && line <= hi-lo {
		bad := lo + line - 1
		parts = [][2]int{{lo, bad}, {bad, bad + 1}, {bad + 1, hi}}
	}
	for _, pt := range parts {
		if pt[0] == pt[1] {
			continue
		}
		if err := s.writeCarefully(ctx, tx, w, pt[0], pt[1], rejects); err != nil {
			return err
		}
	}
	return nil
}

// insert writes rows [lo, hi) with one INSERT of unnest()ed text arrays,
// cast to the columns' types; upsert adds ON CONFLICT on the key, keeping
// the last record of each key.
func (s *Sink) insert(ctx context.Context, tx pgx.Tx, p *prepared, lo, hi int) error {
	cols, upsert := p.cols, s.mode == ModeUpsert
	names := make([]string, len(cols))
	alias := make([]string, len(cols))
	casts := make([]string, len(cols))
	args := make([]any, len(cols))
	types := make([]string, len(cols))
	for j, c := range cols {
		names[j] = pgx.Identifier{c.name}.Sanitize()
		alias[j] = "c" + strconv.Itoa(j)
		casts[j] = "(u.c" + strconv.Itoa(j) + ")::" + c.typ
		types[j] = "$" + strconv.Itoa(j+1) + "::text[]"
		args[j] = p.arrs[j][lo:hi]
	}
	var sql strings.Builder
	sql.WriteString("INSERT INTO " + s.table + " (" + strings.Join(names, ", ") + ") SELECT ")
	if !upsert {
		sql.WriteString(strings.Join(casts, ", ") + " FROM unnest(" + strings.Join(types, ", ") + ") AS u(" + strings.Join(alias, ", ") + ")")
		_, err := tx.Exec(ctx, sql.String(), args...)
		return err
	}
	var keyCasts, sets []string
	for _, k := range s.key {
		for j, c := range cols {
			if c.name == k {
				keyCasts = append(keyCasts, casts[j])
			}
		}
	}
	for j, c := range cols {
		if !contains(s.key, c.name) {
			sets = append(sets, names[j]+" = EXCLUDED."+names[j])
		}
	}
	sql.WriteString("DISTINCT ON (" + strings.Join(keyCasts, ", ") + ") " + strings.Join(casts, ", ") +
		" FROM unnest(" + strings.Join(types, ", ") + ") WITH ORDINALITY AS u(" + strings.Join(alias, ", ") + ", ord)" +
		" ORDER BY " + strings.Join(keyCasts, ", ") + ", u.ord DESC ON CONFLICT (" + quoteAll(s.key) + ") DO ")
	if len(sets) == 0 {
		sql.WriteString("NOTHING")
	} else {
		sql.WriteString("UPDATE SET " + strings.Join(sets, ", "))
	}
	_, err := tx.Exec(ctx, sql.String(), args...)
	return err
}

// copy writes rows [lo, hi) with COPY FROM STDIN in text format; PostgreSQL
// parses every field with its column's type.
func (s *Sink) copy(ctx context.Context, tx pgx.Tx, p *prepared, lo, hi int) error {
	names := make([]string, len(p.cols))
	for j, c := range p.cols {
		names[j] = pgx.Identifier{c.name}.Sanitize()
	}
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(p.copyRows(lo, hi)), "COPY "+s.table+" ("+strings.Join(names, ", ")+") FROM STDIN")
	return err
}

var copyLine = regexp.MustCompile(`(?m)^COPY .*?, line (\d+)`)

// copyLineOf returns the line of a COPY that PostgreSQL's error names (from
// 1), or 0.
func copyLineOf(err error) int {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return 0
	}
	m := copyLine.FindStringSubmatch(pe.Where)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// explain adds PostgreSQL's detail to err and, for COPY, which record of the
// batch the failing line holds (rows [lo, …) of w were sent).
func explain(err error, w *txWrite, lo int) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	msg := pe.Message
	if pe.Detail != "" {
		msg += " (" + pe.Detail + ")"
	}
	if line := copyLineOf(err); w.useCopy && line >= 1 && lo+line-1 < w.rows.n {
		return fmt.Errorf("record %d: %s [SQLSTATE %s, %s]", w.rows.rec[lo+line-1], msg, pe.Code, pe.Where)
	}
	if pe.Where != "" {
		msg += ", " + pe.Where
	}
	return fmt.Errorf("%s [SQLSTATE %s]", msg, pe.Code)
}

// refusal is the reason of a rejection for PostgreSQL's error about one
// row: its message, detail, column and SQLSTATE.
func refusal(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	msg := pe.Message
	if pe.Detail != "" {
		msg += " (" + pe.Detail + ")"
	}
	col := pe.ColumnName
	if m := copyColumn.FindStringSubmatch(pe.Where); col == "" && m != nil {
		col = m[1]
	}
	if col != "" && !strings.Contains(msg, `"`+col+`"`) {
		msg = fmt.Sprintf("column %q: %s", col, msg)
	}
	return msg + " [SQLSTATE " + pe.Code + "]"
}

var copyColumn = regexp.MustCompile(`(?m)^COPY .*?, line \d+, column ([^:]+):`)

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// jsonOffsets scans a text column holding offsets in Spark's JSON form.
type jsonOffsets struct{ o *sdk.Offsets }

func (j jsonOffsets) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	case nil:
		*j.o = sdk.Offsets{}
		return nil
	default:
		return fmt.Errorf("offsets column holds %T", src)
	}
	var o sdk.Offsets
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	*j.o = o
	return nil
}

// LastCommitted returns the batch and until offsets this pipeline's row of
// the offsets table holds; batch 0 when it has none.
func (s *Sink) LastCommitted(ctx context.Context) (sdk.Committed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conf == nil {
		return sdk.Committed{}, fmt.Errorf("postgres sink: not open")
	}
	if err := s.connect(ctx); err != nil {
		return sdk.Committed{}, err
	}
	c := sdk.Committed{Until: sdk.Offsets{}}
	var stored []byte
	err := s.conn.QueryRow(ctx, "SELECT batch, until::text, rejected::text FROM "+s.offsets+" WHERE pipeline = $1", s.pipeline).Scan(&c.Batch, jsonOffsets{&c.Until}, &stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return sdk.Committed{Until: sdk.Offsets{}}, nil
	}
	if err != nil {
		return sdk.Committed{}, s.errorf("offsets table %s: %w", s.offsets, err)
	}
	if len(stored) > 0 {
		var rs []storedRejection
		if err := json.Unmarshal(stored, &rs); err != nil {
			return sdk.Committed{}, s.errorf("offsets table %s: reading the rejections of batch %d: %w", s.offsets, c.Batch, err)
		}
		for _, r := range rs {
			c.Rejected = append(c.Rejected, sdk.Rejection(r))
		}
	}
	return c, nil
}

// List returns every row of the table as a JSON object of its columns
// (to_jsonb), one entry per row: the conformance suite reads the "id" of
// each.
func (s *Sink) List(ctx context.Context) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conf == nil {
		return nil, fmt.Errorf("postgres sink: not open")
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, "SELECT to_jsonb(t)::text FROM "+s.table+" t")
	if err != nil {
		return nil, s.errorf("list: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, s.errorf("list: %w", err)
		}
		out = append(out, []byte(v))
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list: %w", err)
	}
	return out, nil
}

// Close closes the connection.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close(ctx)
	s.conn = nil
	if err != nil {
		return fmt.Errorf("postgres sink: close: %w", err)
	}
	return nil
}
