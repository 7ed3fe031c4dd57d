package source

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/bits"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// dirCoalesce is how long the events that follow a change are gathered
// into one more trigger: the first event of a burst (an editor's save, a
// `git checkout`) triggers at once, what follows it within dirCoalesce
// triggers once at the end of that window.
const dirCoalesce = 50 * time.Millisecond

// dirRemovalQuiet is how long removals are gathered before they trigger:
// a removal triggers once no other removal came for this long.
const dirRemovalQuiet = 200 * time.Millisecond

// dirRescan bounds how long a watched folder is fetched from fsnotify's
// events alone: Watch lists the whole tree this often, in the background,
// a safety net for events the kernel lost, and the next Fetch reads what
// it found changed. Neither a change's Fetch nor a reconcile waits for
// the listing: with 10,000 files it costs 100-300 ms, which a write made
// in the minute after the last walk used to wait for (issue 13).
var dirRescan = time.Minute

// Dir is a plain folder, watched with fsnotify (the only importer of
// fsnotify). Its revision is "dir:" and a digest of its files' content.
//
// While Watch runs, a Fetch reads only the paths fsnotify named since the
// previous Fetch (a one-file change costs one stat and one read, not a walk
// of the tree); it walks the whole tree on the first Fetch, after an event
// it cannot map to files (a new folder, an overflow), when the tree holds
// links or special entries, and once Watch's watches are in place
// (changes made before them). Every dirRescan, Watch lists the tree in
// the background and tells the next Fetch which paths differ.
//
// What a Fetch keeps of each file costs no heap object of its own (issue
// 13): a walk packs every path and content id it keeps into one block
// (packListing), which the keys of known, of the tree's Files and of its
// copies share, and a file's SHA-256 is kept inline in its dirFile; an
// incremental Fetch packs the paths it changed into one block of its own.
// The cost is pinning: a block stays alive while any of its strings does
// (a tree the reconciler still holds, a reader's key, the entry of a file
// not changed since), so the listings may hold up to one walk's worth of
// bytes more than the files they name, and up to one small block per file
// in delta; the next full walk packs afresh. A walk that finds the
// previous listing unchanged keeps that tree, and packs nothing.
type Dir struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex // guards known, delta, selects, last, sum and lastFull
	selects Selector
	// known is what the last walk found, delta what changed since (a
	// removed file has a zero dirFile). Neither is modified once a tree
	// uses it (its sizes): a Fetch makes a new delta.
	known    map[string]dirFile
	delta    map[string]dirFile
	last     *Tree     // of the previous successful Fetch
	sum      digestSum // of last.Files
	lastFull time.Time // of the last walk of the whole tree

	pendMu   sync.Mutex // guards watching, full and dirty (set by Watch)
	watching bool       // Watch is running and its watches are in place
	full     bool       // the next Fetch walks the whole tree
	dirty    map[string]bool

	spareMu sync.Mutex // guards spare and spareOf
	// spare is a copy of spareOf.Files made after a Fetch returned
	// spareOf, while the daemon is idle, for the next incremental Fetch
	// to change: copying a listing of 10,000 files costs 0.5-1 ms, which
	// the change that Fetch serves would otherwise wait for.
	spare   map[string]string
	spareOf *Tree
}

// spareDelay is how long after a Fetch its listing is copied for the
// next one: once the reconcile that Fetch began is done with the CPU.
const spareDelay = 100 * time.Millisecond

// dirFile is what a Fetch knows of one file: its size and modification
// time as listed, and how it is identified. A read file's content id, the
// hex SHA-256 that is its Tree.Files value, is kept by the tree only:
// carrying the SHA-256 here too cost 32 bytes in each of known's 10,000
// slots, ~0.5 MB kept while the daemon serves (issue 13).
type dirFile struct {
	size int64
	sec  int64 // of the modification time, since the Unix epoch
	nsec int32 // of the modification time, within sec
	kind fileState
}

// fileState is how a dirFile identifies its file.
type fileState uint8

const (
	fileGone   fileState = iota // removed (in a delta), or unknown
	fileRead                    // by content: sum
	fileListed                  // by size and modification time: the selector left it out, never opened
)

