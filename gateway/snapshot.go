package gateway

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync/atomic"
)

// snapshot is the immutable running state of the gateway. Apply builds it
// aside and publishes it with one atomic store; nothing mutates it after
// that except its entry cache, which is safe for concurrent use.
//
// # Memory layout
//
// A snapshot holds every entity in a compact, pointer-free form: the DER of
// all certificates, all private keys (raw ECDSA and Ed25519, PKCS#8 DER
// otherwise: see keyForm) and all names live in a byte arena, the records
// are small structs holding offsets into it, and the indexes are maps from
// a seeded 64-bit hash to a record index (map[uint64]uint32). None of these
// contain pointers, so the garbage collector marks them without scanning
// them. They are stored in chunks that successive snapshots share
// (cow.go), so that an incremental Apply (Server.ApplyChanges) copies only
// what it changes.
//
// This is a measured choice. The naive layout, a map of parsed
// tls.Certificate values, keeps about 4 KB of pointer-dense objects per
// entity (the parsed x509.Certificate and the private key; ~8.6 KB with
// RSA). With 10,000 to 100,000 entities loaded, every GC cycle re-marks all
// of it, and the server spent 9-19% more CPU per handshake than with one
// static certificate although the lookup itself costs ~40 ns. With the
// compact layout the live heap is mostly noscan bytes, and a handshake
// costs the same CPU with 100,000 entities as with one certificate (see
// docs/performance.md, section "Gateway", for the figures and the command).
//
// The parsed form a handshake needs (tls.Certificate with key and Leaf, a
// per-entity tls.Config) is an [entry], built on first use from the arena
// and kept in a bounded, two-way cache of atomic pointers (see ways): lookups
// never lock, a snapshot whose entities all fit in the cache's memory
// budget (Options.CacheBytes, by the estimate of entryBytes) never evicts,
// and a larger one keeps its hot entities parsed while cold ones are
// built again on a cache miss: for an ECDSA or Ed25519 entity with one
// chain that is copying bytes (no certificate or key is parsed; a few µs
// with crypto/ecdsa's conversion of the key at its first signature), for
// RSA a key parse (~100-350 µs RSA-2048). The budget is small (1 MiB) because
// every GC cycle marks the cache, and a miss costs an ECDSA handshake
// well under 1%. Private keys that have no stored form (e.g.
// opaque crypto.Signers) are kept as they were given, in the pinned slice.
type snapshot struct {
	srv  *Server
	seed maphash.Seed

	exact    index // hash of normalised SNI -> index in snis
	wildcard index // hash of the parent of "*.parent" -> index in snis
	byName   index // hash of entity name -> index in entities
	fallback int32 // entity whose SNIs contain "*", or -1

	snis     vec[sniRec]
	entities vec[entityRec] // removed entities stay as dead records until a compaction
	chains   vec[chainRec]
	certs    vec[span] // DER certificates of all chains, leaf first per chain
	arena    arena

	pools  []*x509.CertPool  // distinct client CA pools; few, shared by entities
	pinned []tls.Certificate // chains whose key has no stored form

	live  int    // entities served
	stale uint64 // arena bytes of removed or replaced entities (see compact)

	cache []atomic.Pointer[entry] // two-way: entity i in one of its ways (see ways)
}

// sniRec is one configured server name.
type sniRec struct {
	name     span // the parent for a wildcard "*.parent"
	entity   uint32
	wildcard bool
}

// entityRec is one entity in compact form.
type entityRec struct {
	name       span   // n == 0 for a removed entity
	chain      uint32 // first chainRec
	sni        uint32 // first sniRec
	nSNIs      uint32
	nChains    uint16
	minV, maxV uint16
	client     bool
	isDefault  bool   // its SNIs contain "*"
	pool       int32  // index in pools, or -1 without mTLS
	depth      int32  // bound on intermediates of a client certificate
	policy     uint32 // changes when the client CA pool or depth changes
}

// chainRec is one certificate chain in compact form.
type chainRec struct {
	cert    uint32 // first span in certs
	nCerts  uint32
	key     span    // the key in its stored form (see keyForm); n == 0 when pinned
	keyForm keyForm // how key is stored
	pinned  int32   // index in pinned, or -1
	alg     x509.PublicKeyAlgorithm
}

