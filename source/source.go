package source

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
	"sync"

	"certops/trust"
)

// Source is where revisions come from: a Git repository ([NewGit]), a
// plain folder ([NewDir]) or a fixed file tree ([NewFS]). Fetch is called
// by one reconcile at a time; String may be called at any time.
//
// A Source may also implement [Opener] (it can give back a revision it
// fetched before, without the network) and [Watcher] (it notices its own
// changes). A Source can live in any package: a [Tree] is built with
// [NewTree].
type Source interface {
	// Fetch brings the source up to date and returns its current tree. An
	// error is retryable (the source is unreachable or misbehaves).
	Fetch(ctx context.Context) (*Tree, error)
	// String describes the source for status and logs, credentials
	// redacted. It is also the identity of the source in the data dir: a
	// revision recorded under another String is not restored.
	String() string
}

// Opener is a Source that can return the tree of a revision it fetched
// before from local storage alone (a Git clone): the start-up restore of
// DESIGN.md 6, so that the gateway serves before the network is up.
type Opener interface {
	// Open returns the tree of revision, as Fetch returned it. It fails
	// when the revision is not stored locally.
	Open(ctx context.Context, revision string) (*Tree, error)
}

// Watcher is a Source that notices its own changes (fsnotify on a folder).
type Watcher interface {
	// Watch calls trigger whenever the source may have changed, until ctx
	// ends; it returns an error only when it cannot watch at all. Calls
	// are coalesced by the source; trigger never blocks.
	Watch(ctx context.Context, trigger func()) error
}

// Tree is the file tree of one revision. Files maps each regular file's
// slash-separated path, relative to the root, to an identifier of its
// content (a Git blob id, or a content hash): equal identifiers mean equal
// bytes, so results can be reused across revisions. A Tree is immutable
// and safe for concurrent reads when its read function is; it is also an
// [fs.FS] (folders are those implied by the paths), so that code that
// reads an [fs.FS] can read a revision without copying it.
type Tree struct {
	Revision string
	Files    map[string]string
	// Links holds the symbolic links of the tree, path -> target as
	// written (a Git symlink entry's blob). The tree does not follow them:
	// the reader applies schema's reading rule (schema.ListTree), which
	// reads a link as its target when that stays inside the root.
	Links map[string]string
	// Special holds the entries that are neither files, folders nor links
	// (named pipes, sockets, devices) with their type: listed so that they
	// are reported, never opened.
	Special map[string]fs.FileMode
	// Signed holds the revision's commit (and the annotated tag the ref
	// points to, if any) as signed objects, for verification with
	// [trust.Keyring.VerifyRevision]; nil when the source has no
	// signatures (a folder, a fixed tree).
	Signed *trust.Revision
	read   func(name string) ([]byte, error)

	dirsOnce sync.Once
	dirs     map[string][]fs.DirEntry // folder -> entries, built on the first Open of a folder
	sizes    sync.Map                 // path -> int64, of the files read through the fs.FS methods
	// sizeOf, when set, tells a file's size without reading it (a Git
	// blob's from the object store, a folder's file from its listing).
	sizeOf func(name string) (int64, error)
	// delta, when set, is what the source knows changed since the tree
	// it returned before (tree_delta.go).
	delta *treeDelta
}

// Selector says whether a source reads a file of a tree, from its path and
// size: the reconciler's loading rule (entity and policy files below the
// path, up to the size limit), given to sources that can use it. A file a
// selector refuses is listed by name only and never read by the source.
type Selector func(path string, size int64) bool

// NewTree returns the tree of revision with the given files (path to
// content id) whose content read returns. read is only called with paths
// of files; the tree takes ownership of files.
func NewTree(revision string, files map[string]string, read func(name string) ([]byte, error)) *Tree {
	if files == nil {
		files = map[string]string{}
	}
	return &Tree{Revision: revision, Files: files, read: read}
}

// Shape returns a tree with t's revision, files, links and special
// entries whose files read as empty: listing it (schema.ListTree), its
// Stat and its links behave as t's without reading any content, so a
// reader that keeps results by content id reads only the files that
// changed. Its sizes are 0. The two trees share their maps, which neither
// changes.
func (t *Tree) Shape() *Tree {
	return &Tree{Revision: t.Revision, Files: t.Files, Links: t.Links, Special: t.Special,
		read: func(string) ([]byte, error) { return nil, nil }}
}

// ReadFile returns the content of a file of the tree.
func (t *Tree) ReadFile(name string) ([]byte, error) {
	if _, ok := t.Files[name]; !ok || t.read == nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return t.read(name)
}

// NewFS returns a Source that serves fsys, such as the example repository
// embedded in the binary, under name. Its revision is a digest of fsys'
// files ("fs:" and 12 hex digits), so it changes when a file does.
func NewFS(fsys fs.FS, name string) *FS { return &FS{fsys: fsys, name: name} }

// FS is a Source over a fixed fs.FS; see [NewFS].
type FS struct {
	fsys fs.FS
	name string
}

// Fetch lists and hashes every file of the tree.
func (s *FS) Fetch(ctx context.Context) (*Tree, error) {
	if s.fsys == nil {
		return nil, errors.New("no source configured")
	}
	fsys := s.fsys
	t := NewTree("", nil, func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) })
	err := walkFiles(ctx, fsys, func(p string, _ fs.DirEntry) error {
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
	t.Revision = "fs:" + Digest(t.Files)[:12]
	return t, nil
}

// String returns the name given to NewFS.
func (s *FS) String() string { return s.name }

// walkEntries calls fn for every entry of fsys but folders (regular files,
// symbolic links, named pipes...), skipping dot-files and dot-folders
// (DESIGN.md 2), until fn or ctx fails. Links are not followed.
func walkEntries(ctx context.Context, fsys fs.FS, fn func(p string, d fs.DirEntry) error) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil && p != "." && errors.Is(err, fs.ErrNotExist) {
			return nil // removed while the walk ran: not part of this tree
		}
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
		if d.IsDir() {
			return nil
		}
		return fn(p, d)
	})
}

// digest is the digest of the tree's listing, links and special entries
// included, so that a changed link is a new revision.
func (t *Tree) digest() string {
	if len(t.Links)+len(t.Special) == 0 {
		return Digest(t.Files)
	}
	all := maps.Clone(t.Files)
	for p, target := range t.Links {
		all[p] = "link\x00" + target
	}
	for p, mode := range t.Special {
		all[p] = "special\x00" + mode.String()
	}
	return Digest(all)
}

// walkFiles calls fn for every regular file of fsys, skipping dot-files
// and dot-folders (DESIGN.md 2), until fn or ctx fails.
func walkFiles(ctx context.Context, fsys fs.FS, fn func(p string, d fs.DirEntry) error) error {
	return walkEntries(ctx, fsys, func(p string, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			return nil
		}
		return fn(p, d)
	})
}

// Digest is a digest (hex SHA-256) of a file listing: two listings with
// equal digests have the same files with the same content ids.
func Digest(files map[string]string) string {
	h := sha256.New()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "%s\x00%s\x00", p, files[p])
	}
	return hex.EncodeToString(h.Sum(nil))
}
