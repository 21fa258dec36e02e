package postgres

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// rejected returns the rejections err carries, failing the test when it is
// not an *sdk.Rejected.
func rejected(t *testing.T, err error) []sdk.Rejection {
	t.Helper()
	var rj *sdk.Rejected
	if !errors.As(err, &rj) {
		t.Fatalf("Write: %v, want an *sdk.Rejected", err)
	}
	return rj.Records
}

// badBatch is a batch in which every record but 0, 6 and 10 cannot become
// a row of refTable's table, each for another reason; want is the start of
// each rejection's reason.
func badBatch() (sdk.Batch, map[int]string) {
	b := batch(1, 0,
		`{"id":"a","n":1}`,                // 0 written
		`{"id":"b","n":"x"}`,              // 1 22P02 invalid input syntax
		`{"id":null,"n":2}`,               // 2 23502 not-null
		`{"id":"a","n":3}`,                // 3 23505 unique: record 0 has id a
		`{"id":"c","n":-1}`,               // 4 23514 check
		`{"id":"d","n":4,"ref":"nope"}`,   // 5 23503 foreign key (deferred: checked at commit)
		`{"id":"e","n":5,"ref":"p1"}`,     // 6 written
		`[1,2]`,                           // 7 not a JSON object
		`{"id":"f\u0000"}`,                // 8 NUL byte
		`{"id":"g","n":99999999999}`,      // 9 22003 out of range
		`{"id":"h","n":6,"at":"2026-13"}`, // 10 22007 bad timestamp
		`{"id":"i","n":7}`,                // 11 written
	)
	return b, map[int]string{
		1:  `invalid input syntax for type integer: "x" [SQLSTATE 22P02]`,
		2:  `null value in column "id" of relation`,
		3:  `duplicate key value violates unique constraint`,
		4:  `new row for relation`,
		5:  `insert or update on table`,
		7:  `its value is not a JSON object`,
		8:  `column "id": value.id holds a NUL byte`,
		9:  `value "99999999999" is out of range for type integer`,
		10: `invalid input syntax for type timestamp with time zone: "2026-13"`,
	}
}

// refTable makes a table with a primary key, a check, a deferred foreign
// key and a timestamp, and returns its name.
func refTable(t *testing.T, q func(string) string, name string) string {
	t.Helper()
	parent, table := q(name+"_parent"), q(name)
	sqlExec(t, "CREATE TABLE "+parent+" (k text PRIMARY KEY)")
	sqlExec(t, "INSERT INTO "+parent+" VALUES ('p1')")
	sqlExec(t, "CREATE TABLE "+table+` (id text PRIMARY KEY, n int CHECK (n >= 0), at timestamptz,
		ref text REFERENCES `+parent+` (k) DEFERRABLE INITIALLY DEFERRED)`)
	return table
}

// TestRejects: in reject mode (the default) each record that cannot become
// a row — refused by PostgreSQL with SQLSTATE class 22 or 23, or by the
// mapping — is rejected with its reason and the others are committed with
// the offsets and the rejections; writing the batch again, from the same
// sink or from a new one (a replay after a crash), writes nothing and
// returns the same rejections. With both write methods.
func TestRejects(t *testing.T) {
	for _, method := range []string{MethodCopy, MethodInsert} {
		t.Run(method, func(t *testing.T) {
			_, q := schema(t)
			table := refTable(t, q, "rj_"+method)
			values := map[string]any{"table": table, "method": method}
			s := open(t, values)
			b, want := badBatch()
			got := rejected(t, s.Write(ctx, b))
			var idx []int
			for _, r := range got {
				idx = append(idx, r.Index)
				if !strings.Contains(r.Reason, want[r.Index]) {
					t.Errorf("record %d: reason %q lacks %q", r.Index, r.Reason, want[r.Index])
				}
			}
			if fmt.Sprint(idx) != "[1 2 3 4 5 7 8 9 10]" {
				t.Fatalf("rejected records %v, want [1 2 3 4 5 7 8 9 10]: %v", idx, got)
			}
			codes := map[int]string{1: "22P02", 2: "23502", 3: "23505", 4: "23514", 5: "23503", 9: "22003", 10: "22007"}
			for _, r := range got {
				if c, ok := codes[r.Index]; ok && !strings.HasSuffix(r.Reason, "[SQLSTATE "+c+"]") {
					t.Errorf("record %d: reason %q, want SQLSTATE %s", r.Index, r.Reason, c)
				}
			}
			// COPY names the column of a value its type cannot take.
			if method == MethodCopy && !strings.HasPrefix(got[0].Reason, `column "n": `) {
				t.Errorf("COPY: reason %q does not name column n", got[0].Reason)
			}
			rows := strings.Join(query(t, "SELECT id, n FROM "+table+" ORDER BY id"), ",")
			if rows != "a|1,e|5,i|7" {
				t.Errorf("rows %s, want a|1,e|5,i|7", rows)
			}
			c, err := s.(sdk.Transactional).LastCommitted(ctx)
			if err != nil || c.Batch != 1 || !c.Until.Equal(b.Until) {
				t.Errorf("LastCommitted %+v, %v: the batch with rejections is committed", c, err)
			}
			stored := query(t, "SELECT jsonb_array_length(rejected), rejected->0->>'index' FROM "+q("connectd_offsets"))
			if len(stored) != 1 || stored[0] != "9|1" {
				t.Errorf("offsets row's rejections %v, want 9 of them, the first record 1", stored)
			}
			// The answer was lost: the host writes the batch again, to this
			// sink and (after a crash) to a new one.
			b.Replay = true
			again := rejected(t, s.Write(ctx, b))
			if !reflect.DeepEqual(again, got) {
				t.Errorf("written again: %v\nwant the same rejections %v", again, got)
			}
			fresh := open(t, values)
			again = rejected(t, fresh.Write(ctx, b))
			if !reflect.DeepEqual(again, got) {
				t.Errorf("written again by a new sink: %v\nwant the same rejections %v", again, got)
			}
			if n := count(t, table); n != 3 {
				t.Errorf("%d rows after writing the batch again, want 3", n)
			}
			// The next batch has no rejection: nil, and a NULL in the table.
			write(t, fresh, batch(2, 12, `{"id":"j","n":8}`))
			if stored := query(t, "SELECT batch, rejected FROM "+q("connectd_offsets")); len(stored) != 1 || stored[0] != "2|NULL" {
				t.Errorf("offsets row %v, want batch 2 without rejections", stored)
			}
		})
	}
}

