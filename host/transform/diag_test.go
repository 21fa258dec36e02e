package transform

import (
	"fmt"
	"strings"
	"testing"
)

// TestDiagnosticPositions compiles expressions with syntax and type errors
// in a multi-line pipeline file and wants each diagnostic at the offending
// character: file:line:column inside the string.
func TestDiagnosticPositions(t *testing.T) {
	src := `pipeline "p" {}
transform "filter" {
  where = "value.amount > 10 &&& true"
}

transform "set" {
  fields = {
    "ok"  = "value.a"
    "bad" = "key + 1"
  }
  key = "value.id +"
}
transform "filter" {
  where = <<EOT
value.a > 1 &&
  headers.x + 1 == 2
EOT
}
transform "filter" {
  where = "'é' + \"x\" + 1"
}
transform "filter" {
  where = "'é' + 1 == 'x'"
}
`
	_, diags := decodeFile(t, src)
	type want struct {
		line, col int
		detail    string
	}
	wants := []want{
		{3, 32, "where: Syntax error: token recognition error at: '& '"},
		{9, 18, `fields "bad": found no matching overload for '_+_' applied to '(bytes, int)'`},
		{11, 20, "key: Syntax error"},
		{16, 13, "where: found no matching overload for '_+_' applied to '(string, int)'"},
		{20, 11, "where: found no matching overload"},                                      // an escape: the whole expression
		{23, 16, "where: found no matching overload for '_+_' applied to '(string, int)'"}, // é is one column, two bytes
	}
	if len(diags) != len(wants) {
		t.Fatalf("%d diagnostics, want %d:\n%s", len(diags), len(wants), diags)
	}
	lines := strings.Split(src, "\n")
	for i, w := range wants {
		d := diags[i]
		if d.Subject == nil || d.Subject.Filename != "p.hcl" || d.Subject.Start.Line != w.line || d.Subject.Start.Column != w.col {
			t.Errorf("diagnostic %d %q at %v, want p.hcl:%d,%d", i, d.Detail, d.Subject, w.line, w.col)
		} else if got := lines[w.line-1][w.col-1:]; i < 4 && d.Subject.Start.Byte != byteOf(src, w.line, w.col) {
			t.Errorf("diagnostic %d: byte %d, want %d (%q)", i, d.Subject.Start.Byte, byteOf(src, w.line, w.col), got)
		}
		if i == 5 && d.Subject != nil && src[d.Subject.Start.Byte] != '+' {
			t.Errorf("diagnostic 5 at byte %d (%q), want the '+'", d.Subject.Start.Byte, src[d.Subject.Start.Byte:])
		}
		if !strings.Contains(d.Detail, w.detail) {
			t.Errorf("diagnostic %d: %q, want it to contain %q", i, d.Detail, w.detail)
		}
	}
}

// byteOf is the byte offset of (line, col) in src, ASCII lines assumed.
func byteOf(src string, line, col int) int {
	off := 0
	for _, l := range strings.SplitAfter(src, "\n")[:line-1] {
		off += len(l)
	}
	return off + col - 1
}

func TestDiagnostics(t *testing.T) {
	t.Setenv("MASK_KEY", "s3cr3t-k3y")
	t.Setenv("EMPTY", "")
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"unknown attribute", `transform "filter" {
  where = "true"
  wher = "x"
}`, []string{"p.hcl:3,3", "Unsupported argument", `"wher"`}},
		{"misspelled attribute", `transform "drop_fields" { field = ["a"] }`, []string{"Unsupported argument", `Did you mean "fields"?`}},
		{"missing where", `transform "filter" {}`, []string{"Missing required argument", `"where"`}},
		{"block inside", `transform "rename" {
  fields = { a = "b" }
  fields { }
}`, []string{"Unsupported block type"}},
		{"where not bool", `transform "filter" { where = "value.a + 'x' == 'y' ? 1 : 2" }`, []string{"Invalid expression type", "where must be a bool; this expression gives int"}},
		{"where not a string", `transform "filter" { where = true }`, []string{"Expression expected", "got a bool"}},
		{"key not string", `transform "set" { key = "1 + 2" }`, []string{"key must be a string, bytes or null; this expression gives int"}},
		{"header not string", `transform "set" { headers = { topic = "[1]" } }`, []string{`headers "topic" must be a string, bytes or null`}},
		{"bytes field", `transform "set" { fields = { k = "key" } }`, []string{`fields "k" gives bytes, which have no JSON form`}},
		{"empty set", `transform "set" {}`, []string{"Nothing to set", "at least one of fields"}},
		{"bad field path", `transform "set" { fields = { "a..b" = "1" } }`, []string{"p.hcl:1,30", `Field path "a..b" has an empty part`}},
		{"duplicate field", `transform "set" {
  fields = {
    "a" = "1"
    "a" = "2"
  }
}`, []string{"p.hcl:4,5", `"a" appears twice in fields`}},
		{"empty drop list", `transform "drop_fields" { fields = [] }`, []string{"non-empty list of field paths"}},
		{"drop list not strings", `transform "drop_fields" { fields = "a" }`, []string{"non-empty list of field paths", "got a string"}},
		{"trailing dot", `transform "mask" {
  fields = ["a."]
  key = "k"
}`, []string{`Field path "a." has an empty part`}},
		{"empty rename", `transform "rename" { fields = {} }`, []string{"Nothing to rename"}},
		{"rename to number", `transform "rename" { fields = { a = 1 } }`, []string{`The new name of "a" must be a string; got a number`}},
		{"rename to itself", `transform "rename" { fields = { a = "a" } }`, []string{"p.hcl:1,37", `"a" is renamed to itself`}},
		{"rename two to one", `transform "rename" {
  fields = {
    a = "c"
    b = "c"
  }
}`, []string{"p.hcl:4,9", `"a" and "b" are both renamed to "c"`}},
		{"mask without key", `transform "mask" { fields = ["a"] }`, []string{"Missing required argument", `"key"`}},
		{"mask key unset", `transform "mask" {
  fields = ["a"]
  key = env("NO_SUCH_VARIABLE_HOPEFULLY")
}`, []string{"NO_SUCH_VARIABLE_HOPEFULLY", "is not set"}},
		{"mask key empty", `transform "mask" {
  fields = ["a"]
  key = env("EMPTY")
}`, []string{"Invalid mask key", "got an empty string"}},
		{"mask key not a string", `transform "mask" {
  fields = ["a"]
  key = [env("MASK_KEY")]
}`, []string{"Invalid mask key", "value is secret and not shown"}},
		{"mask key arithmetic", `transform "mask" {
  fields = ["a"]
  key = env("MASK_KEY") * 2
}`, []string{"p.hcl:3"}},
		{"unknown transform", `transform "uppercase" { }`, []string{"Unknown built-in transform", `"uppercase"`, "drop_fields, filter, mask, rename, set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := decodeFile(t, tc.src)
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			var text strings.Builder
			for _, d := range diags {
				fmt.Fprintf(&text, "%s: %s: %s\n", d.Subject, d.Summary, d.Detail)
			}
			for _, w := range tc.want {
				if !strings.Contains(text.String(), w) {
					t.Errorf("diagnostics\n%s\nwant %q", text.String(), w)
				}
			}
			if strings.Contains(text.String(), "s3cr3t") {
				t.Errorf("the mask key's value is in a diagnostic:\n%s", text.String())
			}
		})
	}
}
