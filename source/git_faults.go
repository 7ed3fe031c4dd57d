package source

import (
	"errors"
	"io/fs"
	"syscall"
)

// isLocalWriteFault reports whether err is the local file system refusing a
// write (read-only, full, no permission) rather than the remote failing:
// deleting the clone and cloning afresh cannot cure it, and would lose the
// revision the daemon restores at start.
func isLocalWriteFault(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