// statFile returns the dirFile of a file with info fi, of the given kind.
func statFile(fi fs.FileInfo, kind fileState) dirFile {
	mod := fi.ModTime()
	return dirFile{size: fi.Size(), sec: mod.Unix(), nsec: int32(mod.Nanosecond()), kind: kind}
}

// sameStat reports whether f was listed with fi's size and modification
// time.
func (f dirFile) sameStat(size int64, mod time.Time) bool {
	return f.size == size && f.sec == mod.Unix() && f.nsec == int32(mod.Nanosecond())
}

// dirEntry is a file a Fetch found, before its path and id are packed.
// A read file's id is the previous Fetch's (id) when it was not read
// again, else made from the SHA-256 of what this Fetch read (sum).
type dirEntry struct {
	path string
	file dirFile
	id   string
	sum  [sha256.Size]byte
}

// appendID appends e's content id, its Tree.Files value: the hex SHA-256
// of a read file, "stat:SIZE:MTIME" of a listed one, nothing for a gone
// one.
func (e *dirEntry) appendID(dst []byte) []byte {
	switch f := &e.file; f.kind {
	case fileRead:
		if e.id != "" {
			return append(dst, e.id...)
		}
		return hex.AppendEncode(dst, e.sum[:])
	case fileListed:
		dst = append(dst, "stat:"...)
		dst = strconv.AppendInt(dst, f.size, 10)
		dst = append(dst, ':')
		return strconv.AppendInt(dst, time.Unix(f.sec, int64(f.nsec)).UnixNano(), 10)
	}
	return dst
}

