package reconciler

import (
	"context"
	"fmt"
	"slices"

	"certops/schema"
	"certops/source"
)

// loaded is what the loader loaded last, for loadChanged.
type loaded struct {
	tree       *source.Tree
	paths      []string      // entity files, sorted
	results    []*fileResult // of paths, in order
	policyHash string
}

// maxChanged is the number of changed files (at least, or an eighth of
// the files) past which loadChanged leaves the revision to the full load.
const maxChanged = 64

// loadChanged loads t from the revision loaded last when t differs from it
// in a few entity files and in nothing else that the full load looks at
// (policy, links, special entries): the changed files are validated, and
// the rest is taken as it was, in order, without listing, sorting or
// looking up every file again. ok is false when t needs the full load.
// The result is the full load's.
func (l *loader) loadChanged(ctx context.Context, t *source.Tree) (res *loadResult, ok bool, err error) {
	last := l.last
	if last == nil || l.validator == nil || len(t.Links)+len(t.Special) > 0 ||
		len(last.tree.Links)+len(last.tree.Special) > 0 {
		return nil, false, nil
	}
	prev := last.tree.Files
	limit := max(maxChanged, len(last.paths)/8)
	var changed []string
	added := 0
	for p, id := range t.Files {
		old, had := prev[p]
		if !had {
			added++
		}
		if (!had || old != id) && classify(l.root, p) != kindIgnored {
			if changed = append(changed, p); len(changed) > limit {
				return nil, false, nil
			}
		}
	}
	if len(prev)+added > len(t.Files) { // some were removed
		for p := range prev {
			if _, has := t.Files[p]; !has && classify(l.root, p) != kindIgnored {
				if changed = append(changed, p); len(changed) > limit {
					return nil, false, nil
				}
			}
		}
	}
	for _, p := range changed {
		if classify(l.root, p) == kindPolicy {
			return nil, false, nil // the validator may change
		}
	}
	slices.Sort(changed)
	paths, results := slices.Clone(last.paths), slices.Clone(last.results)
	res = &loadResult{}
	for _, p := range changed {
		if err := ctx.Err(); err != nil {
			return nil, true, err
		}
		i, found := slices.BinarySearch(paths, p)
		id, present := t.Files[p]
		if !present {
			if found {
				paths, results = slices.Delete(paths, i, i+1), slices.Delete(results, i, i+1)
				delete(l.cache, p)
				res.removed++
			}
			continue
		}
		r, validated, err := l.validateFile(t, p, id, last.policyHash)
		if err != nil {
			return nil, true, err
		}
		if validated {
			res.validated++
		}
		l.cache[p] = r
		if found {
			results[i] = r
		} else {
			paths, results = slices.Insert(paths, i, p), slices.Insert(results, i, r)
		}
	}
	l.last = &loaded{tree: t, paths: paths, results: results, policyHash: last.policyHash}
	res.assemble(l, results)
	return res, true, nil
}

// validateFile validates the entity file p of t (content id), as the full
// load does: a file over the size limit is refused without being read.
func (l *loader) validateFile(t *source.Tree, p, id, policyHash string) (r *fileResult, validated bool, err error) {
	if r := oversize(t, p, id, policyHash); r != nil {
		return r, false, nil
	}
	src, err := t.ReadFile(p)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	res := l.validator.File(p, src)
	intern(res.Problems)
	return &fileResult{id: id, policy: policyHash, res: res}, true, nil
}

// assemble fills res from the results of the revision's entity files, in
// path order: entities, problems (the policy's, each file's, the checks
// across files) and the file count.
func (res *loadResult) assemble(l *loader, results []*fileResult) {
	res.files = len(results)
	res.problems = append(res.problems, l.policyErrs...)
	files := make([]*schema.FileResult, 0, len(results))
	for _, r := range results {
		files = append(files, r.res)
		res.entities = append(res.entities, r.res.Entities...)
		res.problems = append(res.problems, r.res.Problems...)
	}
	res.problems = append(res.problems, l.set.Check(files)...)
}
