//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"errors"
	"os"
	"syscall"
)

// errWouldBlock reports that another open file description holds the lock.
var errWouldBlock = errors.New("lock is held")

// lockFile takes an exclusive, non-blocking flock on f. The lock belongs to
// f's open file description: a second open of the same file, in this process
// or another, conflicts with it, and it goes away when f is closed or its
// process dies.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errWouldBlock
		default:
			return err
		}
	}
}
