package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	"certops/certcheck"
)

// Result is what Load found in a repository.
type Result struct {
	// Entities are the entities of every file, in path order. Use them only
	// when Problems.Err() is nil.
	Entities []*Entity
	// Problems holds errors and warnings, sorted by position;
	// Problems.Err() is nil when the repository is valid.
	Problems ErrorList
	// Ignored lists, relative to fsys, the files that are neither entity
	// files nor policy, and the dot-files and dot-folders skipped.
	Ignored []string
	// Files is the number of entity files read.
	Files int
	// Documents is the number of entity documents (and ADC or APISIX
	// items) in them, whether they passed the schema or not.
	Documents int
	// Checks is the severity of each hygiene check under the policy
	// (#Checks), for callers that check outside validation.
	Checks certcheck.Policy
}

// rawSSL is one document as decoded from CUE.
type rawSSL struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	SNIs   []string `json:"snis"`
	Cert   string   `json:"cert"`
	Key    string   `json:"key"`
	Certs  []string `json:"certs"`
	Keys   []string `json:"keys"`
	Client *struct {
		CA    string `json:"ca"`
		Depth *int   `json:"depth"`
	} `json:"client"`
	Protocols []string          `json:"ssl_protocols"`
	Labels    map[string]string `json:"labels"`
	Desc      string            `json:"desc"`
}

// Options tune Load and validation.
type Options struct {
	// Root is the folder of fsys that holds the entities; "" is ".".
	Root string
	// WarnWithin makes a certificate that expires within it a warning
	// (default DefaultWarnWithin, 720h).
	WarnWithin time.Duration
	// Now returns the current time for validity checks; nil is time.Now.
	Now func() time.Time
	// Hygiene, when set, runs the certificate hygiene checks (certcheck)
	// on every chain, tuned by the policy's #Checks.
	Hygiene *Hygiene
	// Reread, when set, keeps the entities a Validator returns lean: an
	// entity whose chains are all literal PEM (no secret reference) and
	// valid does not keep their text once it is parsed. Its Chains hold
	// "" for each literal cert and key, its parsed material is kept until
	// the first [Entity.Material] call hands it over, and a later call
	// reads the entity's file again with Reread (path as the entity's
	// Pos.File) and validates it to parse it again. It is for a daemon
	// that keeps thousands of entities (issue 13): their PEM text, kept
	// as written, was a fifth of its heap. Reread is called by Material's
	// caller.
	Reread func(path string) ([]byte, error)
}

// Load reads every entity file and policy file below opts.Root in fsys and
// validates them: it is ListTree, then NewValidator, Validator.File for
// each entity file and CheckSet. Files are read by the one reading rule of
// ListTree (symbolic links followed to regular files inside the root,
// nothing but regular files opened), the rule the daemon's sources follow.
// A non-nil error means the folder could not be read; problems in the
// files, including unreadable single files, are in Result.Problems.
func Load(fsys fs.FS, opts Options) (*Result, error) {
	return LoadContext(context.Background(), fsys, opts)
}

// splitListing splits a listing's files into the entity files and the
// policy files, which it reads; a policy file that cannot be read is a
// problem at its path.
func splitListing(fsys fs.FS, files []TreeFile) (entities []TreeFile, policy []PolicyFile, errs ErrorList) {
	for _, f := range files {
		if f.Kind == FileEntity {
			entities = append(entities, f)
			continue
		}
		src, err := ReadTreeFile(fsys, f)
		if err != nil {
			errs.add(Pos{File: f.Path}, "", "%v", err)
			continue
		}
		policy = append(policy, PolicyFile{Path: f.Path, Src: src})
	}
	return entities, policy, errs
}

// LoadContext is Load, stopping early when ctx ends (SIGINT in `validate`).
func LoadContext(ctx context.Context, fsys fs.FS, opts Options) (*Result, error) {
	listing, err := ListTree(ctx, fsys, opts.Root)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	res := &Result{Ignored: listing.Ignored, Problems: listing.Problems}
	entityFiles, policy, readErrs := splitListing(fsys, listing.Files)
	res.Problems = append(res.Problems, readErrs...)
	v, perrs := NewValidator(policy, opts)
	res.Problems = append(res.Problems, perrs...)
	res.Checks = v.Checks()

	// Validate files in parallel: the cryptographic checks dominate and
	// run outside the CUE lock.
	results := make([]*FileResult, len(entityFiles))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, f := range entityFiles {
		if ctx.Err() != nil {
			break
		}
		src, err := ReadTreeFile(fsys, f)
		if err != nil {
			res.Problems.add(Pos{File: f.Path}, "", "%v", err)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = v.File(f.Path, src)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var files []*FileResult
	for _, r := range results {
		if r == nil {
			continue
		}
		files = append(files, r)
		res.Files++
		res.Documents += r.Documents
		res.Entities = append(res.Entities, r.Entities...)
		res.Problems = append(res.Problems, r.Problems...)
	}
	res.Problems = append(res.Problems, CheckSet(files)...)
	sortProblems(res.Problems)
	return res, nil
}

// resolveInRoot follows the symbolic links on the way to p, one path
// element at a time, and refuses any that leads outside root. It returns
// the path to open. A file system that cannot read links (fs.ReadLinkFS)
// but reports one is refused too.
func resolveInRoot(fsys fs.FS, root, p string) (string, error) {
	rest := strings.Split(relPath(root, p), "/")
	cur := root
	for hops := 0; len(rest) > 0; {
		elem := rest[0]
		rest = rest[1:]
		next := path.Join(cur, elem)
		fi, err := fs.Lstat(fsys, next)
		if err != nil {
			return "", fmt.Errorf("cannot read: %w", unwrapPathError(err))
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", errors.New("too many levels of symbolic links")
		}
		link, err := fs.ReadLink(fsys, next)
		if err != nil {
			return "", fmt.Errorf("symbolic link cannot be checked: %w", unwrapPathError(err))
		}
		if path.IsAbs(link) || strings.HasPrefix(link, "/") {
			return "", errors.New("symbolic link points outside the repository (absolute target)")
		}
		joined := path.Join(cur, link)
		if !within(root, joined) {
			return "", errors.New("symbolic link points outside the repository")
		}
		// Continue from the root with the link's target in front of what
		// is left, so links inside the target are checked too.
		rest = append(strings.Split(relPath(root, joined), "/"), rest...)
		cur = root
		if len(rest) == 1 && rest[0] == "." {
			rest = nil
		}
	}
	return cur, nil
}

func within(root, p string) bool {
	if root == "." {
		return p != ".." && !strings.HasPrefix(p, "../")
	}
	return p == root || strings.HasPrefix(p, root+"/")
}

// relPath returns p relative to root (both clean, p below root).
func relPath(root, p string) string {
	if root == "." {
		return p
	}
	if p == root {
		return "."
	}
	return strings.TrimPrefix(p, root+"/")
}

// unwrapPathError drops the path of a *fs.PathError, which the position of
// the problem already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
