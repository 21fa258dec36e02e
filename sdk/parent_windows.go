package sdk

import (
	"errors"
	"fmt"
	"os"

	"github.com/connectd/connectd/internal/fault"
	"golang.org/x/sys/windows"
)

// dieWithParent makes the process die with its host. Windows keeps a
// process's parent pid after the parent ended, so this opens the host process
// and a background goroutine waits for it to end, then dies. A host that is
// already gone (its pid no longer exists, or now names a process started after
// this one) makes the process die at once. Should the host process be out of
// reach, it says so on stderr and goes on without the watch.
func dieWithParent() {
	parent := os.Getppid()
	if parent < 0 {
		fmt.Fprintln(os.Stderr, "connectd plugin: cannot find the host process: this process will not exit by itself if the host is killed")
		return
	}
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(parent))
	if errors.Is(err, windows.ERROR_INVALID_PARAMETER) { // no such process
		fault.Die()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "connectd plugin: cannot watch the host process %d (%v): this process will not exit by itself if the host is killed\n", parent, err)
		return
	}
	if startedAfter(h, windows.CurrentProcess()) { // the host's pid was reused
		fault.Die()
	}
	go func() {
		if _, err := windows.WaitForSingleObject(h, windows.INFINITE); err != nil {
			fmt.Fprintf(os.Stderr, "connectd plugin: waiting for the host process %d: %v: this process will not exit by itself if the host is killed\n", parent, err)
			return
		}
		fault.Die()
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
