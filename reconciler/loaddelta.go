package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
	lists *loadLists // the results of the entity files, in path order
	// linked maps the entity and policy files that are symbolic links to
	// the files they lead to (a tree with links is always loaded in full).
	linked map[string]string
}

// loadLists are the results of a revision's entity files as flat lists in
// path order: the results, their entities and their problems, with where
// each file's entities and problems start. They are kept from load to
// load, so that a load that changes a few files splices those files'
// parts (sequential copies) instead of reading each of 10,000 results
// again, scattered over the heap. A load's lists are not modified once
// made: the next load changes a copy.
type loadLists struct {
	files    []*schema.FileResult
	entities []*schema.Entity
	problems schema.ErrorList
	entAt    []int // len(files)+1: file i's entities are entities[entAt[i]:entAt[i+1]]
	probAt   []int // the same for problems
}

// listsOf lists results, which are in path order.
func listsOf(results []*schema.FileResult) *loadLists {
	ls := &loadLists{files: results, entAt: make([]int, 1, len(results)+1), probAt: make([]int, 1, len(results)+1)}
	ne, np := 0, 0
	for _, r := range results {
		ne, np = ne+len(r.Entities), np+len(r.Problems)
	}
	ls.entities, ls.problems = make([]*schema.Entity, 0, ne), make(schema.ErrorList, 0, np)
	for _, r := range results {
		ls.entities = append(ls.entities, r.Entities...)
		ls.problems = append(ls.problems, r.Problems...)
		ls.entAt = append(ls.entAt, len(ls.entities))
		ls.probAt = append(ls.probAt, len(ls.problems))
	}
	return ls
}

func (ls *loadLists) clone() *loadLists {
	return &loadLists{files: slices.Clone(ls.files), entities: slices.Clone(ls.entities), problems: slices.Clone(ls.problems),
		entAt: slices.Clone(ls.entAt), probAt: slices.Clone(ls.probAt)}
}

// find returns the index of file p in ls, or where it would be.
func (ls *loadLists) find(p string) (int, bool) {
	return slices.BinarySearchFunc(ls.files, p, func(f *schema.FileResult, p string) int { return strings.Compare(f.Path, p) })
}

// set makes f the result of file i.
func (ls *loadLists) set(i int, f *schema.FileResult) {
	ls.files[i] = f
	ls.entities = spliceAt(ls.entities, ls.entAt, i, f.Entities)
	ls.problems = spliceAt(ls.problems, ls.probAt, i, f.Problems)
}

// insert adds f as file i.
func (ls *loadLists) insert(i int, f *schema.FileResult) {
	ls.files = slices.Insert(ls.files, i, f)
	ls.entAt = slices.Insert(ls.entAt, i, ls.entAt[i])
	ls.probAt = slices.Insert(ls.probAt, i, ls.probAt[i])
	ls.set(i, f)
}

// remove drops file i.
func (ls *loadLists) remove(i int) {
	ls.entities = spliceAt(ls.entities, ls.entAt, i, nil)
	ls.problems = spliceAt(ls.problems, ls.probAt, i, nil)
	ls.files = slices.Delete(ls.files, i, i+1)
	ls.entAt = slices.Delete(ls.entAt, i, i+1)
	ls.probAt = slices.Delete(ls.probAt, i, i+1)
}

// spliceAt replaces part i of items, items[at[i]:at[i+1]], with part, and
// moves the starts of the parts after it.
func spliceAt[T any](items []T, at []int, i int, part []T) []T {
	items = slices.Replace(items, at[i], at[i+1], part...)
	if diff := len(part) - (at[i+1] - at[i]); diff != 0 {
		for j := i + 1; j < len(at); j++ {
			at[j] += diff
		}
	}
	return items
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
	limit := max(maxChanged, len(last.lists.files)/8)
	changed, ok := l.changedFiles(last.tree, t, limit)
	if !ok {
		return nil, false, nil
	}
	for _, p := range changed {
		if classify(l.root, p) == kindPolicy {
			return nil, false, nil // the validator may change
		}
	}
	lists := last.lists.clone()
	res = &loadResult{}
	delta := &loadDelta{base: weak.Make(last)}
	var goneBefore []string // names of the changed files' entities before
	for _, p := range changed {
		if err := ctx.Err(); err != nil {
			return nil, true, err
		}
		i, found := lists.find(p)
		if found {
			for _, e := range lists.files[i].Entities {
				goneBefore = append(goneBefore, e.Name)
			}
		}
		if _, present := t.Files[p]; !present {
			if found {
				lists.remove(i)
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
			lists.set(i, r)
		} else {
			lists.insert(i, r)
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
	l.last = &loaded{tree: t, delta: delta, lists: lists}
	res.fill(l, lists)
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

// fill fills res from the lists of the revision's entity files. The
// entities are ls's own (which nobody modifies).
func (res *loadResult) fill(l *loader, ls *loadLists) {
	res.files = len(ls.files)
	res.entities = ls.entities
	set := l.set.CheckSorted(ls.files) // the files are in path order
	res.problems = slices.Concat(res.problems, l.policyErrs, ls.problems, set)
}
