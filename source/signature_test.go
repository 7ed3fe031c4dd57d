package source_test

import (
	"errors"
	"path/filepath"
	"testing"

	"certops/fixtures"
	"certops/source"
	"certops/trust"
)

// TestTreesCarrySignedObjects: every way a Git tree is read (a fetch, a
// repository read in place, the data-dir restore, diff's OpenRevision)
// gives the raw commit, and the annotated tag when a tag is followed, so
// that they verify.
func TestTreesCarrySignedObjects(t *testing.T) {
	key := fixtures.NewSSHSigningKey(t, "ci")
	keys, err := trust.LoadDir(fixtures.TrustedKeysDir(t, key))
	if err != nil {
		t.Fatal(err)
	}
	repo := fixtures.NewGitRepo(t)
	rev := repo.CommitSigned(t, key, "signed", map[string]string{"a.yaml": "a: 1\n"})
	repo.TagSigned(t, key, "release", rev)

	fetched := func(url, ref string) func(t *testing.T) *source.Tree {
		return func(t *testing.T) *source.Tree {
			g, err := source.NewGit(source.GitOptions{URL: url, Ref: ref, Dir: filepath.Join(t.TempDir(), "clone")})
			if err != nil {
				t.Fatal(err)
			}
			tree, err := g.Fetch(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return tree
		}
	}
	restored := func(url, ref string) func(t *testing.T) *source.Tree {
		return func(t *testing.T) *source.Tree {
			dir := filepath.Join(t.TempDir(), "clone")
			g, err := source.NewGit(source.GitOptions{URL: url, Ref: ref, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.Fetch(t.Context()); err != nil {
				t.Fatal(err)
			}
			again, err := source.NewGit(source.GitOptions{URL: url, Ref: ref, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			tree, err := again.Open(t.Context(), rev)
			if err != nil {
				t.Fatal(err)
			}
			return tree
		}
	}
	opened := func(name string) func(t *testing.T) *source.Tree {
		return func(t *testing.T) *source.Tree {
			fsys, err := source.OpenRevision(t.Context(), repo.Work, name)
			if err != nil {
				t.Fatal(err)
			}
			return fsys.(*source.Tree)
		}
	}
	tests := []struct {
		name    string
		tree    func(t *testing.T) *source.Tree
		wantTag bool
	}{
		{"fetch branch", fetched(repo.FileURL(), "main"), false},
		{"fetch tag", fetched(repo.FileURL(), "release"), true},
		{"in place, tag", fetched(repo.Work, "release"), true},
		{"in place, branch", fetched(repo.Work, ""), false},
		{"restore, tag", restored(repo.FileURL(), "release"), true},
		{"restore in place, tag", restored(repo.Work, "release"), true},
		{"diff revision, tag", opened("release"), true},
		{"diff revision, commit", opened(rev), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := tt.tree(t)
			if tree.Revision != rev || tree.Signed == nil {
				t.Fatalf("tree %s, signed %v; want %s with signed objects", tree.Revision, tree.Signed, rev)
			}
			if (tree.Signed.Tag != nil) != tt.wantTag {
				t.Fatalf("Signed.Tag = %v, want a tag: %v", tree.Signed.Tag, tt.wantTag)
			}
			mode := trust.ModeHead
			if tt.wantTag {
				mode = trust.ModeTagAndHead
			}
			if _, err := keys.VerifyRevision(mode, *tree.Signed); err != nil {
				t.Errorf("VerifyRevision(%s) = %v", mode, err)
			}
			if _, err := keys.VerifyRevision(trust.ModeTag, *tree.Signed); tt.wantTag != (err == nil) || (!tt.wantTag && !errors.Is(err, trust.ErrNotTag)) {
				t.Errorf("VerifyRevision(tag) = %v, want a tag: %v", err, tt.wantTag)
			}
		})
	}
}
