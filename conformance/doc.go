// Package conformance proves the delivery guarantees a source or sink plugin
// claims: it runs real pipelines over known input, crashes them at every
// fault point of the commit protocol and with seeded random SIGKILLs, restarts
// and drains them, reads the sink back and counts lost and duplicated record
// ids. It also checks the plugin contracts directly, without crashes: a
// replayed range returns the same records, rewriting a batch into an
// idempotent sink changes nothing, a transactional sink reports the batch it
// committed.
//
// The same suite runs from `go test` (Run, Test) and from the command line
// (`connectd conformance`). Every pipeline runs in child processes, so that a
// crash is a real crash: the running executable (the connectd binary, or the
// author's test binary) is re-executed as the host and as the server of the
// bundled plugins. Child recognises those children by an environment
// variable and serves them; in a test binary this package's init calls it
// (with the suite's helper plugins: generator, file and discard), and the
// connectd binary calls it first in main (with every bundled plugin). The
// package links no bundled plugin of an external system: a plugin author's
// test builds only the sdk, the host and the three helpers. docs/conformance.md
// has the whole design.
//
// Verdicts follow the guarantees as docs/architecture.md defines them:
// at-most-once holds iff no id is duplicated, at-least-once iff none is lost,
// exactly-once iff both. A record the sink holds that the input never had
// fails every guarantee.
package conformance
