package schema

import (
	"slices"
	"sort"
	"sync/atomic"
)

// Results are the results of a load's entity files in path order, most of
// them at rest: a small table of frozen forms (frozen.go) and, per file,
// integers saying where its result is, with a live overlay for the files
// validated since the last Freeze. The daemon keeps one between loads
// (the next load's cache, the checks across files): frozen, it holds no
// Go pointer into a load's results, which the garbage collector would
// otherwise mark at every cycle (docs/performance.md, "What closing the
// collector's part takes").
//
// A file of Results has an identity that stays the same for as long as its
// result does, across Results made from one another (Clone, Reuse,
// Freeze): [SetChecker] tells unchanged files by it.
//
// Results are not to be changed once shared: the editing methods (Set,
// Insert, Remove) are for a Clone or a [ResultsBuilder]'s own. Reading
// methods are safe for concurrent use. A nil *Results has no files.
type Results struct {
	forms []*frozenFiles
	files []resultAt
	live  []*FileResult // by resultAt.at of live files; nil where a file left
	errs  int           // files with an error among their problems
}

// resultAt is where a file's result is.
type resultAt struct {
	id   uint64 // the file's identity (see Results)
	at   uint32 // the index of the file in its form, or in live
	form int32  // the index of its form in forms; -1 for live
	err  bool   // its problems have an error
}

// resultIDs numbers the files of every Results.
var resultIDs atomic.Uint64

func newID() uint64 { return resultIDs.Add(1) }

// NewResults returns live Results of files, which are in path order. Each
// file is given a new identity.
func NewResults(files []*FileResult) *Results {
	r := &Results{files: make([]resultAt, 0, len(files)), live: make([]*FileResult, 0, len(files))}
	for _, f := range files {
		r.files = append(r.files, r.liveAt(f, newID()))
	}
	return r
}

// liveAt adds f to the live overlay and returns its place.
func (r *Results) liveAt(f *FileResult, id uint64) resultAt {
	r.live = append(r.live, f)
	d := resultAt{id: id, at: uint32(len(r.live) - 1), form: -1, err: f.Problems.Err() != nil}
	if d.err {
		r.errs++
	}
	return d
}

// Len returns the number of files.
func (r *Results) Len() int {
	if r == nil {
		return 0
	}
	return len(r.files)
}

// Path returns the path of file i.
func (r *Results) Path(i int) string {
	d := r.files[i]
	if d.form < 0 {
		return r.live[d.at].Path
	}
	f := r.forms[d.form]
	return f.str(f.files[d.at].path)
}

// Find returns the index of the file of path p, or where it would be.
func (r *Results) Find(p string) (int, bool) {
	n := r.Len()
	i := sort.Search(n, func(i int) bool { return r.Path(i) >= p })
	return i, i < n && r.Path(i) == p
}

// File returns the result of file i: the live one, or a result thawed
// from its frozen form, its own (about 190 ns and one allocation).
func (r *Results) File(i int) *FileResult {
	d := r.files[i]
	if d.form < 0 {
		return r.live[d.at]
	}
	return r.forms[d.form].thaw(int(d.at))
}

// Frozen reports whether file i is at rest (File thaws it).
func (r *Results) Frozen(i int) bool { return r.files[i].form >= 0 }

// id returns the identity of file i.
func (r *Results) id(i int) uint64 { return r.files[i].id }

// HasErrors reports whether any file has an error among its problems,
// without thawing any.
func (r *Results) HasErrors() bool { return r != nil && r.errs > 0 }

// Entities returns every entity of every file, in path order and then
// file order, with the reference of each that is at rest (the zero
// EntityRef for a live one). It thaws every frozen file: a full load's
// path, not an incremental one.
func (r *Results) Entities() ([]*Entity, []EntityRef) {
	var es []*Entity
	var refs []EntityRef
	for i := range r.Len() {
		f := r.File(i)
		d := r.files[i]
		for j, e := range f.Entities {
			es = append(es, e)
			var ref EntityRef
			if d.form >= 0 {
				ref = EntityRef{form: r.forms[d.form], file: d.at, ent: uint32(j)}
			}
			refs = append(refs, ref)
		}
	}
	return es, refs
}

// Problems returns every file's problems, in path order; frozen files'
// are made again (their entities are not).
func (r *Results) Problems() ErrorList {
	var out ErrorList
	for i := range r.Len() {
		d := r.files[i]
		if d.form < 0 {
			out = append(out, r.live[d.at].Problems...)
			continue
		}
		out = append(out, r.forms[d.form].problemsOf(int(d.at))...)
	}
	return out
}

// all returns every file's result, thawing the frozen ones.
func (r *Results) all() []*FileResult {
	out := make([]*FileResult, r.Len())
	for i := range out {
		out[i] = r.File(i)
	}
	return out
}

