package schema

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"time"
	"unsafe"
)

// This file keeps a load's results at rest without Go pointers: the
// daemon holds every validated file's result between reconciles, and an
// entity is 368 bytes with 17 pointer slots that every garbage collection
// marks (docs/performance.md, "What closing the collector's part takes").
// A frozen load is a few slices of integers and bytes, which the runtime
// allocates as noscan, and its results are made again (thawed) when
// something needs them.

// frozenFiles is a load's results at rest. Its bulk (every slice but
// validators) holds no pointer: strings are ranges of text, lists ranges
// of the tables below, an ADC or APISIX item's renaming is its
// itemRename (integers), the held material's client CA pool is parsed
// again from the entity's client CA on thaw, and the one pointer kept,
// each entity's *Validator, is an index of validators.
//
// A frozenFiles is immutable once built and safe for concurrent use. It
// holds private keys (the literal keys of chains, and the held material
// of entities that had not handed it over): it is kept in memory only,
// never written out, and redacts itself in logs.
type frozenFiles struct {
	files    []frozenFile
	entities []frozenEntity
	rare     []frozenRare // what few entities have, out of line
	problems []frozenProblem

	refs      []strRef          // SNIs, protocols, chains (cert, key), labels (key, value)
	positions []frozenPos       // placements' index maps
	ints      []uint32          // placements' sniSrc
	facts     []chainFact       // the facts of entities that do not hold them inline
	held      []frozenHeldChain // held material, by chain
	ders      []span            // the DER certificates of held chains, in secret
	text      []byte            // every string; thawed strings point into it
	secret    []byte            // held material's bytes: DER and key PEM

	validators []*Validator // the one pointer table: the load's validators, by index
}

// strRef is a string of frozenFiles.text.
type strRef struct{ at, n uint32 }

// span is a list in one of frozenFiles' tables, or a range of bytes: n is
// its length plus one, and 0 stands for nil (a nil and an empty slice or
// map are told apart, as reflect.DeepEqual does).
type span struct{ at, n uint32 }

func (s span) isNil() bool { return s.n == 0 }
func (s span) len() int    { return int(s.n) - int(min(s.n, 1)) }
func (s span) end() uint32 { return s.at + uint32(s.len()) }

// Lines, columns, counts of documents and severities are int32 in the
// frozen form: entity files are at most MaxFileSize bytes, so they fit.

type frozenFile struct {
	path      strRef
	documents int32
	entities  span // of frozenFiles.entities
	problems  span // of frozenFiles.problems
}

type frozenProblem struct {
	field, msg, file strRef
	line, col        int32
	severity         int32
}

type frozenPos struct {
	path, file strRef
	line, col  int32
}

// frozenEntity is an Entity at rest: every field, exported or not, the
// ones few entities have in its frozenRare.
type frozenEntity struct {
	name, typ, desc, clientCA strRef
	snis, protocols           span // of refs
	chains                    span // of refs, two per chain; unused with entityNoChains
	labels                    span // of refs, two per label, sorted by key
	posFile                   strRef
	posLine, posCol           int32
	clientDepth               int64
	hash                      Hash

	validator    uint32
	rare         uint32 // the index of its frozenRare plus one; 0 is none
	inlineFields strRef // inline.fields
	inlineFact   chainFact
	flags        entityFlags
	factsAt      factsHome
	inlineFacts  factsHome // inline.facts: factsNone, factsSelf (inline.fact[:]) or factsOwn
}

// frozenRare is what an entity of the native form, its chains all
// literal, once applied, does not have: a placement (ADC and APISIX
// items, SNIs after a refused one, a field index that did not compact),
// facts replaced after validation, held material, and inline.strs that
// do not back its SNIs and protocols.
type frozenRare struct {
	strs        [2]strRef // inline.strs that are not SNIs or protocols
	placeFields strRef
	index       span // of positions
	rename      itemRename
	sniSrc      span // of ints
	facts       span // of facts, with factsOwn
	ownInline   span // of facts: inline.facts with factsOwn
	material    span // of held, by chain; nil when the entity holds none
}

