package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Test runs the suite from a Go test: at the level LevelFromEnv says when
// o.Level is empty, with the progress in the test log. It fails the test
// when the suite cannot run, and reports every cell as a subtest named
// "<fault point>/<guarantee>" that fails when its guarantee did not hold.
// It returns the report for further assertions.
func Test(t *testing.T, o Options) *Report {
	t.Helper()
	if o.Level == "" {
		o.Level = LevelFromEnv()
	}
	if o.Log == nil {
		o.Log = logWriter{t}
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	_ = rep.WriteTable(&table)
	t.Log("\n" + table.String())
	for _, r := range rep.Results {
		t.Run(r.FaultPoint+"/"+r.Guarantee, func(t *testing.T) {
			if !r.Pass {
				t.Errorf("%s under %s: %s\n%s\n%s", r.Guarantee, r.FaultPoint, r.Cell(), r.Error, r.Detail)
			}
		})
	}
	return rep
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Build builds the Go main package pkg (a directory or an import path, as
// `go build` takes it) into an executable in a temporary directory of the
// test and returns its path: the plugin under test, as a third party ships
// it. The executable is named connectd-plugin-<last element of pkg>.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	exe, err := BuildPlugin(t.TempDir(), pkg)
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// BuildPlugin is Build outside a test: it builds pkg into dir and returns
// the executable's path.
func BuildPlugin(dir, pkg string) (string, error) {
	name := filepath.Base(filepath.Clean(pkg))
	if name == "." {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		name = filepath.Base(wd)
	}
	exe := filepath.Join(dir, "connectd-plugin-"+strings.TrimPrefix(name, "connectd-plugin-"))
	cmd := exec.Command("go", "build", "-o", exe, pkg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return exe, nil
}
