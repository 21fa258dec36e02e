//go:build !unix

package conformance

import "errors"

// sigstop is not available here: the hang row runs on Linux only.
func sigstop(int) error { return errors.New("stopping a process is not supported on this OS") }
