//go:build unix

package sdk

import "os"

// watchHost watches the parent as dieWithParent does on Unix without a
// parent-death signal (macOS, the BSDs), calling die when it dies.
func watchHost(die func()) { watchParent(ppidAlive(os.Getppid()), parentPoll, die) }
