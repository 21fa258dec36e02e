//go:build !unix

package plugin

import "time"

// sweep does nothing here: plugins are reached over TCP, without a socket
// directory.
func sweep(string, time.Time) {}
