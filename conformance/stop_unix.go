//go:build unix

package conformance

import "syscall"

// sigstop stops process pid with SIGSTOP: it stays, holding its connections,
// and answers nothing until it is continued or killed.
func sigstop(pid int) error { return syscall.Kill(pid, syscall.SIGSTOP) }
