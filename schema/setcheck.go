package schema

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"slices"
	"strings"
	"unsafe"
)

// SetChecker runs [CheckSet] over the successive revisions of a
// repository incrementally: it keeps the index of entity names and SNIs of
// the revision it checked last, so that a revision that changes a few
// files costs a walk of the file list (pointer comparisons, no hashing)
// and the update of those files' entries, not a rescan of every entity.
// Its result is CheckSet's for the same files.
//
// Check compares files by their *FileResult: a file that did not change
// must be given as the same pointer as before, a changed one as a new one.
// CheckResults compares them by their identity in [Results] (the
// reconciler reuses results by content id), and keeps the Results, at
// rest, instead of the files' pointers: it thaws the files it reads, those
// changed and those whose names or SNIs they share. One SetChecker is used
// with one of the two. A SetChecker is not safe for concurrent use; the
// zero value is ready.
//
// Its indexes hold no pointers (issue 13): a use is a file slot, an
// entity and an SNI index, found by the hash of its name or SNI; the
// collector does not scan them on every cycle, as it did the ~250 bytes
// per entity of maps of names to entity pointers.
type SetChecker struct {
	files *Results // of the last Check
	slots []uint32 // the slot of each file of files
	ids   []uint64 // by slot: the identity of its file in files; 0 when free
	pos   []uint32 // by slot: the index of its file in files
	free  []uint32 // free slots
	// thawed holds, during a Check, the files it thawed, by slot.
	thawed map[uint32]*FileResult
	names  useIndex
	snis   useIndex
	errs   map[setKey][]setError // the problems of each duplicated key
	keys   keyIndex              // whether the key reuse check may find anything
}

// useIndex finds the uses of a name or SNI by its hash: the hash leads
// to a chain of uses, in no order, of every key with that hash.
type useIndex struct {
	head  map[uint64]uint32 // hash -> first node + 1
	nodes []useNode
	free  uint32 // first free node + 1; a free node's next is the next free one
}

type useNode struct {
	use  setUse
	next uint32 // next node of the chain + 1; 0 ends it
}

// keyIndex tells whether two entities may serve one key, so that the key
// reuse check (checkKeyReuse, which reads every entity) runs only then: a
// repository without a shared key, the common case, costs nothing more
// per revision than its changed files. It counts the entities using each
// key, by the first 8 bytes of the fingerprint the hygiene checks
// recorded (Entity.facts): two keys alike there, or two entities of one
// name serving one key, only make the exact check run. An entity whose
// facts may change after it was added, because its certificate is
// resolved by the daemon (Material records the resolved chain's key) or
// none is recorded yet, is volatile: its fingerprints are looked at again
// at every Check.
type keyIndex struct {
	uses     map[uint64]int32 // entities by fingerprint prefix
	shared   int              // fingerprint prefixes used by two entities or more
	volatile map[*Entity][]uint64
	lost     bool // the index lost count: rebuilt at the next check
}

// fingerprints returns the prefixes of the key fingerprints the key
// reuse check takes from e: those of its chains the hygiene checks ran
// on, each once.
func fingerprints(e *Entity) []uint64 {
	facts := e.facts.Load()
	if e.hygiene() == nil || facts == nil {
		return nil
	}
	var out []uint64
	for _, c := range *facts {
		if fp := binary.BigEndian.Uint64(c.key[:8]); c.trust != 0 && !slices.Contains(out, fp) {
			out = append(out, fp)
		}
	}
	return out
}

// count adds n (1 or -1) uses of each of fps.
func (k *keyIndex) count(fps []uint64, n int32) {
	if k.uses == nil {
		k.uses = map[uint64]int32{}
	}
	for _, fp := range fps {
		before := k.uses[fp]
		if n < 0 && before <= 0 {
			// Not indexed: an entity's recorded keys changed when they
			// were not to. Checks run in full until the index is rebuilt.
			k.lost = true
			continue
		}
		after := before + n
		if after == 0 {
			delete(k.uses, fp)
		} else {
			k.uses[fp] = after
		}
		if before < 2 && after >= 2 {
			k.shared++
		} else if before >= 2 && after < 2 {
			k.shared--
		}
	}
}

func (k *keyIndex) add(e *Entity) {
	if e.hygiene() == nil {
		return
	}
	fps := fingerprints(e)
	k.count(fps, 1)
	volatile := e.facts.Load() == nil
	for _, c := range e.Chains {
		volatile = volatile || IsReference(c.Cert)
	}
	if volatile {
		if k.volatile == nil {
			k.volatile = map[*Entity][]uint64{}
		}
		k.volatile[e] = fps
	}
}

