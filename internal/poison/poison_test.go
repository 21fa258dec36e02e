package poison

import (
	"strings"
	"testing"
)

// Fill repeats Pattern from the start of any buffer; In finds it in a
// poisoned value of any length from 4 bytes, also inside other bytes, and
// never in an ordinary value.
func TestFillIn(t *testing.T) {
	for _, n := range []int{0, 1, 4, 10, 61, 100, 1000} {
		b := make([]byte, n)
		Fill(b)
		if want := strings.Repeat(Pattern, n/len(Pattern)+1)[:n]; string(b) != want {
			t.Errorf("Fill of %d bytes = %q, want %q", n, b, want)
		}
		if In(b) != (n >= 4) {
			t.Errorf("In(%q) = %v", b, In(b))
		}
	}
	big := make([]byte, 200)
	Fill(big)
	if !In(append([]byte(`{"id":"`), big...)) {
		t.Error("In misses poison inside a value")
	}
	for _, v := range []string{"", "abc", `{"id":"a"}`, "connectd-poison", "a connectd poi"} {
		if In([]byte(v)) {
			t.Errorf("In(%q) = true", v)
		}
	}
}

func TestEnabled(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "1": true} {
		t.Setenv(Env, v)
		if on, err := Enabled(); on != want || err != nil {
			t.Errorf("%s=%q: Enabled() = %v, %v; want %v", Env, v, on, err, want)
		}
	}
	t.Setenv(Env, "true")
	if _, err := Enabled(); err == nil || !strings.Contains(err.Error(), `CONNECTD_POISON="true"`) {
		t.Errorf("%s=true: %v, want an error naming it", Env, err)
	}
}
