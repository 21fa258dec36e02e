//go:build !unix

package plugin

import (
	"os"
	"time"
)

// sweep does nothing here: plugins are reached over TCP, without a socket
// directory.
func sweep(string, time.Time) {}

// socketBase is the temporary directory: no socket is made there.
func socketBase() string { return os.TempDir() }
