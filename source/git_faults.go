package source

import (
	"errors"
	"io/fs"
	"syscall"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// isLocalWriteFault reports whether err is the local file system refusing a
// write (read-only, full, no permission) rather than the remote failing:
// deleting the clone and cloning afresh cannot cure it, and would lose the
// revision the daemon restores at start.
func isLocalWriteFault(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// blobSize returns a blob's size from the object store's header, without
// inflating the blob (issue 16 item 9: a huge stray blob is skipped by its
// size, not measured by reading it).
func blobSize(repo *git.Repository, h plumbing.Hash) (int64, error) {
	return repo.Storer.EncodedObjectSize(h)
}
