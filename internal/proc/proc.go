// Package proc holds the few process controls that differ between Linux, the
// other Unix systems and Windows, each in its own file, so that the packages
// starting and killing processes build on every OS.
package proc

import "os"

// Kill ends process pid at once, without letting it clean up: SIGKILL on
// Unix, TerminateProcess (exit status 1) on Windows. The process need not be
// a child of this one. On Unix the error is os.ErrProcessDone when no process
// pid is left to kill; on Windows a process that has ended gives another
// error, or none while a handle on it is still open somewhere.
func Kill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer func() { _ = p.Release() }()
	return p.Kill()
}