// packEntries packs the paths and ids of entries into one block
// (packListing) and calls put with each entry's carved path and id (empty
// for a gone file).
func packEntries(entries []dirEntry, put func(e *dirEntry, path, id string)) {
	packListing(len(entries), func(i int, scratch []byte) (string, []byte) {
		return entries[i].path, entries[i].appendID(scratch)
	}, func(i int, p, id string) { put(&entries[i], p, id) })
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

// lookup returns what the previous Fetch knew about the file at p.
func (o *Dir) lookup(p string) (dirFile, bool) {
	if f, ok := o.delta[p]; ok {
		return f, f.kind != fileGone
	}
	f, ok := o.known[p]
	return f, ok
}

// identify returns the entry of the file at p with info fi: by name
// when the selector leaves it out (never opened), otherwise by content,
// read again only when its size or modification time changed.
func (o *Dir) identify(fsys fs.FS, p string, fi fs.FileInfo) (dirEntry, error) {
	if o.selects != nil && !o.selects(p, fi.Size()) {
		// Listed by name: its identity changes when it does, and it is
		// never opened.
		return dirEntry{path: p, file: statFile(fi, fileListed)}, nil
	}
	return o.readUnlessSame(fsys, p, fi, false)
}

// readUnlessSame returns the entry of the file at p with info fi as the
// previous Fetch knew it when its size and modification time are as they
// were and, for a read file, the previous tree has its id; otherwise it
// reads the file. A file the previous Fetch listed by name only is taken
// as it was when listed is true, else read.
func (o *Dir) readUnlessSame(fsys fs.FS, p string, fi fs.FileInfo, listed bool) (dirEntry, error) {
	if f, ok := o.lookup(p); ok && (listed || f.kind == fileRead) && f.sameStat(fi.Size(), fi.ModTime()) {
		if f.kind != fileRead {
			return dirEntry{path: p, file: f}, nil
		}
		if id := o.last.Files[p]; id != "" { // o.last lists what lookup knows
			return dirEntry{path: p, file: f, id: id}, nil
		}
	}
	src, err := fs.ReadFile(fsys, p)
	if err != nil {
		return dirEntry{}, err
	}
	return dirEntry{path: p, file: statFile(fi, fileRead), sum: sha256.Sum256(src)}, nil
}

// String returns the folder's path.
func (o *Dir) String() string { return o.dir }

// Fetch lists the directory. A file whose size and modification time did
// not change since the last Fetch is not read again; while Watch runs, only
// the paths it was told about are looked at (see [Dir]).
func (o *Dir) Fetch(ctx context.Context) (*Tree, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pendMu.Lock()
	dirty, full := o.dirty, o.full || !o.watching
	o.dirty, o.full = nil, false
	o.pendMu.Unlock()
	if !full && o.last != nil && len(o.last.Links)+len(o.last.Special) == 0 {
		t, ok, err := o.fetchChanged(ctx, dirty)
		if err != nil {
			o.markFull()
			return nil, fmt.Errorf("source %s: %w", o.dir, err)
		}
		if ok {
			return t, nil
		}
	}
	t, err := o.fetchAll(ctx)
	if err != nil {
		o.markFull()
		return nil, err
	}
	return t, nil
}

// markFull makes the next Fetch walk the whole tree: the events of a failed
// Fetch are gone.
func (o *Dir) markFull() {
	o.pendMu.Lock()
	o.full = true
	o.pendMu.Unlock()
}

// fetchChanged returns the previous tree with the dirty paths looked at
// again; ok is false when a path is not a plain file change (a folder, a
// link, a special entry appeared), so that the caller walks the tree. The
// previous tree's listing is copied (the trees are immutable), its files
// are not read again.
func (o *Dir) fetchChanged(ctx context.Context, dirty map[string]bool) (t *Tree, ok bool, err error) {
	if len(dirty) == 0 {
		return o.last, true, nil
	}
	fsys := os.DirFS(o.dir)
	files := o.takeSpare(o.last)
	delta := maps.Clone(o.delta)
	if delta == nil {
		delta = make(map[string]dirFile, len(dirty))
	}
	sum := o.sum
	// What this Fetch found is packed into one block at the end: the
	// paths fsnotify named are the note's allocations, not kept.
	var found []dirEntry
	var scratch [64]byte
	for _, p := range slices.Sorted(maps.Keys(dirty)) {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		fi, err := fs.Lstat(fsys, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Gone: a file, or a folder with everything below it.
			if id, ok := files[p]; ok {
				sum.sub(p, id)
				delete(files, p)
				found = append(found, dirEntry{path: p})
				continue
			}
			for q, id := range files {
				if strings.HasPrefix(q, p+"/") {
					sum.sub(q, id)
					delete(files, q)
					found = append(found, dirEntry{path: q})
				}
			}
			continue
		case err != nil:
			return nil, false, err
		case !fi.Mode().IsRegular():
			return nil, false, nil // a folder, a link, a special entry: walk
		}
		e, err := o.identify(fsys, p, fi)
		if err != nil {
			return nil, false, err
		}
		if id, ok := files[p]; ok {
			if id == string(e.appendID(scratch[:0])) {
				// Touched, not changed: only its listing is new.
				found = append(found, e)
				continue
			}
			sum.sub(p, id)
			delete(files, p) // re-added below, keyed by the packed path
		}
		found = append(found, e)
	}
	var changed []string // of files, for ChangedSince
	packEntries(found, func(e *dirEntry, p, id string) {
		delta[p] = e.file
		if e.file.kind == fileGone {
			changed = append(changed, p)
			return
		}
		if _, ok := files[p]; ok {
			return // touched
		}
		files[p] = id
		sum.add(p, id)
		changed = append(changed, p)
	})
	// Reading is the loader's decision (it checks the size first, with
	// Stat): a link may lead to a file the selector would not list.
	t = NewTree("dir:"+sum.hex()[:12], files, func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) })
	base := o.known
	t.sizeOf = func(name string) (int64, error) {
		if f, ok := delta[name]; ok {
			return f.size, nil
		}
		return base[name].size, nil
	}
	t.setDelta(o.last, changed)
	o.last, o.sum, o.delta = t, sum, delta
	o.prepareSpare(t)
	return t, true, nil
}

// takeSpare returns a copy of last.Files for the caller to change: the
// spare one when it was made from last, a new one otherwise.
func (o *Dir) takeSpare(last *Tree) map[string]string {
	o.spareMu.Lock()
	files, of := o.spare, o.spareOf
	o.spare, o.spareOf = nil, nil
	o.spareMu.Unlock()
	if of == last && files != nil {
		return files
	}
	return maps.Clone(last.Files)
}