// entityFlags are an entity's booleans and the shape of its storage.
type entityFlags uint16

const (
	entityDisabled   entityFlags = 1 << iota
	entityLean                   // Entity.lean
	entityPlace                  // place is not nil
	entityRename                 // place.rename is not nil
	entityStrsInline             // SNIs and protocols are in inline.strs
	entityNoChains               // Chains are leanChains(n), n in chains
	entityClientCAs              // the held material has a client CA pool
)

// factsHome is where an entity's facts pointer (or its inline.facts
// slice) points.
type factsHome uint8

const (
	factsNone   factsHome = iota // nil
	factsInline                  // &inline.facts (for the facts pointer)
	factsSelf                    // inline.fact[:] (for inline.facts)
	factsOwn                     // a slice of its own, in frozenFiles.facts
)

// frozenHeldChain is a heldChain: its certificates are ranges of ders,
// its key a range of secret.
type frozenHeldChain struct {
	certs span // of ders
	key   span // of secret
}

// LogValue redacts the frozen results in logs: they hold private keys.
func (f *frozenFiles) LogValue() slog.Value {
	return slog.StringValue(fmt.Sprintf("[%d frozen files, redacted]", len(f.files)))
}

// len is the number of files.
func (f *frozenFiles) len() int { return len(f.files) }

// size is the bytes the frozen form takes: its tables, as allocated.
func (f *frozenFiles) size() int {
	return sizeOf(f.files) + sizeOf(f.entities) + sizeOf(f.rare) + sizeOf(f.problems) + sizeOf(f.refs) +
		sizeOf(f.positions) + sizeOf(f.ints) + sizeOf(f.facts) + sizeOf(f.held) + sizeOf(f.ders) +
		cap(f.text) + cap(f.secret) + sizeOf(f.validators)
}

func sizeOf[T any](s []T) int { return cap(s) * int(unsafe.Sizeof(*new(T))) }

// freezeFiles returns results at rest. results are unchanged and may be
// dropped once frozen; what freezeFiles keeps of them is copies, but for
// their validators. Entities of the results may be in use concurrently:
// their facts and material are read once each, atomically. It returns
// nil when results do not fit the form's 32-bit offsets (4 GiB of
// strings, or as many table entries): the caller keeps them live.
func freezeFiles(results []*FileResult) *frozenFiles {
	// The large tables are made to size; the others, and the text, whose
	// shared strings are known only once written, are trimmed at the end:
	// the form is kept for long.
	nEntities, nProblems, nRefs := 0, 0, 0
	for _, fr := range results {
		nEntities += len(fr.Entities)
		nProblems += len(fr.Problems)
		for _, e := range fr.Entities {
			nRefs += len(e.SNIs) + len(e.Protocols) + 2*len(e.Chains) + 2*len(e.Labels)
		}
	}
	z := &freezer{f: &frozenFiles{
		files:    make([]frozenFile, 0, len(results)),
		entities: make([]frozenEntity, 0, nEntities),
		problems: make([]frozenProblem, 0, nProblems),
		refs:     make([]strRef, 0, nRefs),
	}, shared: map[string]strRef{}, vs: map[*Validator]uint32{}}
	for _, fr := range results {
		if z.file(fr); z.overflow {
			return nil
		}
	}
	f := z.f
	f.rare, f.positions, f.ints = slices.Clone(f.rare), slices.Clone(f.positions), slices.Clone(f.ints)
	f.facts, f.held, f.ders = slices.Clone(f.facts), slices.Clone(f.held), slices.Clone(f.ders)
	f.text, f.secret = slices.Clone(f.text), slices.Clone(f.secret)
	return f
}

// freezer builds a frozenFiles.
type freezer struct {
	f *frozenFiles
	// shared maps strings that many entities or problems repeat (paths,
	// messages, field indexes of files written alike) to their one copy.
	shared map[string]strRef
	vs     map[*Validator]uint32
	// overflow is set by fit and fit32 when a value does not fit the
	// form: the form made is then not to be used.
	overflow bool
}

