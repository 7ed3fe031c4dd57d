package gateway

import (
	"crypto/x509"
	"errors"
	"hash/maphash"
	"math"
)

// changeChunk is the room of an arena chunk that an incremental Apply
// starts: about 200 entities' certificates and keys, so that successive
// one-entity changes fill one chunk instead of each making its own.
const changeChunk = 256 << 10

// changeSnapshot builds the snapshot that prev becomes when the entities
// of changed are created or replace the entities of their names, and the
// entities named by removed are taken out. It checks the changed entities
// as Apply checks every entity, and the result as a whole as Apply would
// check the resulting Config (unique names and SNIs, the upstream client
// certificate), but looks at nothing else: the new snapshot shares its
// storage with prev (cow.go) and copies only the chunks and index shards
// it changes, so it costs O(changed) whatever the number of entities.
//
// The bytes of replaced and removed entities stay in the shared storage,
// unreachable, until they are as many as the live ones: then the result
// is compacted, a full build of the same configuration (once per about as
// many changed entities as are served, so O(1) per change amortised).
func changeSnapshot(srv *Server, prev *snapshot, changed []Entity, removed []string) (*snapshot, error) {
	next := &snapshot{
		srv: srv, seed: prev.seed,
		exact: prev.exact, wildcard: prev.wildcard, byName: prev.byName, fallback: prev.fallback,
		snis: prev.snis, entities: prev.entities, chains: prev.chains, certs: prev.certs, arena: prev.arena,
		pools: prev.pools, pinned: prev.pinned, live: prev.live, stale: prev.stale,
	}
	b := &builder{
		s:       next,
		grow:    changeChunk,
		blobs:   make(map[uint64]span),
		pools:   make(map[*x509.CertPool]int32),
		sniOf:   make(map[string]string),
		running: prev,
		touched: make(map[string]bool, len(changed)+len(removed)),
	}
	gone := make(map[string]bool, len(removed))
	for _, name := range removed {
		switch {
		case gone[name]:
			b.errorf("entity %q: removed twice", name)
		case prev.indexOf(name) < 0:
			b.errorf("entity %q: removed but not configured", name)
		}
		gone[name], b.touched[name] = true, true
	}
	valid := make([]*Entity, 0, len(changed))
	for n := range changed {
		ent := &changed[n]
		switch {
		case ent.Name == "":
			b.errorf("entity %d: no name", n)
			continue
		case gone[ent.Name]:
			b.errorf("entity %q: both changed and removed", ent.Name)
			continue
		case b.touched[ent.Name]:
			b.errorf("entity %q: name used twice", ent.Name)
			continue
		}
		b.touched[ent.Name] = true
		valid = append(valid, ent)
	}
	if u := srv.upstreamClient; u != "" && gone[u] {
		b.errorf("entity %q: named as the upstream client certificate but not configured", u)
	}

	// Build the changed entities: a replaced one keeps its record (its
	// index), a new one is appended.
	type placed struct {
		slot uint32
		rec  entityRec
		new  bool
	}
	ents := editVec(&next.entities)
	placedRecs := make([]placed, 0, len(valid))
	for _, ent := range valid {
		p := placed{slot: next.entities.len(), new: true}
		if i := prev.indexOf(ent.Name); i >= 0 {
			p.slot, p.new = uint32(i), false
		}
		rec, ok := b.entity(ent, prev, p.slot)
		if !ok {
			continue
		}
		p.rec = rec
		if p.new {
			next.entities.push(rec)
		} else {
			ents.set(p.slot, rec)
		}
		placedRecs = append(placedRecs, p)
	}
	if next.entities.len() > math.MaxInt32 {
		b.errorf("too many entities")
	}
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}

	// Take the old names of touched entities out of the indexes, then put
	// the new ones in: an SNI may move from one changed entity to another.
	exact, wildcard, byName := &indexEdit{x: &next.exact}, &indexEdit{x: &next.wildcard}, &indexEdit{x: &next.byName}
	touchedSlots := make(map[int32]bool, len(b.touched))
	for name := range b.touched {
		i := prev.indexOf(name)
		if i < 0 {
			continue
		}
		touchedSlots[i] = true
		old := prev.entities.at(uint32(i))
		for k := range old.nSNIs {
			r := prev.snis.at(old.sni + k)
			m := exact
			if r.wildcard {
				m = wildcard
			}
			m.del(maphash.Bytes(prev.seed, prev.bytes(r.name)))
		}
		next.stale += prev.entityBytes(old)
		if next.fallback == i {
			next.fallback = -1
		}
		if gone[name] {
			byName.del(maphash.String(prev.seed, name))
			ents.set(uint32(i), entityRec{})
			next.live--
		}
	}
	collision := false
	for _, p := range placedRecs {
		touchedSlots[int32(p.slot)] = true
		for k := range p.rec.nSNIs {
			r := next.snis.at(p.rec.sni + k)
			m := exact
			if r.wildcard {
				m = wildcard
			}
			collision = collision || !m.put(maphash.Bytes(next.seed, next.bytes(r.name)), p.rec.sni+k)
		}
		if p.new {
			collision = collision || !byName.put(maphash.Bytes(next.seed, next.bytes(p.rec.name)), p.slot)
			next.live++
		}
		if p.rec.isDefault {
			next.fallback = int32(p.slot)
		}
	}
	if collision {
		// Two different names with one 64-bit hash: a full build of the
		// same configuration picks another seed.
		return next.compact()
	}

	// Entities that did not change keep their parsed form: the entries
	// refer to storage the new snapshot shares, under the same index.
	next.cache = next.newCache()
	for k := range prev.cache {
		if e := prev.cache[k].Load(); e != nil && !touchedSlots[e.index] {
			next.put(e)
		}
	}
	if next.stale > next.arena.size/2 {
		return next.compact()
	}
	return next, nil
}

