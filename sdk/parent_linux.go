package sdk

import (
	"os"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/protocol"
	"golang.org/x/sys/unix"
)

// dieWithParent makes the process die with its host. On Linux the kernel
// sends it SIGKILL when the host dies (the parent-death signal), and a watch
// on the parent pid every parentPoll covers a host that died before prctl ran.
func dieWithParent() {
	parent := os.Getppid()
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	watchParent(ppidAlive(parent, os.Getenv(protocol.HostPIDEnv)), parentPoll, fault.Die)
}
