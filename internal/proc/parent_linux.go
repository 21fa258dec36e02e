package proc

import (
	"os/exec"
	"syscall"
)

// KillWithParent makes the process that cmd will start die with this one. On
// Linux the kernel sends it SIGKILL when this process dies, even by kill -9.
// Strictly, the signal comes when the thread that started it ends, so cmd must
// not be started from a goroutine that locked its OS thread. Elsewhere it does
// nothing, and the child must watch its parent itself, as sdk.Serve does.
func KillWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
