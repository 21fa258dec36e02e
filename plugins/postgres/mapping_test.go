package postgres

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
)

// members scans v with scanObject into a map (the last duplicate wins).
func members(v []byte) (map[string]string, error) {
	out := map[string]string{}
	err := scanObject(v, func(name, raw []byte) { out[string(name)] = string(raw) })
	return out, err
}

func TestScanObject(t *testing.T) {
	good := []struct {
		in   string
		want map[string]string
	}{
		{`{}`, map[string]string{}},
		{` { } `, map[string]string{}},
		{`{"a":1}`, map[string]string{"a": "1"}},
		{"{\n\t\"a\" :\r\n \"x,}\\\"y\" , \"b\":[1,{\"c\":\"]\"}],\"d\":{\"e\":{}} ,\"f\":null,\"g\":true,\"h\":-1.5e3}",
			map[string]string{"a": `"x,}\"y"`, "b": `[1,{"c":"]"}]`, "d": `{"e":{}}`, "f": "null", "g": "true", "h": "-1.5e3"}},
		{`{"a\u0062":"x","a\"q":2}`, map[string]string{"ab": `"x"`, `a"q`: "2"}},
		{`{"a":1,"a":2}`, map[string]string{"a": "2"}},
	}
	for _, c := range good {
		got, err := members([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.in, got, c.want)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: member %q = %q, want %q", c.in, k, got[k], v)
			}
		}
	}
	bad := []struct{ in, want string }{
		{``, "not a JSON object"},
		{`[1]`, "not a JSON object"},
		{`"s"`, "not a JSON object"},
		{`{"a":1`, "ends where"},
		{`{"a" 1}`, "':'"},
		{`{"a":}`, "a value"},
		{`{"a":"x}`, "does not end"},
		{`{"a":[1,2}`, "where ']' should be"},
		{`{"a":[1,2`, "not closed"},
		{`{"a":1}x`, "nothing after"},
		{`{a:1}`, "member name"},
		{`{"a":1,}`, "member name"},
		{`{"a":1 "b":2}`, "',' or '}'"},
	}
	for _, c := range bad {
		if _, err := members([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one with %q", c.in, err, c.want)
		}
	}
}

// FuzzScanObject: on every valid JSON object, scanObject finds the members
// encoding/json finds, with the same raw values.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"id":"0-1","partition":0,"offset":1,"pad":"xxx"}`, `{"a":{"b":[1,"]}"]},"c":"\u00e9\n"}`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(v, &want) != nil || want == nil || !bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) {
			return
		}
		got, err := members(v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, encoding/json finds %d", v, len(got), len(want))
		}
		for k, raw := range want {
			if got[k] != strings.TrimSpace(string(raw)) {
				t.Fatalf("%q: member %q = %q, encoding/json: %q", v, k, got[k], raw)
			}
		}
	})
}

// TestText: what each source gives each kind of column.
func TestText(t *testing.T) {
	r := &sdk.Record{Value: []byte(`{"s":"a\tb","e":"x\"y","n":12,"o":{"k":[1]},"z":null}`), Key: []byte("k1")}
	text := column{typ: "text", kind: kindText}
	jsn := column{typ: "jsonb", kind: kindJSON}
	byt := column{typ: "bytea", kind: kindBytea}
	cases := []struct {
		src  string
		col  column
		want string // "NULL" for null
	}{
		{"value.s", text, "a\tb"},
		{"value.e", text, `x"y`},
		{"value.s", jsn, `"a\tb"`},
		{"value.n", text, "12"},
		{"value.o", text, `{"k":[1]}`},
		{"value.o.k", jsn, `[1]`},
		{"value.z", text, "NULL"},
		{"value.missing", text, "NULL"},
		{"value.n.deeper", text, "NULL"},
		{"key", byt, `\x6b31`},
		{"value.s", byt, `\x610962`},
		{"header.none", text, "NULL"},
	}
	for _, c := range cases {
		src, err := parseSource(c.src)
		if err != nil {
			t.Fatal(err)
		}
		rc := &record{r: r}
		b, null, err := rc.text(src, c.col, nil)
		got := string(b)
		if null {
			got = "NULL"
		}
		if err != nil || got != c.want {
			t.Errorf("%s into %s: %q (%v), want %q", c.src, c.col.typ, got, err, c.want)
		}
	}
	if b := appendCopyText(nil, []byte("a\\b\tc\nd\re"), false); string(b) != `a\\b\tc\nd\re` {
		t.Errorf("COPY escaping: %q", b)
	}
	if b := appendCopyText(nil, nil, true); string(b) != `\N` {
		t.Errorf("COPY null: %q", b)
	}
}

func TestParseColumns(t *testing.T) {
	m, err := parseColumns([]string{"id = value.id", "at timestamp with time zone = timestamp", "  raw   bytea=key "})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m[0].column != "id" || m[0].typ != "" || m[1].typ != "timestamp with time zone" || m[2].column != "raw" || m[2].typ != "bytea" || m[2].src.kind != srcKey {
		t.Errorf("parsed %+v", m)
	}
	for _, bad := range [][]string{{"x"}, {"= value"}, {"a = value.", "b = key"}, {"a = header."}, {"a = key", "a = value"}} {
		if _, err := parseColumns(bad); err == nil {
			t.Errorf("parseColumns(%q) accepted", bad)
		}
	}
}
