package sdk

import (
	"context"
	"time"
)

// Limits bound one batch. The host fills them from the pipeline's batch policy.
type Limits struct {
	// MaxRecords is the most records a batch may hold (always > 0).
	MaxRecords int
	// MaxBytes is the most bytes (Record.Size) a batch may hold; 0 means no limit.
	// A single record larger than MaxBytes is still returned, alone.
	MaxBytes int64
	// MaxWait is how long Read may wait for data when it has less than a full
	// batch. Read returns what it has, possibly nothing, when it runs out.
	MaxWait time.Duration
	// Stop, when not nil, is where reading must stop (drain mode): Read
	// returns records only of partitions in Stop, and never one at or past
	// Stop[p].
	Stop Offsets
}

// Read is what Source.Read returns: the records of one batch and the range they
// cover.
type Read struct {
	// Records in the order they must be written. Each Position.Partition must be
	// a partition of Until.
	Records []Record
	// From holds where each partition of Until started, with -2/-1 and absent
	// partitions resolved to real offsets. It may be nil when the request's from
	// already held only real offsets for every partition.
	From Offsets
	// Until holds, for every partition the batch read from, the offset after
	// the last record read. Partitions with nothing new may be left out.
	Until Offsets
}

// Source reads records from an external system.
//
// The host calls Open once, then Read (and Replay, Ack) from one goroutine at
// a time, then Close. Ack may run while no Read is in progress only. With
// read_ahead, the host reads batch N+1 (from batch N's until) before it acks
// batch N, and may throw that read away and read the same offsets again.
type Source interface {
	// Open prepares the source for reading with cfg. It must not block on data.
	Open(ctx context.Context, cfg Config) error
	// Read returns the next batch starting at from, within limits. from holds,
	// for each partition the pipeline has seen, the next offset to read; -2
	// means earliest and -1 latest; partitions missing from from start where
	// the source's configuration says. An empty Read (no records) is normal.
	Read(ctx context.Context, from Offsets, limits Limits) (Read, error)
	// Ack tells the source that everything before until is committed. It must
	// not drop data a replay may still need, and correctness must never depend
	// on it (Kafka's group commit, for lag tools).
	Ack(ctx context.Context, until Offsets) error
	// Close releases the source's resources.
	Close(ctx context.Context) error
}

// Replayer is implemented by replayable sources.
type Replayer interface {
	// Replay returns the records of [from, until) again: the same records in
	// the same order as the Read that first returned that range.
	Replay(ctx context.Context, from, until Offsets) ([]Record, error)
}

// Ender is implemented by sources that can say where their data ends now.
type Ender interface {
	// End returns, for every partition, the offset after the last record
	// available now. Drain mode reads up to it and stops.
	End(ctx context.Context) (Offsets, error)
}

// Sink writes records to an external system.
//
// The host calls Open once, then Write from one goroutine at a time, then Close.
type Sink interface {
	// Open prepares the sink for writing with cfg.
	Open(ctx context.Context, cfg Config) error
	// Write writes a batch and returns only when its records are durable. An
	// error means some, all or none of them may have been written; the host
	// will send the same batch again. b's records are valid until Write
	// returns: a sink copies what it keeps of them (see Batch).
	Write(ctx context.Context, b Batch) error
	// Close releases the sink's resources.
	Close(ctx context.Context) error
}

// Committed is what a transactional sink says it committed last.
type Committed struct {
	// Batch is the id of the last batch committed; 0 when none.
	Batch int64
	// Until is that batch's until offsets, as Write received them.
	Until Offsets
	// Rejected are the records of that batch the sink rejected (the
	// *Rejected its Write returned), committed with it. The host reads them
	// when it recovers a batch the sink committed but the host did not, so
	// that a crash between the two commits loses no rejected record: a sink
	// that rejects records must store them with the batch's offsets (in the
	// same transaction) and return them here.
	Rejected []Rejection
}

// Transactional is implemented by transactional sinks: Write stores b.Until
// atomically with the batch's output (the same transaction), keyed by the
// pipeline name in Config.Pipeline.
type Transactional interface {
	// LastCommitted returns the batch this sink committed last for the pipeline.
	LastCommitted(ctx context.Context) (Committed, error)
}

// Lister is implemented by sinks that let the conformance suite read back what
// they hold. It is never called by a running pipeline.
type Lister interface {
	// List returns the value of every record the sink holds for the pipeline,
	// one entry per stored copy (a duplicate appears twice).
	List(ctx context.Context) ([][]byte, error)
}

// Processor transforms the records of a batch between the source and the sink
// (a `transform "name"` block that names the plugin). The host calls Open
// once, then Process from one goroutine at a time, then Close.
type Processor interface {
	// Open prepares the processor with cfg.
	Open(ctx context.Context, cfg Config) error
	// Process returns the records batch b becomes: it may drop, change or
	// add records. Every record it returns carries the Position of the input
	// record it was made from (an added record takes the position of the
	// record it came from; the host then numbers records that share a
	// position in Position.Index). b.Records are valid until Process returns.
	//
	// A processor that refuses some input records returns what the others
	// became and a *Rejected listing the refused ones (indexes into
	// b.Records). Any other error fails the batch: the host restarts the
	// processor and sends the batch again.
	//
	// A processor that declares CapDeterministic returns the same records
	// for the same batch every time: no clock, no randomness, no state
	// carried from one batch to the next.
	Process(ctx context.Context, b Batch) ([]Record, error)
	// Close releases the processor's resources.
	Close(ctx context.Context) error
}
