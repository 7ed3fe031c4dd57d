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

// Freeze returns r with its live files at rest, in one new form, and the
// reference of each of their entities by the live entity (for holders of
// those entities to hold the reference instead). Forms no file uses any
// more are left out, so that the big form of a start is shared by the
// loads after it until its files are replaced. Files whose entities'
// facts may still change (resolved references, see keyIndex) stay live:
// their entities are the ones [Entity.Material] records the facts on.
// r is unchanged; both hold the same files, with the same identities.
func (r *Results) Freeze() (*Results, map[*Entity]EntityRef) {
	if r == nil {
		return nil, nil
	}
	var toFreeze []*FileResult
	for _, d := range r.files {
		if d.form < 0 && !r.live[d.at].volatile() {
			toFreeze = append(toFreeze, r.live[d.at])
		}
	}
	used := make([]int32, len(r.forms)) // new index + 1
	out := &Results{files: make([]resultAt, len(r.files)), errs: r.errs}
	for _, d := range r.files {
		if d.form >= 0 && used[d.form] == 0 {
			out.forms = append(out.forms, r.forms[d.form])
			used[d.form] = int32(len(out.forms))
		}
	}
	if len(toFreeze) == 0 && len(out.forms) == len(r.forms) && len(r.live) == 0 {
		return r, nil
	}
	var form *frozenFiles
	var refs map[*Entity]EntityRef
	if len(toFreeze) > 0 {
		form = freezeFiles(toFreeze)
		out.forms = append(out.forms, form)
		refs = make(map[*Entity]EntityRef)
	}
	k := uint32(0) // the next file of form
	for i, d := range r.files {
		switch {
		case d.form >= 0:
			d.form = used[d.form] - 1
		case !r.live[d.at].volatile():
			for j, e := range r.live[d.at].Entities {
				refs[e] = EntityRef{form: form, file: k, ent: uint32(j)}
			}
			d.form, d.at = int32(len(out.forms)-1), k
			k++
		default:
			out.live = append(out.live, r.live[d.at])
			d.at = uint32(len(out.live) - 1)
		}
		out.files[i] = d
	}
	return out, refs
}

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
	return r.form.str(r.form.entities[r.form.files[r.file].entities.at+r.ent].name)
}

// problemsOf makes the problems of file i again, without its entities.
func (f *frozenFiles) problemsOf(i int) ErrorList {
	d := &f.files[i]
	if d.problems.isNil() {
		return nil
	}
	np := d.problems.len()
	list, slab := make(ErrorList, np), make([]Error, np)
	for j, p := range f.problems[d.problems.at:d.problems.end()] {
		slab[j] = Error{Field: f.str(p.field), Msg: f.str(p.msg),
			Pos: Pos{File: f.str(p.file), Line: int(p.line), Col: int(p.col)}, Severity: Severity(p.severity)}
		list[j] = &slab[j]
	}
	return list
}

// Disabled reports whether the entity is disabled, without thawing it.
func (r EntityRef) Disabled() bool {
	return r.form.entities[r.form.files[r.file].entities.at+r.ent].flags&entityDisabled != 0
}
