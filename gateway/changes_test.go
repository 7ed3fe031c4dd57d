package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"certops/fixtures"
)

// served describes what a snapshot serves, for comparing an incremental
// Apply with a full one: per entity its settings, SNIs and chains (bytes
// digested), and the entity each probe name selects.
func served(s *snapshot, probes []string) string {
	var lines []string
	for i := range s.entities.len() {
		rec := s.entities.at(i)
		if rec.name.n == 0 {
			continue
		}
		name := string(s.bytes(rec.name))
		if s.indexOf(name) != int32(i) {
			lines = append(lines, fmt.Sprintf("entity %s: not indexed", name))
		}
		var snis []string
		for k := range rec.nSNIs {
			r := s.snis.at(rec.sni + k)
			snis = append(snis, fmt.Sprintf("%v:%s", r.wildcard, s.bytes(r.name)))
		}
		slices.Sort(snis)
		line := fmt.Sprintf("entity %s client=%v default=%v tls=%x-%x pool=%v depth=%d snis=%v", name, rec.client, rec.isDefault,
			rec.minV, rec.maxV, rec.pool >= 0, rec.depth, snis)
		for n := range int(rec.nChains) {
			c := s.chain(rec, n)
			h := sha256.New()
			for m := range int(c.nCerts) {
				h.Write(s.cert(c, m))
			}
			h.Write(s.bytes(c.key))
			line += fmt.Sprintf(" chain=%x/%d/%d/%v", h.Sum(nil)[:6], c.keyForm, c.alg, c.pinned >= 0)
		}
		lines = append(lines, line)
	}
	slices.Sort(lines)
	for _, p := range probes {
		lines = append(lines, fmt.Sprintf("lookup %s = %s", p, s.entityName(s.lookup(p))))
	}
	lines = append(lines, fmt.Sprintf("live %d, default %s", s.live, s.entityName(s.fallback)))
	return strings.Join(lines, "\n")
}

// model is the Config an incremental Apply should end up serving.
type model map[string]Entity

func (m model) config() Config {
	var cfg Config
	for _, name := range slices.Sorted(maps.Keys(m)) {
		cfg.Entities = append(cfg.Entities, m[name])
	}
	return cfg
}

func (m model) change(changed []Entity, removed []string) model {
	next := maps.Clone(m)
	for _, name := range removed {
		delete(next, name)
	}
	for _, e := range changed {
		next[e.Name] = e
	}
	return next
}

