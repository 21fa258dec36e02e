package elasticsearch

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

func TestParseTemplateErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"logs-{header:x", "not closed"},
		{"logs-{header}", "needs the form"},
		{"logs-{header:}", "needs the form"},
		{"logs-{env:HOME}", `unknown placeholder "env"`},
		{"logs-{field:a..b}", "empty segment"},
	} {
		if _, err := ParseTemplate(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseTemplate(%q) = %v, want an error saying %q", c.in, err, c.want)
		}
	}
}

func TestTemplateRender(t *testing.T) {
	r := sdk.Record{
		Value:     []byte(`{"user":{"region":"eu","n":12,"big":12345678901234567890,"ok":true,"obj":{},"null":null},"s":""}`),
		Headers:   []sdk.Header{{Key: "tenant", Value: []byte("acme")}, {Key: "empty", Value: nil}, {Key: "bad", Value: []byte{0xff}}},
		Timestamp: time.Date(2024, 2, 29, 23, 30, 0, 0, time.FixedZone("X", -3600)),
	}
	for _, c := range []struct{ tmpl, want, err string }{
		{"static", "static", ""},
		{"logs-{{x}", "logs-{x}", ""},
		{"t-{header:tenant}", "t-acme", ""},
		{"d-{timestamp:2006.01.02}", "d-2024.03.01", ""}, // UTC
		{"h-{timestamp:2006-01-02-15}", "h-2024-03-01-00", ""},
		{"f-{field:user.region}-{field:user.n}-{field:user.ok}", "f-eu-12-true", ""},
		{"f-{field:user.big}", "f-12345678901234567890", ""},
		{"{header:tenant}{header:tenant}", "acmeacme", ""},
		{"t-{header:nope}", "", `no header "nope"`},
		{"t-{header:empty}", "", "empty or not UTF-8"},
		{"t-{header:bad}", "", "empty or not UTF-8"},
		{"f-{field:user.obj}", "", "JSON object"},
		{"f-{field:user.null}", "", "null"},
		{"f-{field:user.none}", "", "no such field"},
		{"f-{field:s}", "", "empty string"},
		{"f-{field:user.region.x}", "", "no such field"},
	} {
		tm, err := ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tm.Render(&r)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%q renders %q, %v; want %q", c.tmpl, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.tmpl)):
			t.Errorf("%q: error %v, want one naming the template and saying %q", c.tmpl, err, c.err)
		}
	}
	noTS := r
	noTS.Timestamp = time.Time{}
	tm, _ := ParseTemplate("d-{timestamp:2006}")
	if _, err := tm.Render(&noTS); err == nil || !strings.Contains(err.Error(), "no timestamp") {
		t.Errorf("a record without a timestamp: %v", err)
	}
	notJSON := r
	notJSON.Value = []byte("plain")
	tm, _ = ParseTemplate("f-{field:a}")
	if _, err := tm.Render(&notJSON); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("a value that is not JSON: %v", err)
	}
}

func TestTemplatePattern(t *testing.T) {
	for in, want := range map[string]string{
		"logs":                          "logs",
		"logs-{header:a}":               "logs-*",
		"logs-{header:a}{field:b}-x":    "logs-*-x",
		"{timestamp:2006}-logs":         "*-logs",
		"a-{header:x}-{timestamp:2006}": "a-*-*",
	} {
		tm, err := ParseTemplate(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := tm.Pattern(); got != want {
			t.Errorf("Pattern(%q) = %q, want %q", in, got, want)
		}
		if got := tm.Static(); got != !strings.Contains(in, "{") {
			t.Errorf("Static(%q) = %v", in, got)
		}
	}
}

func TestIDs(t *testing.T) {
	if got := PositionID(sdk.Position{Partition: "orders/3", Offset: 1042}); got != "orders/3@1042" {
		t.Errorf("PositionID = %q", got)
	}
	for k, want := range []string{"orders/3@1042", "orders/3@1042#1", "orders/3@1042#2"} {
		if got := PositionID(sdk.Position{Partition: "orders/3", Offset: 1042, Index: k}); got != want {
			t.Errorf("PositionID with Index %d = %q, want %q", k, got, want)
		}
	}
	long := PositionID(sdk.Position{Partition: strings.Repeat("p", 600), Offset: 1})
	if !strings.HasPrefix(long, "sha256:") || len(long) != 7+64 {
		t.Errorf("a long position id is %q, want sha256:<64 hex>", long)
	}
	if long == PositionID(sdk.Position{Partition: strings.Repeat("p", 600), Offset: 2}) {
		t.Error("two long positions share an id")
	}
	for _, c := range []struct {
		key  []byte
		want string
		err  string
	}{
		{[]byte("user-7"), "user-7", ""},
		{nil, "", "no key"},
		{[]byte{}, "", "no key"},
		{[]byte{0xff}, "", "not UTF-8"},
	} {
		got, err := KeyID(&sdk.Record{Key: c.key})
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("KeyID(%q) = %q, %v; want %q, %q", c.key, got, err, c.want, c.err)
		}
	}
}

func TestAppendDocument(t *testing.T) {
	for _, c := range []struct {
		value    string
		auto     bool
		envelope bool
		want     string
	}{
		{`{"a":1}`, true, false, `{"a":1}`},
		{" {\n\"a\" : 1}\r\n", true, false, `{"a":1}`},
		{`{"a":1`, true, true, ""}, // looks like an object, is not JSON
		{`[1]`, true, true, ""},
		{`"s"`, true, true, ""},
		{`{"a":1}`, false, true, ""},
	} {
		r := sdk.Record{Value: []byte(c.value), Position: sdk.Position{Partition: "p", Offset: 1}}
		got, err := appendDocument([]byte("x"), &r, c.auto)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[:1]) != "x" {
			t.Fatalf("appendDocument lost what buf held")
		}
		got = got[1:]
		if strings.ContainsAny(string(got), "\r\n") {
			t.Errorf("%q: the document %q holds a line break", c.value, got)
		}
		if c.envelope {
			var e Envelope
			if err := json.Unmarshal(got, &e); err != nil || string(e.RecordValue()) != c.value || !looksLikeEnvelope(got) {
				t.Errorf("%q: document %s is not its envelope", c.value, got)
			}
		} else if string(got) != c.want {
			t.Errorf("%q: document %s, want %s", c.value, got, c.want)
		}
	}
}

func TestLooksLikeEnvelope(t *testing.T) {
	for in, want := range map[string]bool{
		`{"value":"x","position":{"partition":"p","offset":1}}`:          true,
		`{"value":"x","position":{"partition":"p","offset":1},"more":1}`: false,
		`{"value":"x","position":{"partition":"p"}}`:                     false,
		`{"value":"x"}`: false,
		`{"id":"0-1","partition":0,"offset":1,"pad":""}`:                  false,
		`{"key":"k","headers":[],"position":{"partition":"","offset":0}}`: true,
	} {
		if got := looksLikeEnvelope([]byte(in)); got != want {
			t.Errorf("looksLikeEnvelope(%s) = %v", in, got)
		}
	}
}

func TestAppendAction(t *testing.T) {
	got := string(appendAction(nil, "logs", `a"b\é`))
	want := `{"index":{"_index":"logs","_id":"a\"b\\é"}}` + "\n"
	if got != want {
		t.Errorf("appendAction = %q, want %q", got, want)
	}
	var v map[string]map[string]string
	if err := json.Unmarshal([]byte(got), &v); err != nil || v["index"]["_id"] != `a"b\é` {
		t.Errorf("appendAction wrote %q: %v", got, err)
	}
}
