package sdk

import (
	"errors"
	"fmt"
	"os"

	"github.com/connectd/connectd/internal/fault"
	"golang.org/x/sys/windows"
)

// dieWithParent makes the process die with its host. Windows keeps a
// process's parent pid after the parent ended, so this waits on the host
// process itself (waitParent).
func dieWithParent() { waitParent(fault.Die) }

// waitParent opens the parent process and calls die, from a background
// goroutine, when it ends. A parent already gone (its pid no longer exists, or
// now names a process started after this one) gets die called at once. Should
// the parent be out of reach, it says so on stderr and goes on without a watch.
func waitParent(die func()) {
	const noWatch = "this process will not exit by itself if the host is killed"
	parent := os.Getppid()
	if parent < 0 {
		fmt.Fprintf(os.Stderr, "connectd plugin: cannot find the host process: %s\n", noWatch)
		return
	}
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(parent))
	if errors.Is(err, windows.ERROR_INVALID_PARAMETER) { // no such process
		die()
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "connectd plugin: cannot watch the host process %d (%v): %s\n", parent, err, noWatch)
		return
	}
	if startedAfter(h, windows.CurrentProcess()) { // the host's pid was reused
		_ = windows.CloseHandle(h)
		die()
		return
	}
	go func() {
		defer func() { _ = windows.CloseHandle(h) }()
		if _, err := windows.WaitForSingleObject(h, windows.INFINITE); err != nil {
			fmt.Fprintf(os.Stderr, "connectd plugin: waiting for the host process %d: %v: %s\n", parent, err, noWatch)
			return
		}
		die()
	}()
}

// startedAfter reports whether process a was created after process b; false
// when either creation time cannot be read.
func startedAfter(a, b windows.Handle) bool {
	var ca, cb, exit, kernel, user windows.Filetime
	if windows.GetProcessTimes(a, &ca, &exit, &kernel, &user) != nil ||
		windows.GetProcessTimes(b, &cb, &exit, &kernel, &user) != nil {
		return false
	}
	return ca.Nanoseconds() > cb.Nanoseconds()
}
