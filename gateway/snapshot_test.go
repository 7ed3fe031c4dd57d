package gateway

import (
	"bytes"
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"certops/fixtures"
)

func TestVersionBounds(t *testing.T) {
	p := newPKI(t)
	only13 := p.entity(t, "t13", "t13.example.com")
	only13.MinVersion = tls.VersionTLS13
	only12 := p.entity(t, "t12", "t12.example.com")
	only12.MaxVersion = tls.VersionTLS12
	var res results
	_, addr := serve(t, Options{OnHandshake: res.record}, Config{Entities: []Entity{only13, only12, p.entity(t, "any", "any.example.com")}})
	tests := []struct {
		sni      string
		min, max uint16
		want     uint16 // 0: refused
	}{
		{"t13.example.com", 0, 0, tls.VersionTLS13},
		{"t13.example.com", 0, tls.VersionTLS12, 0},
		{"t12.example.com", 0, 0, tls.VersionTLS12},
		{"t12.example.com", tls.VersionTLS13, 0, 0},
		{"any.example.com", 0, 0, tls.VersionTLS13},
		{"any.example.com", 0, tls.VersionTLS12, tls.VersionTLS12},
		{"any.example.com", tls.VersionTLS10, tls.VersionTLS11, 0}, // global minimum TLS 1.2
	}
	for _, tt := range tests {
		name := tt.sni + " client " + tls.VersionName(tt.min) + "-" + tls.VersionName(tt.max)
		t.Run(name, func(t *testing.T) {
			cfg := p.clientConfig(tt.sni)
			cfg.MinVersion, cfg.MaxVersion = tt.min, tt.max
			conn, err := handshake(addr, cfg)
			if tt.want == 0 {
				if err == nil {
					conn.Close()
					t.Fatalf("handshake succeeded with %s, want refused", tls.VersionName(conn.ConnectionState().Version))
				}
				if !isAlert(err, "protocol version not supported") {
					t.Errorf("handshake = %v, want the protocol_version alert", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().Version; got != tt.want {
				t.Errorf("negotiated %s, want %s", tls.VersionName(got), tls.VersionName(tt.want))
			}
		})
	}
	if got := res.wait(t, len(tests)); got[HandshakeProtocol] != 3 {
		t.Errorf("OnHandshake results = %v, want 3 protocol", got)
	}
}

func TestApplyRefusesInvalidConfig(t *testing.T) {
	p := newPKI(t)
	good := p.entity(t, "good", "good.example.com")
	mismatched := p.entity(t, "mismatched", "mm.example.com")
	leaf := p.root.Server(t, "mm.example.com")
	mismatched.Chains = []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Mismatched(t).Key}}
	with := func(mod func(*Entity)) Entity {
		e := p.entity(t, "e", "e.example.com")
		mod(&e)
		return e
	}
	tests := []struct {
		name     string
		opts     Options
		entities []Entity
		want     []string
	}{
		{"duplicate SNI across entities", Options{}, []Entity{good, p.entity(t, "other", "GOOD.example.com.")},
			[]string{`sni "good.example.com": claimed by both "good" and "other"`}},
		{"duplicate SNI in one entity", Options{}, []Entity{p.entity(t, "twice", "a.example.com", "A.example.com")},
			[]string{`entity "twice": sni "a.example.com" listed twice`}},
		{"two defaults", Options{}, []Entity{p.entity(t, "d1", "*"), p.entity(t, "d2", "*")},
			[]string{`sni "*": claimed by both "d1" and "d2"`}},
		{"name used twice", Options{}, []Entity{good, good}, []string{`entity "good": name used twice`}},
		{"no name", Options{}, []Entity{with(func(e *Entity) { e.Name = "" })}, []string{"entity 0: no name"}},
		{"no chains", Options{}, []Entity{with(func(e *Entity) { e.Chains = nil })}, []string{`entity "e": no certificate`}},
		{"key does not match", Options{}, []Entity{mismatched}, []string{"private key does not match the certificate"}},
		{"TLS 1.1", Options{}, []Entity{with(func(e *Entity) { e.MinVersion = tls.VersionTLS11 })}, []string{"TLS version 0x0302 not supported"}},
		{"min above max", Options{}, []Entity{with(func(e *Entity) { e.MinVersion, e.MaxVersion = tls.VersionTLS13, tls.VersionTLS12 })},
			[]string{"minimum TLS version TLS 1.3 above maximum TLS 1.2"}},
		{"bad SNI", Options{}, []Entity{with(func(e *Entity) { e.SNIs = []string{"a.*.example.com"} })}, []string{"whole leftmost label"}},
		// The schema refuses these; the gateway shares its rule (package sni).
		{"wildcard over a TLD", Options{}, []Entity{with(func(e *Entity) { e.SNIs = []string{"*.com"} })}, []string{`sni "*.com"`, `not "*.com"`}},
		{"IP literal as SNI", Options{}, []Entity{with(func(e *Entity) { e.SNIs = []string{"10.0.0.1"} })}, []string{"IP address"}},
		{"client entity with SNIs", Options{}, []Entity{with(func(e *Entity) { e.Client = true })}, []string{"client certificate entity has no SNIs"}},
		{"negative depth", Options{}, []Entity{with(func(e *Entity) { e.ClientCAs, e.ClientDepth = fixtures.Pool(p.clientRoot), -1 })},
			[]string{"depth -1 outside 0..16"}},
		{"upstream client entity missing", Options{UpstreamClientCert: "up"}, []Entity{good}, []string{`entity "up": named as the upstream client certificate`}},
		{"every problem reported", Options{}, []Entity{good, good, mismatched},
			[]string{"name used twice", "private key does not match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.opts)
			running := Config{Entities: []Entity{p.entity(t, "running", "running.example.com")}}
			if tt.opts.UpstreamClientCert != "" {
				running.Entities = append(running.Entities, Entity{Name: tt.opts.UpstreamClientCert, Client: true, Chains: good.Chains})
			}
			if err := s.Apply(running); err != nil {
				t.Fatalf("Apply(running): %v", err)
			}
			before := s.snap.Load()
			err := s.Apply(Config{Entities: tt.entities})
			if err == nil {
				t.Fatalf("Apply(%s) = nil, want an error", tt.name)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Apply(%s) = %q, want it to contain %q", tt.name, err, w)
				}
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("Apply(%s) error contains key material", tt.name)
			}
			if s.snap.Load() != before {
				t.Errorf("Apply(%s) replaced the running snapshot", tt.name)
			}
		})
	}
}

