//go:build !unix

package proc

import "os/exec"

// OwnSession makes the process that cmd will start lead a session of its own
// on Unix (setsid). This OS has no sessions: it does nothing.
func OwnSession(cmd *exec.Cmd) {}
