package postgres_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/connectd/connectd/plugins/postgres"
)

// The conformance suite (quick level, or full with
// CONNECTD_CONFORMANCE_FULL=1) with the postgres sink under test in insert
// mode: every fault point, the random-SIGKILL soak and the transactional
// contract. Each of the suite's pipelines writes its own table, named after
// its cell, in a schema of this test, created with no unique constraint: the
// ids the suite reads back (List) are unique only if the transactions are.
// The suite also reads every table with a SELECT of its own (tableReader)
// and fails a cell where that disagrees with List.

// sinkUnderTest is the postgres sink writing the cell's table in schema.
func sinkUnderTest(schema string) conformance.Plugin { return sinkAt("PG_URL", schema) }

// sinkAt is sinkUnderTest connecting to the URL in the environment
// variable urlEnv.
func sinkAt(urlEnv, schema string) conformance.Plugin {
	return conformance.Plugin{Name: "postgres", HCL: fmt.Sprintf(`url    = env("`+urlEnv+`")
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
			schema := pgtest.Schema(t, pgURL, "conf")
			return conformance.Options{Sink: sinkUnderTest(schema), Reader: tableReader(schema)}
		}},
		{"kafka-to-postgres", func(t *testing.T) conformance.Options {
			root, err := pgtest.Root()
			if err != nil {
				t.Fatal(err)
			}
			brokers := e2e.KafkaBrokers(t, root)
			q := `"` + strings.Join(brokers, `", "`) + `"`
			// Topics of their own on a shared broker: "pg-<cell>".
			cell := `"pg-${env("` + conformance.CellEnv + `")}"`
			schema := pgtest.Schema(t, pgURL, "conf")
			return conformance.Options{
				Source: conformance.Plugin{Name: "kafka", HCL: "brokers = [" + q + "]\ntopics = [" + cell + "]\nstarting_offsets = \"earliest\"\n"},
				Input:  conformance.Plugin{Name: "kafka", HCL: "brokers = [" + q + "]\ntopic = " + cell + "\ncreate_topics = true\ntopic_partitions = 2\n"},
				Sink:   sinkUnderTest(schema),
				Reader: tableReader(schema),
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
