package postgres_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/conformance/netfault"
	"github.com/connectd/connectd/internal/pg/pgtest"
	"github.com/connectd/connectd/plugins/postgres"
)

// TestConformanceNetworkFaults runs the network row of the suite (and a
// clean run) with the postgres sink behind a TCP proxy, which injects
// latency, resets, stalls and a partition while the pipeline drains. The
// sink has no request timeout, so the partition refuses and cuts
// connections (netfault.Schedule.Refuse) rather than dropping their data:
// a black hole would hang its calls. Every claimed guarantee must hold; the
// output is read back with a SELECT, not through the proxy.
func TestConformanceNetworkFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	u, err := url.Parse(postgres.URLForTest())
	if err != nil {
		t.Fatal(err)
	}
	px, err := netfault.Start("127.0.0.1:0", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	u.Host = px.Addr()
	t.Setenv("PG_PROXY_URL", u.String()) // read by the sink through env()
	schema := pgtest.Schema(t, postgres.URLForTest(), "net")
	o := conformance.Options{
		Sink:    sinkAt("PG_PROXY_URL", schema),
		Reader:  tableReader(schema),
		Network: px.Faults(netfault.Schedule{Refuse: true}),
		Points:  []string{conformance.PointNone, conformance.PointNetwork},
		Exe:     postgres.ConnectdForTest(),
		Seed:    11,
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
