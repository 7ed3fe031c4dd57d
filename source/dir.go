package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// dirDebounce is how long a directory must be quiet after a change before
// a reconcile is triggered: an editor's save or a `git checkout` is a burst
// of events.
const dirDebounce = 200 * time.Millisecond

// Dir is a plain folder, watched with fsnotify (the only importer of
// fsnotify). Its revision is "dir:" and a digest of its files' content.
type Dir struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex // guards known and selects
	known   map[string]dirFile
	selects Selector
}

type dirFile struct {
	size int64
	mod  time.Time
	hash string
}

// NewDir returns a Source that reads the files below dir. Its Watch
// triggers a reconcile when they change; editors that save by writing a new
// file and renaming it over the old one are seen too, because the folders,
// not the files, are watched.
func NewDir(dir string, log *slog.Logger) (*Dir, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("source: %s is not a directory", dir)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dir{dir: dir, log: log, known: make(map[string]dirFile)}, nil
}

var _ Watcher = (*Dir)(nil)

// Select makes Fetch read (and hash) only the files sel accepts by path
// and size; the others are listed by name, identified by their size and
// modification time, and never opened, so a 1.5 GB backup beside the
// entities costs nothing (issue 16 item 5). Tree.Stat gives their size
// from the listing. Without Select every file is read.
func (o *Dir) Select(sel Selector) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.selects = sel
}

// String returns the folder's path.
func (o *Dir) String() string { return o.dir }

// Fetch lists the directory. A file whose size and modification time did
// not change since the last Fetch is not read again.
func (o *Dir) Fetch(ctx context.Context) (*Tree, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fsys := os.DirFS(o.dir)
	sel := o.selects
	// Reading is the loader's decision (it checks the size first, with
	// Stat): a link may lead to a file the selector would not list.
	t := NewTree("", nil, func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) })
	next := make(map[string]dirFile, len(o.known))
	t.sizeOf = func(name string) (int64, error) { return next[name].size, nil }
	err := walkEntries(ctx, fsys, func(p string, d fs.DirEntry) error {
		switch typ := d.Type(); {
		case typ&fs.ModeSymlink != 0:
			// Listed, not followed: the loader applies schema's reading
			// rule to links, as `validate` does.
			target, err := fs.ReadLink(fsys, p)
			if err != nil {
				return err
			}
			if t.Links == nil {
				t.Links = map[string]string{}
			}
			t.Links[p] = target
			return nil
		case !typ.IsRegular():
			if t.Special == nil {
				t.Special = map[string]fs.FileMode{}
			}
			t.Special[p] = typ // a named pipe is never opened
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		f, ok := o.known[p]
		if sel != nil && !sel(p, fi.Size()) {
			// Listed by name: its identity changes when it does, and it
			// is never opened.
			f = dirFile{size: fi.Size(), mod: fi.ModTime(), hash: fmt.Sprintf("stat:%d:%d", fi.Size(), fi.ModTime().UnixNano())}
		} else if !ok || f.size != fi.Size() || !f.mod.Equal(fi.ModTime()) || strings.HasPrefix(f.hash, "stat:") {
			src, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(src)
			f = dirFile{size: fi.Size(), mod: fi.ModTime(), hash: hex.EncodeToString(sum[:])}
		}
		next[p] = f
		t.Files[p] = f.hash
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", o.dir, err)
	}
	// A link may lead into a dot-folder the walk skipped (a store of
	// reviewed files): list what each link leads to, so that the loader
	// can read it by schema's rule. Whether a target may be read is the
	// loader's decision, not this listing's.
	for _, p := range slices.Sorted(maps.Keys(t.Links)) {
		if err := o.listTargets(fsys, t, next, p); err != nil {
			return nil, fmt.Errorf("source %s: %w", o.dir, err)
		}
	}
	o.known = next
	t.Revision = "dir:" + t.digest()[:12]
	return t, nil
}

// Watch calls trigger, debounced, whenever something below the directory
// changes, until ctx ends.
func (o *Dir) Watch(ctx context.Context, trigger func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", o.dir, err)
	}
	defer w.Close()
	add := func(root string) {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if p != o.dir && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			if err := w.Add(p); err != nil {
				o.log.Warn("cannot watch folder; changes in it are seen on the next interval", "path", p, "err", err)
			}
			return nil
		})
	}
	add(o.dir)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					add(ev.Name)
				}
			}
			timer.Reset(dirDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: reconcile to be safe.
			o.log.Warn("watching the source folder", "err", err)
			timer.Reset(dirDebounce)
		case <-timer.C:
			trigger()
		}
	}
}

// listTargets adds to t what the link at p leads to, one path element and
// one hop at a time (at most 40 hops): further links, and the regular file
// at the end, hashed like the walked files. Targets outside the folder are
// left out: they are not part of the tree.
func (o *Dir) listTargets(fsys fs.FS, t *Tree, next map[string]dirFile, p string) error {
	rest := strings.Split(path.Join(path.Dir(p), t.Links[p]), "/")
	if path.IsAbs(t.Links[p]) {
		return nil
	}
	cur := "."
	for hops := 0; len(rest) > 0; {
		elem := rest[0]
		rest = rest[1:]
		n := path.Join(cur, elem)
		if !fs.ValidPath(n) {
			return nil // leaves the folder
		}
		fi, err := fs.Lstat(fsys, n)
		if err != nil {
			return nil // dangling: the loader reports it
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if hops++; hops > 40 {
				return nil
			}
			target, ok := t.Links[n]
			if !ok {
				if target, err = fs.ReadLink(fsys, n); err != nil {
					return err
				}
				t.Links[n] = target
			}
			if path.IsAbs(target) {
				return nil
			}
			rest = append(strings.Split(path.Join(path.Dir(n), target), "/"), rest...)
			cur = "."
		case len(rest) > 0:
			cur = n
		case fi.Mode().IsRegular():
			if _, ok := t.Files[n]; ok {
				return nil
			}
			f, ok := o.known[n]
			if !ok || f.size != fi.Size() || !f.mod.Equal(fi.ModTime()) {
				src, err := fs.ReadFile(fsys, n)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(src)
				f = dirFile{size: fi.Size(), mod: fi.ModTime(), hash: hex.EncodeToString(sum[:])}
			}
			next[n] = f
			t.Files[n] = f.hash
		case !fi.IsDir():
			if t.Special == nil {
				t.Special = map[string]fs.FileMode{}
			}
			t.Special[n] = fi.Mode().Type()
		}
	}
	return nil
}
