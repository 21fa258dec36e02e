package main

import "syscall"

// setPdeathsig asks the kernel to kill this process when its parent dies.
func setPdeathsig() error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