// TestApplyChanges applies changes one step at a time and compares the
// result with a full Apply of the resulting Config; a refused change
// leaves the running snapshot as it was.
func TestApplyChanges(t *testing.T) {
	p := newPKI(t)
	ent := func(name string, snis ...string) Entity { return p.entity(t, name, snis...) }
	client := ent("up", "up.example.com")
	client.SNIs, client.Client = nil, true
	mtls := ent("m", "m.example.com")
	mtls.ClientCAs, mtls.ClientDepth = fixtures.Pool(p.clientRoot), 1
	probes := []string{"a.example.com", "b.example.com", "x.b.example.com", "c.example.com", "x.c.example.com",
		"d.example.com", "m.example.com", "other.test", "", "A.EXAMPLE.COM."}
	steps := []struct {
		name    string
		changed []Entity
		removed []string
		refused string // substring of the error; "" when accepted
	}{
		{name: "create exact", changed: []Entity{ent("a", "a.example.com")}},
		{name: "create wildcard and default", changed: []Entity{ent("b", "b.example.com", "*.b.example.com"), ent("d", "*")}},
		{name: "update certificate", changed: []Entity{ent("a", "a.example.com")}},
		{name: "exact becomes wildcard", changed: []Entity{ent("b", "*.b.example.com")}},
		{name: "rename keeps the SNIs", changed: []Entity{ent("a2", "a.example.com")}, removed: []string{"a"}},
		{name: "SNI moves between changed entities", changed: []Entity{ent("a2", "c.example.com"), ent("c", "a.example.com")}},
		{name: "default moves", changed: []Entity{ent("d", "d.example.com"), ent("c", "a.example.com", "*")}},
		{name: "mtls and client entities", changed: []Entity{mtls, client}},
		{name: "conflict with a running entity", changed: []Entity{ent("e", "e.example.com", "*.b.example.com")}, refused: `claimed by both "b" and "e"`},
		{name: "conflict with the running default", changed: []Entity{ent("e", "*")}, refused: `claimed by both "c" and "e"`},
		{name: "conflict within the change", changed: []Entity{ent("e", "e.example.com"), ent("f", "E.example.com")}, refused: "claimed by both"},
		{name: "one bad entity refuses all", changed: []Entity{ent("e", "e.example.com"), {Name: "f", SNIs: []string{"f.example.com"}}}, refused: "no certificate"},
		{name: "removed and changed", changed: []Entity{ent("a2", "c.example.com")}, removed: []string{"a2"}, refused: "both changed and removed"},
		{name: "remove unknown", removed: []string{"nope"}, refused: "removed but not configured"},
		{name: "name twice", changed: []Entity{ent("e", "e.example.com"), ent("e", "e2.example.com")}, refused: "name used twice"},
		{name: "remove the upstream client", removed: []string{"up"}, refused: "upstream client certificate"},
		{name: "remove", removed: []string{"b", "d"}},
		{name: "freed SNI taken", changed: []Entity{ent("e", "*.b.example.com", "d.example.com")}},
	}
	s := New(Options{UpstreamClientCert: "up"})
	full := New(Options{UpstreamClientCert: "up"})
	m := model{"up": client}
	if err := s.Apply(m.config()); err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		before := s.snap.Load()
		err := s.ApplyChanges(st.changed, st.removed)
		if st.refused != "" {
			if err == nil || !strings.Contains(err.Error(), st.refused) {
				t.Errorf("%s: ApplyChanges = %v, want an error with %q", st.name, err, st.refused)
			}
			if s.snap.Load() != before {
				t.Errorf("%s: refused change replaced the running snapshot", st.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: ApplyChanges = %v", st.name, err)
		}
		m = m.change(st.changed, st.removed)
		if err := full.Apply(m.config()); err != nil {
			t.Fatalf("%s: full Apply of the same config = %v", st.name, err)
		}
		if got, want := served(s.snap.Load(), probes), served(full.snap.Load(), probes); got != want {
			t.Errorf("%s: incremental snapshot serves\n%s\nwant (full Apply)\n%s", st.name, got, want)
		}
	}
}

// TestApplyChangesRandom compares random change sequences, conflicts
// included, with full Applies of the resulting Configs: both accept or
// both refuse, and accepted ones serve the same. It runs long enough for
// compactions.
func TestApplyChangesRandom(t *testing.T) {
	p := newPKI(t)
	var chains []tls.Certificate
	for i := range 6 {
		chains = append(chains, p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{fmt.Sprintf("c%d.test", i)}}).TLS(t))
	}
	names := []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"}
	snis := []string{"a.example.com", "b.example.com", "*.example.com", "*.b.example.com", "*", "c.example.org", "d.example.org"}
	probes := []string{"a.example.com", "b.example.com", "x.example.com", "x.b.example.com", "c.example.org", "d.example.org", "none.test", ""}
	rng := rand.New(rand.NewPCG(13, 1))
	s, full := New(Options{}), New(Options{})
	m := model{}
	steps := 400
	if testing.Short() {
		steps = 100
	}
	compactions := 0
	for step := range steps {
		var changed []Entity
		var removed []string
		for _, name := range names {
			switch r := rng.IntN(10); {
			case r < 2:
				e := Entity{Name: name, Chains: []tls.Certificate{chains[rng.IntN(len(chains))]}}
				for _, sni := range snis {
					if rng.IntN(6) == 0 {
						e.SNIs = append(e.SNIs, sni)
					}
				}
				changed = append(changed, e)
			case r < 3:
				if _, ok := m[name]; ok || rng.IntN(8) == 0 {
					removed = append(removed, name)
				}
			}
		}
		before := s.snap.Load()
		err := s.ApplyChanges(changed, removed)
		next := m.change(changed, removed)
		bad := false
		for _, name := range removed {
			_, ok := m[name]
			bad = bad || !ok
		}
		fullErr := full.Apply(next.config())
		if (err != nil) != (fullErr != nil || bad) {
			t.Fatalf("step %d: ApplyChanges = %v, full Apply = %v (removes unknown: %v)", step, err, fullErr, bad)
		}
		if err != nil {
			if s.snap.Load() != before {
				t.Fatalf("step %d: refused change replaced the running snapshot", step)
			}
			continue
		}
		m = next
		after := s.snap.Load()
		if after.arena.size < before.arena.size {
			compactions++ // only a compaction (a full build) gives bytes back
		}
		if got, want := served(after, probes), served(full.snap.Load(), probes); got != want {
			t.Fatalf("step %d: incremental snapshot serves\n%s\nwant (full Apply)\n%s", step, got, want)
		}
	}
	if compactions == 0 {
		t.Errorf("no compaction in %d steps", steps)
	}
}

