package schema

import "strings"

// Pack moves the results of one load into a few allocations they share:
// their FileResults into one slice, their entities into another, their
// problems into a third, and the strings of every entity (names, SNIs,
// protocols, descriptions, client CAs, field indexes) and one copy of each
// problem message into one block. It returns the moved results, in
// order, and leaves results as they were; they are no longer to be used.
// Every value is the same.
//
// compact leaves each validated file a few allocations of its own, made
// while validation's garbage is all around them: after a start of 10,000
// files, 40,000 small objects the collector marks at every cycle, each
// pinning a mostly empty span (HeapInuse twice the live heap; issue 13).
// Packed, they are a few large objects.
//
// The shared allocations stay alive while any result or entity of the
// load does: when a file changes, its old result's share is freed with
// the last of them, so a daemon holds at most one load's worth more.
// Pack is for a load's fresh results, before anything else refers to
// them (a SetChecker, a build); a single result is returned as it is, and
// so is a result whose entities' facts may still change (resolved
// references): such a file is kept live while the others are at rest
// (Results.Freeze), and would keep the shared allocations alive.
func Pack(results []*FileResult) []*FileResult {
	if len(results) < 2 {
		return results
	}
	n := 0
	for _, fr := range results {
		n += len(fr.Problems)
	}
	p := packer{messages: make(map[string]string, 2*n)}
	packed := 0
	for _, fr := range results {
		if !fr.volatile() {
			p.count(fr)
			packed++
		}
	}
	p.alloc(packed)
	out := make([]*FileResult, len(results))
	for i, fr := range results {
		if out[i] = fr; !fr.volatile() {
			out[i] = p.file(fr)
		}
	}
	return out
}

// packer is Pack's allocations, each consumed from the front as results
// are moved in, in the order count saw them.
type packer struct {
	nEntities, nProblems, nLists, nStrs, nBytes int

	files    []FileResult
	entities []Entity
	problems []Error
	errLists []*Error
	lists    []*Entity // the Entities of files with several
	strs     []string  // SNIs and protocols beyond what an entity holds inline
	b        strings.Builder
	// messages maps each problem message and field of the load to its
	// copy in the block ("" until copied): an untrusted issuer gives
	// thousands of files the same warning, an expiry date each its own.
	messages map[string]string
}

func (p *packer) count(fr *FileResult) {
	if n := len(fr.Entities); n > 1 {
		p.nLists += n
	}
	p.nProblems += len(fr.Problems)
	for _, e := range fr.Problems {
		p.countMessage(e.Msg)
		p.countMessage(e.Field)
	}
	for _, e := range fr.Entities {
		p.nEntities++
		if k := len(e.SNIs) + len(e.Protocols); k > len(e.inline.strs) {
			p.nStrs += k
		}
		e.eachString(func(s string) { p.nBytes += len(s) })
	}
}

func (p *packer) countMessage(s string) {
	if s == "" {
		return
	}
	if _, ok := p.messages[s]; !ok {
		p.messages[s] = ""
		p.nBytes += len(s)
	}
}

func (p *packer) alloc(files int) {
	p.files = make([]FileResult, files)
	p.entities = make([]Entity, p.nEntities)
	p.problems = make([]Error, p.nProblems)
	p.errLists = make([]*Error, p.nProblems)
	p.lists = make([]*Entity, p.nLists)
	p.strs = make([]string, p.nStrs)
	p.b.Grow(p.nBytes)
}

func (p *packer) file(fr *FileResult) *FileResult {
	d := &p.files[0]
	p.files = p.files[1:]
	d.Path, d.Documents = fr.Path, fr.Documents
	switch n := len(fr.Entities); n {
	case 0:
		d.Entities = fr.Entities
	case 1:
		d.one[0] = p.entity(fr.Entities[0])
		d.Entities = d.one[:]
	default:
		list := p.lists[:n:n]
		p.lists = p.lists[n:]
		for i, e := range fr.Entities {
			list[i] = p.entity(e)
		}
		d.Entities = list
	}
	if n := len(fr.Problems); n > 0 {
		list := p.errLists[:n:n]
		p.errLists = p.errLists[n:]
		for i, e := range fr.Problems {
			pe := &p.problems[0]
			p.problems = p.problems[1:]
			*pe = *e
			pe.Msg, pe.Field = p.message(e.Msg), p.message(e.Field)
			list[i] = pe
		}
		d.Problems = list
	}
	return d
}

// entity moves e into the next slot.
func (p *packer) entity(e *Entity) *Entity {
	d := &p.entities[0]
	p.entities = p.entities[1:]
	d.Type, d.Chains, d.Labels = e.Type, e.Chains, e.Labels
	d.v = e.v
	d.material.Store(e.material.Load())
	d.Pos, d.ClientDepth, d.Disabled, d.lean, d.Hash = e.Pos, e.ClientDepth, e.Disabled, e.lean, e.Hash
	d.inline = e.inline
	d.inline.strs = [len(e.inline.strs)]string{}

	d.SNIs, d.Protocols = e.SNIs, e.Protocols
	if k := len(e.SNIs) + len(e.Protocols); k > 0 {
		var list []string
		if k <= len(d.inline.strs) {
			list = d.inline.strs[:k:k]
		} else {
			list, p.strs = p.strs[:k:k], p.strs[k:]
		}
		for i, s := range e.SNIs {
			list[i] = p.str(s)
		}
		for i, s := range e.Protocols {
			list[len(e.SNIs)+i] = p.str(s)
		}
		if len(e.SNIs) > 0 {
			d.SNIs = list[:len(e.SNIs):len(e.SNIs)]
		}
		if len(e.Protocols) > 0 {
			d.Protocols = list[len(e.SNIs):]
		}
	}
	d.Name = p.str(e.Name)
	d.Desc = p.str(e.Desc)
	d.ClientCA = p.str(e.ClientCA)
	d.place = e.place
	d.inline.fields.s = p.str(e.inline.fields.s)

	if len(e.inline.facts) > 0 && &e.inline.facts[0] == &e.inline.fact[0] {
		d.inline.facts = d.inline.fact[:len(e.inline.facts)]
	}
	f := e.facts.Load()
	if f == &e.inline.facts {
		f = &d.inline.facts
	}
	d.facts.Store(f)
	return d
}

// str returns a copy of s in the block. The builder's bytes are only
// ever appended to, within the capacity count asked for, so every string
// taken from it stays valid and they share one allocation (should count
// have missed a string, the builder grows into a second one: the strings
// stay right).
func (p *packer) str(s string) string {
	if s == "" {
		return s
	}
	start := p.b.Len()
	p.b.WriteString(s)
	return p.b.String()[start:]
}

// message returns the load's one copy of a problem's message or field.
func (p *packer) message(s string) string {
	if s == "" {
		return s
	}
	c := p.messages[s]
	if c == "" {
		c = p.str(s)
		p.messages[s] = c
	}
	return c
}

// eachString calls yield with each string of e that Pack copies into its
// block: SNIs, protocols, name, description, client CA, and the field
// index e holds inline.
func (e *Entity) eachString(yield func(string)) {
	for _, s := range e.SNIs {
		yield(s)
	}
	for _, s := range e.Protocols {
		yield(s)
	}
	yield(e.Name)
	yield(e.Desc)
	yield(e.ClientCA)
	yield(e.inline.fields.s)
}
