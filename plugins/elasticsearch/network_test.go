package elasticsearch_test

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/conformance/netfault"
	"github.com/connectd/connectd/plugins/elasticsearch"
)

// TestConformanceNetworkFaults runs the network row of the suite (and a
// clean run) with the elasticsearch sink behind a TCP proxy, which injects
// latency, resets, stalls and a partition longer than the sink's
// request_timeout while the pipeline drains. Every claimed guarantee must
// hold; the output is read back with the search API, not through the proxy.
func TestConformanceNetworkFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const requestTimeout = 2 * time.Second
	raw, user, pass, ca := elasticsearch.ServerForTest()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	px, err := netfault.Start("127.0.0.1:0", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	// The proxy listens on 127.0.0.1; a server named "localhost" keeps its
	// name, for a certificate that names it.
	host, _, _ := net.SplitHostPort(u.Host)
	_, port, _ := net.SplitHostPort(px.Addr())
	if host != "localhost" {
		host = "127.0.0.1"
	}
	u.Host = net.JoinHostPort(host, port)
	for k, v := range map[string]string{"ES_PROXY_URL": u.String(), "ES_USERNAME": user, "ES_PASSWORD": pass, "ES_CA_CERT": ca} {
		t.Setenv(k, v)
	}
	prefix := fmt.Sprintf("nf%d-", time.Now().UnixNano()%1e6)
	t.Cleanup(func() { elasticsearch.DeleteIndexesForTest(t, prefix+"*") })
	o := conformance.Options{
		Sink: conformance.Plugin{Name: "elasticsearch", HCL: fmt.Sprintf(`addresses = [env("ES_PROXY_URL")]
index    = "%s${env("%s")}"
username = env("ES_USERNAME")
password = env("ES_PASSWORD")
%s
request_timeout = %q
retry_backoff   = "20ms"
`, prefix, conformance.CellEnv, map[bool]string{true: `tls_ca_file = env("ES_CA_CERT")`, false: ""}[ca != ""], requestTimeout.String())},
		Reader:  indexReader(prefix),
		Network: px.Faults(netfault.Schedule{RequestTimeout: requestTimeout}),
		Points:  []string{conformance.PointNone, conformance.PointNetwork},
		Exe:     elasticsearch.ConnectdForTest(),
		Seed:    5,
	}
	rep := conformance.Test(t, o)
	for _, g := range rep.Claimed {
		r, ok := rep.Find(conformance.PointNetwork, g)
		switch {
		case !ok:
			t.Errorf("no network cell for %s", g)
		case !strings.Contains(r.Detail, "resets") || !strings.Contains(r.Detail, "partition"):
			t.Errorf("network / %s: the pipeline drained before the faults reached the partition: %q", g, r.Detail)
		default:
			t.Logf("network / %s: %s", g, r.Detail)
		}
	}
	if len(rep.Claimed) != 3 {
		t.Errorf("claimed %v, want all three guarantees", rep.Claimed)
	}
}