// emptySnapshot serves nothing: every handshake fails with
// unrecognized_name until the first Apply.
func emptySnapshot(srv *Server) *snapshot {
	return &snapshot{srv: srv, seed: maphash.MakeSeed(), fallback: -1}
}

func (s *snapshot) bytes(sp span) []byte { return s.arena.bytes(sp) }

// chain returns chain n of entity rec.
func (s *snapshot) chain(rec *entityRec, n int) *chainRec { return s.chains.at(rec.chain + uint32(n)) }

// cert returns certificate n of chain c.
func (s *snapshot) cert(c *chainRec, n int) []byte { return s.bytes(*s.certs.at(c.cert + uint32(n))) }

// certificate returns chain c as stored, leaf first, without its key: its
// DER slices refer to s's immutable storage.
func (s *snapshot) certificate(c *chainRec) tls.Certificate {
	der := make([][]byte, c.nCerts)
	for k := range der {
		der[k] = s.cert(c, k)
	}
	return tls.Certificate{Certificate: der}
}

// lookup selects the entity for a server name: exact name, then the
// wildcard of the parent, then the default entity; -1 when none. The name
// is compared case-insensitively, one trailing dot ignored. It does not
// allocate, for hits and misses alike, and costs O(1) map lookups.
func (s *snapshot) lookup(serverName string) int32 {
	var buf [maxNameLen + 1]byte
	name, ok := appendNormalized(buf[:0], serverName)
	if ok && len(name) > 0 {
		if i := s.find(&s.exact, name); i >= 0 {
			return i
		}
		if p := parentOf(name); p != nil {
			if i := s.find(&s.wildcard, p); i >= 0 {
				return i
			}
		}
	}
	return s.fallback
}

// find looks name up in one of the SNI indexes and returns its entity, or
// -1. The stored name is compared too, so a hash collision can never
// select the wrong entity.
func (s *snapshot) find(m *index, name []byte) int32 {
	i, ok := m.get(maphash.Bytes(s.seed, name))
	if !ok {
		return -1
	}
	r := s.snis.at(i)
	if !bytes.Equal(s.bytes(r.name), name) {
		return -1
	}
	return int32(r.entity)
}

// indexOf returns the index of the entity called name, or -1.
func (s *snapshot) indexOf(name string) int32 {
	i, ok := s.byName.get(maphash.String(s.seed, name))
	if !ok || string(s.bytes(s.entities.at(i).name)) != name {
		return -1
	}
	return int32(i)
}

// entityName returns the name of entity i, or "" for -1.
func (s *snapshot) entityName(i int32) string {
	if i < 0 {
		return ""
	}
	return string(s.bytes(s.entities.at(uint32(i)).name))
}

// entry returns the parsed form of entity i from the cache, building it on
// a miss. Concurrent misses may build the same entry twice; the last one
// stored wins, and both are equivalent.
func (s *snapshot) entry(i int32) (*entry, error) {
	if e := s.cached(i); e != nil {
		e.use()
		return e, nil
	}
	e, err := s.build(i, nil)
	if err != nil {
		return nil, err
	}
	s.put(e)
	return e, nil
}

// Build limits. Offsets are uint32, and a ClientHello can name at most one
// of 2^32 entities.
const maxArena = math.MaxUint32

// builder accumulates the compact form of entities into a snapshot: all
// of a Config (buildSnapshot), or the changes of an incremental Apply
// (changeSnapshot), which append to the storage they share with the
// running snapshot.
type builder struct {
	s    *snapshot
	grow int // room of a new arena chunk
	// blobs deduplicates identical byte strings (shared intermediates,
	// names) by their hash, so no key copies the bytes; a colliding pair
	// is simply stored twice.
	blobs map[uint64]span
	pools map[*x509.CertPool]int32
	sniOf map[string]string // normalised SNI -> entity name, for duplicates
	// running is, for an incremental build, the snapshot it changes, and
	// touched the names it creates, replaces or removes: an SNI that an
	// untouched entity of running serves is taken.
	running *snapshot
	touched map[string]bool
	errs    []error
}

