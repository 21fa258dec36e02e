package config

import (
	"strings"
	"testing"
)

// TestPostgresCheckpoint reads a "postgres" checkpoint block: url from env(),
// schema defaulted or given, no directory.
func TestPostgresCheckpoint(t *testing.T) {
	t.Setenv("CFGTEST_PG_URL", "postgres://app:hunter2@db.example:5433/prod?sslmode=disable")
	const head = "pipeline \"a\" {\n  delivery = \"at-least-once\"\n  source \"file\" { paths = [\"in\"] }\n  sink \"file\" { dir = \"out\" }\n"
	cases := []struct {
		name, block string
		want        Checkpoint
	}{
		{"default schema", `checkpoint { store = "postgres", url = env("CFGTEST_PG_URL") }`,
			Checkpoint{Store: "postgres", URL: "postgres://app:hunter2@db.example:5433/prod?sslmode=disable", Schema: "public"}},
		{"schema given", `checkpoint {
    store  = "postgres"
    url    = "host=db user=app"
    schema = "connectd"
  }`, Checkpoint{Store: "postgres", URL: "host=db user=app", Schema: "connectd"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, head+"  "+c.block+"\n}\n")
			f, diags := Load(path, fakeLookup)
			if diags.HasErrors() {
				t.Fatalf("unexpected diagnostics:\n%s", f.Format(diags))
			}
			if got := f.Pipelines[0].Checkpoint; got != c.want {
				t.Errorf("checkpoint = %+v, want %+v", got, c.want)
			}
		})
	}

	bad := []struct{ name, block, want string }{
		{"url missing", `checkpoint { store = "postgres" }`, `"url" is required`},
		{"dir with postgres", `checkpoint { store = "postgres", url = "postgres://h/db", dir = "x" }`, `Unsupported argument`},
		{"schema with dir", `checkpoint { schema = "x" }`, `Unsupported argument`},
		{"empty url", `checkpoint { store = "postgres", url = "" }`, `url must not be empty`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, head+"  "+c.block+"\n}\n")
			f, diags := Load(path, fakeLookup)
			if !diags.HasErrors() {
				t.Fatalf("no error for %s", c.block)
			}
			if out := f.Format(diags); !strings.Contains(out, c.want) {
				t.Errorf("diagnostics lack %q:\n%s", c.want, out)
			}
		})
	}
}

// TestRedactURL: passwords in URLs and DSNs never survive into Where.
func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://app:hunter2@db:5432/prod?sslmode=disable", "postgres://app:xxxxx@db:5432/prod?sslmode=disable"},
		{"postgres://app@db/prod", "postgres://app@db/prod"},
		{"postgresql://db/prod?user=app&password=hunter2", "postgresql://db/prod?password=xxxxx&user=app"},
		{"host=db user=app password=hunter2 dbname=prod", "host=db user=app password=xxxxx dbname=prod"},
		{"host=db password='hun ter2' dbname=prod", "host=db password=xxxxx dbname=prod"},
		{"host=db PASSWORD = hunter2", "host=db PASSWORD = xxxxx"},
	}
	for _, c := range cases {
		got := RedactURL(c.in)
		if got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "hunter2") || strings.Contains(got, "hun ter2") {
			t.Errorf("RedactURL(%q) leaks the password: %q", c.in, got)
		}
	}
	c := Checkpoint{Store: StorePostgres, URL: "postgres://app:hunter2@db/prod", Schema: "cp"}
	if w := c.Where(); strings.Contains(w, "hunter2") || !strings.Contains(w, `schema "cp"`) || !strings.Contains(w, "db/prod") {
		t.Errorf("Where() = %q", w)
	}
	if w := (Checkpoint{Store: "dir", Dir: "state/x"}).Where(); w != "state/x" {
		t.Errorf("dir Where() = %q", w)
	}
}
