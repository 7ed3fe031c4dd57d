package source

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"certops/fixtures"
)

// TestGitListingPacked checks that the full listing of a Git tree keeps
// its paths and blob ids in one block, and that the ids are the blobs'.
func TestGitListingPacked(t *testing.T) {
	repo := fixtures.NewGitRepo(t)
	files := make(map[string]string)
	for i := range 250 {
		files[fmt.Sprintf("d%03d/e%05d.yaml", i/100, i)] = fmt.Sprintf("name: e%05d\n", i)
	}
	repo.Commit(t, "fleet", files)
	g, err := NewGit(GitOptions{URL: repo.FileURL(), Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := g.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(tree.Files)), slices.Sorted(maps.Keys(files)); !slices.Equal(got, want) {
		t.Fatalf("Fetch listed %d files, want %d", len(got), len(want))
	}
	for p, content := range files {
		sum := sha1.Sum(fmt.Appendf(nil, "blob %d\x00%s", len(content), content))
		if want := hex.EncodeToString(sum[:]); tree.Files[p] != want {
			t.Errorf("Files[%s] = %s, want the blob id %s", p, tree.Files[p], want)
		}
	}
	assertPacked(t, "the Git listing's paths and ids", keysAndValues(tree.Files))
}
