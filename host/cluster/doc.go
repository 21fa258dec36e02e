// Package cluster shares units (pipelines, or tasks of a pipeline) between
// connectd workers through leases in PostgreSQL: each unit is run by at most
// one live worker at a time, units spread evenly over the live workers, and
// a dead worker's units are taken over within a bounded time.
//
// # Tables
//
// Two tables in the schema of the pipelines' PostgreSQL checkpoint, created
// when missing:
//
//	connectd_worker  id text PRIMARY KEY, host text, pid int, started, heartbeat timestamptz,
//	                 lock_hi, lock_lo bigint (the worker's session lock, see Liveness)
//	connectd_lease   name text PRIMARY KEY (the unit), worker text ('' = free),
//	                 epoch bigint, since, expires timestamptz
//
// # Leases
//
// A lease is a row of connectd_lease with an expiry in the server's clock
// (no clock of a worker's machine is trusted). Its holder renews it every
// TTL/4; a lease is free when it expired, when its holder released it, or
// when its holder's session is gone (Liveness). Taking a free lease adds one
// to its epoch, in one UPDATE whose row lock orders it with every other
// taker: two workers never hold the same epoch, and epochs only grow.
//
// Leases with expiry rather than session-level advisory locks, because a
// session outlives a stopped process: the kernel of a SIGSTOPped worker, or
// of a paused virtual machine, keeps answering TCP keepalives, so its session
// and its advisory locks would stay forever and its units would never move.
// An expiry moves them after TTL whatever the holder's state.
//
// # Liveness
//
// Each worker holds a session-level advisory lock keyed by its id on the
// connection it renews through. When a worker is killed (kill -9, a crash),
// its machine's kernel closes the connection, the server drops the lock, and
// the others take its units at their next tick instead of after TTL. A worker
// counts as live while its heartbeat is younger than TTL and its lock is held;
// units spread as ceil(units / live workers) per worker.
//
// # Fencing
//
// A lease says who should run a unit, not who does: a worker whose lease was
// taken over while it was stopped, or while its connection was cut, may still
// be in the middle of a batch. What it writes is refused by epoch, not by
// time: every checkpoint write carries the epoch and is refused when a newer
// one exists (pgstore.OpenFenced), and so is a transactional sink's commit
// (sdk.Batch.Epoch). A unit that ends with such an error (checkpoint.ErrFenced)
// is dropped by its worker, which goes on with its other units.
//
// # Connection cut while the worker lives
//
// Renewals fail; once the last successful renewal is older than TTL the
// worker stops its units itself (it cannot know whether another took them),
// and keeps retrying the connection. Meanwhile the others take the units over
// after TTL (or sooner, when the server already dropped the session). Once it
// reconnects it takes new leases like a worker that just joined.
package cluster