func (b *builder) add(p []byte) span {
	h := maphash.Bytes(b.s.seed, p)
	if sp, ok := b.blobs[h]; ok && bytes.Equal(b.s.bytes(sp), p) {
		return sp
	}
	if b.s.arena.size+uint64(len(p)) > maxArena {
		b.errs = append(b.errs, errors.New("configuration larger than 4 GiB"))
		return span{}
	}
	sp := b.s.arena.add(p, b.grow)
	b.blobs[h] = sp
	return sp
}

func (b *builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

// pool returns the index of a client CA pool, adding it when new.
func (b *builder) pool(p *x509.CertPool) int32 {
	if i, ok := b.pools[p]; ok {
		return i
	}
	i := int32(-1)
	if b.running != nil {
		// Pools are kept by reference: the running snapshot may hold it.
		i = int32(slices.Index(b.s.pools, p))
	}
	if i < 0 {
		i = int32(len(b.s.pools))
		b.s.pools = append(b.s.pools, p)
	}
	b.pools[p] = i
	return i
}

// The entry cache is two-way: entity i may sit in either of two slots,
// its ways, one at i mod the cache's size and one at a hash of i. A
// direct-mapped cache (one slot per entity) let two hot entities with the
// same slot evict each other on every visit: with the default budget, hot
// sets of an eighth to a half of the slots missed 6-28% of their visits
// (ECDSA), and RSA ones, whose miss parses a key (~150 µs), 12-31%; with
// two ways, none up to a quarter of the slots, and 3-6% at a half
// (BenchmarkCacheHotSet). An entity's entry evicts another only when both
// of its ways are taken and neither occupant can move to its own other
// way; then the one not used since the last eviction there goes (a clock's
// second chance: a hit marks its entry used, writing only when the mark
// was clear, and an eviction that finds both marked clears them).

// ways returns the two cache slots entity i may occupy; they are one slot
// when the cache has one, or when the hash falls on i's own.
func (s *snapshot) ways(i int32) (a, b *atomic.Pointer[entry]) {
	n := uint64(len(s.cache))
	u := uint64(uint32(i))
	h := (u * 0x9e3779b97f4a7c15) >> 32 // Fibonacci hashing: spreads neighbours apart
	return &s.cache[u%n], &s.cache[h%n]
}

// cached returns entity i's entry if the cache holds it, else nil.
func (s *snapshot) cached(i int32) *entry {
	a, b := s.ways(i)
	if e := a.Load(); e != nil && e.index == i {
		return e
	}
	if e := b.Load(); e != nil && e.index == i {
		return e
	}
	return nil
}

// put caches e in one of its ways: an empty one; else one whose entry can
// move to its own other way, empty; else one whose entry was not used
// since the last eviction there; else the first, giving the other a second
// chance. Concurrent puts may race; every outcome caches valid entries (a
// moved entry is stored in its new slot before its old one is reused, so
// a lookup never misses it on the way).
func (s *snapshot) put(e *entry) {
	// A new entry counts as used: an entry that has not been used since
	// the last eviction in its ways (one left from a hot set gone cold)
	// goes first.
	e.use()
	a, b := s.ways(e.index)
	ea, eb := a.Load(), b.Load()
	switch {
	case ea == nil || ea.index == e.index:
		a.Store(e)
	case eb == nil || eb.index == e.index:
		b.Store(e)
	case s.moveAway(ea, a):
		a.Store(e)
	case s.moveAway(eb, b):
		b.Store(e)
	case !ea.used.Load():
		a.Store(e)
	case !eb.used.Load():
		b.Store(e)
	default:
		ea.used.Store(false)
		eb.used.Store(false)
		a.Store(e)
	}
}

// moveAway stores o, the entry in slot, in its other way if that one is
// empty, and reports whether it did: slot may then take another entry.
func (s *snapshot) moveAway(o *entry, slot *atomic.Pointer[entry]) bool {
	a, b := s.ways(o.index)
	to := a
	if slot == a {
		to = b
	}
	return to != slot && to.CompareAndSwap(nil, o)
}

// Estimated heap of an entry (measured on Go 1.26 for an ECDSA P-256 and
// an RSA-2048 entity: TestEntryBytes), for the cache's memory budget.
const (
	entryBaseBytes = 850  // entry, tls.Config and its closures, name, ticket tag
	chainBytes     = 150  // a tls.Certificate and its DER slices
	ecKeyBytes     = 450  // *ecdsa.PrivateKey with its big.Ints, and crypto/ecdsa's FIPS form of it
	edKeyBytes     = 80   // ed25519.PrivateKey
	rsaKeyBytes    = 4300 // *rsa.PrivateKey, precomputed, and crypto/rsa's FIPS form of it
	leafBytes      = 3000 // a parsed x509.Certificate, for entities with several chains and client entities
)

// newCache returns the entry cache of s, as large as srv's cache budget
// allows for entries of the size s's entities have on average (sampled),
// and never larger than the number of entity records.
func (s *snapshot) newCache() []atomic.Pointer[entry] {
	n := int(s.entities.len())
	slots := s.srv.cacheSize
	if slots == 0 {
		slots = s.srv.cacheBytes / s.entryBytes()
	}
	return make([]atomic.Pointer[entry], max(1, min(slots, n)))
}

// entryBytes estimates the heap of a parsed entry of s from up to 64
// entities spread over it.
func (s *snapshot) entryBytes() int {
	n := s.entities.len()
	step := max(1, n/64)
	total, count := 0, 0
	for i := uint32(0); i < n; i += step {
		rec := s.entities.at(i)
		if rec.name.n == 0 {
			continue // removed
		}
		total += entryBaseBytes
		for k := range int(rec.nChains) {
			c := s.chain(rec, k)
			total += chainBytes
			if rec.nChains > 1 || rec.client {
				total += leafBytes
			}
			if c.pinned >= 0 {
				continue // kept as given, not per entry
			}
			switch c.alg {
			case x509.RSA:
				total += rsaKeyBytes
			case x509.Ed25519:
				total += edKeyBytes
			default:
				total += ecKeyBytes
			}
		}
		count++
	}
	if count == 0 {
		return entryBaseBytes + chainBytes + ecKeyBytes
	}
	return total / count
}

// buildSnapshot checks cfg as a whole and builds the snapshot it describes.
// prev is the running snapshot; an entity whose client CA pool and depth
// are unchanged keeps its ticket policy, so its sessions keep resuming.
func buildSnapshot(srv *Server, cfg Config, prev *snapshot) (*snapshot, error) {
	s := &snapshot{
		srv:      srv,
		seed:     maphash.MakeSeed(),
		fallback: -1,
	}
	// Size the first arena chunk once: growing it by doubling copies it
	// over and over, which was most of an Apply of 10,000 entities.
	size := 0
	for i := range cfg.Entities {
		ent := &cfg.Entities[i]
		size += len(ent.Name)
		for _, sni := range ent.SNIs {
			size += len(sni)
		}
		for _, c := range ent.Chains {
			for _, der := range c.Certificate {
				size += len(der)
			}
			size += 256 // a key: 96 bytes for P-256, ~1.2 KB of PKCS#8 for RSA-2048
		}
	}
	b := &builder{
		s:     s,
		grow:  max(min(size, maxArena), changeChunk/4),
		blobs: make(map[uint64]span, 2*len(cfg.Entities)),
		pools: make(map[*x509.CertPool]int32),
		sniOf: make(map[string]string),
	}
	names := make(map[string]bool, len(cfg.Entities))
	for n := range cfg.Entities {
		ent := &cfg.Entities[n]
		switch {
		case ent.Name == "":
			b.errorf("entity %d: no name", n)
			continue
		case names[ent.Name]:
			b.errorf("entity %q: name used twice", ent.Name)
			continue
		}
		names[ent.Name] = true
		if rec, ok := b.entity(ent, prev, s.entities.len()); ok {
			if rec.isDefault {
				s.fallback = int32(s.entities.len())
			}
			s.entities.push(rec)
		}
	}
	if srv.upstreamClient != "" && !names[srv.upstreamClient] {
		b.errorf("entity %q: named as the upstream client certificate but not configured", srv.upstreamClient)
	}
	if s.entities.len() > math.MaxInt32 {
		b.errorf("too many entities")
	}
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}
	// The size was estimated before deduplication (certificates shared by
	// many entities); keep only what is used.
	s.arena.trim()
	s.live = int(s.entities.len())
	s.index()
	s.cache = s.newCache()
	s.carryOver(prev)
	return s, nil
}