// compact rebuilds s without the storage of removed and replaced entities:
// a full build of the configuration s serves, its keys taken from s (see
// Entity.Chains), its parsed keys carried over.
func (s *snapshot) compact() (*snapshot, error) {
	return buildSnapshot(s.srv, s.config(), s)
}

// entityBytes is the arena size of an entity's name, SNIs, certificates
// and keys (shared bytes counted in full).
func (s *snapshot) entityBytes(rec *entityRec) uint64 {
	n := uint64(rec.name.n)
	for k := range rec.nSNIs {
		n += uint64(s.snis.at(rec.sni + k).name.n)
	}
	for c := range int(rec.nChains) {
		ch := s.chain(rec, c)
		n += uint64(ch.key.n)
		for m := range ch.nCerts {
			n += uint64(s.certs.at(ch.cert + m).n)
		}
	}
	return n
}

// config returns the Config that s serves, entities in record order. Its
// chains have no private keys but those of pinned chains: applied with s
// running, they keep the keys s stores.
func (s *snapshot) config() Config {
	cfg := Config{Entities: make([]Entity, 0, s.live)}
	for i := range s.entities.len() {
		rec := s.entities.at(i)
		if rec.name.n == 0 {
			continue
		}
		e := Entity{
			Name:       string(s.bytes(rec.name)),
			Client:     rec.client,
			MinVersion: rec.minV,
			MaxVersion: rec.maxV,
		}
		if rec.pool >= 0 {
			e.ClientCAs, e.ClientDepth = s.pools[rec.pool], int(rec.depth)
		}
		if rec.isDefault {
			e.SNIs = append(e.SNIs, "*")
		}
		for k := range rec.nSNIs {
			r := s.snis.at(rec.sni + k)
			name := string(s.bytes(r.name))
			if r.wildcard {
				name = "*." + name
			}
			e.SNIs = append(e.SNIs, name)
		}
		for n := range int(rec.nChains) {
			c := s.chain(rec, n)
			if c.pinned >= 0 {
				e.Chains = append(e.Chains, s.pinned[c.pinned])
				continue
			}
			e.Chains = append(e.Chains, s.certificate(c))
		}
		cfg.Entities = append(cfg.Entities, e)
	}
	return cfg
}
