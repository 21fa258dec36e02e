package postgres_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/connectd/connectd/plugins/postgres"
)

// The conformance suite (quick level, or full with
// CONNECTD_CONFORMANCE_FULL=1) with the postgres sink under test in insert
// mode: every fault point, the random-SIGKILL soak and the transactional
// contract. Each of the suite's pipelines writes its own table, named after
// its cell, in a schema of this test, created with no unique constraint: the
// ids the suite reads back (List) are unique only if the transactions are.

// sinkUnderTest is the postgres sink writing the cell's table in schema.
func sinkUnderTest(schema string) conformance.Plugin {
	return conformance.Plugin{Name: "postgres", HCL: fmt.Sprintf(`url    = env("PG_URL")
table  = "%s.${env("%s")}"
mode   = "insert"
create = true
columns = ["id text = value.id", "partition int = value.partition", "pos bigint = value.offset", "pad text = value.pad"]
`, schema, conformance.CellEnv)}
}

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	pgURL := postgres.URLForTest() // also in the environment, for env("PG_URL")
	cases := []struct {
		name string
		o    func(t *testing.T) conformance.Options
	}{
		{"generator-to-postgres", func(t *testing.T) conformance.Options {
			return conformance.Options{Sink: sinkUnderTest(pgtest.Schema(t, pgURL, "conf"))}
		}},
		{"kafka-to-postgres", func(t *testing.T) conformance.Options {
			brokers := kafkaBrokers(t)
			q := `"` + strings.Join(brokers, `", "`) + `"`
			// Topics of their own on a shared broker: "pg-<cell>".
			cell := `"pg-${env("` + conformance.CellEnv + `")}"`
			return conformance.Options{
				Source: conformance.Plugin{Name: "kafka", HCL: "brokers = [" + q + "]\ntopics = [" + cell + "]\nstarting_offsets = \"earliest\"\n"},
				Input:  conformance.Plugin{Name: "kafka", HCL: "brokers = [" + q + "]\ntopic = " + cell + "\ncreate_topics = true\ntopic_partitions = 2\n"},
				Sink:   sinkUnderTest(pgtest.Schema(t, pgURL, "conf")),
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := c.o(t)
			o.Exe, o.Seed, o.Parallel = postgres.ConnectdForTest(), 11, 3
			rep := conformance.Test(t, o)
			want := []string{conformance.AtLeastOnce, conformance.AtMostOnce, conformance.ExactlyOnce}
			got := append([]string(nil), rep.Claimed...)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("claimed %v, want %v (the sink is transactional)", rep.Claimed, want)
			}
		})
	}
}

// kafkaBrokers returns KAFKA_BROKERS, or starts the test broker
// (testenv/kafka, built here) for the test.
func kafkaBrokers(t *testing.T) []string {
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		return strings.Split(env, ",")
	}
	root, err := pgtest.Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "kafka-testenv")
	build := exec.Command("go", "build", "-o", exe, "./kafka")
	build.Dir = filepath.Join(root, "testenv")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building testenv/kafka: %v\n%s", err, out)
	}
	addr := filepath.Join(dir, "kafka.addr")
	cmd := exec.Command(exe, "-exit-with-parent", "-addr-file", addr, "-default-partitions", "2")
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if b, err := os.ReadFile(addr); err == nil {
			return strings.Split(strings.TrimPrefix(strings.TrimSpace(string(b)), "KAFKA_BROKERS="), ",")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the test broker did not start in 30s: %s", stderr.String())
	return nil
}
