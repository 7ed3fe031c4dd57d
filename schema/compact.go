package schema

import (
	"strings"
	"unique"
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
// untrusted issuer or a shared key gives thousands of entities the same
// warning). It changes no value.
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
		slab[i].intern()
		list[i] = &slab[i]
	}
	fr.Problems = list
}

// problemsBox is a short problem list and its problems.
type problemsBox struct {
	list [2]*Error
	errs [2]Error
}

// intern makes e's message the canonical copy of its text, which e keeps
// alive for as long as it is alive itself.
func (e *Error) intern() {
	e.msg = unique.Make(e.Msg)
	e.Msg = e.msg.Value()
}

// compact copies e's names, SNIs, protocols, description, client CA and
// field index into one string, and its SNIs and protocols into one slice.
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
		list := make([]string, k)
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
	if e.place != nil {
		e.place.fields.s = next(e.place.fields.s)
	}
}
