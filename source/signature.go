package source

import (
	"fmt"
	"io"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"certops/trust"
)

// signedRevision reads the raw commit object, and the annotated tag when
// the ref was one, for signature verification ([Tree.Signed]). The raw
// bytes are what Git hashed and signed; trust splits them the way git
// does, so no header is lost to a re-encoding.
func signedRevision(repo *git.Repository, commit plumbing.Hash, tag *object.Tag) (*trust.Revision, error) {
	raw, err := rawObject(repo, plumbing.CommitObject, commit)
	if err != nil {
		return nil, err
	}
	rev := &trust.Revision{Commit: trust.CommitObject(commit.String(), raw)}
	if tag != nil {
		raw, err := rawObject(repo, plumbing.TagObject, tag.Hash)
		if err != nil {
			return nil, err
		}
		o := trust.TagObject(tag.Hash.String(), raw)
		rev.Tag = &o
	}
	return rev, nil
}

func rawObject(repo *git.Repository, typ plumbing.ObjectType, h plumbing.Hash) ([]byte, error) {
	obj, err := repo.Storer.EncodedObject(typ, h)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", typ, h, err)
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", typ, h, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// resolveKeepingTag resolves rev in a local repository like `git
// rev-parse`, except that a tag name resolves to the annotated tag object
// rather than to its commit, so that the tag's signature can be verified.
func resolveKeepingTag(repo *git.Repository, rev string) (plumbing.Hash, error) {
	for _, name := range []plumbing.ReferenceName{plumbing.ReferenceName(rev), plumbing.NewTagReferenceName(rev)} {
		if !name.IsTag() {
			continue
		}
		if ref, err := repo.Reference(name, true); err == nil {
			return ref.Hash(), nil
		}
	}
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return *h, nil
}

// withTag returns the annotated tag the source follows when it points to
// commit, else commit: a revision restored from the data dir is verified
// with its tag, as it was when fetched. The tag is the one the clone last
// fetched, or for a repository read in place the tag --ref names.
func (o *Git) withTag(repo *git.Repository, commit plumbing.Hash) plumbing.Hash {
	var h plumbing.Hash
	if o.local {
		if o.opts.Ref == "" {
			return commit
		}
		th, err := resolveKeepingTag(repo, o.opts.Ref)
		if err != nil {
			return commit
		}
		h = th
	} else {
		ref, err := repo.Reference(targetRef, false)
		if err != nil {
			return commit
		}
		h = ref.Hash()
	}
	tag, err := repo.TagObject(h)
	if err != nil {
		return commit
	}
	if c, err := tag.Commit(); err == nil && c.Hash == commit {
		return tag.Hash
	}
	return commit
}
