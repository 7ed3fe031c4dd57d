package fleet

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"certops/internal/atomicfile"
)

// blobCache keeps pages and blobs by digest, as they travel (keys
// sealed), in memory and, when dir is set, in one append-only pack file
// there, so that a restart serves without NATS. One file rather than one
// per blob: a node joining a 10,000-entity fleet writes one file, not
// 10,000 (file creation cost ~0.7 ms each on this project's machines).
// The pack is rewritten when its dead records outweigh the live ones.
// Every record is checked against its digest when the pack is read.
type blobCache struct {
	dir    string
	shared bool // used by several nodes: prune keeps everything

	mu   sync.Mutex // guards the fields below
	mem  map[string][]byte
	pack *os.File // append handle; nil without dir
	live int64    // bytes of live records in the pack
	dead int64    // bytes of records no longer wanted
}

// packFile is the cache's file in the data dir.
const packFile = "blobs.pack"

// recordHeader is a pack record's header: the raw SHA-256 and the length.
const recordHeader = 32 + 4

func newBlobCache(dir string) (*blobCache, error) {
	c := &blobCache{dir: dir, mem: make(map[string][]byte)}
	if dir == "" {
		return c, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet cache: %w", err)
	}
	path := filepath.Join(dir, packFile)
	good, err := c.readPack(path)
	if err != nil {
		return nil, fmt.Errorf("fleet cache: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fleet cache: %w", err)
	}
	// Drop a torn tail (a crash mid-append) so appends start clean.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("fleet cache: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("fleet cache: %w", err)
	}
	c.pack = f
	return c, nil
}

// readPack loads the records of path whose digest matches into mem and
// returns the length of its sound prefix.
func (c *blobCache) readPack(path string) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	hdr := make([]byte, recordHeader)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return off, nil
		}
		n := binary.BigEndian.Uint32(hdr[32:])
		if n > 64<<20 {
			return off, nil
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return off, nil
		}
		d := hex.EncodeToString(hdr[:32])
		if digestOf(b) != d {
			return off, nil // damaged: keep what came before
		}
		if _, dup := c.mem[d]; dup {
			c.dead += int64(recordHeader + n)
		} else {
			c.mem[d] = b
			c.live += int64(recordHeader + n)
		}
		off += int64(recordHeader + n)
	}
}

// get returns the content of d, or false when it is not cached.
func (c *blobCache) get(d string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.mem[d]
	return b, ok
}

func (c *blobCache) has(d string) bool {
	_, ok := c.get(d)
	return ok
}

// putAll stores blobs whose digests the caller checked, with one write to
// the pack.
func (c *blobCache) putAll(blobs map[string][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var buf bytes.Buffer
	for d, b := range blobs {
		if _, ok := c.mem[d]; ok {
			continue
		}
		c.mem[d] = b
		if c.pack != nil {
			raw, _ := hex.DecodeString(d)
			buf.Write(raw)
			binary.Write(&buf, binary.BigEndian, uint32(len(b)))
			buf.Write(b)
			c.live += int64(recordHeader + len(b))
		}
	}
	if c.pack == nil || buf.Len() == 0 {
		return nil
	}
	_, err := c.pack.Write(buf.Bytes())
	return err
}

// remove forgets digests, and rewrites the pack when more of it is dead
// than alive.
func (c *blobCache) remove(digests []string) error {
	if c.shared || len(digests) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range digests {
		if b, ok := c.mem[d]; ok {
			delete(c.mem, d)
			c.live -= int64(recordHeader + len(b))
			c.dead += int64(recordHeader + len(b))
		}
	}
	if c.pack == nil || c.dead <= c.live {
		return nil
	}
	var buf bytes.Buffer
	for d, b := range c.mem {
		raw, _ := hex.DecodeString(d)
		buf.Write(raw)
		binary.Write(&buf, binary.BigEndian, uint32(len(b)))
		buf.Write(b)
	}
	path := filepath.Join(c.dir, packFile)
	if err := atomicfile.Write(path, buf.Bytes()); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	c.pack.Close()
	c.pack, c.dead = f, 0
	return nil
}

// close releases the pack file.
func (c *blobCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pack == nil {
		return nil
	}
	err := c.pack.Close()
	c.pack = nil
	return err
}
