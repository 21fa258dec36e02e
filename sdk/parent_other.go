//go:build !linux && !windows

package sdk

import (
	"os"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/protocol"
)

// dieWithParent makes the process die with its host. On macOS, the BSDs and
// the other Unix systems, which have no parent-death signal, it watches the
// parent pid every parentPoll: it changes when the host dies, even by kill -9.
func dieWithParent() {
	watchParent(ppidAlive(os.Getppid(), os.Getenv(protocol.HostPIDEnv)), parentPoll, fault.Die)
}