func (z *freezer) file(fr *FileResult) {
	f := z.f
	d := frozenFile{path: z.share(fr.Path), documents: z.fit32(fr.Documents)}
	d.entities = z.span(len(f.entities), fr.Entities == nil, len(fr.Entities))
	for _, e := range fr.Entities {
		z.entity(e)
	}
	d.problems = z.span(len(f.problems), fr.Problems == nil, len(fr.Problems))
	for _, p := range fr.Problems {
		f.problems = append(f.problems, frozenProblem{field: z.share(p.Field), msg: z.share(p.Msg), file: z.share(p.File),
			line: z.fit32(p.Line), col: z.fit32(p.Col), severity: z.fit32(int(p.Severity))})
	}
	f.files = append(f.files, d)
}

func (z *freezer) entity(e *Entity) {
	f := z.f
	var r frozenRare
	hasRare := false
	d := frozenEntity{
		name: z.str(e.Name), typ: z.share(string(e.Type)), desc: z.str(e.Desc), clientCA: z.share(e.ClientCA),
		posFile: z.share(e.Pos.File), posLine: z.fit32(e.Pos.Line), posCol: z.fit32(e.Pos.Col),
		clientDepth: int64(e.ClientDepth), hash: e.Hash,
		validator:    z.validator(e.v),
		inlineFact:   e.inline.fact[0],
		inlineFields: z.share(e.inline.fields.s),
	}
	if e.Disabled {
		d.flags |= entityDisabled
	}
	if e.lean {
		d.flags |= entityLean
	}

	// SNIs and protocols, and whether they are in the entity's inline.strs.
	d.snis = z.strs(e.SNIs)
	d.protocols = z.strs(e.Protocols)
	k := len(e.SNIs) + len(e.Protocols)
	if k > 0 && k <= len(e.inline.strs) {
		first := unsafe.SliceData(e.SNIs)
		if len(e.SNIs) == 0 {
			first = unsafe.SliceData(e.Protocols)
		}
		if first == &e.inline.strs[0] {
			d.flags |= entityStrsInline
		}
	}
	for i, s := range e.inline.strs {
		if d.flags&entityStrsInline != 0 && i < k || s == "" {
			continue // empty, or it backs an SNI or a protocol (written above)
		}
		r.strs[i], hasRare = z.str(s), true
	}

	if unsafe.SliceData(e.Chains) == &noChains[0] {
		d.flags |= entityNoChains
		d.chains = span{n: uint32(len(e.Chains)) + 1}
	} else {
		d.chains = z.span(len(f.refs), e.Chains == nil, len(e.Chains))
		for _, c := range e.Chains {
			f.refs = append(f.refs, z.str(c.Cert), z.str(c.Key))
		}
	}
	d.labels = z.span(len(f.refs), e.Labels == nil, len(e.Labels))
	if len(e.Labels) > 0 {
		for _, k := range slices.Sorted(maps.Keys(e.Labels)) {
			f.refs = append(f.refs, z.share(k), z.share(e.Labels[k]))
		}
	}

	if p := e.place; p != nil {
		d.flags |= entityPlace
		hasRare = true
		r.placeFields = z.share(p.fields.s)
		r.index = z.span(len(f.positions), p.index == nil, len(p.index))
		for path, pos := range p.index {
			f.positions = append(f.positions, frozenPos{path: z.share(path), file: z.share(pos.File),
				line: z.fit32(pos.Line), col: z.fit32(pos.Col)})
		}
		if p.rename != nil {
			d.flags |= entityRename
			r.rename = *p.rename
		}
		r.sniSrc = z.span(len(f.ints), p.sniSrc == nil, len(p.sniSrc))
		for _, i := range p.sniSrc {
			f.ints = append(f.ints, uint32(i)) // an index in a file's snis, below its 1 MiB
		}
	}

	// The facts pointer and the inline slice it may point to.
	switch fs := e.facts.Load(); {
	case fs == nil:
	case fs == &e.inline.facts:
		d.factsAt = factsInline
	default:
		d.factsAt, r.facts, hasRare = factsOwn, z.facts(*fs), true
	}
	switch fs := e.inline.facts; {
	case fs == nil:
	case len(fs) == len(e.inline.fact) && cap(fs) == len(fs) && &fs[0] == &e.inline.fact[0]:
		d.inlineFacts = factsSelf
	default:
		d.inlineFacts, r.ownInline, hasRare = factsOwn, z.facts(fs), true
	}

	if h := e.material.Load(); h != nil {
		r.material, hasRare = z.held(h), true
		if h.clientCAs != nil {
			d.flags |= entityClientCAs
		}
	}
	if hasRare {
		f.rare = append(f.rare, r)
		d.rare = z.fit(len(f.rare))
	}
	f.entities = append(f.entities, d)
}