// TestInvalidApplyKeepsServing checks from a client's side that a refused
// Config changes nothing.
func TestInvalidApplyKeepsServing(t *testing.T) {
	p := newPKI(t)
	s, addr := serve(t, Options{}, Config{Entities: []Entity{p.entity(t, "a", "a.example.com")}})
	bad := p.entity(t, "a", "a.example.com", "new.example.com")
	bad.Chains = nil
	if err := s.Apply(Config{Entities: []Entity{bad}}); err == nil {
		t.Fatal("Apply(no chains) = nil, want an error")
	}
	conn, err := handshake(addr, p.clientConfig("a.example.com"))
	if err != nil {
		t.Fatalf("handshake after a refused Apply: %v", err)
	}
	conn.Close()
	if _, err := handshake(addr, p.clientConfig("new.example.com")); err == nil {
		t.Errorf("handshake(new.example.com) succeeded after a refused Apply, want unrecognized_name")
	}
}

// TestReapplyReusesKeys applies the same entities twice, then a rotated
// chain: the unchanged entity keeps serving from the key bytes encoded by
// the first Apply, and the rotated one serves its new certificate.
func TestReapplyReusesKeys(t *testing.T) {
	p := newPKI(t)
	a, b := p.entity(t, "a", "a.example.com"), p.entity(t, "b", "b.example.com")
	s, addr := serve(t, Options{}, Config{Entities: []Entity{a, b}})
	first := s.snap.Load()
	rotated := p.entity(t, "b", "b.example.com")
	if err := s.Apply(Config{Entities: []Entity{a, rotated}}); err != nil {
		t.Fatalf("Apply(rotated) = %v", err)
	}
	second := s.snap.Load()
	keyOf := func(snap *snapshot, name string) []byte {
		e := snap.entities.at(uint32(snap.indexOf(name)))
		return snap.bytes(snap.chain(e, 0).key)
	}
	if !bytes.Equal(keyOf(first, "a"), keyOf(second, "a")) {
		t.Errorf("entity a: key bytes changed across an Apply that did not change it")
	}
	for _, tt := range []struct {
		sni  string
		want []byte
	}{
		{"a.example.com", a.Chains[0].Certificate[0]},
		{"b.example.com", rotated.Chains[0].Certificate[0]},
	} {
		conn, err := handshake(addr, p.clientConfig(tt.sni))
		if err != nil {
			t.Fatalf("handshake %s after reapply: %v", tt.sni, err)
		}
		got := conn.ConnectionState().PeerCertificates[0].Raw
		conn.Close()
		if !bytes.Equal(got, tt.want) {
			t.Errorf("%s served a certificate other than the applied one", tt.sni)
		}
	}
}

