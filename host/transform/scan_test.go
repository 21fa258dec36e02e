package transform

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// scanSeeds are values on both sides of what the scanner takes on itself.
var scanSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, "{\n\t\"a\" : 1 ,\r\"b\":[ ]}", `{"a":-0.5e+3,"b":true,"c":false,"d":null}`,
	`{"a":{"b":{"c":[1,2,{"d":"e"}]}}}`, `{"id":"0-17","partition":0,"offset":17,"pad":"xxxx"}`,
	`{"a":"x\"y\\z\/\b\f\n\r\t"}`, `{"a":"\u00e9"}`, `{"a\n":1}`, `{"é":"ü€😀"}`,
	`{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"b":1,"b":2}]}`, `{"a":1} {}`, `{"a":1}x`, `{"a":1`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`, `{"a":+1}`, `{"a":tru}`, `{"a":nul}`,
	`{"a":[1,]}`, `{"a":[,1]}`, `{"a":{,}}`, `{"a":{"b"}}`, `{"a" 1}`, `{a:1}`, `{"a":1,}`, `{,"a":1}`,
	"{\"a\":\"\xff\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\xef\xbf\xbd\"}", `{"a":"\x"}`,
	`{"a":"\ud800"}`, `{"a":"unterminated}`, `[1]`, `"s"`, `1`, `null`, ``, ` `, "\x00", `{"a":[[[[[[[[]]]]]]]]}`,
}

// TestScanAgrees checks that the scanner takes only objects the decoder
// takes, and reads them into the same fields.
func TestScanAgrees(t *testing.T) {
	for _, s := range scanSeeds {
		checkScan(t, []byte(s))
	}
	// Objects the scanner must take (else it is no faster).
	for _, s := range []string{`{"id":"0-17","partition":0,"offset":17,"pad":"xxxx"}`, `{"a":{"b":[1,{"c":null}]}}`, `{"a":"x\n"}`} {
		var o object
		if !o.scanObject([]byte(s)) || !o.compact {
			t.Errorf("the scanner leaves %s to the decoder, or finds it not compact", s)
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkScan(t, b) })
}

// checkScan compares the scanner with the decoder on b.
func checkScan(t *testing.T, b []byte) {
	t.Helper()
	fast := object{codec: &jsonCodec{}}
	slow := object{codec: &jsonCodec{}}
	ok := fast.scanObject(b)
	v, err := slow.parseSlow(b)
	if !ok {
		return // the decoder decides
	}
	if err != nil {
		t.Fatalf("%q: the scanner takes it, the decoder says %v (%v)", b, err, v)
	}
	if got, want := describe(fast.fields), describe(slow.fields); got != want {
		t.Fatalf("%q: the scanner reads %s, the decoder %s", b, got, want)
	}
	// Adding fields: the splice writes what the field-by-field encoding does.
	if fast.find("new") != nil || fast.find("n") != nil {
		return
	}
	for _, o := range []*object{&fast, &slow} {
		if err := o.set(path{"new"}, int64(1)); err != nil {
			t.Fatal(err)
		}
		if err := o.set(path{"n", "m"}, "x"); err != nil {
			t.Fatal(err)
		}
	}
	spliced, err1 := fast.encode(nil)
	fast.compact = false
	whole, err2 := fast.encode(nil)
	if err1 != nil || err2 != nil || string(spliced) != string(whole) {
		t.Fatalf("%q: spliced %s (%v), encoded %s (%v)", b, spliced, err1, whole, err2)
	}
}

func describe(fs []field) string {
	s := ""
	for _, f := range fs {
		s += fmt.Sprintf("[%q %q %q]", f.rawName, f.name, f.raw)
	}
	return s
}

// TestPlain8 checks the eight-byte test against each byte, every value at
// every position.
func TestPlain8(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			for _, fill := range []byte{'a', ' ', 0x7f, '"', 0x1f} {
				var b [8]byte
				want := true
				for i := range b {
					b[i] = fill
					if i == pos {
						b[i] = byte(c)
					}
					want = want && plain(b[i])
				}
				if got := plain8(binary.LittleEndian.Uint64(b[:])); got != want {
					t.Fatalf("plain8(%q) = %v", b, got)
				}
			}
		}
	}
}