func (k *keyIndex) remove(e *Entity) {
	if e.hygiene() == nil {
		return
	}
	fps, volatile := k.volatile[e]
	if !volatile {
		fps = fingerprints(e) // as when added: its facts do not change
	}
	delete(k.volatile, e)
	k.count(fps, -1)
}

// refresh indexes the volatile entities' fingerprints anew.
func (k *keyIndex) refresh() {
	for e, old := range k.volatile {
		if now := fingerprints(e); !slices.Equal(now, old) {
			k.count(old, -1)
			k.count(now, 1)
			k.volatile[e] = now
		}
	}
}

// setUse is one entity name, or one SNI of an enabled entity, in the order
// CheckSet meets them: by file path, entity, then SNI. Its file is a slot
// of the SetChecker.
type setUse struct {
	file uint32 // slot of the file
	ent  int32  // index of the entity in its file
	sni  int32  // index in the entity's SNIs; -1 for the name
}

// setAt is where a use is, for the order of problems.
type setAt struct {
	path     string
	ent, sni int32
}

func (a setAt) compare(b setAt) int {
	return cmp.Or(strings.Compare(a.path, b.path), cmp.Compare(a.ent, b.ent), cmp.Compare(a.sni, b.sni))
}

type setKey struct {
	sni bool
	s   string
}

type setError struct {
	at  setAt
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
	// A file's identity is its address: the last Check's files are held
	// (c.files) until this one has compared them, so no new file can be
	// at the address of an old one.
	r := &Results{files: make([]resultAt, len(files)), live: files}
	for i, f := range files {
		r.files[i] = resultAt{id: uint64(uintptr(unsafe.Pointer(f))), at: uint32(i), form: -1}
	}
	return c.CheckResults(r)
}

// CheckResults returns the problems CheckSet returns for the files of
// files. A file unchanged since the last Check is one of the same identity
// (see Results), which the SetChecker compares, without thawing it.
func (c *SetChecker) CheckResults(files *Results) ErrorList {
	if c.errs == nil {
		c.errs = map[setKey][]setError{}
	}
	c.thawed = map[uint32]*FileResult{}
	defer func() { c.thawed = nil }() // the thawed files are not kept
	dirty := map[setKey]bool{}
	oldSlots, prev := c.slots, c.files
	n := files.Len()
	slots := make([]uint32, 0, n)
	i, j := 0, 0
	for i < len(oldSlots) || j < n {
		switch {
		case i < len(oldSlots) && j < n && c.ids[oldSlots[i]] == files.id(j):
			slots = append(slots, oldSlots[i]) // unchanged: most files, compared by identity only
			c.pos[oldSlots[i]] = uint32(j)
			i++
			j++
		case j == n || i < len(oldSlots) && prev.Path(i) < files.Path(j):
			c.remove(oldSlots[i], prev.File(i), dirty)
			i++
		case i == len(oldSlots) || files.Path(j) < prev.Path(i):
			slots = append(slots, c.add(files, j, dirty))
			j++
		default: // the same path, another result
			c.remove(oldSlots[i], prev.File(i), dirty)
			slots = append(slots, c.add(files, j, dirty))
			i++
			j++
		}
	}
	c.slots, c.files = slots, files
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
	var all []*FileResult // every file, thawed, for the rare walks below
	if c.keys.lost {
		all = files.all()
		c.keys = keyIndex{}
		for _, f := range all {
			for _, e := range f.Entities {
				c.keys.add(e)
			}
		}
	}
	if c.keys.refresh(); c.keys.shared > 0 { // else it finds nothing: spare it the walk
		if all == nil {
			all = files.all()
		}
		errs = append(errs, checkKeyReuse(all)...)
	}
	sortProblems(errs)
	return errs
}

// Use makes files, which hold the files of the last Check with their
// identities (its Freeze), the ones the SetChecker keeps.
func (c *SetChecker) Use(files *Results) { c.files = files }

// add indexes the uses of file j of files in a free slot, which it
// returns.
func (c *SetChecker) add(files *Results, j int, dirty map[setKey]bool) uint32 {
	var s uint32
	if n := len(c.free); n > 0 {
		s, c.free = c.free[n-1], c.free[:n-1]
		c.ids[s], c.pos[s] = files.id(j), uint32(j)
	} else {
		s = uint32(len(c.ids))
		c.ids, c.pos = append(c.ids, files.id(j)), append(c.pos, uint32(j))
	}
	f := files.File(j)
	if files.Frozen(j) {
		c.thawed[s] = f
	}
	for n, e := range f.Entities {
		c.keys.add(e)
		c.names.insert(e.Name, setUse{file: s, ent: int32(n), sni: -1})
		dirty[setKey{false, e.Name}] = true
		if e.Disabled {
			continue // not served, so its SNIs take none from others
		}
		for i, sni := range e.SNIs {
			c.snis.insert(sni, setUse{file: s, ent: int32(n), sni: int32(i)})
			dirty[setKey{true, sni}] = true
		}
	}
	return s
}

