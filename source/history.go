package source

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// LastCommits returns, for every file below dir in the Git working copy
// that holds it, the id of the commit that last changed it, by path
// relative to dir (slash-separated). It walks HEAD's history once, newest
// first, comparing each commit with its parent as `git log --name-only`
// does (a merge commit is not compared: its changes are its parents').
// Uncommitted changes are not seen. A dir outside any working copy, or a
// repository without commits, returns an empty map. `certops inventory`
// uses it.
func LastCommits(ctx context.Context, dir string) (map[string]string, error) {
	out := map[string]string{}
	repo, err := openLocal(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	prefix, err := prefixIn(repo, dir)
	if err != nil {
		return nil, err
	}
	head, err := repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read HEAD of %s: %w", dir, err)
	}
	iter, err := repo.Log(&git.LogOptions{From: head.Hash(), Order: git.LogOrderCommitterTime})
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", dir, err)
	}
	defer iter.Close()
	seen := func(p, commit string) {
		rel, ok := strings.CutPrefix(p, prefix)
		if !ok {
			return
		}
		if _, done := out[rel]; !done {
			out[rel] = commit
		}
	}
	err = iter.ForEach(func(c *object.Commit) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.NumParents() > 1 {
			return nil
		}
		tree, err := c.Tree()
		if err != nil {
			return err
		}
		if c.NumParents() == 0 {
			return tree.Files().ForEach(func(f *object.File) error {
				seen(f.Name, c.Hash.String())
				return nil
			})
		}
		parent, err := c.Parent(0)
		if err != nil {
			return err
		}
		ptree, err := parent.Tree()
		if err != nil {
			return err
		}
		changes, err := object.DiffTreeWithOptions(ctx, ptree, tree, &object.DiffTreeOptions{})
		if err != nil {
			return err
		}
		for _, ch := range changes {
			if ch.To.Name != "" {
				seen(ch.To.Name, c.Hash.String())
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, storer.ErrStop) {
		return nil, fmt.Errorf("log of %s: %w", dir, err)
	}
	return out, nil
}

// prefixIn returns dir's path below the root of repo's working tree, as a
// slash-separated prefix ("" at the root, else "sub/").
func prefixIn(repo *git.Repository, dir string) (string, error) {
	wt, err := repo.Worktree()
	if err != nil {
		return "", fmt.Errorf("working tree of %s: %w", dir, err)
	}
	root, err := filepath.EvalSymlinks(wt.Filesystem.Root())
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == "." {
		return "", err
	}
	return filepath.ToSlash(rel) + "/", nil
}