// span returns the span of n elements from at, nil when isNil.
func (z *freezer) span(at int, isNil bool, n int) span {
	if isNil {
		return span{}
	}
	return span{at: z.fit(at), n: z.fit(n + 1)}
}

// fit returns n as the uint32 of the frozen form's offsets, and marks
// the form overflowed when it does not fit.
func (z *freezer) fit(n int) uint32 {
	if n < 0 || n > math.MaxUint32 {
		z.overflow = true
		return 0
	}
	return uint32(n)
}

// fit32 returns n as an int32 of the frozen form (a line, a column, a
// count of documents, a severity), and marks the form overflowed when it
// does not fit.
func (z *freezer) fit32(n int) int32 {
	if n < math.MinInt32 || n > math.MaxInt32 {
		z.overflow = true
		return 0
	}
	return int32(n)
}

// str appends s to the text.
func (z *freezer) str(s string) strRef {
	if s == "" {
		return strRef{}
	}
	at := z.fit(len(z.f.text))
	z.f.text = append(z.f.text, s...)
	z.fit(len(z.f.text))
	return strRef{at: at, n: uint32(len(s))}
}

// share is str for strings many results repeat: one copy of each.
func (z *freezer) share(s string) strRef {
	if s == "" {
		return strRef{}
	}
	if r, ok := z.shared[s]; ok {
		return r
	}
	r := z.str(s)
	z.shared[s] = r
	return r
}

// strs appends a list of strings to refs.
func (z *freezer) strs(list []string) span {
	f := z.f
	s := z.span(len(f.refs), list == nil, len(list))
	for _, v := range list {
		f.refs = append(f.refs, z.str(v))
	}
	return s
}

func (z *freezer) facts(fs []chainFact) span {
	s := z.span(len(z.f.facts), fs == nil, len(fs))
	z.f.facts = append(z.f.facts, fs...)
	return s
}

func (z *freezer) validator(v *Validator) uint32 {
	i, ok := z.vs[v]
	if !ok {
		i = z.fit(len(z.f.validators))
		z.f.validators = append(z.f.validators, v)
		z.vs[v] = i
	}
	return i
}

// held appends held material: its bytes to secret, its chains to held.
func (z *freezer) held(h *heldMaterial) span {
	f := z.f
	s := z.span(len(f.held), false, len(h.chains))
	for _, c := range h.chains {
		fc := frozenHeldChain{certs: z.span(len(f.ders), c.certs == nil, len(c.certs)), key: z.bytes(c.key)}
		for _, der := range c.certs {
			f.ders = append(f.ders, z.bytes(der))
		}
		f.held = append(f.held, fc)
	}
	return s
}

// bytes appends b to secret.
func (z *freezer) bytes(b []byte) span {
	s := z.span(len(z.f.secret), b == nil, len(b))
	z.f.secret = append(z.f.secret, b...)
	z.fit(len(z.f.secret))
	return s
}

