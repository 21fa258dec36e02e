// Package file owns the "file" source (lines of local files) and the "file" sink (lines into a directory).
package file

import (
	"github.com/connectd/connectd/sdk"
)

// Plugin is the file plugin: a source and a sink, both named "file".
var Plugin = sdk.Plugin{
	Source: &sdk.SourcePlugin{Spec: SourceSpec, New: func() sdk.Source { return &Source{} }},
	Sink:   &sdk.SinkPlugin{Spec: SinkSpec, New: func() sdk.Sink { return &Sink{} }},
}

// SourceSpec is the file source's spec.
var SourceSpec = sdk.Spec{
	Name:    "file",
	Version: "0.1.0",
	Kind:    sdk.KindSource,
	Summary: "Reads lines of local files, one record per line; every file is a partition and its offsets are byte offsets.",
	Capabilities: []sdk.Capability{
		sdk.CapReplayable, sdk.CapSplittable,
	},
	Params: []sdk.Param{
		{Name: "paths", Type: sdk.TypeStrings, Required: true,
			Doc: `Files to read, as paths or globs (filepath.Glob syntax, e.g. "in/*.log"). Every matching file is a partition named by its cleaned path ("./a.txt" when the path has no directory); files that appear later are picked up. Files must only grow by appends. In a pipeline with parallelism N, a file belongs to task FNV-1a(partition name) mod N.`},
		{Name: "poll", Type: sdk.TypeDuration, Default: "200ms", Min: "1ms",
			Doc: "How often a read waiting for new lines looks at the files again (within the batch's max wait)."},
	},
}

// SinkSpec is the file sink's spec.
var SinkSpec = sdk.Spec{
	Name:    "file",
	Version: "0.1.0",
	Kind:    sdk.KindSink,
	Summary: "Writes every record's value as a line into files in a directory; readers never see a partial file or a torn line.",
	When: []sdk.Conditional{
		{Capability: sdk.CapIdempotent, Param: "mode", Values: []string{ModeBatch}},
		{Capability: sdk.CapTransactional, Param: "mode", Values: []string{ModeTransactional}},
	},
	Params: []sdk.Param{
		{Name: "dir", Type: sdk.TypeString, Required: true, Pattern: `.+`,
			Doc: "Directory the files are written to; created when missing. Give each pipeline its own directory. A pipeline with parallelism > 1 writes each task into the subdirectory dir/<task name> (\"orders-0\", …)."},
		{Name: "mode", Type: sdk.TypeString, Default: ModeBatch, Enum: []string{ModeBatch, ModeAppend, ModeTransactional},
			Doc: `"batch": one file per batch, dir/batch-<id, 12 digits>.txt, written atomically (idempotent: a replay rewrites the same file). ` +
				`"append": all batches appended to one file (at-least-once only; a torn tail left by a crash is cut when the sink opens). ` +
				`"transactional": as "batch", plus the batch's until offsets in dir/.offsets/, committed by the batch file's rename (transactional).`},
		{Name: "file", Type: sdk.TypeString, Default: "records.txt", Pattern: `[^./\\][^/\\]*`,
			Doc: `Name of the file inside dir that "append" mode writes to: a plain file name, not starting with ".".`},
		{Name: "fsync", Type: sdk.TypeBool, Default: true,
			Doc: "Flush files and directory entries to disk before a write returns; without it a machine crash can lose acknowledged batches."},
	},
}
