package transform

import (
	"encoding/json"
	"math"
	"testing"
)

// TestEncode checks the encoder against encoding/json, which writes the same
// JSON for these values (names sorted, numbers in ECMAScript's form).
func TestEncode(t *testing.T) {
	var c jsonCodec
	for _, v := range []any{
		0.5, 60.0, 1e21, 1e20, 1e-7, 1e-6, 123456789.125, -0.0, -2.5e-10, math.MaxFloat64, math.SmallestNonzeroFloat64,
		int64(-3), uint64(math.MaxUint64), "a\"b\\c\n\u00e9", true, nil,
		[]any{}, map[string]any{}, []any{1.5, "x", map[string]any{"b": nil, "a": []any{false}}},
		map[string]any{"z": int64(1), "a": map[string]any{"y": "q", "b": 2.0}},
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.encode(nil, v)
		if err != nil || string(got) != string(want) {
			t.Errorf("encode(%#v) = %s, %v; want %s", v, got, err, want)
		}
	}
	// Unlike encoding/json, HTML characters are not escaped: the output is
	// for machines, and JSON does not require it.
	if got, _ := c.encode(nil, "<&>"); string(got) != `"<&>"` {
		t.Errorf("encode(<&>) = %s", got)
	}
	for _, v := range []any{math.NaN(), math.Inf(1), "\xff", map[string]any{"\xff": 1}, []any{struct{}{}}} {
		if got, err := c.encode(nil, v); err == nil {
			t.Errorf("encode(%#v) = %s, want an error", v, got)
		}
	}
}