// prepareSpare copies t.Files spareDelay from now, while Watch runs (only
// then is the next Fetch incremental), unless a newer Fetch came first.
// The copy is made by a timer's goroutine, which ends with it.
func (o *Dir) prepareSpare(t *Tree) {
	o.pendMu.Lock()
	watching := o.watching
	o.pendMu.Unlock()
	o.spareMu.Lock()
	if o.spareOf == t && o.spare != nil {
		o.spareMu.Unlock()
		return // made already: a walk found t unchanged
	}
	o.spare, o.spareOf = nil, t // t is the one to copy; a newer Fetch replaces it
	o.spareMu.Unlock()
	if !watching || len(t.Links)+len(t.Special) > 0 {
		return
	}
	time.AfterFunc(spareDelay, func() {
		o.spareMu.Lock()
		want := o.spareOf == t && o.spare == nil
		o.spareMu.Unlock()
		if !want {
			return
		}
		files := maps.Clone(t.Files) // t is immutable: copied unlocked
		o.spareMu.Lock()
		if o.spareOf == t && o.spare == nil {
			o.spare = files
		}
		o.spareMu.Unlock()
	})
}

// fetchAll walks the whole tree. The paths and ids it keeps are packed
// into one block (packListing); a walk that finds the listing of the
// previous Fetch unchanged returns that tree, and keeps nothing new.
func (o *Dir) fetchAll(ctx context.Context) (*Tree, error) {
	start := time.Now()
	fsys := os.DirFS(o.dir)
	// Reading is the loader's decision (it checks the size first, with
	// Stat): a link may lead to a file the selector would not list.
	t := NewTree("", nil, func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) })
	var next map[string]dirFile
	t.sizeOf = func(name string) (int64, error) { return next[name].size, nil }
	entries := make([]dirEntry, 0, len(o.known))
	// same: every file found so far is as the previous Fetch knew it.
	same := o.last != nil && len(o.last.Links)+len(o.last.Special) == 0
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
		// A file removed between the listing and here is not in this
		// revision; its removal's own event reloads once more.
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		e, err := o.identify(fsys, p, fi)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if same {
			// A file read again is not the same, whatever its listing.
			old, ok := o.lookup(p)
			same = ok && old == e.file && (e.file.kind != fileRead || e.id != "")
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", o.dir, err)
	}
	if same && len(t.Links)+len(t.Special) == 0 && len(entries) == len(o.last.Files) {
		// Every file of the previous listing, and only those, with the
		// same size, modification time and id: its tree is this one.
		o.lastFull = start
		o.prepareSpare(o.last)
		return o.last, nil
	}
	// A link may lead into a dot-folder the walk skipped (a store of
	// reviewed files): list what each link leads to, so that the loader
	// can read it by schema's rule. Whether a target may be read is the
	// loader's decision, not this listing's.
	if len(t.Links) > 0 {
		listed := make(map[string]bool, len(entries))
		for _, e := range entries {
			listed[e.path] = true
		}
		for _, p := range slices.Sorted(maps.Keys(t.Links)) {
			if entries, err = o.listTargets(fsys, t, listed, entries, p); err != nil {
				return nil, fmt.Errorf("source %s: %w", o.dir, err)
			}
		}
	}
	next = make(map[string]dirFile, len(entries))
	t.Files = make(map[string]string, len(entries))
	var sum digestSum
	packEntries(entries, func(e *dirEntry, p, id string) {
		next[p] = e.file
		t.Files[p] = id
		sum.add(p, id)
	})
	o.known, o.delta = next, nil
	if len(t.Links)+len(t.Special) == 0 {
		t.Revision = "dir:" + sum.hex()[:12]
	} else {
		t.Revision = "dir:" + t.digest()[:12]
	}
	o.last, o.sum, o.lastFull = t, sum, start
	o.prepareSpare(t)
	return t, nil
}

// digestSum is an order-independent digest of a file listing that can be
// updated one file at a time: the sum, modulo 2^256, of the SHA-256 of each
// path and content id. It identifies a folder's revision, so a one-file
// change costs one hash instead of hashing the sorted listing again.
type digestSum [4]uint64

func fileDigest(p, id string) (d [4]uint64) {
	h := sha256.Sum256([]byte(p + "\x00" + id))
	for i := range d {
		d[i] = binary.BigEndian.Uint64(h[8*i:])
	}
	return d
}