// TestApplyCarriesParsedKeys: an entity parsed for a handshake keeps its
// parsed key (RSA; an ECDSA key is decoded again) across an Apply that
// does not change it, its certificates
// are taken from the new snapshot's arena (so the old arena can be freed),
// and an entity whose chain changed is parsed anew.
func TestApplyCarriesParsedKeys(t *testing.T) {
	p := newPKI(t)
	a := Entity{Name: "a", SNIs: []string{"a.example.com"}, Chains: []tls.Certificate{
		p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"a.example.com"}, Key: fixtures.RSA}).TLS(t)}}
	b, c := p.entity(t, "b", "b.example.com"), p.entity(t, "c", "c.example.com")
	s, addr := serve(t, Options{}, Config{Entities: []Entity{a, b, c}})
	for _, sni := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		conn, err := handshake(addr, p.clientConfig(sni))
		if err != nil {
			t.Fatalf("handshake %s: %v", sni, err)
		}
		conn.Close()
	}
	first := s.snap.Load()
	cached := func(snap *snapshot, name string) *entry {
		return snap.cached(snap.indexOf(name))
	}
	oldA, oldC := cached(first, "a"), cached(first, "c")
	if oldA == nil || cached(first, "b") == nil || oldC == nil {
		t.Fatal("entities not cached after their handshakes")
	}

	if err := s.Apply(Config{Entities: []Entity{a, p.entity(t, "b", "b.example.com"), c}}); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	second := s.snap.Load()
	newA, newC := cached(second, "a"), cached(second, "c")
	if newA == nil || newC == nil {
		t.Fatal("unchanged entities a and c were not carried into the new snapshot's cache")
	}
	if newA.chains[0].PrivateKey != oldA.chains[0].PrivateKey {
		t.Error("entity a: RSA key parsed again, want the parsed key carried over")
	}
	// An ECDSA key stored raw is decoded again (~0.2 µs) into the new
	// entry: the old key is part of the old entry, which holds the old
	// arena.
	if !oldC.ownKey || !newC.ownKey || newC.chains[0].PrivateKey == oldC.chains[0].PrivateKey {
		t.Errorf("entity c: own key %v, %v, the same key %v; want its ECDSA key in each entry's own allocation",
			oldC.ownKey, newC.ownKey, newC.chains[0].PrivateKey == oldC.chains[0].PrivateKey)
	}
	der := newA.chains[0].Certificate[0]
	if &der[0] != &second.cert(second.chain(second.entities.at(uint32(newA.index)), 0), 0)[0] {
		t.Error("entity a: carried certificate does not refer to the new snapshot's arena")
	}
	if cached(second, "b") != nil {
		t.Error("entity b changed its chain but was carried over")
	}
	conn, err := handshake(addr, p.clientConfig("a.example.com"))
	if err != nil {
		t.Fatalf("handshake a after Apply: %v", err)
	}
	conn.Close()
}

// TestApplyWithoutKeys: a chain whose leaf the running configuration
// serves may come without its key and keeps the running one; a chain with
// a new leaf, or for another entity, may not.
func TestApplyWithoutKeys(t *testing.T) {
	p := newPKI(t)
	a, b := p.entity(t, "a", "a.example.com"), p.entity(t, "b", "b.example.com")
	s, addr := serve(t, Options{}, Config{Entities: []Entity{a, b}})
	keyless := func(e Entity) Entity {
		e.Chains = slices.Clone(e.Chains)
		for i := range e.Chains {
			e.Chains[i].PrivateKey, e.Chains[i].Leaf = nil, nil
		}
		return e
	}
	if err := s.Apply(Config{Entities: []Entity{keyless(a), b}}); err != nil {
		t.Fatalf("Apply(a without its key) = %v", err)
	}
	conn, err := handshake(addr, p.clientConfig("a.example.com"))
	if err != nil {
		t.Fatalf("handshake a after Apply without its key: %v", err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].Raw; !bytes.Equal(got, a.Chains[0].Certificate[0]) {
		t.Errorf("a served a certificate other than the applied one")
	}
	conn.Close()

	renamed := keyless(a)
	renamed.Name, renamed.SNIs = "c", []string{"c.example.com"}
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"new leaf without a key", Config{Entities: []Entity{a, keyless(p.entity(t, "b", "b.example.com"))}}},
		{"running leaf under another entity", Config{Entities: []Entity{a, b, renamed}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Apply(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), "private key missing") {
				t.Errorf("Apply = %v, want private key missing", err)
			}
		})
	}
}

// TestEntryAllocs: a cache miss of an entity with one ECDSA chain
// allocates its entry (with its config, chain, key and ticket tag) and the
// two session closures of its config, whatever the chain's length.
func TestEntryAllocs(t *testing.T) {
	p := newPKI(t)
	inter := p.root.Intermediate(t, "Entry Allocs Intermediate")
	leaf := inter.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"i.example.com"}}).TLS(t)
	cfg := Config{Entities: []Entity{p.entity(t, "a", "a.example.com"),
		{Name: "i", SNIs: []string{"i.example.com"}, Chains: []tls.Certificate{leaf}}}}
	s := New(Options{})
	if err := s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	snap := s.snap.Load()
	for _, name := range []string{"a", "i"} {
		i := snap.indexOf(name)
		var e *entry
		n := testing.AllocsPerRun(10, func() {
			var err error
			if e, err = snap.build(i, nil); err != nil {
				t.Fatal(err)
			}
		})
		if n != 3 {
			t.Errorf("a miss of %s (%d certificates) allocates %v times, want 3", name, len(e.chains[0].Certificate), n)
		}
		if e.name != name || !e.ownKey || len(e.chains) != 1 || e.chains[0].PrivateKey == nil {
			t.Errorf("entry of %s: name %q, own key %v, %d chains", name, e.name, e.ownKey, len(e.chains))
		}
	}
}