// remove drops the uses of f, the file in slot s, and frees the slot.
func (c *SetChecker) remove(s uint32, f *FileResult, dirty map[setKey]bool) {
	for _, e := range f.Entities {
		c.keys.remove(e)
		c.names.remove(e.Name, s)
		dirty[setKey{false, e.Name}] = true
		if e.Disabled {
			continue
		}
		for _, sni := range e.SNIs {
			c.snis.remove(sni, s)
			dirty[setKey{true, sni}] = true
		}
	}
	c.ids[s] = 0
	c.free = append(c.free, s)
}

// file is the file in slot s, thawed once per Check.
func (c *SetChecker) file(s uint32) *FileResult {
	if f, ok := c.thawed[s]; ok {
		return f
	}
	i := int(c.pos[s])
	f := c.files.File(i)
	if c.files.Frozen(i) {
		c.thawed[s] = f
	}
	return f
}

// entity is the entity of a use.
func (c *SetChecker) entity(u setUse) *Entity { return c.file(u.file).Entities[u.ent] }

// at is where a use is.
func (c *SetChecker) at(u setUse) setAt {
	return setAt{path: c.files.Path(int(c.pos[u.file])), ent: u.ent, sni: u.sni}
}

// key is the name or SNI a use is of.
func (c *SetChecker) key(u setUse) string {
	e := c.entity(u)
	if u.sni < 0 {
		return e.Name
	}
	return e.SNIs[u.sni]
}

var useSeed = maphash.MakeSeed()

func (x *useIndex) insert(key string, u setUse) {
	if x.head == nil {
		x.head = map[uint64]uint32{}
	}
	h := maphash.String(useSeed, key)
	var n uint32
	if x.free != 0 {
		n = x.free - 1
		x.free = x.nodes[n].next
		x.nodes[n] = useNode{use: u, next: x.head[h]}
	} else {
		n = uint32(len(x.nodes))
		x.nodes = append(x.nodes, useNode{use: u, next: x.head[h]})
	}
	x.head[h] = n + 1
}

// remove drops the uses of key by the file in slot s; other keys of the
// same hash stay (a file's uses of them are removed by their own call).
func (x *useIndex) remove(key string, s uint32) {
	h := maphash.String(useSeed, key)
	prev := uint32(0) // node + 1 before the current one; 0 is the head
	for cur := x.head[h]; cur != 0; {
		n := &x.nodes[cur-1]
		next := n.next
		if n.use.file == s {
			if prev == 0 {
				x.head[h] = next
			} else {
				x.nodes[prev-1].next = next
			}
			n.next, x.free = x.free, cur
		} else {
			prev = cur
		}
		cur = next
	}
	if x.head[h] == 0 {
		delete(x.head, h)
	}
}

// uses returns the uses of key in CheckSet's order.
func (c *SetChecker) uses(x *useIndex, key string) []setUse {
	var out []setUse
	for cur := x.head[maphash.String(useSeed, key)]; cur != 0; cur = x.nodes[cur-1].next {
		if u := x.nodes[cur-1].use; c.key(u) == key {
			out = append(out, u)
		}
	}
	if len(out) > 1 {
		slices.SortFunc(out, func(a, b setUse) int { return c.at(a).compare(c.at(b)) })
	}
	return out
}

// recheck computes the problems of one key as CheckSet does: every use
// after the first is a duplicate, except another SNI of the first entity.
func (c *SetChecker) recheck(k setKey) {
	x := &c.names
	if k.sni {
		x = &c.snis
	}
	uses := c.uses(x, k.s)
	var found []setError
	for _, u := range uses[min(1, len(uses)):] {
		first := uses[0]
		if !k.sni {
			found = append(found, setError{c.at(u), nameTwice(c.entity(u), c.entity(first))})
			continue
		}
		if u.file == first.file && u.ent == first.ent {
			continue
		}
		found = append(found, setError{c.at(u), sniTwice(k.s, c.entity(u), int(u.sni), c.entity(first), int(first.sni))})
	}
	if len(found) == 0 {
		delete(c.errs, k)
		return
	}
	c.errs[k] = found
}
