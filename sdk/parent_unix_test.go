//go:build unix

package sdk

import (
	"os"

	"github.com/connectd/connectd/internal/protocol"
)

// watchHost watches the parent as dieWithParent does on Unix without a
// parent-death signal (macOS, the BSDs), calling die when it dies.
func watchHost(die func()) {
	watchParent(ppidAlive(os.Getppid(), os.Getenv(protocol.HostPIDEnv)), parentPoll, die)
}
