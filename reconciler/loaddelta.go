package reconciler

import (
	"context"
	"fmt"
	"slices"
	"weak"

	"certops/schema"
	"certops/source"
)

// loaded is what the loader loaded last, for loadChanged.
type loaded struct {
	tree       *source.Tree
	paths      []string      // entity files, sorted
	results    []*fileResult // of paths, in order
	policyHash string
	// delta is what changed since the load before, when loadChanged made
	// this one from it; nil after a full load.
	delta *loadDelta
}

// loadDelta is what a load changed in the entities of the load before it
// (base): the entities of the files it validated or found removed, the
// others being the same pointers as base's. The resolve phase builds from
// it alone when base is the load the applied state was built from
// (resolveDelta), instead of walking every entity.
type loadDelta struct {
	base     weak.Pointer[loaded] // held weakly: a chain of loads would keep every revision
	entities []*schema.Entity     // of the changed files, as loaded now, in path order
	gone     []string             // names of the changed files' entities before, not among entities
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
	limit := max(maxChanged, len(last.paths)/8)
	changed, ok := l.changedFiles(last.tree, t, limit)
	if !ok {
		return nil, false, nil
	}
	for _, p := range changed {
		if classify(l.root, p) == kindPolicy {
			return nil, false, nil // the validator may change
		}
	}
	paths, results := slices.Clone(last.paths), slices.Clone(last.results)
	res = &loadResult{}
	delta := &loadDelta{base: weak.Make(last)}
	var goneBefore []string // names of the changed files' entities before
	for _, p := range changed {
		if err := ctx.Err(); err != nil {
			return nil, true, err
		}
		i, found := slices.BinarySearch(paths, p)
		if found {
			for _, e := range results[i].res.Entities {
				goneBefore = append(goneBefore, e.Name)
			}
		}
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
		delta.entities = append(delta.entities, r.res.Entities...)
	}
	now := make(map[string]bool, len(delta.entities))
	for _, e := range delta.entities {
		now[e.Name] = true
	}
	for _, name := range goneBefore {
		if !now[name] {
			delta.gone = append(delta.gone, name)
		}
	}
	l.last = &loaded{tree: t, paths: paths, results: results, policyHash: last.policyHash, delta: delta}
	res.assemble(l, results)
	return res, true, nil
}

// changedFiles returns the files of the loader's kinds (entity and policy
// files) that differ between the trees last and t, sorted, and false when
// they are more than limit. The trees' own record of what changed
// ([source.Tree.ChangedSince]: a watched folder's events, a Git diff by
// subtree) spares the comparison of the listings, file by file.
func (l *loader) changedFiles(last, t *source.Tree, limit int) (changed []string, ok bool) {
	if hint, ok := t.ChangedSince(last); ok {
		for _, p := range hint {
			if classify(l.root, p) != kindIgnored {
				if changed = append(changed, p); len(changed) > limit {
					return nil, false
				}
			}
		}
		return changed, true // sorted, as the hint is
	}
	prev := last.Files
	added := 0
	for p, id := range t.Files {
		old, had := prev[p]
		if !had {
			added++
		}
		if (!had || old != id) && classify(l.root, p) != kindIgnored {
			if changed = append(changed, p); len(changed) > limit {
				return nil, false
			}
		}
	}
	if len(prev)+added > len(t.Files) { // some were removed
		for p := range prev {
			if _, has := t.Files[p]; !has && classify(l.root, p) != kindIgnored {
				if changed = append(changed, p); len(changed) > limit {
					return nil, false
				}
			}
		}
	}
	slices.Sort(changed)
	return changed, true
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
