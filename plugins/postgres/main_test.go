package postgres

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/pg/pgtest"
)

// pgURL is the server every test uses: PG_URL, or one TestMain started.
var pgURL string

// bin is the connectd binary the end-to-end tests run, built by TestMain.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzz") {
			return m.Run() // fuzzing needs neither a server nor the binary
		}
	}
	root, err := pgtest.Root()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "connectd-pg-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "connectd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/connectd")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building connectd:", err)
		return 1
	}
	return pgtest.Main(m, &pgURL)
}