// carryOver seeds the cache of the new snapshot s with prev's cached
// entities whose chains and keys are byte-identical in s, so that an Apply
// does not make every hot entity miss on its next handshake. Only the
// parsed keys are carried (an RSA-2048 key costs ~350 µs to parse), not
// the certificates: a parsed certificate keeps slices of the arena it came
// from, and a carried one would keep prev's whole arena alive. For the same
// reason an ECDSA key stored raw is decoded again (~0.2 µs) into the new
// entry: it is part of its old entry's allocation (entryAlloc), which
// holds that arena. Names, policies and client CAs come from s.
func (s *snapshot) carryOver(prev *snapshot) {
	if prev == nil {
		return
	}
	for k := range prev.cache {
		old := prev.cache[k].Load()
		if old == nil {
			continue
		}
		j := s.indexOf(old.name)
		if j < 0 || !sameChains(prev, prev.entities.at(uint32(old.index)), s, s.entities.at(uint32(j))) {
			continue
		}
		keys := make([]crypto.PrivateKey, len(old.chains))
		for n := range old.chains {
			keys[n] = old.chains[n].PrivateKey
		}
		if old.ownKey {
			// Decoded again (a raw key costs ~0.2 µs): carried, it would
			// keep old's allocation, and prev's arena with it, alive.
			keys[0] = nil
		}
		if e, err := s.build(j, keys); err == nil {
			s.put(e)
		}
	}
}