// Clone returns a copy of r to edit: its files are r's, with their
// identities.
func (r *Results) Clone() *Results {
	if r == nil {
		return &Results{}
	}
	return &Results{forms: slices.Clone(r.forms), files: slices.Clone(r.files), live: slices.Clone(r.live), errs: r.errs}
}

// Set makes f, with a new identity, the result of file i.
func (r *Results) Set(i int, f *FileResult) {
	r.drop(i)
	r.files[i] = r.liveAt(f, newID())
}

// Insert adds f, with a new identity, as file i.
func (r *Results) Insert(i int, f *FileResult) {
	r.files = slices.Insert(r.files, i, r.liveAt(f, newID()))
}

// Remove drops file i.
func (r *Results) Remove(i int) {
	r.drop(i)
	r.files = slices.Delete(r.files, i, i+1)
}

// drop forgets what r holds of file i.
func (r *Results) drop(i int) {
	d := r.files[i]
	if d.err {
		r.errs--
	}
	if d.form < 0 {
		r.live[d.at] = nil
	}
}

// ResultsBuilder makes Results in path order from the files of other
// Results, kept as they are (frozen or live, with their identities), and
// new ones.
type ResultsBuilder struct {
	r     Results
	from  *Results
	forms []int32 // the index in r.forms of each form of from, +1; 0 before its first use
}

// NewResultsBuilder returns a builder of n files taken from from (which
// may be nil) or added.
func NewResultsBuilder(from *Results, n int) *ResultsBuilder {
	b := &ResultsBuilder{from: from, r: Results{files: make([]resultAt, 0, n)}}
	if from != nil {
		b.forms = make([]int32, len(from.forms))
	}
	return b
}

// Reuse appends file i of the builder's from.
func (b *ResultsBuilder) Reuse(i int) {
	d := b.from.files[i]
	if d.form < 0 {
		f := b.from.live[d.at]
		b.r.files = append(b.r.files, b.r.liveAt(f, d.id))
		return
	}
	if b.forms[d.form] == 0 {
		b.r.forms = append(b.r.forms, b.from.forms[d.form])
		b.forms[d.form] = int32(len(b.r.forms))
	}
	d.form = b.forms[d.form] - 1
	if d.err {
		b.r.errs++
	}
	b.r.files = append(b.r.files, d)
}

// Add appends f with a new identity.
func (b *ResultsBuilder) Add(f *FileResult) {
	b.r.files = append(b.r.files, b.r.liveAt(f, newID()))
}

// Results returns the files added; the builder is not to be used again.
func (b *ResultsBuilder) Results() *Results {
	r := b.r
	return &r
}

// maxForms is the number of frozen forms past which Freeze merges the
// smaller ones into the new one: each load that changes a file adds a
// form, and each form is a few allocations of its own.
const maxForms = 16

// Freeze returns r with its live files at rest, in one new form, and
// where it put their entities (Moves), for holders of those entities to
// hold their references instead. Forms no file uses any more are left
// out, so that the big form of a start is shared by the loads after it
// until its files are replaced; past maxForms forms, the smaller ones are
// frozen again into the new one (their entities move too, and Moves says
// where). Files whose entities' facts may still change (resolved
// references, see keyIndex) stay live: their entities are the ones
// [Entity.Material] records the facts on. r is unchanged; both hold the
// same files, with the same identities.
func (r *Results) Freeze() (*Results, *Moves) {
	if r == nil {
		return nil, &Moves{}
	}
	uses := make([]int, len(r.forms))   // files by form
	freeze := make([]bool, len(r.live)) // by live index: a file to freeze, not volatile
	live := 0                           // live files to freeze
	for _, d := range r.files {
		if d.form >= 0 {
			uses[d.form]++
		} else if freeze[d.at] = !r.live[d.at].volatile(); freeze[d.at] {
			live++
		}
	}
	var alive []int // forms in use, the fewest files first
	for i, n := range uses {
		if n > 0 {
			alive = append(alive, i)
		}
	}
	merge := make([]bool, len(r.forms))
	if len(alive) >= maxForms {
		// The smaller forms, while they are more than half of maxForms or
		// no larger than what is frozen anew so far: a file is frozen
		// again a few times (once per doubling), not at every load.
		slices.SortStableFunc(alive, func(a, b int) int { return uses[a] - uses[b] })
		acc := live
		for k, i := range alive {
			if len(alive)-k <= maxForms/2 && uses[i] > acc {
				break
			}
			merge[i], acc = true, acc+uses[i]
		}
	}
	kept := 0
	for i, n := range uses {
		if n > 0 && !merge[i] {
			kept++
		}
	}
	if live == 0 && kept == len(r.forms) && len(r.live) == 0 {
		return r, &Moves{}
	}

	// The files to freeze, in path order: live ones and those of the
	// forms merged.
	var toFreeze []*FileResult
	for i, d := range r.files {
		switch {
		case d.form >= 0 && merge[d.form]:
			toFreeze = append(toFreeze, r.File(i))
		case d.form < 0 && freeze[d.at]:
			toFreeze = append(toFreeze, r.live[d.at])
		}
	}
	out := &Results{files: make([]resultAt, len(r.files)), errs: r.errs}
	index := make([]int32, len(r.forms)) // the index in out.forms of each form kept
	for i, f := range r.forms {
		if uses[i] > 0 && !merge[i] {
			out.forms = append(out.forms, f)
			index[i] = int32(len(out.forms) - 1)
		}
	}
	m := &Moves{}
	var form *frozenFiles
	if len(toFreeze) > 0 {
		if form = freezeFiles(toFreeze); form == nil {
			return r, &Moves{} // too large for one form (4 GiB of text): r stays as it is, live
		}
		out.forms = append(out.forms, form)
		m.live = make(map[*Entity]EntityRef)
	}
	k := uint32(0) // the next file of form
	for i, d := range r.files {
		switch {
		case d.form >= 0 && !merge[d.form]:
			d.form = index[d.form]
		case d.form >= 0:
			if m.moved == nil {
				m.moved = make(map[EntityRef]EntityRef)
			}
			old := r.forms[d.form]
			for j := range toFreeze[k].Entities {
				m.moved[EntityRef{form: old, file: d.at, ent: uint32(j)}] = EntityRef{form: form, file: k, ent: uint32(j)}
			}
			d.form, d.at = int32(len(out.forms)-1), k
			k++
		case freeze[d.at]:
			for j, e := range r.live[d.at].Entities {
				m.live[e] = EntityRef{form: form, file: k, ent: uint32(j)}
			}
			d.form, d.at = int32(len(out.forms)-1), k
			k++
		default:
			out.live = append(out.live, r.live[d.at])
			d.at = uint32(len(out.live) - 1)
		}
		out.files[i] = d
	}
	return out, m
}