func (s *digestSum) add(p, id string) {
	d := fileDigest(p, id)
	var carry uint64
	for i := 3; i >= 0; i-- {
		s[i], carry = bits.Add64(s[i], d[i], carry)
	}
}

func (s *digestSum) sub(p, id string) {
	d := fileDigest(p, id)
	var borrow uint64
	for i := 3; i >= 0; i-- {
		s[i], borrow = bits.Sub64(s[i], d[i], borrow)
	}
}

func (s digestSum) hex() string {
	var b [32]byte
	for i, v := range s {
		binary.BigEndian.PutUint64(b[8*i:], v)
	}
	return hex.EncodeToString(b[:])
}

// Watch calls trigger whenever something below the directory changes,
// until ctx ends: at once for the first event, and once more at the end of
// a dirCoalesce window for the events that follow it. It records the paths
// it was told about for the next Fetch. It also triggers a walk of the
// whole tree once its watches are in place, and lists the tree every
// dirRescan (triggering when that finds a change), so that the Fetch of a
// change never waits for a walk.
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
				o.markFull()
			}
			return nil
		})
	}
	add(o.dir)
	// Changes made before the watches were in place are found by a walk,
	// now: a Fetch that began before them (the daemon's first) may have
	// missed some, and the first change after them must not wait for it.
	o.pendMu.Lock()
	o.watching, o.full = true, true
	o.pendMu.Unlock()
	trigger()
	rescan := time.NewTicker(dirRescan)
	defer rescan.Stop()
	// A rescan lists the tree in a goroutine of its own, so that neither
	// the events nor a reconcile wait for it; Watch waits for it to end.
	var scans sync.WaitGroup
	defer scans.Wait()
	scanned := make(chan bool, 1) // whether the rescan found a change
	scanning := false
	scan := func() {
		if scanning {
			return
		}
		scanning = true
		scans.Go(func() { scanned <- o.rescan(ctx) })
	}
	defer func() {
		o.pendMu.Lock()
		o.watching, o.dirty = false, nil
		o.pendMu.Unlock()
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// Removals wait for dirRemovalQuiet without another removal, and hold
	// back every other change meanwhile: an `rm -rf` or a folder moved away
	// is then one change, which the mass-delete guard judges as a whole,
	// instead of one file at a time that it would let through.
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	removing, rescanDue := false, false
	armed, pending := false, false
	changed := func() {
		if armed {
			pending = true
			return
		}
		trigger()
		timer.Reset(dirCoalesce)
		armed = true
	}
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
			if !o.note(ev.Name) {
				continue
			}
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				removing = true
				quiet.Reset(dirRemovalQuiet)
				continue
			}
			if !removing {
				changed()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: walk the tree to be safe.
			o.log.Warn("watching the source folder", "err", err)
			o.markFull()
			changed()
		case <-quiet.C:
			removing = false
			if rescanDue {
				rescanDue = false
				scan()
			}
			changed()
		case <-rescan.C:
			if removing {
				rescanDue = true // its changes would split the removals
				continue
			}
			scan()
		case found := <-scanned:
			scanning = false
			if found && !removing { // else the end of the removals triggers
				changed()
			}
		case <-timer.C:
			armed = false
			if pending {
				pending = false
				changed()
			}
		}
	}
}

