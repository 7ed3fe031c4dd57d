package source

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"certops/fixtures"
)

// TestListFromMatchesFullListing commits random changes to a repository
// (files added, rewritten, removed; folders added and removed whole; a
// file replaced by a folder and back; symbolic links now and then) and
// lists each commit twice: from the previous listing by subtree hashes,
// and by the full walk. Both have the same files and links, and the paths
// the diff reports changed are the comparison of the listings.
func TestListFromMatchesFullListing(t *testing.T) {
	repo := fixtures.NewGitRepo(t)
	rng := rand.New(rand.NewPCG(13, 7))
	files := map[string]string{}
	pick := func() string {
		switch rng.IntN(4) {
		case 0:
			return fmt.Sprintf("f%d.yaml", rng.IntN(4))
		case 1:
			return fmt.Sprintf("d%d/f%d.yaml", rng.IntN(3), rng.IntN(4))
		case 2:
			return fmt.Sprintf("d%d/s%d/f%d.yaml", rng.IntN(3), rng.IntN(2), rng.IntN(3))
		}
		return fmt.Sprintf("d%d/s%d", rng.IntN(3), rng.IntN(2)) // a file where a folder may be
	}
	g, err := git.PlainOpen(repo.Bare())
	if err != nil {
		t.Fatal(err)
	}
	steps := 40
	if testing.Short() {
		steps = 12
	}
	var base *gitListing
	incremental := 0
	for step := range steps {
		change := map[string]string{}
		for range 1 + rng.IntN(4) {
			p := pick()
			switch r := rng.IntN(10); {
			case r < 3:
				if _, ok := files[p]; ok {
					change[p] = "" // removed
					delete(files, p)
				}
			case r == 3: // a folder removed whole
				dir := fmt.Sprintf("d%d/", rng.IntN(3))
				for q := range files {
					if len(q) > len(dir) && q[:len(dir)] == dir {
						change[q] = ""
						delete(files, q)
					}
				}
			default:
				for _, q := range conflicts(files, p) { // a file replaced by a folder, or back
					change[q] = ""
					delete(files, q)
				}
				v := fmt.Sprintf("%s at %d\n", p, step)
				change[p], files[p] = v, v
			}
		}
		link := filepath.Join(repo.Work, "link.yaml")
		switch {
		case rng.IntN(8) == 0:
			os.Remove(link)
			if err := os.Symlink("f0.yaml", link); err != nil {
				t.Fatal(err)
			}
		case rng.IntN(3) == 0:
			os.Remove(link)
		}
		// Removals first, with the folders they empty: a file may take a
		// folder's place in the same commit.
		for p, v := range change {
			if v != "" {
				continue
			}
			delete(change, p)
			for q := filepath.Join(repo.Work, filepath.FromSlash(p)); q != repo.Work; q = filepath.Dir(q) {
				if os.Remove(q) != nil {
					break
				}
			}
		}
		h := plumbing.NewHash(repo.Commit(t, fmt.Sprint("step ", step), change))
		got, root, err := listTree(g, h, base)
		if err != nil {
			t.Fatalf("step %d: listTree from the last listing: %v", step, err)
		}
		want, err := treeOfRepo(g, h)
		if err != nil {
			t.Fatalf("step %d: listTree: %v", step, err)
		}
		if !maps.Equal(got.Files, want.Files) || !maps.Equal(got.Links, want.Links) {
			t.Fatalf("step %d: listed from the last listing\n%v %v\nwant\n%v %v", step, got.Files, got.Links, want.Files, want.Links)
		}
		if base != nil {
			if paths, ok := got.ChangedSince(base.tree); ok {
				incremental++
				if want := changedFiles(base.tree.Files, got.Files); !slices.Equal(paths, want) {
					t.Fatalf("step %d: ChangedSince = %q, want %q", step, paths, want)
				}
			} else if len(base.tree.Links)+len(got.Links) == 0 {
				t.Errorf("step %d: no links, yet the listing was not made from the last one", step)
			}
		}
		base = &gitListing{repo: g, id: h, root: root, tree: got}
	}
	if incremental < steps/3 {
		t.Errorf("%d of %d listings made from the last one, want at least a third", incremental, steps)
	}
}

// conflicts returns the files that a file at p would replace: those below
// p as a folder, and one where a folder of p would be.
func conflicts(files map[string]string, p string) []string {
	var out []string
	for q := range files {
		if len(q) > len(p) && q[:len(p)+1] == p+"/" || len(p) > len(q) && p[:len(q)+1] == q+"/" {
			out = append(out, q)
		}
	}
	return out
}
