package plan

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
)

// Set is the descriptions of a state's entities, sorted by name and
// packed ([Packed]): two slices, whatever the number of entities, which
// the garbage collector marks in a few thousand words instead of the
// millions of an []EntityInfo. Beside each description it keeps, flat,
// the earliest expiry of its chains, so that finding the certificates
// about to expire looks at no other. A Set is immutable and safe for
// concurrent use; [Set.With] makes the next one. The nil *Set is empty.
type Set struct {
	recs []Packed
	// soonest is by record the earliest NotAfter of its chains, in Unix
	// seconds rounded down; math.MaxInt64 for none.
	soonest []int64
}

// NewSet returns the set of infos, which it sorts by name (one per name).
func NewSet(infos []EntityInfo) *Set {
	s := &Set{soonest: make([]int64, len(infos))}
	order := make([]int, len(infos))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(infos[a].Name, infos[b].Name) })
	s.recs = packAll(infos, order)
	for i, j := range order {
		s.soonest[i] = soonestOf(&infos[j])
	}
	return s
}

func soonestOf(e *EntityInfo) int64 {
	t := int64(math.MaxInt64)
	for _, c := range e.Chains {
		if !c.NotAfter.IsZero() {
			t = min(t, c.NotAfter.Unix())
		}
	}
	return t
}

// Len returns the number of descriptions.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.recs)
}

// Name returns the name of the i-th description.
func (s *Set) Name(i int) string { return s.recs[i].Name() }

// At returns the i-th description, unpacked.
func (s *Set) At(i int) EntityInfo { return s.recs[i].Unpack() }

// Find returns the index of the description of name, and whether there is
// one.
func (s *Set) Find(name string) (int, bool) {
	if s == nil {
		return 0, false
	}
	return slices.BinarySearchFunc(s.recs, name, func(p Packed, n string) int { return strings.Compare(p.Name(), n) })
}

// Lookup returns the description of name, unpacked.
func (s *Set) Lookup(name string) (EntityInfo, bool) {
	if i, ok := s.Find(name); ok {
		return s.At(i), true
	}
	return EntityInfo{}, false
}

// Infos returns every description, unpacked, sorted by name; never nil.
func (s *Set) Infos() []EntityInfo {
	out := make([]EntityInfo, s.Len())
	for i := range out {
		out[i] = s.At(i)
	}
	return out
}

// Type returns the type of the i-th description.
func (s *Set) Type(i int) string { return s.recs[i].typ() }

// Expiries calls f, in chain order, with the index, subject and expiry of
// each chain of the i-th description whose expiry is known, unpacking
// nothing else.
func (s *Set) Expiries(i int, f func(chain int, subject string, notAfter time.Time)) {
	s.recs[i].expiry(f)
}

// Expiring calls f, in name then chain order, for every chain whose
// certificate expires before limit, with its entity's name, the chain's
// index, subject and expiry. Only the descriptions that have such a chain
// are read.
func (s *Set) Expiring(limit time.Time, f func(name string, chain int, subject string, notAfter time.Time)) {
	if s == nil {
		return
	}
	// soonest is rounded down: a record at limit's second may still
	// expire before it.
	at := limit.Unix()
	for i, t := range s.soonest {
		if t > at {
			continue
		}
		p := s.recs[i]
		name := p.Name()
		p.expiry(func(chain int, subject string, notAfter time.Time) {
			if notAfter.Before(limit) {
				f(name, chain, subject, notAfter)
			}
		})
	}
}

// With returns the set with the descriptions of fresh (which replace those
// of their names) and without those of the names in deleted. The
// descriptions between two changes are copied as runs, unread: a change of
// one entity among 10,000 is one copy of two slices.
func (s *Set) With(fresh []EntityInfo, deleted []string) *Set {
	type cut struct {
		at   int    // index in s
		add  Packed // inserted before s.recs[at]; "" for none
		t    int64  // add's soonest expiry
		drop bool   // s.recs[at] is left out
	}
	cuts := make([]cut, 0, len(fresh)+len(deleted))
	order := make([]int, len(fresh))
	for i := range order {
		order[i] = i
	}
	packed := packAll(fresh, order)
	for i := range fresh {
		at, found := s.Find(fresh[i].Name)
		cuts = append(cuts, cut{at: at, add: packed[i], t: soonestOf(&fresh[i]), drop: found})
	}
	for _, name := range deleted {
		if at, found := s.Find(name); found {
			cuts = append(cuts, cut{at: at, drop: true})
		}
	}
	// At one index, the new names (before s.recs[at], by name) come
	// before the one that replaces or deletes s.recs[at].
	slices.SortFunc(cuts, func(x, y cut) int {
		if c := cmp.Compare(x.at, y.at); c != 0 {
			return c
		}
		switch {
		case x.drop && y.drop:
			return 0 // the same cut: one entity is dropped once
		case x.drop:
			return 1
		case y.drop:
			return -1
		}
		return strings.Compare(x.add.Name(), y.add.Name())
	})
	n := s.Len() + len(fresh)
	out := &Set{recs: make([]Packed, 0, n), soonest: make([]int64, 0, n)}
	cur := 0
	var recs []Packed
	var soonest []int64
	if s != nil {
		recs, soonest = s.recs, s.soonest
	}
	for _, c := range cuts {
		if c.at > cur {
			out.recs = append(out.recs, recs[cur:c.at]...)
			out.soonest = append(out.soonest, soonest[cur:c.at]...)
		}
		cur = max(cur, c.at)
		if c.add != "" {
			out.recs = append(out.recs, c.add)
			out.soonest = append(out.soonest, c.t)
		}
		if c.drop {
			cur = c.at + 1
		}
	}
	out.recs = append(out.recs, recs[cur:]...)
	out.soonest = append(out.soonest, soonest[cur:]...)
	return out
}
