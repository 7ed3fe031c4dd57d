package schema

import (
	"cmp"
	"slices"
	"strings"
)

// SetChecker runs [CheckSet] over the successive revisions of a
// repository incrementally: it keeps the index of entity names and SNIs of
// the revision it checked last, so that a revision that changes a few
// files costs a walk of the file list (pointer comparisons, no hashing)
// and the update of those files' entries, not a rescan of every entity.
// Its result is CheckSet's for the same files.
//
// Files are compared by their *FileResult: a file that did not change must
// be given as the same pointer as before (the reconciler reuses results by
// content id), a changed one as a new one. A SetChecker is not safe for
// concurrent use; the zero value is ready.
type SetChecker struct {
	files []*FileResult // of the last Check, sorted by path
	names map[string][]setUse
	snis  map[string][]setUse
	errs  map[setKey][]setError // the problems of each duplicated key
	// hygienic counts the entities of files that run the hygiene checks,
	// which the key reuse check looks at.
	hygienic int
}

// setUse is one entity name, or one SNI of an enabled entity, in the order
// CheckSet meets them: by file path, entity, then SNI.
type setUse struct {
	e    *Entity
	path string
	ent  int // index of e in its file
	sni  int // index in e.SNIs; -1 for the name
}

func (a setUse) compare(b setUse) int {
	return cmp.Or(strings.Compare(a.path, b.path), cmp.Compare(a.ent, b.ent), cmp.Compare(a.sni, b.sni))
}

type setKey struct {
	sni bool
	s   string
}

type setError struct {
	at  setUse
	err *Error
}

// Check returns the problems CheckSet(files) returns.
func (c *SetChecker) Check(files []*FileResult) ErrorList {
	byPath := func(a, b *FileResult) int { return strings.Compare(a.Path, b.Path) }
	if !slices.IsSortedFunc(files, byPath) {
		files = slices.Clone(files)
		slices.SortFunc(files, byPath)
	}
	return c.CheckSorted(files)
}

// CheckSorted is Check for files sorted by path, as a loader that keeps
// them in order has them: then the cost of a revision that changes a few
// files does not depend on how many it has beyond comparing pointers
// (a check that they are sorted would read every file's path).
func (c *SetChecker) CheckSorted(files []*FileResult) ErrorList {
	if c.names == nil {
		c.names, c.snis, c.errs = map[string][]setUse{}, map[string][]setUse{}, map[setKey][]setError{}
	}
	dirty := map[setKey]bool{}
	old := c.files
	i, j := 0, 0
	for i < len(old) || j < len(files) {
		switch {
		case i < len(old) && j < len(files) && old[i] == files[j]:
			i++ // unchanged: most files, compared by pointer only
			j++
		case j == len(files) || i < len(old) && old[i].Path < files[j].Path:
			c.remove(old[i], dirty)
			i++
		case i == len(old) || files[j].Path < old[i].Path:
			c.add(files[j], dirty)
			j++
		default:
			if old[i] != files[j] {
				c.remove(old[i], dirty)
				c.add(files[j], dirty)
			}
			i++
			j++
		}
	}
	c.files = slices.Clone(files)
	for k := range dirty {
		c.recheck(k)
	}
	var found []setError
	for _, l := range c.errs {
		found = append(found, l...)
	}
	// CheckSet's order before its stable sort by position: the order it
	// meets the uses in.
	slices.SortFunc(found, func(a, b setError) int { return a.at.compare(b.at) })
	var errs ErrorList
	for _, f := range found {
		errs = append(errs, f.err)
	}
	if c.hygienic > 0 { // else it has nothing to look at: spare it the walk
		errs = append(errs, checkKeyReuse(files)...)
	}
	sortProblems(errs)
	return errs
}

func (c *SetChecker) add(f *FileResult, dirty map[setKey]bool) {
	for n, e := range f.Entities {
		if e.hygiene != nil {
			c.hygienic++
		}
		insertUse(c.names, e.Name, setUse{e: e, path: f.Path, ent: n, sni: -1})
		dirty[setKey{false, e.Name}] = true
		if e.Disabled {
			continue // not served, so its SNIs take none from others
		}
		for i, s := range e.SNIs {
			insertUse(c.snis, s, setUse{e: e, path: f.Path, ent: n, sni: i})
			dirty[setKey{true, s}] = true
		}
	}
}

func (c *SetChecker) remove(f *FileResult, dirty map[setKey]bool) {
	for _, e := range f.Entities {
		if e.hygiene != nil {
			c.hygienic--
		}
		removeUses(c.names, e.Name, e)
		dirty[setKey{false, e.Name}] = true
		if e.Disabled {
			continue
		}
		for _, s := range e.SNIs {
			removeUses(c.snis, s, e)
			dirty[setKey{true, s}] = true
		}
	}
}

func insertUse(m map[string][]setUse, key string, u setUse) {
	l := m[key]
	i, _ := slices.BinarySearchFunc(l, u, setUse.compare)
	m[key] = slices.Insert(l, i, u)
}

func removeUses(m map[string][]setUse, key string, e *Entity) {
	l := slices.DeleteFunc(m[key], func(u setUse) bool { return u.e == e })
	if len(l) == 0 {
		delete(m, key)
		return
	}
	m[key] = l
}

// recheck computes the problems of one key as CheckSet does: every use
// after the first is a duplicate, except another SNI of the first entity.
func (c *SetChecker) recheck(k setKey) {
	uses := c.names[k.s]
	if k.sni {
		uses = c.snis[k.s]
	}
	var found []setError
	for _, u := range uses[min(1, len(uses)):] {
		first := uses[0]
		if !k.sni {
			found = append(found, setError{u, nameTwice(u.e, first.e)})
			continue
		}
		if u.e == first.e {
			continue
		}
		found = append(found, setError{u, sniTwice(k.s, u.e, u.sni, first.e, first.sni)})
	}
	if len(found) == 0 {
		delete(c.errs, k)
		return
	}
	c.errs[k] = found
}