// thaw returns file i of the load as it was frozen: a FileResult equal to
// the one given to freezeFiles in every field, with entities and
// problems of its own. Its strings point into f's text, which they keep
// alive. Entities that held parsed material when frozen hold it again,
// each thaw its own copy: a frozen form is the state at freezing, so a
// thawed entity hands over its material once more even if the original
// already did (Material hands it over once per entity).
func (f *frozenFiles) thaw(i int) *FileResult {
	d := &f.files[i]
	var fr *FileResult
	var es []Entity
	var box *problemsBox
	np := d.problems.len()
	switch {
	case d.entities.len() == 1 && np <= len(problemsBox{}.errs):
		// Most files: one entity and a warning or two, one allocation.
		b := &struct {
			fr FileResult
			e  [1]Entity
			p  problemsBox
		}{}
		fr, es, box = &b.fr, b.e[:], &b.p
	case d.entities.len() == 1:
		b := &struct {
			fr FileResult
			e  [1]Entity
		}{}
		fr, es = &b.fr, b.e[:]
	default:
		fr = &FileResult{}
		es = make([]Entity, d.entities.len())
	}
	fr.Path, fr.Documents = f.str(d.path), int(d.documents)

	switch n := d.entities.len(); {
	case d.entities.isNil():
	case n == 0:
		fr.Entities = []*Entity{}
	case n == 1:
		f.thawEntity(&es[0], &f.entities[d.entities.at])
		fr.one[0] = &es[0]
		fr.Entities = fr.one[:]
	default:
		fr.Entities = make([]*Entity, n)
		for j := range n {
			f.thawEntity(&es[j], &f.entities[d.entities.at+uint32(j)])
			fr.Entities[j] = &es[j]
		}
	}

	if !d.problems.isNil() {
		var list ErrorList
		var slab []Error
		if box != nil && np > 0 {
			list, slab = box.list[:np:np], box.errs[:np]
		} else {
			list, slab = make(ErrorList, np), make([]Error, np)
		}
		fr.Problems = f.thawProblems(d, list, slab)
	}
	return fr
}

// problemsOf makes the problems of file i again, without its entities.
func (f *frozenFiles) problemsOf(i int) ErrorList {
	d := &f.files[i]
	if d.problems.isNil() {
		return nil
	}
	np := d.problems.len()
	return f.thawProblems(d, make(ErrorList, np), make([]Error, np))
}

// thawProblems fills list and slab, of the length of d's problems, with
// them, and returns list.
func (f *frozenFiles) thawProblems(d *frozenFile, list ErrorList, slab []Error) ErrorList {
	for j, p := range f.problems[d.problems.at:d.problems.end()] {
		slab[j] = Error{Field: f.str(p.field), Msg: f.str(p.msg),
			Pos: Pos{File: f.str(p.file), Line: int(p.line), Col: int(p.col)}, Severity: Severity(p.severity)}
		list[j] = &slab[j]
	}
	return list
}

