//go:build !unix

package plugin

import "testing"

// checkPrivate: plugins are reached over TCP here, with no socket directory.
func checkPrivate(t *testing.T, _ string) { t.Skip("no unix sockets on this OS") }
