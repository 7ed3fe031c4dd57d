package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"certops/schema"
)

// Origin is where revisions come from: a Git repository ([NewGitOrigin]) or
// a plain directory ([NewDirOrigin]). Fetch is only called by one reconcile
// at a time.
type Origin interface {
	// Fetch brings the origin up to date and returns its current tree. An
	// error is retryable (the origin is unreachable or misbehaves).
	Fetch(ctx context.Context) (*Tree, error)
	// String describes the origin for status and logs, credentials redacted.
	String() string
}

// restorer is an Origin that can return a revision it fetched before
// without the network (the local clone): the start-up restore of
// DESIGN.md 6.
type restorer interface {
	Open(ctx context.Context, revision string) (*Tree, error)
}

// watcher is an Origin that notices its own changes (fsnotify): Watch
// calls trigger on every change until ctx ends.
type watcher interface {
	Watch(ctx context.Context, trigger func()) error
}

// Tree is the file tree of one revision. Files maps each file's
// slash-separated path, relative to the repository root, to an identifier of
// its content (a Git blob id, or a content hash): equal identifiers mean
// equal bytes, so results can be reused across revisions.
type Tree struct {
	Revision string
	Files    map[string]string
	read     func(name string) ([]byte, error)
}

// ReadFile returns the content of a file of the tree.
func (t *Tree) ReadFile(name string) ([]byte, error) {
	if _, ok := t.Files[name]; !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return t.read(name)
}

// fsTree lists fsys into a Tree, identifying files by the SHA-256 of their
// content. The revision is a digest of the whole listing, prefixed by
// prefix.
func fsTree(fsys fs.FS, prefix string) (*Tree, error) {
	t := &Tree{Files: make(map[string]string), read: func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) }}
	err := walkFiles(context.Background(), fsys, func(p string, _ fs.DirEntry) error {
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(src)
		t.Files[p] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	t.Revision = prefix + listingDigest(t.Files)[:12]
	return t, nil
}

// walkFiles calls fn for every regular file of fsys, skipping dot-files
// and dot-folders (DESIGN.md 2), until fn or ctx fails.
func walkFiles(ctx context.Context, fsys fs.FS, fn func(p string, d fs.DirEntry) error) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return fn(p, d)
	})
}

// listingDigest is a digest of a file listing: two listings with equal
// digests have the same files with the same content.
func listingDigest(files map[string]string) string {
	h := sha256.New()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "%s\x00%s\x00", p, files[p])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// staticOrigin serves a fixed fs.FS, such as the example repository
// embedded in the binary.
type staticOrigin struct {
	fsys fs.FS
	name string
}

func (o *staticOrigin) Fetch(context.Context) (*Tree, error) {
	if o.fsys == nil {
		return nil, errors.New("no source configured")
	}
	return fsTree(o.fsys, "fs:")
}
func (o *staticOrigin) String() string { return o.name }

// fileKind classifies a path of a tree below root (DESIGN.md 2) with
// schema.Classify: entity files, policy, or neither.
type fileKind int

const (
	kindIgnored fileKind = iota
	kindEntity
	kindPolicy
)

func classify(root, p string) fileKind {
	rel := p
	if root != "" && root != "." {
		var ok bool
		rel, ok = strings.CutPrefix(p, strings.Trim(root, "/")+"/")
		if !ok {
			return kindIgnored
		}
	}
	switch schema.Classify(rel) {
	case schema.FileEntity:
		return kindEntity
	case schema.FilePolicy:
		return kindPolicy
	}
	return kindIgnored
}