// Moves says where a Freeze put entities: the live ones, and those of the
// forms it froze again. The zero Moves moved none.
type Moves struct {
	live  map[*Entity]EntityRef
	moved map[EntityRef]EntityRef
}

// Live returns the reference of the live entity e, frozen, and false when
// it was not (a file that stays live, or of another load).
func (m *Moves) Live(e *Entity) (EntityRef, bool) {
	ref, ok := m.live[e]
	return ref, ok
}

// Moved returns the new reference of the entity at rest at ref, and false
// when it did not move.
func (m *Moves) Moved(ref EntityRef) (EntityRef, bool) {
	to, ok := m.moved[ref]
	return to, ok
}

// AnyMoved reports whether entities at rest moved: holders of references
// then ask Moved (an old reference stays good, and keeps its form alive).
func (m *Moves) AnyMoved() bool { return len(m.moved) > 0 }

// volatile reports whether an entity of f may have its facts changed
// after validation, which the key reuse check looks at again (see
// keyIndex): such a file is not packed or frozen.
func (f *FileResult) volatile() bool {
	return slices.ContainsFunc(f.Entities, (*Entity).volatileFacts)
}

// volatileFacts reports whether e's key facts may change after
// validation: it has the hygiene checks and no facts yet, or a chain that
// the daemon resolves (Material records the resolved chain's key).
func (e *Entity) volatileFacts() bool {
	if e.hygiene() == nil {
		return false
	}
	if e.facts.Load() == nil {
		return true
	}
	return slices.ContainsFunc(e.Chains, func(c Chain) bool { return IsReference(c.Cert) })
}

// EntityRef is an entity at rest: what thaws it again. The zero EntityRef
// is none. References are comparable: two are equal when they are of the
// same frozen entity, which does not change.
type EntityRef struct {
	form      *frozenFiles
	file, ent uint32
}

// IsZero reports whether r is none.
func (r EntityRef) IsZero() bool { return r.form == nil }

// Entity returns the entity r refers to, thawed with its file (the
// entity's own copy); nil for the zero EntityRef.
func (r EntityRef) Entity() *Entity {
	if r.form == nil {
		return nil
	}
	return r.form.thaw(int(r.file)).Entities[r.ent]
}

// Name returns the name of the entity, without thawing it.
func (r EntityRef) Name() string {
	return r.form.str(r.rec().name)
}

// rec is the frozen record of the entity.
func (r EntityRef) rec() *frozenEntity {
	return &r.form.entities[r.form.files[r.file].entities.at+r.ent]
}

// Disabled reports whether the entity is disabled, without thawing it.
func (r EntityRef) Disabled() bool {
	return r.rec().flags&entityDisabled != 0
}

// Holds reports whether ref is of one of r's forms: a reference of a form
// r has dropped (its files replaced or frozen again) still thaws, but
// keeps that form alive.
func (r *Results) Holds(ref EntityRef) bool {
	return r != nil && ref.form != nil && slices.Contains(r.forms, ref.form)
}