// rescan lists the tree and records for the next Fetch every path whose
// size or modification time differs from what the last Fetch knew, or
// that appeared or went away: the events the kernel lost (an overflow is
// reported, but a folder created before its watch was added is not). It
// reports whether it found any. Only the comparison holds mu (a Fetch
// waits for it, not for the listing). A tree with links or special
// entries, or none fetched yet, is walked by the next Fetch instead.
func (o *Dir) rescan(ctx context.Context) bool {
	// A list, not a map: the comparison looks each path up once, and the
	// listing costs no hashing and no growth of a 10,000-entry map.
	type stat struct {
		path string
		size int64
		mod  time.Time
	}
	o.mu.Lock()
	var seen []stat
	if o.last != nil {
		seen = make([]stat, 0, len(o.last.Files)+len(o.last.Files)/16)
	}
	o.mu.Unlock()
	plain := true
	err := walkEntries(ctx, os.DirFS(o.dir), func(p string, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			plain = false
			return fs.SkipAll
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile: its event says so
		}
		if err != nil {
			return err
		}
		seen = append(seen, stat{p, fi.Size(), fi.ModTime()})
		return nil
	})
	if ctx.Err() != nil {
		return false
	}
	o.mu.Lock()
	last := o.last
	var stale []string
	if err == nil && plain && last != nil && len(last.Links)+len(last.Special) == 0 {
		listed := 0 // of seen, the paths last lists
		for _, st := range seen {
			if _, ok := last.Files[st.path]; ok {
				listed++
			}
			if f, ok := o.lookup(st.path); !ok || !f.sameStat(st.size, st.mod) {
				stale = append(stale, st.path)
			}
		}
		// The walk names each path once: it saw every path of last
		// unless fewer of them than last lists.
		if listed < len(last.Files) {
			found := make(map[string]bool, len(seen))
			for _, st := range seen {
				found[st.path] = true
			}
			for p := range last.Files {
				if !found[p] {
					stale = append(stale, p)
				}
			}
		}
	}
	o.mu.Unlock()
	if err != nil || !plain || last == nil || len(last.Links)+len(last.Special) > 0 {
		if err != nil {
			o.log.Warn("rescanning the source folder; the next fetch walks it", "err", err)
		}
		o.markFull()
		return true
	}
	if len(stale) == 0 {
		return false
	}
	o.pendMu.Lock()
	if o.dirty == nil {
		o.dirty = make(map[string]bool, len(stale))
	}
	for _, p := range stale {
		o.dirty[p] = true
	}
	o.pendMu.Unlock()
	return true
}

// note records a path fsnotify named for the next Fetch and reports
// whether it may change the tree: dot-files and dot-folders are not part
// of it (a new dot-folder is not watched at all).
func (o *Dir) note(name string) bool {
	rel, err := filepath.Rel(o.dir, name)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		o.markFull()
		return true
	}
	rel = filepath.ToSlash(rel)
	for _, elem := range strings.Split(rel, "/") {
		if strings.HasPrefix(elem, ".") {
			return false
		}
	}
	o.pendMu.Lock()
	if o.dirty == nil {
		o.dirty = make(map[string]bool)
	}
	o.dirty[rel] = true
	o.pendMu.Unlock()
	return true
}

// listTargets adds to t what the link at p leads to, one path element and
// one hop at a time (at most 40 hops): further links, and the regular file
// at the end, hashed like the walked files. Targets outside the folder are
// left out: they are not part of the tree.
func (o *Dir) listTargets(fsys fs.FS, t *Tree, listed map[string]bool, entries []dirEntry, p string) ([]dirEntry, error) {
	rest := strings.Split(path.Join(path.Dir(p), t.Links[p]), "/")
	if path.IsAbs(t.Links[p]) {
		return entries, nil
	}
	cur := "."
	for hops := 0; len(rest) > 0; {
		elem := rest[0]
		rest = rest[1:]
		n := path.Join(cur, elem)
		if !fs.ValidPath(n) {
			return entries, nil // leaves the folder
		}
		fi, err := fs.Lstat(fsys, n)
		if err != nil {
			return entries, nil // dangling: the loader reports it
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if hops++; hops > 40 {
				return entries, nil
			}
			target, ok := t.Links[n]
			if !ok {
				if target, err = fs.ReadLink(fsys, n); err != nil {
					return entries, err
				}
				t.Links[n] = target
			}
			if path.IsAbs(target) {
				return entries, nil
			}
			rest = append(strings.Split(path.Join(path.Dir(n), target), "/"), rest...)
			cur = "."
		case len(rest) > 0:
			cur = n
		case fi.Mode().IsRegular():
			if listed[n] {
				return entries, nil
			}
			e, err := o.readUnlessSame(fsys, n, fi, true)
			if err != nil {
				return entries, err
			}
			listed[n] = true
			entries = append(entries, e)
		case !fi.IsDir():
			if t.Special == nil {
				t.Special = map[string]fs.FileMode{}
			}
			t.Special[n] = fi.Mode().Type()
		}
	}
	return entries, nil
}
