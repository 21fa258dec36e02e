package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/plugins"
	"github.com/connectd/connectd/sdk"
)

// goodValue returns HCL for a value of p that its rules accept: what a
// pipeline needs for a required parameter.
func goodValue(t *testing.T, p sdk.Param) string {
	t.Helper()
	one := func() string {
		if len(p.Enum) > 0 {
			return fmt.Sprintf("%q", p.Enum[0])
		}
		if p.Pattern == "" {
			return `"x"`
		}
		re := regexp.MustCompile(`^(?:` + p.Pattern + `)$`)
		for _, c := range []string{"x", "localhost:9092", "http://localhost:9200", "postgres://u@localhost:5432/db"} {
			if re.MatchString(c) {
				return fmt.Sprintf("%q", c)
			}
		}
		t.Fatalf("parameter %q: no candidate value matches pattern %s; add one", p.Name, p.Pattern)
		return ""
	}
	switch p.Type {
	case sdk.TypeString:
		return one()
	case sdk.TypeStrings:
		return "[" + one() + "]"
	case sdk.TypeInt, sdk.TypeFloat:
		if p.Min != nil {
			return fmt.Sprint(p.Min)
		}
		return "1"
	case sdk.TypeDuration:
		return `"1s"`
	case sdk.TypeBool:
		return "true"
	}
	t.Fatalf("parameter %q: unknown type %q", p.Name, p.Type)
	return ""
}

// block renders a plugin block with its required parameters and, on its
// second line, extra (so extra is at line start+1).
func block(t *testing.T, s sdk.Spec, extra string) string {
	lines := []string{fmt.Sprintf("  %s %q {", s.Kind, s.Name)}
	if extra != "" {
		lines = append(lines, "    "+extra)
	}
	for _, p := range s.Params {
		if p.Required {
			lines = append(lines, fmt.Sprintf("    %s = %s", p.Name, goodValue(t, p)))
		}
	}
	return strings.Join(append(lines, "  }"), "\n")
}

// misspell returns v with its last letter doubled: a value outside the enum
// whose nearest allowed value is v.
func misspell(v string) string { return v + v[len(v)-1:] }

// TestValidateRefusesEveryBadEnum: for every bundled plugin and every
// parameter its spec declares an enum for, `connectd validate` refuses a
// value outside the enum with exit 2, the value's file:line:column and a
// "did you mean" (defect 3 of issue 11). Driven by the specs, so a new enum
// is covered without touching this test.
func TestValidateRefusesEveryBadEnum(t *testing.T) {
	var bundled []sdk.Spec
	for _, p := range plugins.Bundled() {
		for _, s := range []*sdk.Spec{specOf(p.Source), specOfSink(p.Sink)} {
			if s != nil {
				bundled = append(bundled, *s)
			}
		}
	}
	gen := plugins.Bundled()["generator"]
	discard := plugins.Bundled()["discard"]
	if gen.Source == nil || discard.Sink == nil {
		t.Fatal("the generator source and the discard sink are not bundled")
	}
	n := 0
	for _, s := range bundled {
		for _, p := range s.Params {
			if len(p.Enum) == 0 {
				continue
			}
			n++
			t.Run(fmt.Sprintf("%s %s %s", s.Kind, s.Name, p.Name), func(t *testing.T) {
				longest := ""
				for _, e := range p.Enum {
					if len(e) > len(longest) {
						longest = e
					}
				}
				bad := fmt.Sprintf("%q", misspell(longest))
				if p.Type == sdk.TypeStrings {
					bad = "[" + bad + "]"
				}
				attr := fmt.Sprintf("%s = %s", p.Name, bad)
				src, snk := block(t, gen.Source.Spec, "count = 1"), block(t, discard.Sink.Spec, "")
				if s.Kind == sdk.KindSource {
					src = block(t, s, attr)
				} else {
					snk = block(t, s, attr)
				}
				// The attribute is on line 4 when the source is tested, on
				// the line after the source block otherwise; its value
				// starts after "    name = ".
				hcl := "pipeline \"p\" {\n  delivery = \"at-least-once\"\n" + src + "\n" + snk + "\n}\n"
				line := 4
				if s.Kind == sdk.KindSink {
					line = 4 + strings.Count(src, "\n") + 1
				}
				col := len("    "+p.Name+" = ") + 1
				dir := t.TempDir()
				cfg := write(t, dir, "p.hcl", hcl)
				r := connectd(t, dir, nil, "validate", cfg)
				if r.Code != 2 {
					t.Fatalf("exit %d, want 2; pipeline:\n%s\nstderr:\n%s", r.Code, hcl, r.Stderr)
				}
				for _, w := range []string{
					fmt.Sprintf("p.hcl:%d:%d", line, col),
					fmt.Sprintf("Invalid value for parameter %q", p.Name),
					"is not one of",
					fmt.Sprintf("Did you mean %q?", longest),
				} {
					if !strings.Contains(r.Stderr, w) {
						t.Errorf("stderr lacks %q; pipeline:\n%s\nstderr:\n%s", w, hcl, r.Stderr)
					}
				}
				// The same file with a good value passes the rules: only
				// the bad value made validate fail.
				good := strings.Replace(hcl, attr, fmt.Sprintf("%s = %s", p.Name, goodValue(t, sdk.Param{Name: p.Name, Type: p.Type, Enum: []string{longest}})), 1)
				write(t, dir, "p.hcl", good)
				if r := connectd(t, dir, nil, "validate", cfg); strings.Contains(r.Stderr, "Invalid value") {
					t.Errorf("a good value is refused:\n%s\nstderr:\n%s", good, r.Stderr)
				}
			})
		}
	}
	if n < 10 {
		t.Errorf("only %d enum parameters in the bundled specs; the test is not seeing them", n)
	}
}

