package kafka_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/plugins/kafka"
)

// The conformance suite (quick level) over the kafka plugins: every pipeline
// crashed at every fault point that applies, a random SIGKILL soak, and the
// contract checks (replay, idempotent rewrite). Every pipeline gets its own
// topics, named after the suite's cell (CONNECTD_CONFORMANCE_CELL).

// cell is the suite's per-pipeline name, for topic names.
const cell = `env("` + conformance.CellEnv + `")`

func brokersHCL() string {
	q := make([]string, 0, 2)
	for _, b := range kafka.BrokersForTest() {
		q = append(q, fmt.Sprintf("%q", b))
	}
	return "brokers = [" + strings.Join(q, ", ") + "]\n"
}

// source reads the cell's topic from the start.
func source() conformance.Plugin {
	return conformance.Plugin{Name: "kafka", HCL: brokersHCL() + "topics = [" + cell + "]\nstarting_offsets = \"earliest\"\ngroup_id = " + cell + "\n"}
}

// sink writes to topic (an HCL expression), creating it with 3 partitions.
func sink(topic, mode string) conformance.Plugin {
	return conformance.Plugin{Name: "kafka", HCL: brokersHCL() + "topic = " + topic + "\nmode = \"" + mode + "\"\ncreate_topics = true\ntopic_partitions = 3\n"}
}

// sameName is the output topic of a pipeline whose sink writes the topic
// named after its cell.
func sameName(cell string) string { return cell }

// TestConformance runs the suite over the kafka plugins; where the kafka
// sink is under test, every output is also read back with kafka-go
// (topicReader) and compared with the sink's List.
func TestConformance(t *testing.T) {
	cases := []struct {
		name    string
		o       conformance.Options
		claimed []string // exactly these guarantees
	}{
		{"kafka-to-file", conformance.Options{Source: source(), Input: sink(cell, "plain")},
			[]string{conformance.ExactlyOnce, conformance.AtLeastOnce, conformance.AtMostOnce}},
		{"generator-to-kafka-plain", conformance.Options{Sink: sink(cell, "plain"), Reader: topicReader(kafka.BrokersForTest(), sameName)},
			[]string{conformance.AtLeastOnce, conformance.AtMostOnce}},
		{"generator-to-kafka-dedupe", conformance.Options{Sink: sink(cell, "dedupe"), Reader: topicReader(kafka.BrokersForTest(), sameName)},
			[]string{conformance.ExactlyOnce, conformance.AtLeastOnce, conformance.AtMostOnce}},
		{"kafka-to-kafka-dedupe", conformance.Options{Source: source(), Input: sink(cell, "plain"), Sink: sink(`"${`+cell+`}-out"`, "dedupe"),
			Reader: topicReader(kafka.BrokersForTest(), func(c string) string { return c + "-out" })},
			[]string{conformance.ExactlyOnce, conformance.AtLeastOnce, conformance.AtMostOnce}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.o.Exe = kafka.ConnectdForTest()
			c.o.Seed = 7
			c.o.Parallel = 4
			rep := conformance.Test(t, c.o)
			got := append([]string(nil), rep.Claimed...)
			slices.Sort(got)
			want := append([]string(nil), c.claimed...)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("the plugins claim %v, want %v", rep.Claimed, c.claimed)
			}
		})
	}
}
