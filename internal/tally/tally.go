// Package tally counts record ids in what a sink holds and compares them with
// what went in: the lost and duplicated counts behind every delivery verdict.
// The conformance suite and the end-to-end tests share it.
package tally

import (
	"encoding/json"
	"sort"
)

// ID returns the id of a stored record value: the string "id" field of a
// JSON object, or else the whole value.
func ID(value []byte) string {
	var v struct {
		ID *string `json:"id"`
	}
	if len(value) > 0 && value[0] == '{' && json.Unmarshal(value, &v) == nil && v.ID != nil {
		return *v.ID
	}
	return string(value)
}

// Count returns how many times each id occurs in values.
func Count(values [][]byte) map[string]int {
	seen := make(map[string]int, len(values))
	for _, v := range values {
		seen[ID(v)]++
	}
	return seen
}

// Tally compares the ids a sink holds (seen, with their number of copies)
// with the ids that were input: lost counts input ids not held, duplicated
// the extra copies of input ids, and unexpected lists held ids that were
// never input, sorted.
func Tally(want []string, seen map[string]int) (lost, duplicated int, unexpected []string) {
	w := make(map[string]bool, len(want))
	for _, id := range want {
		w[id] = true
		switch n := seen[id]; {
		case n == 0:
			lost++
		case n > 1:
			duplicated += n - 1
		}
	}
	for id := range seen {
		if !w[id] {
			unexpected = append(unexpected, id)
		}
	}
	sort.Strings(unexpected)
	return lost, duplicated, unexpected
}
