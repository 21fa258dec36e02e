package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/connectd/connectd/sdk"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Tombstones (sdk.Record.Tombstone: the value is null, a Kafka tombstone).
//
// In upsert mode a tombstone deletes the row of its key: its upsert key
// columns must come from what a tombstone has (key, header.<name>,
// partition, …), not from the value; one that takes a key column from the
// value, or whose key would be NULL, is refused (a rejection, or with
// on_record_error = "fail" a failed batch). The batch's transaction deletes
// the tombstones' keys first, then upserts the rows, leaving out a row that
// a later tombstone of its key in the batch deletes: every key ends as the
// last record of it in the batch says (a value after a tombstone is a fresh
// row). Keys are compared as the text the records give (a batch holding an
// integer key as "01" and as "1" is applied delete first). Deleting a key
// that has no row deletes nothing, so a replay converges.
//
// In insert mode a tombstone is a row like any other record, whose columns
// from the value (value, value.<field>) are NULL. Without columns (the
// value's fields name the columns) a tombstone has no row and is refused.

// deletes are the upsert keys a batch's tombstones delete.
type deletes struct {
	cols []int           // the key columns: indexes into prepared.cols
	keys [][]pgtype.Text // per key column, one text per tombstone
	rec  []int           // the batch index of each tombstone
	last map[string]int  // key text → batch index of its last tombstone
	buf  strings.Builder // scratch for a key's text
	n    int             // tombstones
}

// readsValue reports whether src is the value or a field of it, which a
// tombstone does not have.
func (s source) readsValue() bool { return s.kind == srcValue || s.kind == srcField }

// unmappedTombstone is the reason a tombstone is refused when columns is
// empty (the value's fields would name the columns).
func (s *Sink) unmappedTombstone() string {
	if s.mode == ModeUpsert {
		return `the record is a tombstone (a null value), and without columns the upsert key comes from fields of the value, which it does not have; map the key columns from the record key (such as "id text = key") to delete by it`
	}
	return `the record is a tombstone (a null value), and without columns a row's columns come from fields of the value, which it does not have; map columns (such as "id text = key") to write it as a row`
}

// addTombstone adds the upsert key of the tombstone recs[i] to p's deletes,
// or refuses it when it cannot give one.
func (s *Sink) addTombstone(p *prepared, maps []mapping, isKey []bool, rc *record, i int, rf *refuser, scratch []byte) error {
	d := p.del
	if d == nil {
		d = &deletes{last: map[string]int{}}
		for j := range maps {
			if isKey[j] {
				d.cols = append(d.cols, j)
			}
		}
		d.keys = make([][]pgtype.Text, len(d.cols))
		p.del = d
	}
	d.buf.Reset()
	vals := make([]string, 0, len(d.cols))
	for _, j := range d.cols {
		m := maps[j]
		if m.src.readsValue() {
			return rf.refuse(i, fmt.Sprintf("the record is a tombstone (a null value), and upsert key column %q comes from %s, which it does not have; map the key from the record key (such as \"%s text = key\") to delete by it", m.column, m.src.text, m.column))
		}
		t, null, err := rc.text(m.src, p.cols[j], scratch)
		switch {
		case err != nil:
			return rf.refuse(i, fmt.Sprintf("column %q: %v", m.column, err))
		case null:
			return rf.refuse(i, fmt.Sprintf("the record is a tombstone, and its upsert key column %q would be NULL (source %s)", m.column, m.src.text))
		}
		vals = append(vals, string(t))
		d.buf.Write(t)
		d.buf.WriteByte(0) // text() refuses NUL bytes, bytea is hex: 0 separates
	}
	for k, v := range vals {
		d.keys[k] = append(d.keys[k], pgtype.Text{String: v, Valid: true})
	}
	d.last[d.buf.String()] = i
	d.rec = append(d.rec, i)
	d.n++
	return nil
}

// supersede leaves out the rows that a later tombstone of the same key in
// the batch deletes (upsert mode: the rows are in p.arrs).
func (p *prepared) supersede() {
	d := p.del
	if d == nil || p.n == 0 {
		return
	}
	kept := 0
	for r := 0; r < p.n; r++ {
		d.buf.Reset()
		for _, j := range d.cols {
			d.buf.WriteString(p.arrs[j][r].String)
			d.buf.WriteByte(0)
		}
		if t, ok := d.last[d.buf.String()]; ok && t > p.rec[r] {
			continue
		}
		for j := range p.arrs {
			p.arrs[j][kept] = p.arrs[j][r]
		}
		p.rec[kept] = p.rec[r]
		kept++
	}
	for j := range p.arrs {
		p.arrs[j] = p.arrs[j][:kept]
	}
	p.rec = p.rec[:kept]
	p.n = kept
}

// deleteKeys deletes the rows of the keys of tombstones [lo, hi) with one
// DELETE joined to unnest()ed text arrays, cast to the key columns' types.
func (s *Sink) deleteKeys(ctx context.Context, tx pgx.Tx, p *prepared, lo, hi int) error {
	d := p.del
	var using, where []string
	args := make([]any, len(d.cols))
	for k, j := range d.cols {
		c := p.cols[j]
		alias := "c" + strconv.Itoa(k)
		using = append(using, "$"+strconv.Itoa(k+1)+"::text[]")
		where = append(where, "t."+pgx.Identifier{c.name}.Sanitize()+" = (u."+alias+")::"+c.typ)
		args[k] = d.keys[k][lo:hi]
	}
	aliases := make([]string, len(d.cols))
	for k := range aliases {
		aliases[k] = "c" + strconv.Itoa(k)
	}
	sql := "DELETE FROM " + s.table + " AS t USING unnest(" + strings.Join(using, ", ") + ") AS u(" + strings.Join(aliases, ", ") + ") WHERE " + strings.Join(where, " AND ")
	_, err := tx.Exec(ctx, sql, args...)
	return err
}

// deleteTombstones runs the batch's deletes in w's transaction: all at
// once, or in careful mode one per savepoint, rejecting a tombstone whose
// key PostgreSQL refuses (a key text its column's type cannot take).
func (s *Sink) deleteTombstones(ctx context.Context, tx pgx.Tx, w *txWrite, rejects *[]sdk.Rejection) error {
	d := w.rows.del
	if d == nil || d.n == 0 {
		return nil
	}
	if !w.careful {
		return s.deleteKeys(ctx, tx, w.rows, 0, d.n)
	}
	for k := 0; k < d.n; k++ {
		sp, err := tx.Begin(ctx) // SAVEPOINT
		if err != nil {
			return err
		}
		err = s.deleteKeys(ctx, sp, w.rows, k, k+1)
		if err == nil {
			if err := sp.Commit(ctx); err != nil { // RELEASE SAVEPOINT
				return err
			}
			continue
		}
		if !rowRefused(err) {
			return err
		}
		if err := sp.Rollback(ctx); err != nil { // ROLLBACK TO SAVEPOINT
			return err
		}
		*rejects = append(*rejects, sdk.Rejection{Index: d.rec[k], Reason: refusal(err)})
	}
	return nil
}