// thawEntity fills e, a zero Entity, from d.
func (f *frozenFiles) thawEntity(e *Entity, d *frozenEntity) {
	e.Name, e.Type, e.Desc, e.ClientCA = f.str(d.name), Type(f.str(d.typ)), f.str(d.desc), f.str(d.clientCA)
	e.Pos = Pos{File: f.str(d.posFile), Line: int(d.posLine), Col: int(d.posCol)}
	e.ClientDepth, e.Disabled, e.lean, e.Hash = int(d.clientDepth), d.flags&entityDisabled != 0, d.flags&entityLean != 0, d.hash
	e.v = f.validators[d.validator]
	r := &frozenRare{}
	if d.rare > 0 {
		r = &f.rare[d.rare-1]
	}
	e.inline.fact[0] = d.inlineFact
	e.inline.fields.s = f.str(d.inlineFields)

	// SNIs and protocols share one backing array, as compact and Pack
	// leave them: the entity's inline.strs when they fit.
	ns, np := d.snis.len(), d.protocols.len()
	var list []string
	if d.flags&entityStrsInline != 0 {
		list = e.inline.strs[: ns+np : ns+np]
	} else if ns+np > 0 {
		list = make([]string, ns+np)
	}
	for j, s := range f.refs[d.snis.at:d.snis.end()] {
		list[j] = f.str(s)
	}
	for j, s := range f.refs[d.protocols.at:d.protocols.end()] {
		list[ns+j] = f.str(s)
	}
	for i, s := range r.strs {
		if s.n > 0 {
			e.inline.strs[i] = f.str(s)
		}
	}
	e.SNIs = thawList(d.snis, list[:ns:ns])
	e.Protocols = thawList(d.protocols, list[ns:])

	switch {
	case d.flags&entityNoChains != 0:
		e.Chains = leanChains(d.chains.len())
	case d.chains.isNil():
	default:
		e.Chains = make([]Chain, d.chains.len())
		for j := range e.Chains {
			at := d.chains.at + 2*uint32(j)
			e.Chains[j] = Chain{Cert: f.str(f.refs[at]), Key: f.str(f.refs[at+1])}
		}
	}
	if !d.labels.isNil() {
		n := d.labels.len()
		e.Labels = make(map[string]string, n)
		for j := range n {
			at := d.labels.at + 2*uint32(j)
			e.Labels[f.str(f.refs[at])] = f.str(f.refs[at+1])
		}
	}

	if d.flags&entityPlace != 0 {
		p := &placement{fields: fieldIndex{s: f.str(r.placeFields)}}
		if !r.index.isNil() {
			p.index = make(map[string]Pos, r.index.len())
			for _, q := range f.positions[r.index.at:r.index.end()] {
				p.index[f.str(q.path)] = Pos{File: f.str(q.file), Line: int(q.line), Col: int(q.col)}
			}
		}
		if d.flags&entityRename != 0 {
			rename := r.rename
			p.rename = &rename
		}
		if !r.sniSrc.isNil() {
			p.sniSrc = make([]int, r.sniSrc.len())
			for j, i := range f.ints[r.sniSrc.at:r.sniSrc.end()] {
				p.sniSrc[j] = int(i)
			}
		}
		e.place = p
	}

	switch d.inlineFacts {
	case factsSelf:
		e.inline.facts = e.inline.fact[:]
	case factsOwn:
		e.inline.facts = f.thawFacts(r.ownInline)
	}
	switch d.factsAt {
	case factsInline:
		e.facts.Store(&e.inline.facts)
	case factsOwn:
		fs := f.thawFacts(r.facts)
		e.facts.Store(&fs)
	}

	if !r.material.isNil() {
		e.material.Store(f.thawHeld(r.material, d.flags&entityClientCAs != 0, e.ClientCA))
	}
}

// thawList is the nil, empty or filled list that s says, list when filled.
func thawList(s span, list []string) []string {
	switch {
	case s.isNil():
		return nil
	case s.len() == 0:
		return []string{}
	}
	return list
}

func (f *frozenFiles) thawFacts(s span) []chainFact {
	if s.isNil() {
		return nil
	}
	return slices.Clone(f.facts[s.at:s.end()])
}

// thawHeld returns a copy of the held material of d: its bytes in one
// allocation of the thawed entity's own (the material is handed to the
// gateway, whose it then is), its client CA pool parsed again from the
// entity's client CA (what validation built it from; few entities have
// one).
func (f *frozenFiles) thawHeld(s span, pool bool, clientCA string) *heldMaterial {
	chains := f.held[s.at:s.end()]
	n := 0
	for _, c := range chains {
		n += c.key.len()
		for _, der := range f.ders[c.certs.at:c.certs.end()] {
			n += der.len()
		}
	}
	buf := make([]byte, 0, n)
	bytes := func(s span) []byte {
		if s.isNil() {
			return nil
		}
		at := len(buf)
		buf = append(buf, f.secret[s.at:s.end()]...)
		return buf[at:len(buf):len(buf)]
	}
	h := &heldMaterial{chains: make([]heldChain, len(chains))}
	for j, c := range chains {
		if !c.certs.isNil() {
			h.chains[j].certs = make([][]byte, c.certs.len())
			for k, der := range f.ders[c.certs.at:c.certs.end()] {
				h.chains[j].certs[k] = bytes(der)
			}
		}
		h.chains[j].key = bytes(c.key)
	}
	if pool {
		// The zero time: the pool does not depend on it (an expired CA
		// is a problem, and there was none when it was built).
		h.clientCAs, _ = parseCAs([]byte(clientCA), time.Time{})
	}
	return h
}

// str is the string r of the text.
func (f *frozenFiles) str(r strRef) string {
	if r.n == 0 {
		return ""
	}
	return unsafe.String(&f.text[r.at], int(r.n))
}
