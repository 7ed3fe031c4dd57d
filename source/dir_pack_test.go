package source

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// writeFolder writes n entity files below dir, 100 to a folder.
func writeFolder(tb testing.TB, dir string, n int) {
	tb.Helper()
	for i := range n {
		writeFile(tb, dir, fmt.Sprintf("d%03d/e%05d.yaml", i/100, i), fmt.Sprintf("name: e%05d\n", i))
	}
}

// sha256Hex is the content id a folder gives a file it reads.
func sha256Hex(tb testing.TB, p string) string {
	tb.Helper()
	src, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:])
}

// keysAndValues returns the keys and values of files, the strings a
// listing keeps.
func keysAndValues(files map[string]string) []string {
	var all []string
	for p, id := range files {
		all = append(all, p, id)
	}
	return all
}

// keyData returns where each key of m points.
func keyData[V any](m map[string]V) map[string]*byte {
	out := make(map[string]*byte, len(m))
	for k := range m {
		out[k] = unsafe.StringData(k)
	}
	return out
}

// TestDirFetchListingAsBefore checks that packing the listing changed
// neither its ids nor its revision: the values below are those the
// folder source gave before it packed (commit f991bfb), for a read file,
// one in a sub-folder and one the selector lists by name.
func TestDirFetchListingAsBefore(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "a\n")
	writeFile(t, dir, "sub/b.yaml", "b\n")
	writeFile(t, dir, "backup.bak", "0123456789")
	mod := time.Unix(1700000000, 123456789)
	if err := os.Chtimes(filepath.Join(dir, "backup.bak"), mod, mod); err != nil {
		t.Fatal(err)
	}
	o := newDir(t, dir)
	o.Select(func(p string, size int64) bool { return p != "backup.bak" })
	got, err := o.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a.yaml":     sha256Hex(t, filepath.Join(dir, "a.yaml")),
		"sub/b.yaml": sha256Hex(t, filepath.Join(dir, "sub", "b.yaml")),
		"backup.bak": fmt.Sprintf("stat:10:%d", mod.UnixNano()),
	}
	if !maps.Equal(got.Files, want) {
		t.Errorf("Fetch listed %v, want %v", got.Files, want)
	}
	if want := "dir:84e524c19ce7"; got.Revision != want {
		t.Errorf("Fetch revision = %s, want %s (as before the packing)", got.Revision, want)
	}
}

// TestDirFetchPacksWalk checks that a walk keeps its paths and ids in one
// block: the keys of the tree's Files and of what the source knows are the
// same strings, and Files' keys and values lie side by side. A second walk
// that finds nothing changed returns the same tree, packing nothing anew.
func TestDirFetchPacksWalk(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, dir, 300)
	o := newDir(t, dir)
	t1, err := o.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(t1.Files) != 300 {
		t.Fatalf("Fetch listed %d files, want 300", len(t1.Files))
	}
	for p, id := range t1.Files {
		if want := sha256Hex(t, filepath.Join(dir, p)); id != want {
			t.Errorf("Files[%s] = %s, want %s", p, id, want)
		}
	}
	assertPacked(t, "the walk's paths and ids", keysAndValues(t1.Files))
	files := keyData(t1.Files)
	for p, data := range keyData(o.known) {
		if files[p] != data {
			t.Errorf("known's key %s is not the tree's (a second copy of the path)", p)
		}
	}

	walked := o.lastFull
	t2, err := o.Fetch(t.Context()) // not watched: a walk
	if err != nil {
		t.Fatal(err)
	}
	if o.lastFull.Equal(walked) {
		t.Error("the second Fetch did not walk the tree")
	}
	if t2 != t1 {
		t.Errorf("a walk of an unchanged folder returned a new tree (%s), want the previous one (%s)", t2.Revision, t1.Revision)
	}

	// A change found by a walk: a new tree, packed afresh, with the
	// file's new id.
	writeFile(t, dir, "d001/e00150.yaml", "name: e00150, rewritten\n")
	t3, err := o.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := fullWalk(t, dir); t3.Revision != want.Revision || !maps.Equal(t3.Files, want.Files) {
		t.Errorf("Fetch after a rewrite = %s, want %s", t3.Revision, want.Revision)
	}
	if got, want := t3.Files["d001/e00150.yaml"], sha256Hex(t, filepath.Join(dir, "d001", "e00150.yaml")); got != want {
		t.Errorf("the rewritten file's id = %s, want %s (its new content's)", got, want)
	}
	assertPacked(t, "the second walk's paths and ids", keysAndValues(t3.Files))
}

