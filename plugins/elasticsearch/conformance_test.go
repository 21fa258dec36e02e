package elasticsearch_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/plugins/elasticsearch"
)

// The conformance suite (quick level; full with CONNECTD_CONFORMANCE_FULL=1)
// with the elasticsearch sink under test: generator → elasticsearch and
// kafka → elasticsearch, every fault point, the random-SIGKILL soak and the
// idempotence contract. Each pipeline of the suite writes an index of its
// own, named after its cell; List reads it back, and an id stored twice is a
// duplicate. The suite also reads every index with the search API
// (indexReader) and fails a cell where that disagrees with List.

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	url, user, pass, ca := elasticsearch.ServerForTest()
	// The suite's processes read these through env().
	for k, v := range map[string]string{"ES_URL": url, "ES_USERNAME": user, "ES_PASSWORD": pass, "ES_CA_CERT": ca} {
		t.Setenv(k, v)
	}
	prefix := fmt.Sprintf("cf%d-", time.Now().UnixNano()%1e6)
	sink := conformance.Plugin{Name: "elasticsearch", HCL: fmt.Sprintf(`addresses = [env("ES_URL")]
index    = "%s${env("%s")}"
username = env("ES_USERNAME")
password = env("ES_PASSWORD")
%s
retry_backoff = "20ms"
`, prefix, conformance.CellEnv, map[bool]string{true: `tls_ca_file = env("ES_CA_CERT")`, false: ""}[ca != ""])}
	t.Cleanup(func() { elasticsearch.DeleteIndexesForTest(t, prefix+"*") })
	cases := []struct {
		name string
		o    func(t *testing.T) conformance.Options
	}{
		{"generator-to-elasticsearch", func(t *testing.T) conformance.Options {
			return conformance.Options{Sink: sink}
		}},
		{"kafka-to-elasticsearch", func(t *testing.T) conformance.Options {
			root, err := filepath.Abs("../..")
			if err != nil {
				t.Fatal(err)
			}
			q := `"` + strings.Join(e2e.KafkaBrokers(t, root), `", "`) + `"`
			cell := `env("` + conformance.CellEnv + `")`
			return conformance.Options{
				Source: conformance.Plugin{Name: "kafka", HCL: "brokers = [" + q + "]\ntopics = [" + cell + "]\nstarting_offsets = \"earliest\"\n"},
				Input:  conformance.Plugin{Name: "kafka", HCL: "brokers = [" + q + "]\ntopic = " + cell + "\ncreate_topics = true\ntopic_partitions = 2\n"},
				Sink:   sink,
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := c.o(t)
			o.Exe, o.Seed, o.Parallel = elasticsearch.ConnectdForTest(), 5, 2
			o.Reader = indexReader(prefix)
			rep := conformance.Test(t, o)
			if !slices.Contains(rep.Claimed, conformance.ExactlyOnce) {
				t.Errorf("claimed %v: the sink is idempotent and the source replayable, so exactly-once must be claimed and checked", rep.Claimed)
			}
		})
	}
}
