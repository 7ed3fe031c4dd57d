package gateway

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"certops/fixtures"
)

// stickyCache offers the last session it stored for every server name, as
// a client coalescing connections (or an attacker) might.
type stickyCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *stickyCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *stickyCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs != nil {
		c.cs = cs
	}
}

func TestSessionResumption(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			testSessionResumption(t, version)
		})
	}
}

func testSessionResumption(t *testing.T, version uint16) {
	p := newPKI(t)
	newRoot := fixtures.NewRootCA(t, "rotated client root")
	config := func(mtlsCA *fixtures.CA) Config {
		return Config{Entities: []Entity{
			p.entity(t, "a", "a.example.com"),
			p.entity(t, "b", "b.example.com"),
			mtlsEntity(t, p, "m", "m.example.com", 0, mtlsCA),
		}}
	}
	s, addr := serve(t, Options{}, config(p.clientRoot))
	alice := p.clientRoot.Client(t, "alice").TLS(t)

	// connect does a handshake and one request with cache and reports
	// whether the session resumed and the request succeeded.
	connect := func(sni string, cache tls.ClientSessionCache, cert *tls.Certificate) (resumed, ok bool) {
		t.Helper()
		cfg := p.clientConfig(sni)
		cfg.MaxVersion, cfg.ClientSessionCache = version, cache
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		conn, err := handshake(addr, cfg)
		if err != nil {
			return false, false
		}
		defer conn.Close()
		status, _, err := request(conn, sni)
		return conn.ConnectionState().DidResume, err == nil && status == 200
	}
	apply := func(cfg Config) {
		t.Helper()
		if err := s.Apply(cfg); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}

	cache := &stickyCache{}
	steps := []struct {
		name        string
		do          func()
		sni         string
		cert        *tls.Certificate
		wantResumed bool
		wantOK      bool
	}{
		{"first visit to a", nil, "a.example.com", nil, false, true},
		{"a resumes on a", nil, "a.example.com", nil, true, true},
		{"a's ticket does not resume on b", nil, "b.example.com", nil, false, true},
		{"b's ticket resumes on b", nil, "b.example.com", nil, true, true},
		{"b's ticket without a certificate never resumes into m", nil, "m.example.com", nil, false, false},
		{"b's ticket with a certificate gets a full handshake on m", nil, "m.example.com", &alice, false, true},
		{"m resumes on m", nil, "m.example.com", &alice, true, true},
		{"m resumes after an Apply with fresh certificates and the same CA", func() { apply(config(p.clientRoot)) }, "m.example.com", &alice, true, true},
		{"m does not resume after its client CA changed", func() { apply(config(newRoot)) }, "m.example.com", &alice, false, false},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		resumed, ok := connect(st.sni, cache, st.cert)
		if resumed != st.wantResumed || ok != st.wantOK {
			t.Errorf("%s: resumed %v, request ok %v; want %v, %v", st.name, resumed, ok, st.wantResumed, st.wantOK)
		}
	}

	// Resumption survives rotations of the entity's certificate.
	cache = &stickyCache{}
	connect("a.example.com", cache, nil)
	apply(config(newRoot))
	if resumed, ok := connect("a.example.com", cache, nil); !resumed || !ok {
		t.Errorf("a after Apply: resumed %v, ok %v; want true, true", resumed, ok)
	}
}

func TestTicketKeyRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{TicketKeyRotation: time.Hour})
		first := s.currentTicketKeys()
		if len(first) != 1 {
			t.Fatalf("New: %d ticket keys, want 1", len(first))
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.rotateTicketKeysEvery(ctx, time.Hour)
		}()
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		keys := s.currentTicketKeys()
		if len(keys) != 2 || keys[1] != first[0] || keys[0] == first[0] {
			t.Errorf("after one period: %d keys, previous kept %v; want 2 keys, the first one second", len(keys), len(keys) > 1 && keys[1] == first[0])
		}
		time.Sleep(5 * time.Hour)
		synctest.Wait()
		if keys := s.currentTicketKeys(); len(keys) != 7 {
			t.Errorf("after six periods: %d keys, want 7", len(keys))
		}
		// A week of hourly keys, and the current one: tickets are
		// accepted for the 7-day lifetime hint crypto/tls sends.
		time.Sleep(TicketLifetime)
		synctest.Wait()
		if keys, want := s.currentTicketKeys(), 1+int(TicketLifetime/time.Hour); len(keys) != want {
			t.Errorf("after a week and six periods: %d keys, want %d", len(keys), want)
		}
		cancel()
		<-done
	})
}