// fetchMallocs returns the fewest heap allocations of an incremental Fetch
// of a watched folder of n files, over a few rounds of one file rewritten
// and named (as fsnotify would), and checks each Fetch's listing: the
// changed file's id is its new content's, and its path and id are one
// block of their own, while the other paths stay the walk's.
func fetchMallocs(t *testing.T, n int) uint64 {
	t.Helper()
	dir := t.TempDir()
	writeFolder(t, dir, n)
	o := newDir(t, dir)
	// As while Watch runs, without its events: the test names the paths.
	o.pendMu.Lock()
	o.watching = true
	o.pendMu.Unlock()
	first, err := o.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	walk := keyData(first.Files)
	prev := first
	best := ^uint64(0)
	for round := range 5 {
		// The listing's copy is made while idle (prepareSpare): wait
		// for it, as a Fetch that serves a change would find it.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			o.spareMu.Lock()
			ready := o.spareOf == o.last && o.spare != nil
			o.spareMu.Unlock()
			if ready {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no spare listing after a Fetch")
			}
		}
		rel := fmt.Sprintf("d000/e%05d.yaml", round)
		writeFile(t, dir, rel, fmt.Sprintf("name: e%05d\nround: %d\n", round, round))
		o.note(filepath.Join(dir, rel))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := o.Fetch(t.Context())
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		best = min(best, after.Mallocs-before.Mallocs)
		if want := sha256Hex(t, filepath.Join(dir, rel)); got.Files[rel] != want {
			t.Errorf("after rewriting %s: its id = %s, want %s (its new content's)", rel, got.Files[rel], want)
		}
		if paths, ok := got.ChangedSince(prev); !ok || !slices.Equal(paths, []string{rel}) {
			t.Errorf("round %d: ChangedSince = %q, %v, want [%s], true", round, paths, ok, rel)
		}
		prev = got
		var changedKey string
		for p := range got.Files {
			if p == rel {
				changedKey = p
			}
		}
		assertPacked(t, "the changed file's path and id", []string{changedKey, got.Files[rel]})
		for p, data := range keyData(got.Files) {
			if p != rel && p > rel && walk[p] != data { // the files after rel were never rewritten
				t.Errorf("round %d: the key %s is not the walk's any more", round, p)
			}
		}
		if d, ok := keyData(o.delta)[rel]; !ok || d != unsafe.StringData(changedKey) {
			t.Errorf("round %d: delta's key %s is not the tree's", round, rel)
		}
	}
	if want := fullWalk(t, dir); o.last.Revision != want.Revision || !maps.Equal(o.last.Files, want.Files) {
		t.Errorf("after the rewrites: %s, want a walk's %s", o.last.Revision, want.Revision)
	}
	return best
}

// TestDirFetchIncrementalAllocs checks that an incremental Fetch of a
// one-file change allocates as much for 3,000 files as for 30: nothing
// per file it did not change.
func TestDirFetchIncrementalAllocs(t *testing.T) {
	small := fetchMallocs(t, 30)
	large := fetchMallocs(t, 3000)
	t.Logf("allocations of a one-file incremental Fetch: %d (30 files), %d (3,000 files)", small, large)
	if large > small+2 {
		t.Errorf("a one-file incremental Fetch allocates %d times with 3,000 files, %d with 30: want the same", large, small)
	}
}

// TestDirFileSize pins what the folder source keeps of each file it knows
// (a dirFile in each slot of known): its listing and kind, not its content
// id, which the tree keeps (issue 13: 32 bytes more in each of 10,000
// slots).
func TestDirFileSize(t *testing.T) {
	if got := unsafe.Sizeof(dirFile{}); got > 24 {
		t.Errorf("dirFile is %d bytes, want at most 24", got)
	}
}
