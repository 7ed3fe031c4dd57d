package source

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"certops/fixtures"
)

// loadsYAML is a selector like the reconciler's: YAML files up to 1 MiB.
func loadsYAML(p string, size int64) bool {
	return path.Ext(p) == ".yaml" && size <= 1<<20
}

// allocated returns the bytes allocated while fn ran.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDirSelect is issue 16 item 5: a 1.5 GB stray file (and an entity
// file of that size) beside the entities is listed without being read.
func TestDirSelect(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte("name: shop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const huge = 1536 << 20
	for _, name := range []string{"backup.tar", "huge.yaml"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(huge); err != nil { // sparse: no disk used
			t.Fatal(err)
		}
		f.Close()
	}
	d, err := NewDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Select(loadsYAML)
	var tree *Tree
	n := allocated(func() {
		if tree, err = d.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if n > 32<<20 {
		t.Errorf("Fetch allocated %d MB with two 1.5 GB files present, want them not read", n>>20)
	}
	for _, name := range []string{"backup.tar", "huge.yaml"} {
		if id := tree.Files[name]; !strings.HasPrefix(id, "stat:") {
			t.Errorf("Files[%q] = %q, want it listed by size and time", name, id)
		}
	}
	if fi, err := tree.Stat("huge.yaml"); err != nil || fi.Size() != huge {
		t.Errorf("Stat(huge.yaml) = %v, %v; want size %d without reading", fi, err, huge)
	}
	if src, err := tree.ReadFile("shop.yaml"); err != nil || string(src) != "name: shop\n" {
		t.Errorf("ReadFile(shop.yaml) = %q, %v", src, err)
	}
}

// TestGitBlobSize is issue 16 item 9: a blob's size comes from the object
// store without inflating it, so a huge file is skipped by its size.
func TestGitBlobSize(t *testing.T) {
	repo := fixtures.NewGitRepo(t)
	big := strings.Repeat("x", 8<<20)
	rev := repo.Commit(t, "big", map[string]string{"shop.yaml": "name: shop\n", "huge.yaml": big, "backup.bin": big})
	g, err := NewGit(GitOptions{URL: repo.FileURL(), Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := g.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tree.Revision != rev {
		t.Fatalf("revision %s, want %s", tree.Revision, rev)
	}
	var size int64
	n := allocated(func() {
		fi, err := tree.Stat("huge.yaml")
		if err != nil {
			t.Fatal(err)
		}
		size = fi.Size()
	})
	if size != int64(len(big)) {
		t.Errorf("Stat(huge.yaml).Size() = %d, want %d", size, len(big))
	}
	if n > 1<<20 {
		t.Errorf("Stat of an 8 MB blob allocated %d KB, want it not inflated", n>>10)
	}
}
