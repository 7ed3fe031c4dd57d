package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// blobCache keeps pages and blobs by digest, as they travel (keys
// sealed): in a directory, or in memory when dir is "". Every read is
// checked against its digest.
type blobCache struct {
	dir string

	mu  sync.Mutex // guards mem
	mem map[string][]byte
}

func newBlobCache(dir string) (*blobCache, error) {
	c := &blobCache{dir: dir, mem: make(map[string][]byte)}
	if dir != "" {
		if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o700); err != nil {
			return nil, fmt.Errorf("fleet cache: %w", err)
		}
	}
	return c, nil
}

func (c *blobCache) path(d string) string { return filepath.Join(c.dir, "blobs", d) }

// get returns the content of d, or false when it is not cached (or the
// cached copy is damaged, which is then removed).
func (c *blobCache) get(d string) ([]byte, bool) {
	if c.dir == "" {
		c.mu.Lock()
		b, ok := c.mem[d]
		c.mu.Unlock()
		return b, ok
	}
	b, err := os.ReadFile(c.path(d))
	if err != nil {
		return nil, false
	}
	if digestOf(b) != d {
		os.Remove(c.path(d))
		return nil, false
	}
	return b, true
}

func (c *blobCache) has(d string) bool {
	if c.dir == "" {
		c.mu.Lock()
		_, ok := c.mem[d]
		c.mu.Unlock()
		return ok
	}
	_, err := os.Stat(c.path(d))
	return err == nil
}

// put stores b, whose digest the caller checked, atomically.
func (c *blobCache) put(d string, b []byte) error {
	if c.dir == "" {
		c.mu.Lock()
		c.mem[d] = b
		c.mu.Unlock()
		return nil
	}
	return writeAtomic(c.path(d), b)
}

// prune removes every cached digest not in keep.
func (c *blobCache) prune(keep map[string]bool) error {
	if c.dir == "" {
		c.mu.Lock()
		for d := range c.mem {
			if !keep[d] {
				delete(c.mem, d)
			}
		}
		c.mu.Unlock()
		return nil
	}
	ents, err := os.ReadDir(filepath.Join(c.dir, "blobs"))
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(c.dir, "blobs", e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// writeAtomic writes b to path through a temporary file and a rename.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
