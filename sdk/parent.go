package sdk

import (
	"os"
	"time"
)

// parentPoll is how often a plugin process checks that its host is alive
// where it has to ask (every OS but Windows, which says when the host ends).
const parentPoll = 200 * time.Millisecond

// watchParent calls die when alive reports false: at once if it does now,
// else at the first of the checks made every interval in the background.
// die is called at most once; fault.Die does not return.
func watchParent(alive func() bool, every time.Duration, die func()) {
	if !alive() {
		die()
		return
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for range t.C {
			if !alive() {
				die()
				return
			}
		}
	}()
}

// ppidAlive returns a probe that reports whether the process parent is still
// this process's parent. Unix gives an orphan a new parent (init, pid 1, or a
// subreaper), so a changed parent pid means the parent died; a parent pid of 1
// at the start means it died before the probe was made — unless the host said
// in protocol.HostPIDEnv that its pid is 1 (a container's entrypoint), which
// hostPID holds ("" when the plugin was not started by a connectd host that
// says so). Windows never changes a process's parent pid: there dieWithParent
// waits on the parent instead.
func ppidAlive(parent int, hostPID string) func() bool {
	return func() bool { return sameParent(parent, os.Getppid(), hostPID) }
}

// sameParent reports whether a process whose parent was parent, and whose
// parent is now ppid, still has its host: see ppidAlive.
func sameParent(parent, ppid int, hostPID string) bool {
	return ppid == parent && (ppid != 1 || hostPID == "1")
}
