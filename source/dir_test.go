package source

import (
	"context"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFile writes content to dir/rel, creating its folders.
func writeFile(tb testing.TB, dir, rel, content string) {
	tb.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// awaitTrigger waits for the next trigger of a watch, and fails the test
// with msg once timeout fires.
func awaitTrigger(t *testing.T, triggers <-chan struct{}, timeout <-chan time.Time, msg string) {
	t.Helper()
	select {
	case <-triggers:
	case <-timeout:
		t.Fatal(msg)
	}
}

// watchDir starts o.Watch and returns the channel its triggers go to, once
// its watches are in place.
func watchDir(tb testing.TB, o *Dir) <-chan struct{} {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	triggers := make(chan struct{}, 1000)
	done := make(chan error, 1)
	go func() { done <- o.Watch(ctx, func() { triggers <- struct{}{} }) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Watch: %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		o.pendMu.Lock()
		watching := o.watching
		o.pendMu.Unlock()
		if watching {
			return triggers
		}
		if time.Now().After(deadline) {
			tb.Fatal("Watch did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

// newDir returns the Dir of dir, failing tb if it cannot.
func newDir(tb testing.TB, dir string) *Dir {
	tb.Helper()
	o, err := NewDir(dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// fullWalk returns the tree a fresh Dir walks, the reference an
// incremental Fetch must equal.
func fullWalk(tb testing.TB, dir string) *Tree {
	tb.Helper()
	o := newDir(tb, dir)
	t, err := o.Fetch(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// TestDirFetchIncremental changes a watched folder in the ways an editor
// or a checkout does and checks that a Fetch after the triggers equals a
// walk of the whole folder, and that a change to files only reads what
// fsnotify named (no walk).
func TestDirFetchIncremental(t *testing.T) {
	tests := []struct {
		name   string
		change func(tb testing.TB, dir string)
		walk   bool // the change needs a walk of the tree
	}{
		{"rewrite a file", func(tb testing.TB, dir string) { writeFile(tb, dir, "d000/e1.yaml", "e1 v2\n") }, false},
		{"add a file", func(tb testing.TB, dir string) { writeFile(tb, dir, "d001/new.yaml", "new\n") }, false},
		{"remove a file", func(tb testing.TB, dir string) {
			if err := os.Remove(filepath.Join(dir, "d000", "e2.yaml")); err != nil {
				tb.Fatal(err)
			}
		}, false},
		{"save by rename", func(tb testing.TB, dir string) {
			writeFile(tb, dir, "d001/.e3.yaml.tmp", "e3 v2\n")
			if err := os.Rename(filepath.Join(dir, "d001", ".e3.yaml.tmp"), filepath.Join(dir, "d001", "e3.yaml")); err != nil {
				tb.Fatal(err)
			}
		}, false},
		{"remove a folder", func(tb testing.TB, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "d001")); err != nil {
				tb.Fatal(err)
			}
		}, false},
		{"add a folder", func(tb testing.TB, dir string) {
			tmp := filepath.Join(tb.TempDir(), "d009")
			writeFile(tb, tmp, "e9.yaml", "e9\n")
			if err := os.Rename(tmp, filepath.Join(dir, "d009")); err != nil {
				tb.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, rel := range []string{"d000/e1.yaml", "d000/e2.yaml", "d001/e3.yaml", "d001/e4.yaml", "policy.cue"} {
				writeFile(t, dir, rel, rel+"\n")
			}
			o := newDir(t, dir)
			triggers := watchDir(t, o)
			before, err := o.Fetch(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			walked := o.lastFull
			tt.change(t, dir)
			// Events arrive one by one: the tree is eventually the
			// folder's, within the triggers the change causes.
			timeout := time.After(10 * time.Second)
			for {
				select {
				case <-triggers:
				case <-timeout:
					t.Fatalf("Fetch after %s never equals a walk of the folder", tt.name)
				}
				got, err := o.Fetch(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				want := fullWalk(t, dir)
				if got.Revision == want.Revision && maps.Equal(got.Files, want.Files) {
					if got.Revision == before.Revision {
						t.Errorf("Fetch after %s: revision %s did not change", tt.name, got.Revision)
					}
					if !tt.walk && !o.lastFull.Equal(walked) {
						t.Errorf("Fetch after %s walked the tree, want only the named paths read", tt.name)
					}
					// The change hint is the comparison of the listings.
					if paths, ok := got.ChangedSince(before); !tt.walk && (!ok || !slices.Equal(paths, changedFiles(before.Files, got.Files))) {
						t.Errorf("ChangedSince after %s = %q, %v, want %q, true", tt.name, paths, ok, changedFiles(before.Files, got.Files))
					}
					return
				}
			}
		})
	}
}

// TestDirFetchUnwatched checks that without Watch every Fetch walks the
// tree, as before.
func TestDirFetchUnwatched(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "a\n")
	o := newDir(t, dir)
	t1, err := o.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "b.yaml", "b\n")
	t2, err := o.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if t1.Revision == t2.Revision || len(t2.Files) != 2 {
		t.Errorf("Fetch after adding b.yaml = %s %v, want a new revision with 2 files", t2.Revision, t2.Files)
	}
}

// TestDigestSum checks that the folder digest does not depend on the order
// files are added in and that removing a file undoes adding it.
func TestDigestSum(t *testing.T) {
	var a, b digestSum
	a.add("x.yaml", "1")
	a.add("y.yaml", "2")
	b.add("y.yaml", "2")
	b.add("x.yaml", "1")
	if a != b {
		t.Errorf("digest in two orders: %s != %s", a.hex(), b.hex())
	}
	b.add("z.yaml", "3")
	if a == b {
		t.Errorf("digest with z.yaml = %s, want a change", b.hex())
	}
	b.sub("z.yaml", "3")
	if a != b {
		t.Errorf("digest after removing z.yaml = %s, want %s", b.hex(), a.hex())
	}
	var c digestSum
	c.add("x.yaml", "2")
	c.add("y.yaml", "1")
	if a == c {
		t.Errorf("swapped contents give the same digest %s", a.hex())
	}
}

// TestDirFetchIncrementalSelect checks that a file the selector leaves out
// is listed by name, not read, by an incremental Fetch as by a walk, and
// that its size comes from the listing.
func TestDirFetchIncrementalSelect(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "a\n")
	o := newDir(t, dir)
	o.Select(func(p string, size int64) bool { return filepath.Ext(p) == ".yaml" })
	triggers := watchDir(t, o)
	if _, err := o.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	walked := o.lastFull
	writeFile(t, dir, "backup.bak", "0123456789")
	timeout := time.After(10 * time.Second)
	for {
		select {
		case <-triggers:
		case <-timeout:
			t.Fatal("Fetch never lists backup.bak")
		}
		got, err := o.Fetch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		id, ok := got.Files["backup.bak"]
		if !ok {
			continue
		}
		if !strings.HasPrefix(id, "stat:") {
			t.Errorf("backup.bak listed as %q, want an identity by name (stat:)", id)
		}
		if fi, err := fs.Stat(got, "backup.bak"); err != nil || fi.Size() != 10 {
			t.Errorf("Stat(backup.bak) = %v, %v, want size 10", fi, err)
		}
		if !o.lastFull.Equal(walked) {
			t.Errorf("Fetch after adding backup.bak walked the tree")
		}
		return
	}
}

// TestDirRemovalsWaitForQuiet: files removed one after another (an rm -rf)
// trigger once, after the removals stop, so that the mass-delete guard sees
// them as one change; a write still triggers (at once, without a quiet
// period).
func TestDirRemovalsWaitForQuiet(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c", "d"} {
		writeFile(t, dir, n+".yaml", n+"\n")
	}
	o := newDir(t, dir)
	if _, err := o.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	triggers := watchDir(t, o)
	drain := func() {
		for {
			select {
			case <-triggers:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	drain()
	for _, n := range []string{"a", "b", "c", "d"} {
		if err := os.Remove(filepath.Join(dir, n+".yaml")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-triggers:
			t.Fatalf("a trigger after removing %s.yaml, while removals go on (want one after %v of quiet)", n, dirRemovalQuiet)
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case <-triggers:
	case <-time.After(10 * time.Second):
		t.Fatal("no trigger after the removals stopped")
	}
	tree, err := o.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Files) != 0 {
		t.Errorf("Fetch after removing every file = %v, want no files", tree.Files)
	}
	drain()
	writeFile(t, dir, "e.yaml", "e\n")
	select {
	case <-triggers:
	case <-time.After(time.Second):
		t.Errorf("no trigger within 1s of a write (want one at once)")
	}
}

// changedFiles is the comparison ChangedSince spares its callers: the
// paths whose entry differs between two listings, sorted.
func changedFiles(a, b map[string]string) []string {
	var out []string
	for p, id := range b {
		if old, ok := a[p]; !ok || old != id {
			out = append(out, p)
		}
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// TestDirWatchWalksOffTheChangePath checks that the safety-net walk of a
// watched folder never runs in the Fetch of a change (issue 13: with
// 10,000 files it would add 100-300 ms to that write): a change made long
// after the last walk reads only its file, and Watch asks for the walk on
// its own, once its watches are in place and every dirRescan.
func TestDirWatchWalksOffTheChangePath(t *testing.T) {
	old := dirRescan
	dirRescan = time.Hour // no periodic walk in the first part
	t.Cleanup(func() { dirRescan = old })
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "a\n")
	o := newDir(t, dir)
	// The daemon's first Fetch races the watches: here it comes before.
	if _, err := o.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	triggers := watchDir(t, o)
	select {
	case <-triggers:
	case <-time.After(10 * time.Second):
		t.Fatal("no trigger once the watches are in place (want one, for the walk)")
	}
	walked := o.lastFull
	if _, err := o.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	if o.lastFull.Equal(walked) {
		t.Fatal("the Fetch after the watches were in place did not walk the tree")
	}

	o.mu.Lock()
	o.lastFull = time.Now().Add(-2 * time.Hour) // long ago
	walked = o.lastFull
	o.mu.Unlock()
	writeFile(t, dir, "b.yaml", "b\n")
	for timeout := time.After(10 * time.Second); ; {
		awaitTrigger(t, triggers, timeout, "Fetch never lists b.yaml")
		got, err := o.Fetch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !o.lastFull.Equal(walked) {
			t.Fatal("the Fetch of a change walked the tree, want only the named path read")
		}
		if _, ok := got.Files["b.yaml"]; ok {
			break
		}
	}
}

// TestDirWatchRescans checks that Watch lists the tree every dirRescan,
// the safety net for events the kernel lost, and that the next Fetch then
// reads the paths that differ, without a walk.
func TestDirWatchRescans(t *testing.T) {
	old := dirRescan
	dirRescan = 20 * time.Millisecond
	t.Cleanup(func() { dirRescan = old })
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "a\n")
	writeFile(t, dir, "b.yaml", "b\n")
	o := newDir(t, dir)
	triggers := watchDir(t, o)
	if _, err := o.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A change the kernel did not report: what the Fetch knew of a.yaml
	// is not what the folder holds.
	o.mu.Lock()
	known := maps.Clone(o.known)
	f := known["a.yaml"]
	f.size++
	known["a.yaml"] = f
	o.known = known
	walked := o.lastFull
	o.mu.Unlock()
	for timeout := time.After(10 * time.Second); ; {
		awaitTrigger(t, triggers, timeout, "the rescan never named a.yaml, want it within a few dirRescan")
		o.pendMu.Lock()
		named := o.dirty["a.yaml"]
		o.pendMu.Unlock()
		if !named {
			continue
		}
		if _, err := o.Fetch(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !o.lastFull.Equal(walked) {
			t.Error("the Fetch after a rescan walked the tree, want only the paths it named read")
		}
		o.mu.Lock()
		got := o.delta["a.yaml"].size
		o.mu.Unlock()
		if got != 2 {
			t.Errorf("a.yaml's size after the rescan = %d, want 2 (read again)", got)
		}
		return
	}
}

// TestDirRescan checks what a rescan names: the paths added, changed or
// removed since the last Fetch, and nothing when nothing changed.
func TestDirRescan(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "a\n")
	writeFile(t, dir, "sub/c.yaml", "c\n")
	o := newDir(t, dir)
	if _, err := o.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	if o.rescan(t.Context()) || len(o.dirty) != 0 {
		t.Fatalf("rescan of an unchanged folder named %v, want nothing", o.dirty)
	}
	writeFile(t, dir, "a.yaml", "a, longer\n")
	writeFile(t, dir, "b.yaml", "b\n")
	if err := os.Remove(filepath.Join(dir, "sub", "c.yaml")); err != nil {
		t.Fatal(err)
	}
	if !o.rescan(t.Context()) {
		t.Fatal("rescan after three changes = false, want true")
	}
	got := slices.Sorted(maps.Keys(o.dirty))
	if want := []string{"a.yaml", "b.yaml", "sub/c.yaml"}; !slices.Equal(got, want) {
		t.Errorf("rescan named %q, want %q", got, want)
	}
}

// TestDirFetchSpareListing checks that the copy of the listing made after
// a Fetch, for the next one to change, leaves the trees already returned
// as they were.
func TestDirFetchSpareListing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "a\n")
	writeFile(t, dir, "b.yaml", "b\n")
	o := newDir(t, dir)
	triggers := watchDir(t, o)
	t1, err := o.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want1 := maps.Clone(t1.Files)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		o.spareMu.Lock()
		ready := o.spareOf == t1 && o.spare != nil
		o.spareMu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no spare listing after a Fetch")
		}
	}
	writeFile(t, dir, "a.yaml", "a2\n")
	for timeout := time.After(10 * time.Second); ; {
		awaitTrigger(t, triggers, timeout, "Fetch never sees the new a.yaml")
		t2, err := o.Fetch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(t1.Files, want1) {
			t.Fatalf("the first tree's listing changed to %v, want %v", t1.Files, want1)
		}
		if want := fullWalk(t, dir); t2.Revision == want.Revision {
			if !maps.Equal(t2.Files, want.Files) {
				t.Errorf("Fetch = %v, want %v", t2.Files, want.Files)
			}
			return
		}
	}
}