// TestRejectsMany: in a batch of 2000 rows (COPY and INSERT) the few bad
// ones, in any place, are found and only they are rejected.
func TestRejectsMany(t *testing.T) {
	for _, method := range []string{MethodCopy, MethodInsert} {
		t.Run(method, func(t *testing.T) {
			_, q := schema(t)
			table := q("many_" + method)
			sqlExec(t, "CREATE TABLE "+table+" (id int PRIMARY KEY, n int NOT NULL)")
			s := open(t, map[string]any{"table": table, "method": method})
			bad := map[int]string{0: `"x"`, 1: `null`, 777: `1e99`, 1998: `"y"`, 1999: `"z"`}
			var values []string
			for i := 0; i < 2000; i++ {
				n := "1"
				if v, ok := bad[i]; ok {
					n = v
				}
				values = append(values, fmt.Sprintf(`{"id":%d,"n":%s}`, i, n))
			}
			values = append(values, `{"id":5,"n":1}`) // a duplicate of record 5
			got := rejected(t, s.Write(ctx, batch(1, 0, values...)))
			var idx []int
			for _, r := range got {
				idx = append(idx, r.Index)
			}
			if fmt.Sprint(idx) != "[0 1 777 1998 1999 2000]" {
				t.Errorf("rejected %v, want [0 1 777 1998 1999 2000]", idx)
			}
			if n := count(t, table); n != 1995 {
				t.Errorf("%d rows, want 1995", n)
			}
		})
	}
}

// TestRejectsUpsert: in upsert mode a NULL key and a violated unique index
// other than the key are rejected; a refused record does not hide the
// records of its key before it (they are written as if it were not in the
// batch).
func TestRejectsUpsert(t *testing.T) {
	_, q := schema(t)
	table := q("up")
	sqlExec(t, "CREATE TABLE "+table+" (k text PRIMARY KEY, v int, email text UNIQUE)")
	s := open(t, map[string]any{"table": table, "mode": ModeUpsert, "key": []string{"k"}})
	got := rejected(t, s.Write(ctx, batch(1, 0,
		`{"k":"a","v":1,"email":"a@x"}`,
		`{"k":"b","v":2,"email":"a@x"}`,
		`{"v":3}`,
		`{"k":"c","v":4}`,
		`{"k":"c","v":"bad"}`,
	)))
	var idx []string
	for _, r := range got {
		idx = append(idx, fmt.Sprintf("%d %s", r.Index, r.Reason))
	}
	want := []string{`1 duplicate key value violates unique constraint`, `2 upsert key column "k" would be NULL`, `4 invalid input syntax for type integer`}
	if len(idx) != len(want) {
		t.Fatalf("rejected %v, want %v", idx, want)
	}
	for i := range want {
		if !strings.HasPrefix(idx[i], want[i]) {
			t.Errorf("rejection %q, want %q…", idx[i], want[i])
		}
	}
	if rows := strings.Join(query(t, "SELECT k, v FROM "+table+" ORDER BY k"), ","); rows != "a|1,c|4" {
		t.Errorf("rows %s, want a|1,c|4", rows)
	}
	// Default mapping, no record has the key field: each is rejected.
	dm := sdktest.Sink(t, Plugin, "dm", map[string]any{"url": pgURL, "table": table, "mode": ModeUpsert, "key": []string{"k"}})
	got = rejected(t, dm.Write(ctx, batch(1, 0, `{"v":1}`, `{"v":2}`)))
	if len(got) != 2 || !strings.Contains(got[1].Reason, `upsert key column "k" would be NULL`) {
		t.Errorf("default mapping without the key field: %v", got)
	}
}