// currentTicketKeys returns a copy of the session-ticket keys.
func (s *Server) currentTicketKeys() [][32]byte {
	s.ticketMu.Lock()
	defer s.ticketMu.Unlock()
	return append([][32]byte(nil), s.ticketKeys...)
}

// TestTicketsSurviveKeyRotation: a ticket issued under the previous key
// still resumes after one rotation.
func TestTicketsSurviveKeyRotation(t *testing.T) {
	p := newPKI(t)
	s, addr := serve(t, Options{}, Config{Entities: []Entity{p.entity(t, "a", "a.example.com")}})
	cache := tls.NewLRUClientSessionCache(4)
	visit := func() bool {
		t.Helper()
		cfg := p.clientConfig("a.example.com")
		cfg.ClientSessionCache = cache
		conn, err := handshake(addr, cfg)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		get(t, conn, "a.example.com")
		return conn.ConnectionState().DidResume
	}
	visit()
	s.rotateTicketKeys()
	if !visit() {
		t.Errorf("after one key rotation: not resumed, want resumed with the previous key")
	}
	kept := ticketKeysKept(DefaultTicketKeyRotation)
	for range kept - 2 {
		s.rotateTicketKeys()
	}
	if !visit() {
		t.Errorf("after %d key rotations (%v): not resumed, want resumed within the ticket lifetime %v", kept-1, time.Duration(kept-1)*DefaultTicketKeyRotation, TicketLifetime)
	}
	for range kept {
		s.rotateTicketKeys()
	}
	if visit() {
		t.Errorf("after %d more key rotations: resumed, want a full handshake", kept)
	}
}

// TestTicketPolicyVersion: the version in the ticket tag changes with
// every change of the client certificate policy and never returns to an
// earlier value, so no ticket outlives the policy it was issued under.
func TestTicketPolicyVersion(t *testing.T) {
	p := newPKI(t)
	other := fixtures.NewRootCA(t, "other client root")
	s := New(Options{})
	base := p.entity(t, "m", "m.example.com")
	steps := []struct {
		name    string
		mod     func(*Entity)
		changed bool
	}{
		{"mTLS with the client root", func(e *Entity) { e.ClientCAs = fixtures.Pool(p.clientRoot) }, true},
		{"same CA in a new pool", func(e *Entity) { e.ClientCAs = fixtures.Pool(p.clientRoot) }, false},
		{"depth 2", func(e *Entity) { e.ClientCAs, e.ClientDepth = fixtures.Pool(p.clientRoot), 2 }, true},
		{"another CA", func(e *Entity) { e.ClientCAs, e.ClientDepth = fixtures.Pool(other), 2 }, true},
		{"no mTLS", func(e *Entity) {}, true},
		{"no mTLS again", func(e *Entity) {}, false},
		{"back to the first policy", func(e *Entity) { e.ClientCAs = fixtures.Pool(p.clientRoot) }, true},
	}
	seen := map[uint32]bool{}
	var last uint32
	for i, st := range steps {
		e := base
		st.mod(&e)
		if err := s.Apply(Config{Entities: []Entity{e}}); err != nil {
			t.Fatalf("%s: Apply: %v", st.name, err)
		}
		got := s.snap.Load().entities.at(0).policy
		if i > 0 && (got != last) != st.changed {
			t.Errorf("%s: policy %d after %d, want changed %v", st.name, got, last, st.changed)
		}
		if st.changed && seen[got] {
			t.Errorf("%s: policy %d used before", st.name, got)
		}
		seen[got], last = true, got
	}
}

// TestSharedTicketKeys: two servers given the same keys (as a fleet's
// nodes are) resume each other's sessions, each entity only its own, and
// keep accepting a ticket while its key is among the previous ones.
func TestSharedTicketKeys(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			testSharedTicketKeys(t, version)
		})
	}
}

