// Package sdk is what a connectd plugin author imports, and nothing else of connectd.
//
// A plugin is a program whose main calls Serve once. It offers a source, a
// sink, a processor or several; each role is a small interface (Source, Sink,
// Processor) with ctx first, and optional abilities are extra interfaces found
// by type assertion, in the style of database/sql/driver:
//
//   - Replayer: a replayable source reads a range [from, until) again and
//     returns the same records in the same order.
//   - Ender: a source that can say where its data ends now (used by drain mode).
//   - Transactional: a sink that stores a batch's until offsets atomically with
//     its output and can say which batch it committed last.
//   - Lister: a sink that can list the record ids it holds (conformance only).
//
// A batch's records are valid until Write (Process) returns: the sdk reuses
// their memory for the next batch, and a sink copies what it keeps (see
// Batch and PoisonEnv).
//
// A sink's Write or a processor's Process that refuses single records returns
// a *Rejected (Reject) listing them; the pipeline decides what becomes of them.
//
// What a plugin can do is declared in its Spec (capabilities and configuration
// parameters); the host validates pipelines against specs before it runs them
// and refuses a delivery guarantee the plugins cannot keep.
package sdk
