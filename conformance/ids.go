package conformance

import "github.com/connectd/connectd/internal/tally"

// ID returns the id of a stored record value: the string "id" field of a
// JSON object, or else the whole value.
func ID(value []byte) string { return tally.ID(value) }

// Count returns how many times each id occurs in values.
func Count(values [][]byte) map[string]int { return tally.Count(values) }

// Tally compares the ids a sink holds (seen, with their number of copies)
// with the ids that were input: lost counts input ids not held, duplicated
// the extra copies of input ids, and unexpected lists held ids that were
// never input, sorted.
func Tally(want []string, seen map[string]int) (lost, duplicated int, unexpected []string) {
	return tally.Tally(want, seen)
}
