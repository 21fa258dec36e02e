// Package suggest finds the likely intended word for a misspelt one: the
// "did you mean" of the host's diagnostics and of the sdk's parameter checks.
package suggest

import "strings"

// Closest returns the name nearest to given, if it is near enough to be a
// likely misspelling (edit distance < 3, ignoring case, and at most half the
// length of given), or "". Ties go to the earlier name.
func Closest(given string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(given), strings.ToLower(n)); d < bestD && 2*d <= len(given) {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
