// Package atomicfile replaces files whole: a reader, or the next start
// after a crash, finds the old content or the new one, never a part of
// either. It is the one way certops writes a file it reads back (the data
// dir's applied revision, kept zlint results, a fleet node's cache).
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write writes b to path: to a hidden temporary file in path's folder
// (mode 0600), then renamed over path. The temporary file is removed when
// any step fails.
func Write(path string, b []byte) error { return write(path, b, false) }

// WriteSynced is Write with the temporary file flushed to stable storage
// before the rename, for a record that must outlive a power loss, not only
// a crash of the process.
func WriteSynced(path string, b []byte) error { return write(path, b, true) }

func write(path string, b []byte, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
