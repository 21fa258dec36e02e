package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
)

// TestFencedWrite: the sink stores the lease epoch of each batch with its
// offsets and refuses, in the same transaction, a batch whose epoch is lower
// than the stored one (a worker that lost its lease): nothing of it is
// written, and the error matches sdk.ErrFenced and says "fenced". A late
// write of a batch the new holder already committed is refused too, not
// skipped. Epoch 0 (a host without a lease) is never refused.
func TestFencedWrite(t *testing.T) {
	_, q := schema(t)
	table := q("fence")
	sqlExec(t, "CREATE TABLE "+table+" (id text)")
	s := open(t, map[string]any{"table": table})
	b1 := batch(1, 0, `{"id":"a"}`)
	b1.Epoch = 1
	write(t, s, b1)
	b2 := batch(2, 1, `{"id":"b"}`)
	b2.Epoch = 2 // the new holder
	write(t, s, b2)
	if got := query(t, "SELECT batch, epoch FROM "+q("connectd_offsets")); len(got) != 1 || got[0] != "2|2" {
		t.Errorf("offsets row (batch|epoch) = %v, want 2|2", got)
	}
	for _, late := range []sdk.Batch{batch(2, 1, `{"id":"b"}`), batch(3, 2, `{"id":"c"}`)} {
		late.Epoch = 1 // the old holder, resumed
		err := s.Write(ctx, late)
		if !errors.Is(err, sdk.ErrFenced) || !strings.Contains(err.Error(), "fenced") || !strings.Contains(err.Error(), "lease epoch 1 is older than epoch 2") {
			t.Errorf("batch %d under epoch 1 after epoch 2 committed: %v, want a fenced error", late.ID, err)
		}
	}
	if n := count(t, table); n != 2 {
		t.Errorf("%d rows after the fenced writes, want 2", n)
	}
	b3 := batch(3, 2, `{"id":"c"}`) // epoch 0: no lease, not fenced
	write(t, s, b3)
	if got := query(t, "SELECT batch, epoch FROM "+q("connectd_offsets")); len(got) != 1 || got[0] != "3|2" {
		t.Errorf("offsets row (batch|epoch) after an epoch-0 batch = %v, want 3|2 (the epoch never goes down)", got)
	}
}

// TestOffsetsTableGetsEpoch: an offsets table made before epochs existed gets
// the column, its row epoch 0, and keeps working.
func TestOffsetsTableGetsEpoch(t *testing.T) {
	_, q := schema(t)
	table := q("old")
	sqlExec(t, "CREATE TABLE "+table+" (id text)")
	sqlExec(t, "CREATE TABLE "+q("connectd_offsets")+" (pipeline text PRIMARY KEY, batch bigint NOT NULL, until jsonb NOT NULL, updated timestamptz NOT NULL, rejected jsonb)")
	sqlExec(t, "INSERT INTO "+q("connectd_offsets")+" VALUES ('p', 1, '{\"t\": {\"0\": 1}}', now(), NULL)")
	s := open(t, map[string]any{"table": table})
	b := batch(2, 1, `{"id":"b"}`)
	b.Epoch = 5
	write(t, s, b)
	if got := query(t, "SELECT batch, epoch FROM "+q("connectd_offsets")); len(got) != 1 || got[0] != "2|5" {
		t.Errorf("offsets row (batch|epoch) = %v, want 2|5", got)
	}
}
