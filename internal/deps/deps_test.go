package deps

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/connectd/connectd/"

// rule forbids the packages matching pkg (a path relative to the module; a
// trailing "/..." matches the package and everything below it) to depend,
// directly or not, on a package of the module for which allowed says false.
type rule struct {
	pkg     string
	why     string
	allowed func(dep string) bool
}

// under reports whether p is path or below it.
func under(p, path string) bool { return p == path || strings.HasPrefix(p, path+"/") }

func none(paths ...string) func(string) bool {
	return func(dep string) bool {
		for _, p := range paths {
			if under(dep, p) {
				return false
			}
		}
		return true
	}
}

// rules are the ✓ rules of docs/architecture.md's import table.
var rules = []rule{
	{"sdk/...", "the sdk is what a plugin author imports: it never depends on the host, a plugin or the suite",
		none("host", "plugins", "conformance", "cmd")},
	{"plugins/*", "a plugin is written with the sdk only, as a third party would (plus internal helpers without host logic)",
		func(dep string) bool {
			return (under(dep, "sdk") && !under(dep, "sdk/sdktest")) || under(dep, "internal")
		}},
	{"host/...", "the host never depends on a particular plugin or on the suite",
		none("plugins", "conformance", "cmd")},
	{"internal/...", "internal packages are shared helpers below the sdk and the host",
		none("host", "sdk", "plugins", "conformance", "cmd")},
}

// matches reports whether package p (relative to the module) is covered by
// pattern: "x/..." is x and below, "x/*" the packages directly below x
// (and below those), anything else the package itself.
func matches(pattern, p string) bool {
	switch {
	case strings.HasSuffix(pattern, "/..."):
		return under(p, strings.TrimSuffix(pattern, "/..."))
	case strings.HasSuffix(pattern, "/*"):
		return strings.HasPrefix(p, strings.TrimSuffix(pattern, "*"))
	}
	return p == pattern
}

// violations returns one line per forbidden dependency in graph, which maps
// a package of the module (relative path) to its dependencies in the module
// (relative paths), sorted as given.
func violations(graph map[string][]string, order []string) []string {
	var out []string
	for _, r := range rules {
		for _, p := range order {
			if !matches(r.pkg, p) {
				continue
			}
			for _, d := range graph[p] {
				if d != p && !r.allowed(d) && !under(d, p) {
					out = append(out, fmt.Sprintf("%s imports %s (directly or not): %s", p, d, r.why))
				}
			}
		}
	}
	return out
}

// graph lists the module's packages and, for each, its dependencies in the
// module, as `go list -deps` sees them (test files left out).
func graph(t *testing.T) (map[string][]string, []string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "github.com/connectd/connectd/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	g := map[string][]string{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], module) {
			continue
		}
		p := strings.TrimPrefix(f[0], module)
		order = append(order, p)
		for _, d := range f[1:] {
			if strings.HasPrefix(d, module) {
				g[p] = append(g[p], strings.TrimPrefix(d, module))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return g, order
}

// TestImportRules checks the rules on the module's real import graph.
func TestImportRules(t *testing.T) {
	g, order := graph(t)
	for _, want := range []string{"sdk", "sdk/sdktest", "plugins/file", "host/pipeline", "internal/fault"} {
		if !contains(order, want) {
			t.Fatalf("go list did not list %s: the rules would check nothing", want)
		}
	}
	for _, v := range violations(g, order) {
		t.Error(v)
	}
}

// TestRulesCatch shows that each rule reports what it forbids, and lets
// through what it allows.
func TestRulesCatch(t *testing.T) {
	g := map[string][]string{
		"sdk":                   {"internal/fault", "host/plugin"},
		"sdk/sdktest":           {"sdk", "plugins/generator"},
		"plugins/file":          {"sdk", "internal/pg"},
		"plugins/kafka":         {"sdk", "host/config"},
		"plugins/postgres":      {"sdk/sdktest"},
		"plugins":               {"plugins/file", "sdk"},
		"host/pipeline":         {"host/plugin", "sdk", "internal/fault", "plugins/file"},
		"host/checkpoint":       {"sdk"},
		"internal/fault":        {},
		"internal/protocol/raw": {"internal/protocol", "sdk"},
	}
	order := []string{"sdk", "sdk/sdktest", "plugins/file", "plugins/kafka", "plugins/postgres", "plugins", "host/pipeline", "host/checkpoint", "internal/fault", "internal/protocol/raw"}
	var got []string
	for _, v := range violations(g, order) {
		got = append(got, v[:strings.Index(v, " (")])
	}
	want := []string{
		"sdk imports host/plugin",
		"sdk/sdktest imports plugins/generator",
		"plugins/kafka imports host/config",
		"plugins/postgres imports sdk/sdktest",
		"host/pipeline imports plugins/file",
		"internal/protocol/raw imports sdk",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
