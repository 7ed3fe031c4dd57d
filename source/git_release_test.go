package source

import (
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"certops/fixtures"
)

// TestGitReleaseObjects: after ReleaseObjects the cache of decoded objects
// is empty and every file of the tree still reads, decoded from the clone
// again, as does the next revision.
func TestGitReleaseObjects(t *testing.T) {
	repo := fixtures.NewGitRepo(t)
	files := map[string]string{"a.yaml": "one\n", "b/c.yaml": "c\n"}
	repo.Commit(t, "one", files)
	o, err := NewGit(GitOptions{URL: repo.FileURL(), Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := o.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	read := func(tree *Tree, files map[string]string) {
		t.Helper()
		for p, want := range files {
			if b, err := tree.ReadFile(p); err != nil || string(b) != want {
				t.Errorf("ReadFile(%s) = %q, %v; want %q", p, b, err, want)
			}
		}
	}
	read(tree, files)
	blob := plumbing.NewHash(tree.Files["a.yaml"])
	if _, ok := o.objects.Get(blob); !ok {
		t.Fatalf("blob %s of a.yaml not cached after reading it", blob)
	}
	o.ReleaseObjects()
	if _, ok := o.objects.Get(blob); ok {
		t.Errorf("blob %s of a.yaml still cached after ReleaseObjects", blob)
	}
	read(tree, files)

	files["a.yaml"] = "two\n"
	repo.Commit(t, "two", files)
	if tree, err = o.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	read(tree, files)
}
