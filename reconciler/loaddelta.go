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
	tree *source.Tree
	// delta is what changed since the load before, when loadChanged made
	// this one from it; nil after a full load.
	delta *loadDelta
	// files are the results of the entity files, in path order: live
	// while the reconcile that loaded them runs, at rest after it
	// (loader.freeze).
	files *schema.Results
	// linked maps the entity and policy files that are symbolic links to
	// the files they lead to (a tree with links is always loaded in full).
	linked map[string]string
}

// loadDelta is what a load changed in the entities of the load before it
// (base): the entities of the files it validated or found removed, the
// others being the same pointers as base's. The resolve phase builds from
// it alone when base is the load the applied state was built from
// (resolveDelta), instead of walking every entity.
type loadDelta struct {
	base     weak.Pointer[loaded] // held weakly: a chain of loads would keep every revision
	entities []*schema.Entity     // of the changed files, as loaded now, in path order; nil once frozen (loader.freeze)
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
	limit := max(maxChanged, last.files.Len()/8)
	changed, ok := l.changedFiles(last.tree, t, limit)
	if !ok {
		return nil, false, nil
	}
	for _, p := range changed {
		if classify(l.root, p) == kindPolicy {
			return nil, false, nil // the validator may change
		}
	}
	files := last.files.Clone()
	res = &loadResult{}
	delta := &loadDelta{base: weak.Make(last)}
	var goneBefore []string // names of the changed files' entities before
	for _, p := range changed {
		if err := ctx.Err(); err != nil {
			return nil, true, err
		}
		i, found := files.Find(p)
		if found {
			for _, e := range files.File(i).Entities {
				goneBefore = append(goneBefore, e.Name)
			}
		}
		if _, present := t.Files[p]; !present {
			if found {
				files.Remove(i)
				res.removed++
			}
			continue
		}
		r, validated, err := l.validateFile(t, p)
		if err != nil {
			return nil, true, err
		}
		if validated {
			res.validated++
		}
		if found {
			files.Set(i, r)
		} else {
			files.Insert(i, r)
		}
		delta.entities = append(delta.entities, r.Entities...)
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
	l.last = &loaded{tree: t, delta: delta, files: files}
	res.fill(l, files)
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

// validateFile validates the entity file p of t, as the full load does: a
// file over the size limit is refused without being read.
func (l *loader) validateFile(t *source.Tree, p string) (r *schema.FileResult, validated bool, err error) {
	if r, ok := oversize(t, p); ok {
		return r, false, nil
	}
	src, err := t.ReadFile(p)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	return l.validator.File(p, src), true, nil
}

// fill fills res from the results of the revision's entity files.
func (res *loadResult) fill(l *loader, files *schema.Results) {
	res.files, res.results = files.Len(), files
	res.head = slices.Concat(res.head, l.policyErrs)
	res.set = l.set.CheckResults(files)
}

// freeze puts the results of the revision loaded last at rest, once the
// reconcile that loaded it is done with them, and returns where their
// entities went (see schema.Results.Freeze). last itself stays (the
// applied state holds it weakly).
func (l *loader) freeze() *schema.Moves {
	if l.last == nil {
		return &schema.Moves{}
	}
	frozen, moves := l.last.files.Freeze()
	l.last.files = frozen
	l.set.Use(frozen) // the files it checked last, at rest
	if d := l.last.delta; d != nil {
		d.entities = nil // resolved by the reconcile that loaded it; now in frozen
	}
	return moves
}
