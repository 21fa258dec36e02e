//go:build unix

package proc

import (
	"os/exec"
	"syscall"
)

// OwnSession makes the process that cmd will start lead a session of its own
// (setsid) on Unix, so that signals sent to this process's group, by a
// terminal's Ctrl-C or by a test runner, do not reach it. Elsewhere it does
// nothing.
func OwnSession(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
}
