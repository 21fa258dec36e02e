// Package transform is the host's built-in transforms: filter, set,
// drop_fields, rename and mask, the `transform "<name>" { … }` blocks of a
// pipeline that the host applies between the source's read and the sink's
// write.
//
// Decode compiles a block once, when the pipeline file is read: its
// expressions are CEL (cel.dev), type-checked against the record's variables
// (key, value, headers, timestamp, position), and an error points into the
// expression's text. A compiled Step then transforms a batch's records with
// Apply. A step is deterministic: the expression environment has no clock,
// no randomness and no I/O, so a replayed batch is transformed into the same
// records. A record a step cannot handle is rejected (an index and a reason),
// never passed on silently; the pipeline's on_record_error decides what
// becomes of it. docs/transforms.md is the user's guide.
package transform
