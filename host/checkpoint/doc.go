// Package checkpoint owns a pipeline's durable progress: which batches were
// planned and which were committed, in one directory per pipeline.
//
// # On-disk format
//
// A checkpoint directory holds four files:
//
//	meta.json    {"format":1,"pipeline":"demo","created":"2026-01-02T15:04:05.999999999Z"}
//	offsets.log  the offset log: one line per planned batch, appended before the batch is written
//	commits.log  the commit log: one line per finished batch, appended after the sink made it durable
//	lock         holds the pid of the process that has the checkpoint open (flock'ed while open)
//
// Both logs are append-only text, one entry per line:
//
//	v1 <crc32c of the JSON, 8 lowercase hex digits> <JSON>\n
//
// An offset log entry's JSON is
//
//	{"batch":7,"time":"2026-01-02T15:04:05.123456789Z","from":{"orders":{"0":23}},"until":{"orders":{"0":42}},"records":19,"kind":"batch","note":"..."}
//
// where from and until are offsets in Spark's JSON form (see sdk.Offsets),
// kind is "batch" or "reset" and note is omitted when empty. A commit log
// entry's JSON is {"batch":7,"time":"..."}.
//
// Batch ids start at 1 and grow by one. The same id may appear again as the
// newest offset log entry: a re-plan of a batch that was never committed, which
// replaces the earlier line. Commits are increasing and name batches of the
// offset log; a committed batch is never planned again.
//
// # Durability
//
// Every append is written with one write call and fsync'ed before Plan, Commit
// or Reset return; creating or renaming a file also fsyncs the directory. A
// crash in the middle of an append leaves a final line without its newline:
// Open cuts it away, because that append never returned. Anything else that is
// wrong (a bad checksum, bad JSON, an unknown version prefix, ids out of order,
// a commit of an unknown batch) makes Open fail with an error that names the
// file and the line; a checkpoint is never silently started from scratch.
//
// When the offset log holds more than 1000 lines, both logs are compacted to
// the newest 200 batches (so at least the last 100 batches are always kept):
// each log is rewritten into a temporary file, fsync'ed and renamed over the
// old one, the commit log first, so a crash at any point leaves a consistent
// checkpoint.
//
// # Locking
//
// Open takes an exclusive, non-blocking flock on the lock file for as long as
// the Store is open; a second Open, from any process, fails with ErrLocked.
// The kernel drops the lock when its holder dies, even by kill -9. Inspect
// reads a checkpoint without the lock, for tools that show it while the
// pipeline runs.
//
// # Other media
//
// New opens the same Store over a Medium that keeps the two logs elsewhere,
// such as PostgreSQL tables (package pgstore): the lines, checks, rules,
// history and compaction are the same; the Medium stores lines in order and
// holds the lock.
package checkpoint
