package schema

import (
	"hash/maphash"
	"strings"
	"sync"
)

// This file gathers what a validated file keeps into few allocations. A
// file's result lives as long as the file is unchanged, in the daemon's
// validation cache, while validation allocates several megabytes of
// short-lived objects per file (CUE's evaluation, YAML decoding). Before
// compact, an entity's strings were substrings of the YAML decoder's
// quoted literals and its problems two objects each: ~20 small objects
// per entity, each pinning an 8 KiB span among validation's garbage after
// the start, and each marked by every garbage collection while the
// gateway serves (issue 13).

// compact copies the strings of fr's entities into one allocation per
// entity and its problems into one slab, their messages interned (an
// untrusted issuer gives thousands of entities the same warning). It
// changes no value.
func (fr *FileResult) compact() {
	for _, e := range fr.Entities {
		e.compact()
	}
	if len(fr.Entities) == 1 {
		fr.one[0] = fr.Entities[0]
		fr.Entities = fr.one[:]
	}
	n := len(fr.Problems)
	if n == 0 {
		return
	}
	var list ErrorList
	var slab []Error
	if n <= len(problemsBox{}.errs) {
		// Most files have one entity and a warning or two: the list and
		// the problems in one allocation.
		b := &problemsBox{}
		list, slab = b.list[:n:n], b.errs[:n]
	} else {
		list, slab = fr.Problems, make([]Error, n)
	}
	for i, p := range fr.Problems {
		slab[i] = *p
		slab[i].Msg, slab[i].Field = messages.intern(p.Msg), messages.intern(p.Field)
		list[i] = &slab[i]
	}
	fr.Problems = list
}

// problemsBox is a short problem list and its problems.
type problemsBox struct {
	list [2]*Error
	errs [2]Error
}

// messages interns problems' messages and fields (see internTable).
var messages internTable

// internTable returns one copy of strings it saw recently: a table of
// recent strings, each string in the slot its hash picks, replaced by the
// next string there. Repeated messages share one copy while messages seen
// once cost nothing but their slot, and the table never grows (interning
// every message, as unique.Make does, costs an entry per distinct message
// and would add to the objects that compact removes).
type internTable struct {
	mu   sync.Mutex
	slot [512]string
}

var internSeed = maphash.MakeSeed()

func (t *internTable) intern(s string) string {
	i := maphash.String(internSeed, s) % uint64(len(t.slot))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.slot[i] == s {
		return t.slot[i]
	}
	t.slot[i] = s
	return s
}

// compact copies e's names, SNIs, protocols, description, client CA and
// field index into one string, and its SNIs and protocols into one slice;
// its field index (when its placement holds nothing else), a single
// chain's facts and up to two SNIs and protocols move into the entity
// itself (Entity.inline).
// Chains are left alone: a lean entity has none, and the PEM text of
// another is large and its own allocation already.
func (e *Entity) compact() {
	n := len(e.Name) + len(e.Desc) + len(e.ClientCA)
	for _, s := range e.SNIs {
		n += len(s)
	}
	for _, s := range e.Protocols {
		n += len(s)
	}
	if e.place != nil {
		n += len(e.place.fields.s)
	}
	n += len(e.inline.fields.s)
	var b strings.Builder
	b.Grow(n)
	for _, s := range e.SNIs {
		b.WriteString(s)
	}
	for _, s := range e.Protocols {
		b.WriteString(s)
	}
	b.WriteString(e.Name)
	b.WriteString(e.Desc)
	b.WriteString(e.ClientCA)
	b.WriteString(e.inline.fields.s)
	if e.place != nil {
		b.WriteString(e.place.fields.s)
	}
	all := b.String()
	next := func(s string) string {
		if s == "" {
			return s // keeps "" as it was, no reference to all
		}
		s, all = all[:len(s)], all[len(s):]
		return s
	}
	if k := len(e.SNIs) + len(e.Protocols); k > 0 {
		list := e.inline.strs[:0]
		if k > len(e.inline.strs) {
			list = make([]string, k)
		}
		list = list[:k]
		for i, s := range e.SNIs {
			list[i] = next(s)
		}
		for i, s := range e.Protocols {
			list[len(e.SNIs)+i] = next(s)
		}
		if len(e.SNIs) > 0 {
			e.SNIs = list[:len(e.SNIs):len(e.SNIs)]
		}
		if len(e.Protocols) > 0 {
			e.Protocols = list[len(e.SNIs):]
		}
	}
	e.Name = next(e.Name)
	e.Desc = next(e.Desc)
	e.ClientCA = next(e.ClientCA)
	e.inline.fields.s = next(e.inline.fields.s)
	if p := e.place; p != nil {
		p.fields.s = next(p.fields.s)
		if p.index == nil && p.rename == nil && p.sniSrc == nil {
			e.inline.fields, e.place = p.fields, nil
		}
	}
	if f := e.facts.Load(); f != nil && len(*f) == len(e.inline.fact) {
		e.inline.fact[0] = (*f)[0]
		e.inline.facts = e.inline.fact[:]
		e.facts.Store(&e.inline.facts)
	}
}

// fieldIndex returns the compact field index of e: its placement's, or
// the one it holds inline.
func (e *Entity) fieldIndex() fieldIndex {
	if e.place != nil {
		return e.place.fields
	}
	return e.inline.fields
}
