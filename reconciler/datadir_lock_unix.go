//go:build unix

package reconciler

import (
	"errors"
	"os"
	"syscall"
)

var errLocked = errors.New("locked")

// lockExclusive takes flock(2)'s exclusive lock on f without waiting.
func lockExclusive(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
