package source

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// Open opens a file or folder of the tree, as [fs.FS] asks. A file's
// content is read when it is opened, one file at a time: nothing else of
// the revision is read.
func (t *Tree) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if _, ok := t.Files[name]; ok {
		src, err := t.ReadFile(name)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		t.sizes.Store(name, int64(len(src)))
		return &treeFile{info: treeInfo{name: path.Base(name), size: int64(len(src))}, r: bytes.NewReader(src)}, nil
	}
	if _, ok := t.Links[name]; ok {
		// The tree does not follow links: schema's reading rule decides
		// (ListTree reads a link as its target inside the root).
		return nil, &fs.PathError{Op: "open", Path: name, Err: errLink}
	}
	if _, ok := t.Special[name]; ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errSpecial}
	}
	t.dirsOnce.Do(t.indexDirs)
	entries, ok := t.dirs[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &treeDir{info: treeInfo{name: path.Base(name), dir: true}, entries: entries}, nil
}

var (
	errLink    = errors.New("a symbolic link: read its target")
	errSpecial = errors.New("not a regular file")
)

// ReadLink returns the target of a symbolic link of the tree, as written,
// as [fs.ReadLinkFS] asks.
func (t *Tree) ReadLink(name string) (string, error) {
	if target, ok := t.Links[name]; ok {
		return target, nil
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
}

// Lstat describes an entry without following a link, as [fs.ReadLinkFS]
// asks.
func (t *Tree) Lstat(name string) (fs.FileInfo, error) {
	if _, ok := t.Links[name]; ok {
		return treeInfo{name: path.Base(name), mode: fs.ModeSymlink}, nil
	}
	return t.Stat(name)
}

// ReadDir lists a folder of the tree, as [fs.ReadDirFS] asks.
func (t *Tree) ReadDir(name string) ([]fs.DirEntry, error) {
	t.dirsOnce.Do(t.indexDirs)
	entries, ok := t.dirs[name]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(entries), nil
}

// Stat describes a file or folder of the tree, as [fs.StatFS] asks. A
// file's size is known once it is read, so Stat reads it; the size is
// remembered.
func (t *Tree) Stat(name string) (fs.FileInfo, error) {
	if _, ok := t.Files[name]; ok {
		if size, ok := t.sizes.Load(name); ok {
			return treeInfo{name: path.Base(name), size: size.(int64)}, nil
		}
		if t.sizeOf != nil {
			// Known without reading: a huge file is not inflated to be
			// measured (issue 16 items 5 and 9).
			size, err := t.sizeOf(name)
			if err != nil {
				return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
			}
			return treeInfo{name: path.Base(name), size: size}, nil
		}
		src, err := t.ReadFile(name)
		if err != nil {
			return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
		}
		t.sizes.Store(name, int64(len(src)))
		return treeInfo{name: path.Base(name), size: int64(len(src))}, nil
	}
	if mode, ok := t.Special[name]; ok {
		return treeInfo{name: path.Base(name), mode: mode}, nil
	}
	if _, ok := t.Links[name]; ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: errLink}
	}
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	return f.Stat()
}

var (
	_ fs.ReadFileFS = (*Tree)(nil)
	_ fs.ReadDirFS  = (*Tree)(nil)
	_ fs.StatFS     = (*Tree)(nil)
	_ fs.ReadLinkFS = (*Tree)(nil)
)

// treeEntry is a directory entry of a tree; its Info is the tree's Lstat.
type treeEntry struct {
	t    *Tree
	path string
	dir  bool
	mode fs.FileMode // the type of a link or special entry
}

func (e treeEntry) Name() string { return path.Base(e.path) }
func (e treeEntry) IsDir() bool  { return e.dir }
func (e treeEntry) Type() fs.FileMode {
	if e.dir {
		return fs.ModeDir
	}
	return e.mode.Type()
}
func (e treeEntry) Info() (fs.FileInfo, error) {
	if e.dir {
		return treeInfo{name: path.Base(e.path), dir: true}, nil
	}
	return e.t.Lstat(e.path)
}

// indexDirs lists the folders the file paths imply, each with its
// entries sorted by name.
func (t *Tree) indexDirs() {
	dirs := map[string][]fs.DirEntry{".": nil}
	seen := map[string]bool{}
	add := func(name string, mode fs.FileMode) {
		isDir := false
		for child := name; child != "." && !seen[child]; child, isDir = path.Dir(child), true {
			seen[child] = true
			e := treeEntry{t: t, path: child, dir: isDir}
			if !isDir {
				e.mode = mode
			}
			dirs[path.Dir(child)] = append(dirs[path.Dir(child)], e)
		}
	}
	for name := range t.Files {
		add(name, 0)
	}
	for name := range t.Links {
		add(name, fs.ModeSymlink)
	}
	for name, mode := range t.Special {
		add(name, mode.Type())
	}
	for d := range dirs {
		slices.SortFunc(dirs[d], func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	}
	t.dirs = dirs
}

// treeInfo is the fs.FileInfo of a tree's file or folder. Trees carry no
// modes or times: files are 0o444, folders 0o555, times zero.
type treeInfo struct {
	name string
	size int64
	dir  bool
	mode fs.FileMode // the type of a link or special entry
}

func (i treeInfo) Name() string { return i.name }

func (i treeInfo) Size() int64 { return i.size }
func (i treeInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return i.mode.Type() | 0o444
}
func (i treeInfo) ModTime() time.Time { return time.Time{} }
func (i treeInfo) IsDir() bool        { return i.dir }
func (i treeInfo) Sys() any           { return nil }

type treeFile struct {
	info treeInfo
	r    *bytes.Reader
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *treeFile) Close() error               { return nil }

type treeDir struct {
	info    treeInfo
	entries []fs.DirEntry
	off     int
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: fs.ErrInvalid}
}
func (d *treeDir) Close() error { return nil }

// ReadDir returns the folder's entries as [fs.ReadDirFile] asks.
func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return slices.Clone(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return slices.Clone(rest[:n]), nil
}