func specOf(p *sdk.SourcePlugin) *sdk.Spec {
	if p == nil {
		return nil
	}
	return &p.Spec
}

func specOfSink(p *sdk.SinkPlugin) *sdk.Spec {
	if p == nil {
		return nil
	}
	return &p.Spec
}

// TestRunBadEnumStartsNothing: `connectd run` refuses a bad enum value with
// exit 2 and file:line:column before it starts any process or touches the
// checkpoint.
func TestRunBadEnumStartsNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("at-least-once", "apend", 10, 1, 5, ""))
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", r.Code, r.Stderr)
	}
	for _, w := range []string{"p.hcl:12:12", `"apend" is not one of "batch", "append", "transactional"`, `Did you mean "append"?`} {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, "starting pipeline") {
		t.Errorf("the pipeline started:\n%s", r.Stderr)
	}
	for _, d := range []string{"state", "out"} {
		if _, err := os.Stat(filepath.Join(dir, d)); err == nil {
			t.Errorf("%s exists: something ran", d)
		}
	}
}

// TestRunOpenConfigError: a configuration that only the plugin's Open can
// refuse is still exit 2, with the plugin block's file:line:column and the
// plugin's message once.
func TestRunOpenConfigError(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", `pipeline "p" {
  delivery = "at-least-once"
  sink "discard" {}
  source "file" {
    paths = ["in/a[.txt"]
  }
}
`)
	if r := connectd(t, dir, nil, "validate", cfg); r.Code != 0 {
		t.Fatalf("validate: exit %d, want 0 (only Open sees this); stderr:\n%s", r.Code, r.Stderr)
	}
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", r.Code, r.Stderr)
	}
	want := `connectd: ` + cfg + `:4:3: pipeline "p": source "file": path "in/a[.txt" is not a valid glob`
	if !strings.Contains(r.Stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
	}
	if strings.Contains(r.Stderr, "open: ") || strings.Contains(r.Stderr, "file source:") {
		t.Errorf("the message stutters:\n%s", r.Stderr)
	}
}

// TestPluginsShowRules: `connectd plugins` prints every parameter's rules, in
// the table and in --json, as the specs declare them.
func TestPluginsShowRules(t *testing.T) {
	r := connectd(t, t.TempDir(), nil, "plugins", "--json")
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	var specs []struct {
		Name, Kind string
		Params     []struct {
			Name     string
			Enum     []string
			Min, Max any
			Pattern  string
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &specs); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range specs {
		for _, p := range s.Params {
			got[s.Kind+" "+s.Name+" "+p.Name] = fmt.Sprint(p.Enum, p.Min, p.Max, p.Pattern)
		}
	}
	rules := 0
	for _, p := range plugins.Bundled() {
		for _, s := range []*sdk.Spec{specOf(p.Source), specOfSink(p.Sink)} {
			if s == nil {
				continue
			}
			for _, prm := range s.Params {
				var enum []string
				if len(prm.Enum) > 0 {
					enum = prm.Enum
				}
				// JSON numbers decode as float64; durations are strings.
				bound := func(v any) any {
					switch x := v.(type) {
					case nil, string:
						return x
					case time.Duration:
						return x.String()
					}
					f, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
					return f
				}
				want := fmt.Sprint(enum, bound(prm.Min), bound(prm.Max), prm.Pattern)
				key := string(s.Kind) + " " + s.Name + " " + prm.Name
				if got[key] != want {
					t.Errorf("%s: --json rules %s, want %s", key, got[key], want)
				}
				if len(prm.Enum) > 0 || prm.Min != nil || prm.Max != nil || prm.Pattern != "" {
					rules++
				}
			}
		}
	}
	if rules < 30 {
		t.Errorf("only %d bundled parameters have rules", rules)
	}
	text := connectd(t, t.TempDir(), nil, "plugins").Stdout
	for _, w := range []string{
		`mode       string  "batch"        one of "batch", "append", "transactional"`,
		`bulk_concurrency   int           1           1 to 64 `,
		`poll       duration      "200ms"     >= 1ms `,
		`topics              list(string)  (required)  each matches [a-zA-Z0-9._-]{1,249}`,
	} {
		if !strings.Contains(text, w) {
			t.Errorf("plugins output lacks %q:\n%s", w, text)
		}
	}
}
