//go:build !unix

package reconciler

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockExclusive is a no-op outside Unix: the data dir is not locked there.
func lockExclusive(*os.File) error { return nil }