// TestApplyChangesShares: a change of one entity among many copies no
// chunk of the others: their records, bytes and parsed entries are the
// running snapshot's own, and the arena does not grow past twice the live
// bytes however many changes are applied.
func TestApplyChangesShares(t *testing.T) {
	p := newPKI(t)
	chain := p.entity(t, "x", "*.example.com").Chains
	var cfg Config
	for i := range 2000 {
		name := fmt.Sprintf("e%04d", i)
		cfg.Entities = append(cfg.Entities, Entity{Name: name, SNIs: []string{name + ".example.com"}, Chains: chain})
	}
	s, addr := serve(t, Options{}, cfg)
	conn, err := handshake(addr, p.clientConfig("e0001.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	prev := s.snap.Load()
	cachedBefore := prev.cached(prev.indexOf("e0001"))
	rotated := p.entity(t, "e1999", "e1999.example.com")
	if err := s.ApplyChanges([]Entity{rotated}, nil); err != nil {
		t.Fatal(err)
	}
	next := s.snap.Load()
	copied := 0
	for k := range next.entities.chunks {
		if k < len(prev.entities.chunks) && &next.entities.chunks[k][0] != &prev.entities.chunks[k][0] {
			copied++
		}
	}
	if copied != 1 {
		t.Errorf("a change of one entity copied %d chunks of entity records, want 1", copied)
	}
	for k := range prev.arena.chunks {
		if &next.arena.chunks[k][0] != &prev.arena.chunks[k][0] {
			t.Errorf("arena chunk %d copied", k)
		}
	}
	if e := next.cached(next.indexOf("e0001")); e == nil || e != cachedBefore {
		t.Errorf("the parsed entry of an unchanged entity was not kept")
	}
	conn, err = handshake(addr, p.clientConfig("e1999.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].Raw; !bytes.Equal(got, rotated.Chains[0].Certificate[0]) {
		t.Error("the changed entity serves its old certificate")
	}
	conn.Close()

	live := prev.arena.size
	for range 3000 {
		if err := s.ApplyChanges([]Entity{rotated}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.snap.Load().arena.size; got > 3*live {
		t.Errorf("arena holds %d bytes after 3000 changes of one entity, live %d: not compacted", got, live)
	}
	if got := s.snap.Load().live; got != 2000 {
		t.Errorf("live = %d, want 2000", got)
	}
}

// TestApplyChangesPolicy: an entity changed with another client CA gets a
// new ticket policy, one changed with the same keeps it.
func TestApplyChangesPolicy(t *testing.T) {
	p := newPKI(t)
	e := p.entity(t, "m", "m.example.com")
	e.ClientCAs = fixtures.Pool(p.clientRoot)
	s := New(Options{})
	if err := s.Apply(Config{Entities: []Entity{e}}); err != nil {
		t.Fatal(err)
	}
	policy := func() uint32 { snap := s.snap.Load(); return snap.entities.at(uint32(snap.indexOf("m"))).policy }
	first := policy()
	e.ClientCAs = fixtures.Pool(p.clientRoot) // equal pool, another pointer
	if err := s.ApplyChanges([]Entity{e}, nil); err != nil {
		t.Fatal(err)
	}
	if got := policy(); got != first {
		t.Errorf("policy %d after a change with the same CA, want %d", got, first)
	}
	e.ClientCAs = fixtures.Pool(fixtures.NewRootCA(t, "other"))
	if err := s.ApplyChanges([]Entity{e}, nil); err != nil {
		t.Fatal(err)
	}
	if got := policy(); got == first {
		t.Errorf("policy %d kept after a change of client CA", got)
	}
}

// TestLookupAfterChangesDoesNotAllocate: lookups in a snapshot built by
// ApplyChanges allocate nothing, hits and misses alike.
func TestLookupAfterChangesDoesNotAllocate(t *testing.T) {
	p := newPKI(t)
	s := New(Options{})
	if err := s.ApplyChanges([]Entity{p.entity(t, "a", "a.example.com", "*.w.example.com")}, nil); err != nil {
		t.Fatal(err)
	}
	snap := s.snap.Load()
	for _, name := range []string{"a.example.com", "x.w.example.com", "miss.example.com"} {
		if n := testing.AllocsPerRun(100, func() { snap.lookup(name) }); n != 0 {
			t.Errorf("lookup(%q) allocates %v times", name, n)
		}
	}
}
