package schema

import (
	"cmp"
	"crypto/sha256"
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
	keys  keyIndex              // whether the key reuse check may find anything
}

// keyIndex tells whether two entities may serve one key, so that the key
// reuse check (checkKeyReuse, which reads every entity) runs only then: a
// repository without a shared key, the common case, costs nothing more
// per revision than its changed files. It counts the entity names using
// each key fingerprint the hygiene checks recorded (Entity.facts). An
// entity whose facts may change after it was added, because its
// certificate is resolved by the daemon (Material records the resolved
// chain's key) or none is recorded yet, is volatile: its fingerprints are
// looked at again at every Check.
type keyIndex struct {
	names    map[[sha256.Size]byte]keyUses // by fingerprint
	shared   int                           // fingerprints used by two names or more
	volatile map[*Entity][][sha256.Size]byte
	lost     bool // the index lost count: rebuilt at the next check
}

// keyUses counts the uses of one key by entity name: one name in place,
// the common case, without a map of its own.
type keyUses struct {
	name string
	n    int
	more map[string]int // other names, when the key is shared
}

func (u keyUses) distinct() int { return min(max(u.n, 0), 1) + len(u.more) }

// fingerprints returns the key fingerprints the key reuse check takes
// from e: those of its chains the hygiene checks ran on.
func fingerprints(e *Entity) [][sha256.Size]byte {
	facts := e.facts.Load()
	if e.hygiene == nil || facts == nil {
		return nil
	}
	var out [][sha256.Size]byte
	for _, c := range *facts {
		if c.trust != "" {
			out = append(out, c.key)
		}
	}
	return out
}

// count adds n (1 or -1) uses of each of fps by name.
func (k *keyIndex) count(name string, fps [][sha256.Size]byte, n int) {
	if k.names == nil {
		k.names = map[[sha256.Size]byte]keyUses{}
	}
	for _, fp := range fps {
		u := k.names[fp]
		if n < 0 && (u.n <= 0 || u.name != name) && u.more[name] <= 0 {
			// Not indexed: an entity's recorded keys changed when they
			// were not to. Checks run in full until the index is rebuilt.
			k.lost = true
			continue
		}
		before := u.distinct()
		switch {
		case u.n == 0 || u.name == name:
			u.name, u.n = name, u.n+n
		default:
			if u.more == nil {
				u.more = map[string]int{}
			}
			if u.more[name] += n; u.more[name] <= 0 {
				delete(u.more, name)
			}
		}
		if u.n <= 0 && len(u.more) > 0 { // another name takes the place
			for other, m := range u.more {
				u.name, u.n = other, m
				delete(u.more, other)
				break
			}
		}
		switch after := u.distinct(); {
		case after == 0:
			delete(k.names, fp)
		default:
			k.names[fp] = u
		}
		if after := u.distinct(); before < 2 && after >= 2 {
			k.shared++
		} else if before >= 2 && after < 2 {
			k.shared--
		}
	}
}

func (k *keyIndex) add(e *Entity) {
	if e.hygiene == nil {
		return
	}
	fps := fingerprints(e)
	k.count(e.Name, fps, 1)
	volatile := e.facts.Load() == nil
	for _, c := range e.Chains {
		volatile = volatile || IsReference(c.Cert)
	}
	if volatile {
		if k.volatile == nil {
			k.volatile = map[*Entity][][sha256.Size]byte{}
		}
		k.volatile[e] = fps
	}
}

func (k *keyIndex) remove(e *Entity) {
	if e.hygiene == nil {
		return
	}
	fps, volatile := k.volatile[e]
	if !volatile {
		fps = fingerprints(e) // as when added: its facts do not change
	}
	delete(k.volatile, e)
	k.count(e.Name, fps, -1)
}

// refresh indexes the volatile entities' fingerprints anew.
func (k *keyIndex) refresh() {
	for e, old := range k.volatile {
		if now := fingerprints(e); !slices.Equal(now, old) {
			k.count(e.Name, old, -1)
			k.count(e.Name, now, 1)
			k.volatile[e] = now
		}
	}
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
	if c.keys.lost {
		c.keys = keyIndex{}
		for _, f := range files {
			for _, e := range f.Entities {
				c.keys.add(e)
			}
		}
	}
	if c.keys.refresh(); c.keys.shared > 0 { // else it finds nothing: spare it the walk
		errs = append(errs, checkKeyReuse(files)...)
	}
	sortProblems(errs)
	return errs
}

func (c *SetChecker) add(f *FileResult, dirty map[setKey]bool) {
	for n, e := range f.Entities {
		c.keys.add(e)
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
		c.keys.remove(e)
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
