//go:build !linux

package proc

import "os/exec"

// KillWithParent makes the process that cmd will start die with this one on
// Linux (the kernel's parent-death signal). This OS has no such signal: it
// does nothing, and the child must watch its parent itself, as sdk.Serve does.
func KillWithParent(cmd *exec.Cmd) {}
