// Package postgres owns the "postgres" sink: records as rows of a PostgreSQL
// table, each batch in one transaction with the pipeline's offsets
// (transactional), by COPY or INSERT. A record whose row PostgreSQL refuses
// (a constraint, a value its column cannot take) is rejected, and the
// rejections are committed with the offsets, so that a replay of the batch
// returns them again. In upsert mode a tombstone (sdk.Record.Tombstone, a
// null value) deletes the row of its key; in insert mode it is a row whose
// columns from the value are NULL (see tombstone.go).
package postgres

import (
	"github.com/connectd/connectd/sdk"
)

// The sink's modes and write methods.
const (
	ModeInsert = "insert"
	ModeUpsert = "upsert"

	MethodAuto   = "auto"
	MethodCopy   = "copy"
	MethodInsert = "insert"
)

// The values of the on_record_error parameter.
const (
	OnErrorReject = "reject"
	OnErrorFail   = "fail"
)

// DefaultOffsetsTable is where the sink keeps each pipeline's committed
// offsets, in the schema of the table it writes.
const DefaultOffsetsTable = "connectd_offsets"

// copyMin is the smallest batch that method "auto" writes with COPY: below
// it, one INSERT of unnest()ed arrays is faster (BenchmarkSmallBatches: at 4
// records INSERT is about twice as fast, from 16 on COPY is faster).
const copyMin = 16

// Plugin is the postgres plugin: a sink.
var Plugin = sdk.Plugin{
	Sink: &sdk.SinkPlugin{Spec: SinkSpec, New: func() sdk.Sink { return &Sink{} }},
}

// SinkSpec is the postgres sink's spec.
var SinkSpec = sdk.Spec{
	Name:    "postgres",
	Version: "0.1.0",
	Kind:    sdk.KindSink,
	Summary: "Writes records as rows of a PostgreSQL table; each batch is one transaction that also stores the pipeline's offsets (exactly-once even for plain inserts).",
	Capabilities: []sdk.Capability{
		sdk.CapTransactional,
	},
	When: []sdk.Conditional{
		{Capability: sdk.CapIdempotent, Param: "mode", Values: []string{ModeUpsert}},
	},
	Params: []sdk.Param{
		{Name: "url", Type: sdk.TypeString, Required: true,
			Doc: `Connection URL ("postgres://user@host:5432/db?sslmode=disable") or key=value DSN; PG* environment variables and ~/.pgpass apply as in libpq. Give a password with env("PG_URL") or PGPASSWORD; it is never logged.`},
		{Name: "table", Type: sdk.TypeString, Required: true, Pattern: tablePattern,
			Doc: `Table to write: "name" or "schema.name", used exactly as written (case-sensitive).`},
		{Name: "mode", Type: sdk.TypeString, Default: ModeInsert, Enum: []string{ModeInsert, ModeUpsert},
			Doc: `"insert": plain inserts, exactly-once through the transaction alone (no unique key needed). "upsert": INSERT ... ON CONFLICT (key) DO UPDATE, idempotent as well; the last record of a key in a batch wins. A tombstone (a null value) deletes the row of its key in upsert mode; in insert mode its columns from the value are NULL.`},
		{Name: "key", Type: sdk.TypeStrings, Default: []string{},
			Doc: `Columns of the upsert key; upsert mode needs them and a unique index on exactly them (create = true makes them the primary key).`},
		{Name: "columns", Type: sdk.TypeStrings, Default: []string{},
			Doc: `Mapping from records to columns, one "<column> [<type>] = <source>" each: source is value (the whole value), value.<field>[.<field>…] (a field of a JSON object value), key, header.<name>, partition, offset, index (Position.Index: 0 for a source's record, 1, 2, … for the records a processor added after it), position ("<partition>@<offset>", or "<partition>@<offset>#<index>" when index is not 0) or timestamp; the type is used by create (default text, jsonb for value, bigint for offset, integer for index, timestamptz for timestamp). Empty: every top-level field of a JSON object value goes to the column of the same name (fields without a column are ignored; a column no record of the batch has keeps its default).`},
		{Name: "create", Type: sdk.TypeBool, Default: false,
			Doc: `Create the table (and its schema) from columns when it does not exist, with key as primary key.`},
		{Name: "method", Type: sdk.TypeString, Default: MethodAuto, Enum: []string{MethodAuto, MethodCopy, MethodInsert},
			Doc: `How insert mode sends rows: "copy" (COPY FROM STDIN), "insert" (one INSERT of unnest()ed arrays), "auto" (COPY for batches of 16 records or more). Upsert mode always uses INSERT.`},
		{Name: "offsets_table", Type: sdk.TypeString, Default: DefaultOffsetsTable, Pattern: tablePattern,
			Doc: `Table of committed offsets, one row per pipeline (pipeline, batch, until, updated, rejected, epoch: the lease epoch of the last connectd worker that wrote, to fence older ones); created when missing (an older one gets the rejected and epoch columns). Unqualified, it lives in the schema of table.`},
		{Name: "on_record_error", Type: sdk.TypeString, Default: OnErrorReject, Enum: []string{OnErrorReject, OnErrorFail},
			Doc: `What a record that cannot become a row does: PostgreSQL refused it with a data exception (SQLSTATE class 22: a value its column's type cannot take) or an integrity constraint violation (class 23: not-null, unique, check, foreign key), or the sink cannot map it (a value that is not a JSON object, a NUL byte in text, a NULL upsert key). "reject": the batch commits without it, and it is reported to the host with PostgreSQL's reason (stored with the batch's offsets), where the pipeline's on_record_error decides (by default the run fails; "dead_letter" sends it to the dead-letter sink). "fail": the whole batch fails and rolls back (the host retries it, then stops).`},
	},
}
