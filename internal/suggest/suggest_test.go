package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"batch", "append", "transactional", "PLAIN"}
	tests := []struct{ given, want string }{
		{"apend", "append"}, // one deletion
		{"bacth", "batch"},  // a swap is two edits; 2*2 <= 5
		{"Batch", "batch"},  // case is ignored
		{"plain", "PLAIN"},  //
		{"transactionl", "transactional"},
		{"sideways", ""}, // nothing near
		{"ab", ""},       // one edit from nothing, but too short to guess
		{"", ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.given, names); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.given, got, tt.want)
		}
	}
}
