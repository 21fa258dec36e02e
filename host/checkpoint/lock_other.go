//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import (
	"errors"
	"os"
	"runtime"
)

var errWouldBlock = errors.New("lock is held")

// lockFile is not implemented on this platform: Open refuses to run rather
// than run unlocked.
func lockFile(*os.File) error {
	return errors.New("file locking is not supported on " + runtime.GOOS)
}
