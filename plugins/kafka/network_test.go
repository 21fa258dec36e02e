package kafka_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/conformance/netfault"
	"github.com/connectd/connectd/plugins/kafka"
)

// freePort returns a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// requestTimeout is the plugins' request_timeout in the network rows: the
// partition outlasts it.
const requestTimeout = 2 * time.Second

// proxiedBroker starts a broker of the test's own behind a TCP proxy: the
// broker advertises the proxy's address, so that every connection of a
// client, after the first metadata request too, goes through the proxy.
func proxiedBroker(t *testing.T) (string, *netfault.Proxy) {
	t.Helper()
	upstream, adv := freePort(t), freePort(t)
	px, err := netfault.Start(fmt.Sprintf("127.0.0.1:%d", adv), fmt.Sprintf("127.0.0.1:%d", upstream))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	brokers, stop, err := kafka.StartBrokerForTest(t.TempDir(), "-port", fmt.Sprint(upstream), "-advertise-port", fmt.Sprint(adv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if len(brokers) != 1 || brokers[0] != px.Addr() {
		t.Fatalf("the broker advertises %v, not the proxy %s", brokers, px.Addr())
	}
	return brokers[0], px
}

// TestConformanceNetworkFaults runs the network row of the suite (and a
// clean run) with the kafka plugins under test behind a TCP proxy (one
// broker and proxy per case), which injects latency, resets, stalls and a
// partition longer than request_timeout while the pipeline drains. Every
// claimed guarantee must hold; the sink's output is read back with kafka-go.
func TestConformanceNetworkFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cases := []struct {
		name string
		o    func(conn string, brokers []string) conformance.Options
	}{
		{"generator-to-kafka-dedupe", func(conn string, brokers []string) conformance.Options {
			return conformance.Options{
				Sink:   conformance.Plugin{Name: "kafka", HCL: conn + "topic = " + cell + "\nmode = \"dedupe\"\ncreate_topics = true\ntopic_partitions = 3\n"},
				Reader: topicReader(brokers, sameName),
			}
		}},
		{"kafka-to-file", func(conn string, _ []string) conformance.Options {
			return conformance.Options{
				Source: conformance.Plugin{Name: "kafka", HCL: conn + "topics = [" + cell + "]\nstarting_offsets = \"earliest\"\n"},
				Input:  conformance.Plugin{Name: "kafka", HCL: conn + "topic = " + cell + "\ncreate_topics = true\ntopic_partitions = 3\n"},
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			broker, px := proxiedBroker(t)
			o := c.o(fmt.Sprintf("brokers = [%q]\nrequest_timeout = %q\n", broker, requestTimeout.String()), []string{broker})
			o.Exe, o.Seed, o.Parallel = kafka.ConnectdForTest(), 7, 3
			o.Points = []string{conformance.PointNone, conformance.PointNetwork}
			o.Network = px.Faults(netfault.Schedule{RequestTimeout: requestTimeout})
			checkNetworkRows(t, conformance.Test(t, o))
		})
	}
}

// checkNetworkRows fails the test unless the report has a network cell for
// every claimed guarantee, each of which saw every fault up to the partition
// before its pipeline drained.
func checkNetworkRows(t *testing.T, rep *conformance.Report) {
	t.Helper()
	if len(rep.Claimed) != 3 {
		t.Errorf("claimed %v, want all three guarantees", rep.Claimed)
	}
	for _, g := range rep.Claimed {
		r, ok := rep.Find(conformance.PointNetwork, g)
		if !ok {
			t.Errorf("no network cell for %s", g)
			continue
		}
		if !strings.Contains(r.Detail, "network faults: latency") || !strings.Contains(r.Detail, "resets") || !strings.Contains(r.Detail, "partition") {
			t.Errorf("network / %s: the pipeline drained before the faults reached the partition: %q", g, r.Detail)
		}
		t.Logf("network / %s: %s", g, r.Detail)
	}
}