// sameChains reports whether entity a of snapshot sa and entity b of sb
// have byte-identical chains and keys, in the same order.
func sameChains(sa *snapshot, a *entityRec, sb *snapshot, b *entityRec) bool {
	if a.nChains != b.nChains {
		return false
	}
	for n := range int(a.nChains) {
		ca, cb := sa.chain(a, n), sb.chain(b, n)
		if ca.pinned >= 0 || cb.pinned >= 0 || ca.nCerts != cb.nCerts || ca.keyForm != cb.keyForm ||
			!bytes.Equal(sa.bytes(ca.key), sb.bytes(cb.key)) {
			return false
		}
		for m := range int(ca.nCerts) {
			if !bytes.Equal(sa.cert(ca, m), sb.cert(cb, m)) {
				return false
			}
		}
	}
	return true
}

// claimedBy returns the entity of the running snapshot that serves the
// normalised SNI and stays as it is in an incremental build, or "".
func (b *builder) claimedBy(sni string) string {
	r := b.running
	if r == nil {
		return ""
	}
	var i int32
	if parent, ok := strings.CutPrefix(sni, "*."); ok {
		i = r.find(&r.wildcard, []byte(parent))
	} else if sni == "*" {
		i = r.fallback
	} else {
		i = r.find(&r.exact, []byte(sni))
	}
	if name := r.entityName(i); name != "" && !b.touched[name] {
		return name
	}
	return ""
}

