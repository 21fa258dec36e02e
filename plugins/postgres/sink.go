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
// pipeline's row of the offsets table, checks that the batch is new, writes
// the rows, stores the batch id and its until offsets, and commits. So a
// batch whose commit answer was lost is never written twice: written again,
// it is found committed and skipped.
type Sink struct {
	mu       sync.Mutex
	conf     *pgx.ConnConfig
	conn     *pgx.Conn
	server   string // pg.Describe(conf), for messages
	pipeline string

	mode, method string
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
	var haveTable, haveOffsets bool
	if err := s.conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL", s.table, s.offsets).Scan(&haveTable, &haveOffsets); err != nil {
		return s.errorf("%s: %w", s.server, err)
	}
	if !haveOffsets || (!haveTable && s.create) {
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
	updated  timestamptz NOT NULL
)`); err != nil {
					return fmt.Errorf("creating the offsets table %s: %w", s.offsets, err)
				}
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

// prepared is a batch turned into what one write method sends.
type prepared struct {
	cols []column
	copy []byte          // COPY text format, when copying
	arrs [][]pgtype.Text // one array per column, when inserting
	n    int             // records
}

// prepare turns a batch into rows for COPY (useCopy) or for the INSERT of
// unnest()ed arrays. Mapping errors name the batch, record and column.
func (s *Sink) prepare(b sdk.Batch, useCopy bool) (*prepared, error) {
	recs := make([]record, len(b.Records))
	const perRecord = 8 // members a record's slab holds before it grows
	slab := make([]member, len(recs)*perRecord)
	size := 0
	for i := range b.Records {
		recs[i].r = &b.Records[i]
		recs[i].members = slab[i*perRecord : i*perRecord : (i+1)*perRecord]
		size += len(b.Records[i].Value) + len(b.Records[i].Key)
	}
	maps := s.maps
	if maps == nil {
		var err error
		if maps, err = s.defaultMapping(b, recs); err != nil {
			return nil, err
		}
	}
	p := &prepared{cols: make([]column, len(maps)), n: len(recs)}
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
			if !found {
				return nil, s.errorf("batch %d: no record of the batch has the upsert key field %q", b.ID, k)
			}
		}
	}
	if useCopy {
		p.copy = make([]byte, 0, size+size/8+len(recs)*len(maps)*2)
	} else {
		p.arrs = make([][]pgtype.Text, len(maps))
		for j := range p.arrs {
			p.arrs[j] = make([]pgtype.Text, len(recs))
		}
	}
	scratch := make([]byte, 0, 64)
	for i := range recs {
		for j, m := range maps {
			t, null, err := recs[i].text(m.src, p.cols[j], scratch)
			if err != nil {
				return nil, s.errorf("batch %d: record %d (%s): column %q: %v", b.ID, i, recs[i].r.Position, m.column, err)
			}
			if null && isKey[j] {
				return nil, s.errorf("batch %d: record %d (%s): upsert key column %q would be NULL (source %s)", b.ID, i, recs[i].r.Position, m.column, m.src.text)
			}
			if !useCopy {
				p.arrs[j][i] = pgtype.Text{String: string(t), Valid: !null}
				continue
			}
			if j > 0 {
				p.copy = append(p.copy, '\t')
			}
			p.copy = appendCopyText(p.copy, t, null)
		}
		if useCopy {
			p.copy = append(p.copy, '\n')
		}
	}
	return p, nil
}

// defaultMapping maps every top-level field that some record of the batch
// has to the column of the same name (or, failing that, of its lower-case
// name); fields without a column are ignored.
func (s *Sink) defaultMapping(b sdk.Batch, recs []record) ([]mapping, error) {
	used := map[string]string{} // column → field
	for i := range recs {
		ms, err := recs[i].object()
		if err != nil {
			return nil, s.errorf("batch %d: record %d (%s): %v; map it with columns, such as [\"payload jsonb = value\"]", b.ID, i, recs[i].r.Position, err)
		}
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
	if len(maps) == 0 && len(recs) > 0 {
		return nil, s.errorf("batch %d: no field of the records' JSON values names a column of the table (it has %s)", b.ID, s.colNames())
	}
	return maps, nil
}

// Write writes batch b and its until offsets in one transaction. A batch
// that this sink already committed (its answer was lost) is not written
// again: Write then returns nil when b.Until matches what was committed.
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conf == nil {
		return fmt.Errorf("postgres sink: not open")
	}
	useCopy := s.mode == ModeInsert && (s.method == MethodCopy || (s.method == MethodAuto && len(b.Records) >= copyMin))
	rows, err := s.prepare(b, useCopy)
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
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return s.errorf("batch %d: begin: %w", b.ID, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "INSERT INTO "+s.offsets+" (pipeline, batch, until, updated) VALUES ($1, 0, '{}', now()) ON CONFLICT (pipeline) DO NOTHING", s.pipeline); err != nil {
		return s.errorf("batch %d: offsets table %s: %w", b.ID, s.offsets, err)
	}
	var last int64
	var lastUntil sdk.Offsets
	if err := tx.QueryRow(ctx, "SELECT batch, until::text FROM "+s.offsets+" WHERE pipeline = $1 FOR UPDATE", s.pipeline).Scan(&last, jsonOffsets{&lastUntil}); err != nil {
		return s.errorf("batch %d: offsets table %s: %w", b.ID, s.offsets, err)
	}
	switch {
	case last == b.ID && lastUntil.Equal(b.Until):
		return nil // committed before; its answer was lost
	case last >= b.ID:
		return s.errorf("batch %d: pipeline %q already committed batch %d (until %s) in %s; the host must not write batch %d now",
			b.ID, s.pipeline, last, lastUntil, s.offsets, b.ID)
	}
	if rows.n > 0 {
		if useCopy {
			err = s.copy(ctx, tx, rows)
		} else {
			err = s.insert(ctx, tx, rows)
		}
		if err != nil {
			return s.errorf("batch %d: %w", b.ID, err)
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE "+s.offsets+" SET batch = $2, until = $3::jsonb, updated = now() WHERE pipeline = $1", s.pipeline, b.ID, string(until)); err != nil {
		return s.errorf("batch %d: offsets table %s: %w", b.ID, s.offsets, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.errorf("batch %d: commit: %w", b.ID, err)
	}
	return nil
}

// insert writes rows with one INSERT of unnest()ed text arrays, cast to the
// columns' types; upsert adds ON CONFLICT on the key, keeping the last
// record of each key.
func (s *Sink) insert(ctx context.Context, tx pgx.Tx, p *prepared) error {
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
		args[j] = p.arrs[j]
	}
	var sql strings.Builder
	sql.WriteString("INSERT INTO " + s.table + " (" + strings.Join(names, ", ") + ") SELECT ")
	if !upsert {
		sql.WriteString(strings.Join(casts, ", ") + " FROM unnest(" + strings.Join(types, ", ") + ") AS u(" + strings.Join(alias, ", ") + ")")
		_, err := tx.Exec(ctx, sql.String(), args...)
		return explain(err, false)
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
	return explain(err, false)
}

// copy writes rows with COPY FROM STDIN in text format; PostgreSQL parses
// every field with its column's type.
func (s *Sink) copy(ctx context.Context, tx pgx.Tx, p *prepared) error {
	names := make([]string, len(p.cols))
	for j, c := range p.cols {
		names[j] = pgx.Identifier{c.name}.Sanitize()
	}
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(p.copy), "COPY "+s.table+" ("+strings.Join(names, ", ")+") FROM STDIN")
	return explain(err, true)
}

var copyLine = regexp.MustCompile(`line (\d+)`)

// explain adds PostgreSQL's detail to err and, for COPY, which record of the
// batch the failing line holds.
func explain(err error, copied bool) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	msg := pe.Message
	if pe.Detail != "" {
		msg += " (" + pe.Detail + ")"
	}
	if copied {
		if m := copyLine.FindStringSubmatch(pe.Where); m != nil {
			n, _ := strconv.Atoi(m[1])
			return fmt.Errorf("record %d: %s [SQLSTATE %s, %s]", n-1, msg, pe.Code, pe.Where)
		}
	}
	if pe.Where != "" {
		msg += ", " + pe.Where
	}
	return fmt.Errorf("%s [SQLSTATE %s]", msg, pe.Code)
}

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
	err := s.conn.QueryRow(ctx, "SELECT batch, until::text FROM "+s.offsets+" WHERE pipeline = $1", s.pipeline).Scan(&c.Batch, jsonOffsets{&c.Until})
	if errors.Is(err, pgx.ErrNoRows) {
		return sdk.Committed{Until: sdk.Offsets{}}, nil
	}
	if err != nil {
		return sdk.Committed{}, s.errorf("offsets table %s: %w", s.offsets, err)
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
