package fault

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docsDir is the repository's docs, from this package's directory.
const docsDir = "../../docs"

// tableRows returns the rows of the first Markdown table in text whose
// header starts with "| point |", each as its trimmed cells.
func tableRows(t *testing.T, text string) [][]string {
	t.Helper()
	var rows [][]string
	in := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case !in && strings.HasPrefix(line, "| point |"):
			in = true
		case in && strings.HasPrefix(line, "|---"):
		case in && strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows = append(rows, cells)
		case in:
			return rows
		}
	}
	if !in {
		t.Fatal("no table with a header starting \"| point |\"")
	}
	return rows
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(docsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocsListEveryPoint: the table of docs/fault-points.md is Points, row
// for row: the same names in the same order, no more, no fewer, each with
// its process and its Doc.
func TestDocsListEveryPoint(t *testing.T) {
	rows := tableRows(t, readDoc(t, "fault-points.md"))
	var names []string
	for _, r := range rows {
		if len(r) != 3 {
			t.Errorf("row %q: want 3 cells (point, process, what it simulates)", r)
			continue
		}
		name := strings.Trim(r[0], "`")
		names = append(names, name)
		if !Known(name) {
			t.Errorf("docs/fault-points.md lists %q, which is not a fault point (internal/fault.Points)", name)
			continue
		}
		if want := strings.SplitN(name, ".", 2)[0]; r[1] != want {
			t.Errorf("docs/fault-points.md: %s runs in process %q, not %q", name, want, r[1])
		}
		for _, p := range Points {
			if p.Name == name && p.Doc != r[2] {
				t.Errorf("docs/fault-points.md says %s %q; Points says %q", name, r[2], p.Doc)
			}
		}
	}
	var want []string
	for _, p := range Points {
		want = append(want, p.Name)
		if !slices.Contains(names, p.Name) {
			t.Errorf("docs/fault-points.md does not list %s", p.Name)
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("docs/fault-points.md lists\n%q\nPoints in protocol order is\n%q", names, want)
	}
}

// TestProtocolDocListsPluginPoints: docs/protocol.md, which non-Go authors
// implement, lists exactly the plugin-side points in its table, and its
// example that leaves them out names exactly the host's points.
func TestProtocolDocListsPluginPoints(t *testing.T) {
	text := readDoc(t, "protocol.md")
	var got, want, host []string
	for _, r := range tableRows(t, text[strings.Index(text, "### Fault points"):]) {
		for _, n := range strings.Split(r[0], ",") {
			got = append(got, strings.Trim(strings.TrimSpace(n), "`"))
		}
	}
	for _, p := range Points {
		if strings.HasPrefix(p.Name, "host.") {
			host = append(host, p.Name)
		} else {
			want = append(want, p.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("docs/protocol.md's table of plugin fault points lists\n%q\nwant (in protocol order)\n%q", got, want)
	}
	m := regexp.MustCompile(`--points none,soak,contract,(\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("docs/protocol.md: no example `--points none,soak,contract,...` that leaves out the plugin points")
	}
	if ex := strings.Split(m[1], ","); !slices.Equal(ex, host) {
		t.Errorf("docs/protocol.md's example keeps %q; the host's points are %q", ex, host)
	}
}

// TestDocsNameOnlyPoints: wherever the docs quote a name that looks like a
// fault point (`host.x.y`, `source.x.y`, `sink.x.y`, `processor.x.y`, maybe with @batch or
// :k), it is one: a renamed or removed point leaves no stale name behind.
func TestDocsNameOnlyPoints(t *testing.T) {
	re := regexp.MustCompile("`((?:host|source|sink|processor)\\.[a-z]+\\.[a-z]+)[@:`]")
	files, err := filepath.Glob(filepath.Join(docsDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(docsDir, "plugins", "*.md"))
	files = append(append(files, more...), "../../README.md")
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			seen++
			if !Known(m[1]) {
				t.Errorf("%s names %q, which is not a fault point (internal/fault.Points)", f, m[1])
			}
		}
	}
	if seen < len(Points) {
		t.Errorf("found only %d quoted fault point names in the docs; is the pattern broken?", seen)
	}
}