func testSharedTicketKeys(t *testing.T, version uint16) {
	p := newPKI(t)
	cfg := Config{Entities: []Entity{p.entity(t, "a", "a.example.com"), p.entity(t, "b", "b.example.com")}}
	// The same entities, as two nodes that applied the same manifest have.
	s1, addr1 := serve(t, Options{}, cfg)
	s2, addr2 := serve(t, Options{}, cfg)
	key := func(b byte) [32]byte { var k [32]byte; k[0] = b; return k }
	setKeys := func(keys ...[32]byte) {
		t.Helper()
		for _, s := range []*Server{s1, s2} {
			if err := s.SetTicketKeys(keys); err != nil {
				t.Fatalf("SetTicketKeys: %v", err)
			}
		}
	}
	visit := func(addr, sni string, cache tls.ClientSessionCache) bool {
		t.Helper()
		c := p.clientConfig(sni)
		c.MaxVersion, c.ClientSessionCache = version, cache
		conn, err := handshake(addr, c)
		if err != nil {
			t.Fatalf("handshake %s on %s: %v", sni, addr, err)
		}
		defer conn.Close()
		get(t, conn, sni)
		return conn.ConnectionState().DidResume
	}

	setKeys(key(1))
	cache := &stickyCache{}
	steps := []struct {
		name        string
		do          func()
		addr, sni   string
		wantResumed bool
	}{
		{"first visit to a on node 1", nil, addr1, "a.example.com", false},
		{"node 1's ticket for a resumes on node 2", nil, addr2, "a.example.com", true},
		{"node 2's ticket for a resumes on node 1", nil, addr1, "a.example.com", true},
		{"a's ticket does not resume b on node 2", nil, addr2, "b.example.com", false},
		{"b's ticket from node 2 resumes b on node 1", nil, addr1, "b.example.com", true},
		{"after a rotation, the previous key opens b's ticket on node 2", func() { setKeys(key(2), key(1)) }, addr2, "b.example.com", true},
		{"and the ticket issued under the new key resumes on node 1", nil, addr1, "b.example.com", true},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		if got := visit(st.addr, st.sni, cache); got != st.wantResumed {
			t.Errorf("%s: resumed %v, want %v", st.name, got, st.wantResumed)
		}
	}

	// A ticket lives as long as its key is among those given: the current
	// and two previous ones of a fleet.
	cache = &stickyCache{}
	setKeys(key(3), key(2), key(1))
	visit(addr1, "a.example.com", cache) // issued under key 3
	setKeys(key(4), key(3), key(2))
	if !visit(addr2, "a.example.com", &stickyCache{cs: cache.cs}) {
		t.Errorf("key 3 one rotation back: not resumed, want resumed")
	}
	setKeys(key(5), key(4), key(3))
	if !visit(addr2, "a.example.com", &stickyCache{cs: cache.cs}) {
		t.Errorf("key 3 two rotations back: not resumed, want resumed")
	}
	setKeys(key(6), key(5), key(4))
	if visit(addr1, "a.example.com", &stickyCache{cs: cache.cs}) {
		t.Errorf("key 3 three rotations back (dropped): resumed, want a full handshake")
	}
}

// TestSetTicketKeysStopsRotation: once keys come from outside, the
// server's own rotation leaves them alone.
func TestSetTicketKeysStopsRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{TicketKeyRotation: time.Hour})
		shared := [][32]byte{{1}, {2}}
		if err := s.SetTicketKeys(shared); err != nil {
			t.Fatalf("SetTicketKeys: %v", err)
		}
		shared[0][0] = 9 // the server keeps its own copy
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.rotateTicketKeysEvery(ctx, time.Hour)
		}()
		time.Sleep(3*time.Hour + time.Second)
		synctest.Wait()
		if got := s.currentTicketKeys(); len(got) != 2 || got[0] != [32]byte{1} || got[1] != [32]byte{2} {
			t.Errorf("after three periods: keys %x, want the two given", got)
		}
		cancel()
		<-done
	})
	s := New(Options{})
	for _, n := range []int{0, MaxSharedTicketKeys + 1} {
		before := s.currentTicketKeys()
		if err := s.SetTicketKeys(make([][32]byte, n)); err == nil {
			t.Errorf("SetTicketKeys(%d keys) = nil, want an error", n)
		}
		if got := s.currentTicketKeys(); len(got) != len(before) || got[0] != before[0] {
			t.Errorf("SetTicketKeys(%d keys) changed the keys", n)
		}
	}
}
