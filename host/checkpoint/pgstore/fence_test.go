package pgstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/connectd/connectd/host/checkpoint"
	"github.com/connectd/connectd/internal/pg/pgtest"
)

// leaseTable creates the columns of LeaseTable a fenced store reads (package
// cluster makes the real one) with pipeline "demo" leased to worker at epoch.
func leaseTable(t *testing.T, schema, worker string, epoch int64) {
	t.Helper()
	exec1(t, fmt.Sprintf("CREATE TABLE %q.%s (name text PRIMARY KEY, worker text NOT NULL, epoch bigint NOT NULL)", schema, LeaseTable))
	exec1(t, fmt.Sprintf("INSERT INTO %q.%s VALUES ('demo', $1, $2)", schema, LeaseTable), worker, epoch)
}

// TestFenced: a store opened under lease epoch 1 plans and commits; once
// another worker takes the lease over (epoch 2) its plan and its commit are
// refused with an error that matches checkpoint.ErrFenced and names the new
// holder, nothing of them is stored, and the new holder continues from what
// the old one committed. Fenced stores share the lock with each other, never
// with a plain Open.
func TestFenced(t *testing.T) {
	schema := pgtest.Schema(t, pgURL, "fence")
	leaseTable(t, schema, "a", 1)
	a, err := OpenFenced(ctx, pgURL, schema, "demo", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	planCommit(t, a, 1)
	if err := a.Plan(entry(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, pgURL, schema, "demo"); !errors.Is(err, checkpoint.ErrLocked) {
		t.Errorf("plain Open while a worker holds the checkpoint: %v, want ErrLocked", err)
	}

	exec1(t, fmt.Sprintf("UPDATE %q.%s SET worker = 'b', epoch = 2 WHERE name = 'demo'", schema, LeaseTable))
	before := len(rows(t, schema, checkpoint.OffsetLog)) + len(rows(t, schema, checkpoint.CommitLog))
	err = a.Commit(2)
	if !errors.Is(err, checkpoint.ErrFenced) || !strings.Contains(err.Error(), `fenced: pipeline "demo": this worker's lease (epoch 1) was taken over by worker "b" (epoch 2)`) {
		t.Errorf("commit after the takeover: %v, want a fenced error naming worker b and epoch 2", err)
	}
	a2, err := OpenFenced(ctx, pgURL, schema, "demo", 1) // a restart under the old lease
	if !errors.Is(err, checkpoint.ErrFenced) {
		t.Errorf("OpenFenced under the old epoch: %v, want ErrFenced", err)
		a2.Close()
	}
	b, err := OpenFenced(ctx, pgURL, schema, "demo", 2) // while a still holds its shared lock
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Plan(entry(3)); err == nil {
		t.Error("the old holder planned batch 3 after the takeover")
	}
	if after := len(rows(t, schema, checkpoint.OffsetLog)) + len(rows(t, schema, checkpoint.CommitLog)); after != before {
		t.Errorf("the fenced writes left rows: %d before, %d after", before, after)
	}
	if last, ok, committed := b.Last(); !ok || last.Batch != 2 || committed != 1 {
		t.Errorf("the new holder sees last batch %d (ok %t), committed %d; want batch 2 planned, batch 1 committed", last.Batch, ok, committed)
	}
	if err := b.Commit(2); err != nil {
		t.Errorf("the new holder's commit of the planned batch: %v", err)
	}
	planCommit(t, b, 3)
}