// entity checks one entity and returns its compact form, for the entity
// record idx; its chains, certificates and SNIs are appended to the
// snapshot. ok is false when the entity has errors.
func (b *builder) entity(ent *Entity, prev *snapshot, idx uint32) (rec entityRec, ok bool) {
	s := b.s
	nerr := len(b.errs)
	rec = entityRec{
		name: b.add([]byte(ent.Name)),
		minV: ent.MinVersion,
		maxV: ent.MaxVersion,
		pool: -1,
	}
	if rec.minV == 0 {
		rec.minV = tls.VersionTLS12
	}
	if rec.maxV == 0 {
		rec.maxV = tls.VersionTLS13
	}
	for _, v := range []uint16{rec.minV, rec.maxV} {
		if v != tls.VersionTLS12 && v != tls.VersionTLS13 {
			b.errorf("entity %q: TLS version %#04x not supported: the gateway serves TLS 1.2 and TLS 1.3", ent.Name, v)
		}
	}
	if rec.minV > rec.maxV {
		b.errorf("entity %q: minimum TLS version %s above maximum %s", ent.Name, tls.VersionName(rec.minV), tls.VersionName(rec.maxV))
	}
	if ent.Client {
		rec.client = true
		if len(ent.SNIs) > 0 {
			b.errorf("entity %q: a client certificate entity has no SNIs", ent.Name)
		}
		if ent.ClientCAs != nil {
			b.errorf("entity %q: a client certificate entity takes no client CAs", ent.Name)
		}
	}
	if ent.ClientCAs != nil {
		depth := ent.ClientDepth
		if depth < 0 || depth > MaxClientDepth {
			b.errorf("entity %q: client certificate depth %d outside 0..%d", ent.Name, ent.ClientDepth, MaxClientDepth)
		}
		rec.depth = int32(depth)
		rec.pool = b.pool(ent.ClientCAs)
	}
	// The policy version goes up whenever the client certificate policy
	// changes, so tickets issued under the old one stop resuming.
	rec.policy = 1
	var prevChains []chainRec // the chains this entity had in the running snapshot
	if prev != nil {
		if i := prev.indexOf(ent.Name); i >= 0 {
			old := prev.entities.at(uint32(i))
			for n := range int(old.nChains) {
				prevChains = append(prevChains, *prev.chain(old, n))
			}
			same := old.pool < 0 && ent.ClientCAs == nil
			if old.pool >= 0 && ent.ClientCAs != nil {
				same = old.depth == rec.depth && prev.pools[old.pool].Equal(ent.ClientCAs)
			}
			rec.policy = old.policy
			if !same {
				rec.policy++
			}
		}
	}
	if len(ent.Chains) == 0 {
		b.errorf("entity %q: no certificate", ent.Name)
	}
	if len(ent.Chains) > math.MaxUint16 {
		b.errorf("entity %q: too many chains", ent.Name)
	}
	chains := make([]chainRec, 0, len(ent.Chains))
	for i := range ent.Chains {
		if c, ok := b.chain(ent.Name, i, &ent.Chains[i], prev, prevChains); ok {
			chains = append(chains, c)
		}
	}
	// ECDSA and Ed25519 before RSA: a modern client supports both, so the
	// order decides, and the first chain the client supports is served.
	slices.SortStableFunc(chains, func(a, b chainRec) int {
		return rank(a.alg) - rank(b.alg)
	})
	rec.chain, rec.nChains = s.chains.len(), uint16(len(chains))
	for _, c := range chains {
		s.chains.push(c)
	}
	rec.sni = s.snis.len()
	if !ent.Client {
		for _, raw := range ent.SNIs {
			sni := normalizeSNI(raw)
			if err := checkSNI(sni); err != nil {
				b.errorf("entity %q: sni %q: %w", ent.Name, raw, err)
				continue
			}
			if owner, dup := b.sniOf[sni]; dup {
				if owner == ent.Name {
					b.errorf("entity %q: sni %q listed twice", ent.Name, sni)
				} else {
					b.errorf("sni %q: claimed by both %q and %q", sni, owner, ent.Name)
				}
				continue
			}
			if owner := b.claimedBy(sni); owner != "" {
				b.errorf("sni %q: claimed by both %q and %q", sni, owner, ent.Name)
				continue
			}
			b.sniOf[sni] = ent.Name
			if sni == "*" {
				rec.isDefault = true
				continue
			}
			r := sniRec{entity: idx}
			if parent, ok := strings.CutPrefix(sni, "*."); ok {
				r.name, r.wildcard = b.add([]byte(parent)), true
			} else {
				r.name = b.add([]byte(sni))
			}
			s.snis.push(r)
		}
	}
	rec.nSNIs = s.snis.len() - rec.sni
	return rec, len(b.errs) == nerr
}

func rank(alg x509.PublicKeyAlgorithm) int {
	if alg == x509.RSA {
		return 1
	}
	return 0
}