// TestRejectsOldOffsetsTable: an offsets table made before rejections
// existed gets its rejected column at Open, and its row keeps working.
func TestRejectsOldOffsetsTable(t *testing.T) {
	_, q := schema(t)
	table := q("old")
	sqlExec(t, "CREATE TABLE "+table+" (id text, n int)")
	sqlExec(t, "CREATE TABLE "+q(DefaultOffsetsTable)+` (pipeline text PRIMARY KEY, batch bigint NOT NULL, until jsonb NOT NULL, updated timestamptz NOT NULL)`)
	sqlExec(t, "INSERT INTO "+q(DefaultOffsetsTable)+` VALUES ('p', 4, '{"t": {"0": 10}}', now())`)
	s := open(t, map[string]any{"table": table})
	c, err := s.(sdk.Transactional).LastCommitted(ctx)
	if err != nil || c.Batch != 4 || !c.Until.Equal(sdk.Offsets{"t/0": 10}) {
		t.Fatalf("LastCommitted %+v, %v: want batch 4 from the old table", c, err)
	}
	// Batch 4 written again: committed before, without rejections.
	if err := s.Write(ctx, batch(4, 9, `{"id":"z","n":"bad"}`)); err != nil {
		t.Errorf("batch 4 written again: %v, want nil (committed before without rejections)", err)
	}
	got := rejected(t, s.Write(ctx, batch(5, 10, `{"id":"a","n":1}`, `{"id":"b","n":"bad"}`)))
	if len(got) != 1 || got[0].Index != 1 {
		t.Errorf("rejected %v, want record 1", got)
	}
	if rows := query(t, "SELECT batch, jsonb_array_length(rejected) FROM "+q(DefaultOffsetsTable)); len(rows) != 1 || rows[0] != "5|1" {
		t.Errorf("offsets row %v, want batch 5 with 1 rejection", rows)
	}
}

// TestUpsertPositionIndex: with the upsert key on partition, offset and
// index, the records a processor added after a source record (sharing its
// position, Index 1, 2) are rows of their own, and writing them again
// changes nothing.
func TestUpsertPositionIndex(t *testing.T) {
	_, q := schema(t)
	table := q("pos")
	s := open(t, map[string]any{"table": table, "mode": ModeUpsert, "key": []string{"part", "off", "idx"}, "create": true,
		"columns": []string{"part = partition", "off = offset", "idx = index", "pos = position", "v = value.v"}})
	b := batch(1, 0, `{"v":"a"}`, `{"v":"a1"}`, `{"v":"a2"}`, `{"v":"b"}`)
	for i := 1; i < 3; i++ {
		b.Records[i].Position = sdk.Position{Partition: "t/0", Offset: 0, Index: i}
	}
	b.Records[3].Position.Offset = 1
	b.Until = sdk.Offsets{"t/0": 2}
	write(t, s, b)
	want := "t/0|0|0|t/0@0|a,t/0|0|1|t/0@0#1|a1,t/0|0|2|t/0@0#2|a2,t/0|1|0|t/0@1|b"
	if rows := strings.Join(query(t, "SELECT part, off, idx, pos, v FROM "+table+" ORDER BY off, idx"), ","); rows != want {
		t.Errorf("rows %s\nwant %s", rows, want)
	}
	// The same records in a later batch (an idempotent rewrite).
	b.ID, b.From, b.Until = 2, sdk.Offsets{"t/0": 2}, sdk.Offsets{"t/0": 3}
	write(t, s, b)
	if rows := strings.Join(query(t, "SELECT part, off, idx, pos, v FROM "+table+" ORDER BY off, idx"), ","); rows != want {
		t.Errorf("after a rewrite: rows %s\nwant %s", rows, want)
	}
}

// TestRejectsDeferredConstraint: a deferred foreign key that only COMMIT
// checks is found too (the batch runs again with the constraints checked
// by each statement), with COPY and with INSERT.
func TestRejectsDeferredConstraint(t *testing.T) {
	for _, method := range []string{MethodCopy, MethodInsert} {
		t.Run(method, func(t *testing.T) {
			_, q := schema(t)
			table := refTable(t, q, "def_"+method)
			s := open(t, map[string]any{"table": table, "method": method})
			got := rejected(t, s.Write(ctx, batch(1, 0, `{"id":"a","ref":"p1"}`, `{"id":"b","ref":"nope"}`, `{"id":"c"}`)))
			if len(got) != 1 || got[0].Index != 1 || !strings.HasSuffix(got[0].Reason, "[SQLSTATE 23503]") {
				t.Errorf("rejected %v, want record 1 for its foreign key", got)
			}
			if rows := strings.Join(query(t, "SELECT id FROM "+table+" ORDER BY id"), ","); rows != "a,c" {
				t.Errorf("rows %s, want a,c", rows)
			}
		})
	}
}
