package transform

import (
	"testing"

	"github.com/connectd/connectd/sdk"
)

// FuzzSteps feeds arbitrary values to every built-in: none may panic or
// change its input, and every record is either passed on or rejected (a
// filter may also drop it).
func FuzzSteps(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":{"c":"x"}}`, `{"a":"\u00e9","b":[1,{"c":null}]}`, `[]`, `"s"`, `1e999`, `{"a":{"a":{"a":{}}}}`, `{"a":"\u00e9\n","b":{"c":"\ud83d\ude00"}}`, `{"b":1,"b":2}`, "{\"a\":\"\xff\"}", ``, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		t.Setenv("MASK_KEY", "k")
		steps, diags := decodeFile(t, `
transform "filter" { where = "has(value.a) || value == b'' || size(value) > 3" }
transform "set" {
  fields  = { "b.c" = "has(value.a) ? value.a : null", "d" = "value" }
  key     = "string(value.a)"
  headers = { "x" = "string(value.b)" }
}
transform "drop_fields" { fields = ["a", "b.c"] }
transform "rename" { fields = { "b.c" = "e", "a" = "b.f" } }
transform "mask" {
  fields = ["a", "b.c", "b"]
  key    = env("MASK_KEY")
}
`)
		if len(diags) > 0 {
			t.Fatal(diags)
		}
		orig := string(v)
		for _, s := range steps {
			out, rej := s.Apply([]sdk.Record{{Value: v}})
			if string(v) != orig {
				t.Fatalf("%s changed its input %q to %q", s.Name(), orig, v)
			}
			n := len(out) + len(rej)
			if n > 1 || (n == 0 && s.Name() != "filter") {
				t.Fatalf("%s on %q: %d out, %d rejected", s.Name(), v, len(out), len(rej))
			}
		}
	})
}
