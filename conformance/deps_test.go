package conformance

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps: a plugin author's conformance test links this package and all
// it imports. The suite's helper processes need only the generator, file and
// discard plugins; the bundled plugins of external systems (their clients
// were 1,376 packages and 14 minutes of a -race build of an author's test)
// are reached through the connectd binary, never linked here.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{}
	for _, p := range []string{"generator", "file", "discard"} {
		allowed["github.com/connectd/connectd/plugins/"+p] = true
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/segmentio/kafka-go", "github.com/jackc/pgx", "github.com/elastic/go-elasticsearch", "github.com/Shopify/toxiproxy", "github.com/connectd/connectd/plugins"} {
			if (pkg == banned || strings.HasPrefix(pkg, banned+"/")) && !allowed[pkg] {
				t.Errorf("package conformance links %s", pkg)
			}
		}
	}
}
