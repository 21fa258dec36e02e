package postgres

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
	"github.com/jackc/pgx/v5"
)

var ctx = context.Background()

// schema gives the test its own schema and returns it with a helper that
// qualifies a table name in it.
func schema(t *testing.T) (string, func(string) string) {
	s := pgtest.Schema(t, pgURL, "sink")
	return s, func(table string) string { return s + "." + table }
}

func sqlExec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := pgtest.Conn(t, pgURL).Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// query returns every row of sql, each rendered as its columns' text joined by "|".
func query(t testing.TB, sql string, args ...any) []string {
	t.Helper()
	rows, err := pgtest.Conn(t, pgURL).Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				parts[i] = "NULL"
			case []byte:
				parts[i] = fmt.Sprintf("%x", x)
			case time.Time:
				parts[i] = x.UTC().Format(time.RFC3339Nano)
			default:
				parts[i] = fmt.Sprint(x)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := pgtest.Conn(t, pgURL).QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func open(t testing.TB, values map[string]any) sdk.Sink {
	t.Helper()
	if _, ok := values["url"]; !ok {
		values["url"] = pgURL
	}
	return sdktest.Sink(t, Plugin, "p", values)
}

// openErr opens a sink that must fail and returns its error.
func openErr(t testing.TB, values map[string]any) error {
	t.Helper()
	if _, ok := values["url"]; !ok {
		values["url"] = pgURL
	}
	cfg, err := sdk.NewConfig(SinkSpec, "p", values)
	if err != nil {
		return err
	}
	s := &Sink{}
	err = s.Open(ctx, cfg)
	if err == nil {
		s.Close(ctx)
		t.Fatalf("Open(%v) succeeded", values)
	}
	return err
}

// batch builds batch id of JSON values in partition "t/0" from offset from.
func batch(id, from int64, values ...string) sdk.Batch {
	b := sdk.Batch{ID: id, From: sdk.Offsets{"t/0": from}, Until: sdk.Offsets{"t/0": from + int64(len(values))}}
	for i, v := range values {
		b.Records = append(b.Records, sdk.Record{
			Key: []byte(fmt.Sprintf("k%d", from+int64(i))), Value: []byte(v),
			Headers:   []sdk.Header{{Key: "h", Value: []byte("hv")}},
			Timestamp: time.UnixMilli(1_700_000_000_000 + from + int64(i)),
			Position:  sdk.Position{Partition: "t/0", Offset: from + int64(i)},
		})
	}
	return b
}

func write(t testing.TB, s sdk.Sink, b sdk.Batch) {
	t.Helper()
	if err := s.Write(ctx, b); err != nil {
		t.Fatalf("write batch %d: %v", b.ID, err)
	}
}

// TestInsertMethods writes the same batches with COPY and with INSERT, in the
// default mapping (top-level JSON fields to columns of the same name), and
// expects the same rows, typed by the table.
func TestInsertMethods(t *testing.T) {
	for _, method := range []string{MethodCopy, MethodInsert, MethodAuto} {
		t.Run(method, func(t *testing.T) {
			_, q := schema(t)
			table := q("ev_" + method)
			sqlExec(t, "CREATE TABLE "+table+` (id text, n int, f float8, ok bool, doc jsonb, tags text[], at timestamptz, "camelCase" text, blob bytea, dflt text DEFAULT 'x', gen bigint GENERATED ALWAYS AS (n * 2) STORED)`)
			s := open(t, map[string]any{"table": table, "method": method})
			write(t, s, batch(1, 0,
				`{"id":"a","n":1,"f":1.5,"ok":true,"doc":{"x":[1,2]},"tags":"{a,b}","at":"2026-01-02T03:04:05Z","camelCase":"c","blob":"hi","ignored":1}`,
				`{"id":"tab\there","n":null,"doc":"str","camelCase":"line\nbreak \\ back"}`,
				`{"id":"unicodé ✓"}`))
			got := query(t, "SELECT id, n, f, ok, doc::text, tags::text, at, \"camelCase\", blob, dflt, gen FROM "+table+" ORDER BY id")
			want := []string{
				"a|1|1.5|true|{\"x\": [1, 2]}|{a,b}|2026-01-02T03:04:05Z|c|6869|x|2",
				"tab\there|NULL|NULL|NULL|\"str\"|NULL|NULL|line\nbreak \\ back|NULL|x|NULL",
				"unicodé ✓|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|x|NULL",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// A batch that has no "dflt" keeps the column's default; one that has it writes it.
			write(t, s, batch(2, 3, `{"id":"d","dflt":"given"}`))
			if got := query(t, "SELECT dflt FROM "+table+" WHERE id = 'd'"); len(got) != 1 || got[0] != "given" {
				t.Errorf("dflt = %v", got)
			}
		})
	}
}

// TestMapping maps every kind of source to columns of a table the sink
// creates, with the types given or the defaults.
func TestMapping(t *testing.T) {
	for _, method := range []string{MethodCopy, MethodInsert} {
		t.Run(method, func(t *testing.T) {
			_, q := schema(t)
			table := q("mapped_" + method)
			s := open(t, map[string]any{"table": table, "method": method, "create": true, "columns": []string{
				"id = value.id",
				"nested bigint = value.a.b",
				"missing = value.a.nope",
				"payload = value",
				"k = key",
				"kb bytea = key",
				"h = header.h",
				"nohdr = header.none",
				"part = partition",
				"off = offset",
				"idx = index",
				"pos = position",
				"ts = timestamp",
			}})
			b := batch(1, 40, `{"id":"x","a":{"b":7}}`, `{"id":"y","a":5}`)
			b.Records[1].Position.Index = 2 // a record a processor added
			write(t, s, b)
			got := query(t, "SELECT id, nested, missing, payload::text, k, kb, h, nohdr, part, off, idx, pos, ts FROM "+table+" ORDER BY id")
			want := []string{
				`x|7|NULL|{"a": {"b": 7}, "id": "x"}|k40|6b3430|hv|NULL|t/0|40|0|t/0@40|2023-11-14T22:13:20.04Z`,
				`y|NULL|NULL|{"a": 5, "id": "y"}|k41|6b3431|hv|NULL|t/0|41|2|t/0@41#2|2023-11-14T22:13:20.041Z`,
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			types := query(t, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum`, table)
			wantTypes := "id|text,nested|bigint,missing|text,payload|jsonb,k|text,kb|bytea,h|text,nohdr|text,part|text,off|bigint,idx|integer,pos|text,ts|timestamp with time zone"
			if strings.Join(types, ",") != wantTypes {
				t.Errorf("created columns %s\nwant %s", strings.Join(types, ","), wantTypes)
			}
		})
	}
}

// TestUpsert: the last record of a key wins, within a batch and across
// batches, and writing a batch again changes nothing (idempotent).
func TestUpsert(t *testing.T) {
	_, q := schema(t)
	table := q("kv")
	s := open(t, map[string]any{"table": table, "mode": ModeUpsert, "key": []string{"k"}, "create": true, "on_record_error": OnErrorFail,
		"columns": []string{"k = value.k", "v bigint = value.v", "seen = offset"}})
	write(t, s, batch(1, 0, `{"k":"a","v":1}`, `{"k":"b","v":2}`, `{"k":"a","v":3}`))
	write(t, s, batch(2, 3, `{"k":"b","v":20}`, `{"k":"c","v":30}`))
	want := "a|3|2,b|20|3,c|30|4"
	if got := strings.Join(query(t, "SELECT k, v, seen FROM "+table+" ORDER BY k"), ","); got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	// Writing batch 2 again (after its answer was lost) changes nothing.
	write(t, s, batch(2, 3, `{"k":"b","v":20}`, `{"k":"c","v":30}`))
	if got := strings.Join(query(t, "SELECT k, v, seen FROM "+table+" ORDER BY k"), ","); got != want {
		t.Errorf("after a rewrite: rows %s, want %s", got, want)
	}
	if pk := query(t, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'", table); len(pk) != 1 || pk[0] != "PRIMARY KEY (k)" {
		t.Errorf("primary key %v", pk)
	}
	// A record without a key is refused, naming it; with on_record_error =
	// "fail" nothing of its batch is written.
	err := s.Write(ctx, batch(3, 5, `{"k":"d","v":4}`, `{"v":5}`))
	if err == nil || !strings.Contains(err.Error(), `batch 3: record 1 (t/0@6): upsert key column "k" would be NULL`) {
		t.Errorf("record without a key: %v", err)
	}
	if got := strings.Join(query(t, "SELECT k, v, seen FROM "+table+" ORDER BY k"), ","); got != want {
		t.Errorf("after a refused batch: rows %s, want %s", got, want)
	}
	// Default mapping: a batch without the key field is refused too.
	dm := sdktest.Sink(t, Plugin, "dm", map[string]any{"url": pgURL, "table": table, "mode": ModeUpsert, "key": []string{"k"}, "on_record_error": OnErrorFail})
	if err := dm.Write(ctx, batch(1, 0, `{"v":1}`)); err == nil || !strings.Contains(err.Error(), `no record of the batch has the upsert key field "k"`) {
		t.Errorf("default mapping without the key field: %v", err)
	}
	write(t, dm, batch(1, 0, `{"k":"a","v":100}`))
	if got := query(t, "SELECT v FROM "+table+" WHERE k = 'a'"); len(got) != 1 || got[0] != "100" {
		t.Errorf("default-mapping upsert: %v", got)
	}
	// Only key columns: ON CONFLICT DO NOTHING.
	keys := q("keys")
	s2 := sdktest.Sink(t, Plugin, "p2", map[string]any{"url": pgURL, "table": keys, "mode": ModeUpsert, "key": []string{"k"}, "create": true, "columns": []string{"k = value.k"}})
	write(t, s2, batch(1, 0, `{"k":"a"}`, `{"k":"a"}`))
	write(t, s2, batch(2, 2, `{"k":"a"}`, `{"k":"b"}`))
	if n := count(t, keys); n != 2 {
		t.Errorf("%d key rows, want 2", n)
	}
}

// TestTransactional: the offsets are committed with the rows; a batch
// written again after a lost answer is skipped; a failed batch (with
// on_record_error = "fail") leaves nothing behind.
func TestTransactional(t *testing.T) {
	sch, q := schema(t)
	table := q("tx")
	sqlExec(t, "CREATE TABLE "+table+" (id text, n int)")
	s := open(t, map[string]any{"table": table, "method": MethodCopy, "on_record_error": OnErrorFail})
	tx := s.(sdk.Transactional)
	c, err := tx.LastCommitted(ctx)
	if err != nil || c.Batch != 0 || len(c.Until) != 0 {
		t.Fatalf("LastCommitted before any write: %+v, %v", c, err)
	}
	b1 := batch(1, 0, `{"id":"a"}`, `{"id":"b"}`)
	write(t, s, b1)
	c, err = tx.LastCommitted(ctx)
	if err != nil || c.Batch != 1 || !c.Until.Equal(sdk.Offsets{"t/0": 2}) {
		t.Fatalf("LastCommitted: %+v, %v", c, err)
	}
	offs := query(t, "SELECT pipeline, batch, until::text, rejected FROM "+q("connectd_offsets"))
	if len(offs) != 1 || offs[0] != `p|1|{"t": {"0": 2}}|NULL` {
		t.Errorf("offsets table: %v (in schema %s)", offs, sch)
	}
	// The same batch again (its commit answer was lost): skipped, no duplicate.
	write(t, s, b1)
	if n := count(t, table); n != 2 {
		t.Errorf("%d rows after writing batch 1 twice, want 2", n)
	}
	// The same id with other offsets is a host bug: refused.
	if err := s.Write(ctx, batch(1, 0, `{"id":"z"}`)); err == nil || !strings.Contains(err.Error(), "already committed batch 1") {
		t.Errorf("batch 1 with other offsets: %v", err)
	}
	// A batch that fails half-way leaves no row and no offsets behind.
	err = s.Write(ctx, batch(2, 2, `{"id":"c","n":1}`, `{"id":"d","n":"not a number"}`))
	for _, w := range []string{"table " + table, "batch 2", "record 1", "invalid input syntax for type integer"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("failed batch: error %v lacks %q", err, w)
		}
	}
	if n := count(t, table); n != 2 {
		t.Errorf("%d rows after a failed batch, want 2", n)
	}
	if c, _ := tx.LastCommitted(ctx); c.Batch != 1 {
		t.Errorf("LastCommitted after a failed batch: %d, want 1", c.Batch)
	}
	write(t, s, batch(2, 2, `{"id":"c","n":1}`, `{"id":"d","n":2}`))
	// Another pipeline in the same offsets table has its own row.
	other := sdktest.Sink(t, Plugin, "other", map[string]any{"url": pgURL, "table": table})
	if c, err := other.(sdk.Transactional).LastCommitted(ctx); err != nil || c.Batch != 0 {
		t.Errorf("other pipeline: %+v, %v", c, err)
	}
	// List shows every row as a JSON object.
	vals, err := s.(sdk.Lister).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range vals {
		ids = append(ids, string(v))
	}
	sort.Strings(ids)
	if want := `{"n": 1, "id": "c"},{"n": 2, "id": "d"},{"n": null, "id": "a"},{"n": null, "id": "b"}`; strings.Join(ids, ",") != want {
		t.Errorf("List = %s, want %s", strings.Join(ids, ","), want)
	}
}

// TestReconnect: a sink whose session was ended by the server fails the
// write in flight and reconnects for the next one (the host retries).
func TestReconnect(t *testing.T) {
	_, q := schema(t)
	table := q("re")
	sqlExec(t, "CREATE TABLE "+table+" (id text)")
	s := open(t, map[string]any{"table": table})
	write(t, s, batch(1, 0, `{"id":"a"}`))
	sqlExec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'connectd sink pid %' AND pid <> pg_backend_pid()")
	b := batch(2, 1, `{"id":"b"}`)
	if err := s.Write(ctx, b); err == nil {
		t.Log("the write after the termination succeeded at once")
	}
	write(t, s, b)
	if n := count(t, table); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
}

// TestOpenErrors: bad settings and missing tables fail Open with a message
// that says what to do, and never the password.
func TestOpenErrors(t *testing.T) {
	_, q := schema(t)
	sqlExec(t, "CREATE TABLE "+q("nokey")+" (k text, v text)")
	const pw = "s3cr3t-Pa55"
	wrongPW := "postgres://connectd:" + pw + "@127.0.0.1:1/db?connect_timeout=2"
	if u, err := url.Parse(pgURL); err == nil && u.Host != "" {
		u.User = url.UserPassword(u.User.Username(), pw)
		wrongPW = u.String()
	}
	cases := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"no table", map[string]any{"table": q("nosuch")}, "has no table"},
		{"bad mode", map[string]any{"table": q("nokey"), "mode": "merge"}, `parameter "mode": "merge" is not one of "insert", "upsert"`},
		{"bad method", map[string]any{"table": q("nokey"), "method": "bulk"}, `parameter "method": "bulk" is not one of "auto", "copy", "insert"`},
		{"upsert without key", map[string]any{"table": q("nokey"), "mode": "upsert"}, "needs key"},
		{"key in insert mode", map[string]any{"table": q("nokey"), "key": []string{"k"}}, "key is for mode"},
		{"upsert without unique index", map[string]any{"table": q("nokey"), "mode": "upsert", "key": []string{"k"}}, "unique index"},
		{"unknown key column", map[string]any{"table": q("nokey"), "mode": "upsert", "key": []string{"x"}}, `key column "x"`},
		{"unknown mapped column", map[string]any{"table": q("nokey"), "columns": []string{"x = value"}}, `maps "x"`},
		{"bad columns entry", map[string]any{"table": q("nokey"), "columns": []string{"x value"}}, `want "<column> [<type>] = <source>"`},
		{"bad source", map[string]any{"table": q("nokey"), "columns": []string{"x = body"}}, `unknown source "body"`},
		{"create without columns", map[string]any{"table": q("new"), "create": true}, "needs columns"},
		{"bad table name", map[string]any{"table": "a.b.c"}, `parameter "table": "a.b.c" does not match`},
		{"bad offsets table name", map[string]any{"table": q("nokey"), "offsets_table": "x."}, `parameter "offsets_table": "x." does not match`},
		{"wrong password", map[string]any{"table": q("nokey"), "url": wrongPW}, "connecting to"},
		{"unparsable url", map[string]any{"table": q("nokey"), "url": "postgres://u:" + pw + "@h:port/db"}, "cannot be parsed"},
	}
	fromDatabase := map[string]bool{"no table": true, "upsert without unique index": true, "unknown key column": true,
		"unknown mapped column": true, "wrong password": true}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := openErr(t, c.values)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
			// What is wrong before a connection is the configuration's
			// fault; what the database says is not.
			if want := !fromDatabase[c.name]; sdk.IsConfigError(err) != want {
				t.Errorf("error %q: configuration error = %t, want %t", err, !want, want)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestWriteErrors: with on_record_error = "fail", records that cannot
// become rows are refused with the batch, record and column, and nothing of
// the batch is written.
func TestWriteErrors(t *testing.T) {
	_, q := schema(t)
	table := q("strict")
	sqlExec(t, "CREATE TABLE "+table+" (id text, n int)")
	s := open(t, map[string]any{"table": table, "on_record_error": OnErrorFail})
	for _, c := range []struct {
		name  string
		value string
		want  []string
	}{
		{"not an object", `[1,2]`, []string{"batch 1", "record 0 (t/0@0)", "not a JSON object"}},
		{"no known field", `{"x":1}`, []string{"batch 1", "no field", "id, n"}},
		{"NUL byte", `{"id":"a\u0000b"}`, []string{"batch 1", "record 0", `column "id"`, "NUL"}},
	} {
		err := s.Write(ctx, batch(1, 0, c.value))
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v lacks %q", c.name, err, w)
			}
		}
	}
	if n := count(t, table); n != 0 {
		t.Errorf("%d rows after refused batches", n)
	}
}

// TestOffsetsTableName: an explicit offsets table, and the default one in
// the table's schema.
func TestOffsetsTableName(t *testing.T) {
	sch, q := schema(t)
	sqlExec(t, "CREATE TABLE "+q("a")+" (id text)")
	s := open(t, map[string]any{"table": q("a"), "offsets_table": q("my_offsets")})
	write(t, s, batch(1, 0, `{"id":"x"}`))
	if n := count(t, q("my_offsets")); n != 1 {
		t.Errorf("%d rows in %s.my_offsets", n, sch)
	}
	var exists bool
	if err := pgtest.Conn(t, pgURL).QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{sch, DefaultOffsetsTable}.Sanitize()).Scan(&exists); err != nil || exists {
		t.Errorf("default offsets table exists (%v) though another was named", err)
	}
}
