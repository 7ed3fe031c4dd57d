package source

import (
	"errors"
	"io"
	"maps"
	"path"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// gitListing is a tree a Git source returned, with what lists the next one
// from it: the repository it was read from, the commit (or tag) id asked
// for, and the hash of its root tree.
type gitListing struct {
	repo *git.Repository
	id   plumbing.Hash
	root plumbing.Hash
	tree *Tree
}

// listFrom lists the files of tree from base, a listing of the same
// repository: a subtree whose hash is base's has the same files, so only
// the subtrees whose hash changed are read, from the root down to the
// changed entries (a one-file commit reads one tree per level, not the
// 10,000 entries of the repository). It returns the files (a copy of
// base's, updated) and the paths that changed, and ok false when the
// listing needs the full walk: base or tree has symbolic links, whose
// targets the full walk reads.
func listFrom(repo *git.Repository, base *gitListing, tree *object.Tree) (files map[string]string, changed []string, ok bool, err error) {
	if len(base.tree.Links)+len(base.tree.Special) > 0 {
		return nil, nil, false, nil
	}
	if base.root == tree.Hash {
		return base.tree.Files, nil, true, nil // the trees never change: shared
	}
	old, err := repo.TreeObject(base.root)
	if err != nil {
		return nil, nil, false, err
	}
	d := &treeDiff{repo: repo, files: maps.Clone(base.tree.Files)}
	if err := d.trees("", old, tree); err != nil {
		if errors.Is(err, errHasLink) {
			return nil, nil, false, nil
		}
		return nil, nil, false, err
	}
	return d.files, d.changed, true, nil
}

// errHasLink stops a tree diff that meets a symbolic link.
var errHasLink = errors.New("a symbolic link")

// treeDiff applies the difference of two trees to a listing.
type treeDiff struct {
	repo    *git.Repository
	files   map[string]string
	changed []string
}

// entryKind is what a tree entry is to a listing.
type entryKind int

const (
	kindNone entryKind = iota // a submodule, or no entry
	kindFile
	kindDir
	kindLink
)

func kindOf(e *object.TreeEntry) entryKind {
	if e == nil {
		return kindNone
	}
	switch e.Mode {
	case filemode.Regular, filemode.Executable:
		return kindFile
	case filemode.Dir:
		return kindDir
	case filemode.Symlink:
		return kindLink
	}
	return kindNone
}

// trees applies the difference between the trees old and cur at prefix.
func (d *treeDiff) trees(prefix string, old, cur *object.Tree) error {
	before := make(map[string]*object.TreeEntry, len(old.Entries))
	for i := range old.Entries {
		before[old.Entries[i].Name] = &old.Entries[i]
	}
	for i := range cur.Entries {
		n := &cur.Entries[i]
		o := before[n.Name]
		delete(before, n.Name)
		if err := d.entry(path.Join(prefix, n.Name), o, n); err != nil {
			return err
		}
	}
	for name, o := range before { // gone from cur
		if err := d.entry(path.Join(prefix, name), o, nil); err != nil {
			return err
		}
	}
	return nil
}

// entry applies the change of the entry at p from o to n (either may be
// nil).
func (d *treeDiff) entry(p string, o, n *object.TreeEntry) error {
	ko, kn := kindOf(o), kindOf(n)
	if ko == kindLink || kn == kindLink {
		return errHasLink
	}
	switch {
	case ko == kindNone && kn == kindNone:
		return nil
	case o != nil && n != nil && o.Hash == n.Hash && (ko == kn):
		return nil // the same blob or subtree (a mode bit aside)
	case ko == kindDir && kn == kindDir:
		ot, err := d.repo.TreeObject(o.Hash)
		if err != nil {
			return err
		}
		nt, err := d.repo.TreeObject(n.Hash)
		if err != nil {
			return err
		}
		return d.trees(p, ot, nt)
	}
	switch ko {
	case kindFile:
		delete(d.files, p)
		d.changed = append(d.changed, p)
	case kindDir:
		if err := d.walk(p, o.Hash, func(q string, _ plumbing.Hash) {
			delete(d.files, q)
			d.changed = append(d.changed, q)
		}); err != nil {
			return err
		}
	}
	switch kn {
	case kindFile:
		d.files[p] = n.Hash.String()
		d.changed = append(d.changed, p)
	case kindDir:
		return d.walk(p, n.Hash, func(q string, h plumbing.Hash) {
			d.files[q] = h.String()
			d.changed = append(d.changed, q)
		})
	}
	return nil
}

// walk calls fn with every file below the subtree h at prefix.
func (d *treeDiff) walk(prefix string, h plumbing.Hash, fn func(p string, blob plumbing.Hash)) error {
	t, err := d.repo.TreeObject(h)
	if err != nil {
		return err
	}
	w := object.NewTreeWalker(t, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch kindOf(&e) {
		case kindLink:
			return errHasLink
		case kindFile:
			fn(path.Join(prefix, name), e.Hash)
		}
	}
}