// chain checks one chain of an entity and returns its compact form.
//
// prevChains are the entity's chains in the running snapshot prev. A chain
// whose leaf is byte-identical to one of them is checked against the leaf's
// SubjectPublicKeyInfo without parsing the certificate, and takes the key
// bytes encoded by the earlier Apply instead of marshalling the key again:
// a public key determines its private key, so those bytes are this key.
// Such a chain may also come without a key (see Entity.Chains).
// Parsing leaves and marshalling keys were most of an Apply that changes
// one entity among thousands.
func (b *builder) chain(entity string, i int, c *tls.Certificate, prev *snapshot, prevChains []chainRec) (chainRec, bool) {
	if len(c.Certificate) == 0 {
		b.errorf("entity %q: chain %d: no certificate", entity, i)
		return chainRec{}, false
	}
	signer, ok := c.PrivateKey.(crypto.Signer)
	if !ok && c.PrivateKey != nil {
		b.errorf("entity %q: chain %d: private key not a crypto.Signer", entity, i)
		return chainRec{}, false
	}
	for _, pc := range prevChains {
		if pc.pinned >= 0 || pc.key.n == 0 || !bytes.Equal(prev.cert(&pc, 0), c.Certificate[0]) {
			continue
		}
		// A chain without a key keeps the running one, which was checked
		// against this very leaf when it was stored.
		if signer != nil {
			match, ok := keyMatchesCertificate(c.Certificate[0], signer.Public())
			if !ok {
				break // not walkable: parse it below
			}
			if !match {
				b.errorf("entity %q: chain %d: private key does not match the certificate", entity, i)
				return chainRec{}, false
			}
		}
		rec := chainRec{cert: b.s.certs.len(), nCerts: uint32(len(c.Certificate)), pinned: -1,
			alg: pc.alg}
		for _, der := range c.Certificate {
			b.s.certs.push(b.add(der))
		}
		rec.key, rec.keyForm = b.add(prev.bytes(pc.key)), pc.keyForm
		return rec, true
	}
	if signer == nil {
		b.errorf("entity %q: chain %d: private key missing (a chain may omit its key only when the running configuration serves its leaf)", entity, i)
		return chainRec{}, false
	}
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			b.errorf("entity %q: chain %d: %w", entity, i, err)
			return chainRec{}, false
		}
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		b.errorf("entity %q: chain %d (%s): private key does not match the certificate", entity, i, leaf.Subject)
		return chainRec{}, false
	}
	switch leaf.PublicKeyAlgorithm {
	case x509.ECDSA, x509.Ed25519, x509.RSA:
	default:
		b.errorf("entity %q: chain %d: unsupported key algorithm %s", entity, i, leaf.PublicKeyAlgorithm)
		return chainRec{}, false
	}
	rec := chainRec{
		cert:   b.s.certs.len(),
		nCerts: uint32(len(c.Certificate)),
		pinned: -1,
		alg:    leaf.PublicKeyAlgorithm,
	}
	for _, der := range c.Certificate {
		b.s.certs.push(b.add(der))
	}
	if form, raw, err := encodeKey(signer); err == nil {
		rec.key, rec.keyForm = b.add(raw), form
		clear(raw)
	} else {
		// An opaque signer (HSM, KMS) stays as given; there are few.
		pinned := *c
		pinned.Leaf = leaf
		rec.pinned = int32(len(b.s.pinned))
		b.s.pinned = append(b.s.pinned, pinned)
	}
	return rec, true
}

// index builds the hash indexes. A 64-bit collision between two different
// names is astronomically unlikely with a random seed; if it happens the
// seed changes and the indexes are rebuilt.
func (s *snapshot) index() {
	for {
		s.exact, s.wildcard, s.byName = index{}, index{}, index{}
		if s.fill() {
			return
		}
		s.seed = maphash.MakeSeed()
	}
}

func (s *snapshot) fill() bool {
	hint := int(s.entities.len()) >> indexBits
	exact, wildcard := &indexEdit{x: &s.exact, hint: hint}, &indexEdit{x: &s.wildcard}
	byName := &indexEdit{x: &s.byName, hint: hint}
	for i := range s.snis.len() {
		r := s.snis.at(i)
		m := exact
		if r.wildcard {
			m = wildcard
		}
		if !m.put(maphash.Bytes(s.seed, s.bytes(r.name)), i) {
			return false // duplicates were refused, so this is a collision
		}
	}
	for i := range s.entities.len() {
		e := s.entities.at(i)
		if e.name.n > 0 && !byName.put(maphash.Bytes(s.seed, s.bytes(e.name)), i) {
			return false
		}
	}
	return true
}
