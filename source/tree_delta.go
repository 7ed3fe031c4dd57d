package source

import (
	"slices"
	"weak"
)

// maxDeltaChain is how many trees back ChangedSince follows a source's
// record of what changed: a reconciler loads nearly every tree its source
// returns, so a longer chain is rare and the full comparison is cheap
// beside what it saves.
const maxDeltaChain = 8

// treeDelta records what a source knows changed between a tree it returns
// and the tree it returned before (base): the paths whose entry in Files
// was added, rewritten or removed. The base is held weakly, so that a
// chain of trees does not keep every revision's listing alive: once
// nothing else holds a base, ChangedSince past it falls back to the
// caller's comparison.
type treeDelta struct {
	base    weak.Pointer[Tree]
	changed []string // sorted, unique
}

// setDelta records that t differs from base in the files at changed
// (unsorted, possibly repeated). It is called by the source before t is
// returned.
func (t *Tree) setDelta(base *Tree, changed []string) {
	changed = slices.Clone(changed)
	slices.Sort(changed)
	t.delta = &treeDelta{base: weak.Make(base), changed: slices.Compact(changed)}
}

// ChangedSince returns the paths whose entry in Files differs between base
// and t (added, rewritten or removed), sorted, when t's source recorded
// them as it built t (a watched folder's events, a Git tree diffed by
// subtree hashes): then the caller need not compare the two listings file
// by file. paths may be shared with the tree: do not modify it. ok is
// false when the source did not record the change from base (another
// source, a full walk, too many trees apart); the caller then compares
// t.Files with base.Files. Links and special entries are not covered: a
// caller that reads them compares them itself. A tree is unchanged since
// itself.
func (t *Tree) ChangedSince(base *Tree) (paths []string, ok bool) {
	if base == nil {
		return nil, false
	}
	var lists [][]string
	for cur, hops := t, 0; cur != base; hops++ {
		if cur.delta == nil || hops == maxDeltaChain {
			return nil, false
		}
		lists = append(lists, cur.delta.changed)
		if cur = cur.delta.base.Value(); cur == nil {
			return nil, false
		}
	}
	switch len(lists) {
	case 0:
		return nil, true
	case 1:
		return lists[0], true // not modified by callers: documented sorted, shared
	}
	paths = slices.Concat(lists...)
	slices.Sort(paths)
	return slices.Compact(paths), true
}
