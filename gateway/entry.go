package gateway

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"unsafe"
)

// entry is the parsed form of one entity, ready to serve: built from the
// snapshot's compact store on first use and cached (see [snapshot]). It is
// immutable once built.
type entry struct {
	index  int32
	name   string
	client bool
	mtls   bool
	// ownKey is true when the key of chains[0] is part of the entry's
	// allocation (entryAlloc.key): carried into another snapshot's entry,
	// it would keep this one, and this snapshot's arena, alive.
	ownKey bool
	pool   *x509.CertPool // client CAs when mtls
	depth  int            // bound on intermediates of a client certificate
	chains []tls.Certificate
	// ticketTag binds session tickets to this entity and its client
	// certificate policy (see wrapSession).
	ticketTag []byte
	config    *tls.Config // returned by GetConfigForClient
	// used is set by a cache hit and cleared by an eviction that spared
	// the entry (snapshot.put): the cache's second chance.
	used atomic.Bool
}

// use marks e used, writing only when it was not: hits on a hot entry
// from every core would otherwise write its cache line each time.
func (e *entry) use() {
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// entryAlloc is an entry with what most entries need, in one allocation:
// its tls.Config, its ticket tag (which holds its name), and for an entity
// with one chain, that chain and its certificates' slices; entryAllocEC
// adds the chain's ECDSA key. A cache miss of such an entity allocates
// one of them, the two session closures and what crypto/ecdsa keeps of
// the key (issue 13: every collection marks the parsed cache's objects,
// and a miss was ~15 of them).
type entryAlloc struct {
	e      entry
	config tls.Config
	chain  [1]tls.Certificate
	certs  [2][]byte
	tag    [64]byte
}

type entryAllocEC struct {
	entryAlloc
	key ecKey
}

// nextProtos are the ALPN protocols of every entry's tls.Config, shared
// (crypto/tls only reads them): one allocation less per cache miss.
var nextProtos = []string{"h2", "http/1.1"}

// build parses entity i. keys, when non-nil, holds the entity's private
// keys already parsed (carried over from the previous snapshot, in chain
// order; nil for a key to decode), so that only its certificates are
// parsed here.
func (s *snapshot) build(i int32, keys []crypto.PrivateKey) (*entry, error) {
	rec := s.entities.at(uint32(i))
	var a *entryAlloc
	var ecKey *ecKey // where chains[0]'s key is built, if it is stored raw
	if rec.nChains == 1 && (keys == nil || keys[0] == nil) && s.chain(rec, 0).rawEC() {
		ae := new(entryAllocEC)
		a, ecKey = &ae.entryAlloc, &ae.key
	} else {
		a = new(entryAlloc)
	}
	e := &a.e
	e.index, e.client, e.mtls, e.depth = i, rec.client, rec.pool >= 0, int(rec.depth)

	// The tag holds the name: the name is a string of the tag's bytes,
	// which are never modified once built.
	e.ticketTag = a.tag[:0]
	if n := len(ticketTagPrefix) + int(rec.name.n) + 1 + 10; n > len(a.tag) {
		e.ticketTag = make([]byte, 0, n)
	}
	e.ticketTag = append(append(e.ticketTag, ticketTagPrefix...), s.bytes(rec.name)...)
	if rec.name.n > 0 {
		e.name = unsafe.String(&e.ticketTag[len(ticketTagPrefix)], rec.name.n)
	}
	e.ticketTag = append(e.ticketTag, 0)
	e.ticketTag = strconv.AppendUint(e.ticketTag, uint64(rec.policy), 10)

	var certs [][]byte
	if rec.nChains == 1 {
		e.chains, certs = a.chain[:], a.certs[:]
	} else {
		e.chains = make([]tls.Certificate, rec.nChains)
	}
	for n := range e.chains {
		var key crypto.PrivateKey
		if keys != nil {
			key = keys[n]
		}
		c, own, err := s.parseChain(s.chain(rec, n), key, rec.nChains > 1 || rec.client, certs, ecKey)
		if err != nil {
			// Apply marshalled these bytes itself, so this is a bug.
			return nil, fmt.Errorf("gateway: entity %q: chain %d: %w", e.name, n, err)
		}
		e.chains[n], e.ownKey = c, own
	}

	srv := s.srv
	c := &a.config
	c.MinVersion, c.MaxVersion = rec.minV, rec.maxV
	c.NextProtos = nextProtos
	c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) { return srv.wrapSession(e, cs, ss) }
	c.UnwrapSession = func(id []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		return srv.unwrapSession(e, id, cs)
	}
	c.CipherSuites = srv.suites // TLS 1.2 only; see DefaultTLS12CipherSuites
	if len(e.chains) == 1 {
		c.Certificates = e.chains
	} else {
		c.GetCertificate = e.certificate
	}
	if e.mtls {
		e.pool = s.pools[rec.pool]
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = e.pool
		c.VerifyConnection = e.verifyConnection
	}
	e.config = c
	return e, nil
}

// parseChain rebuilds a tls.Certificate from the arena: the DER chain as
// stored, the key from its stored form (see keyForm) unless key, the
// chain's private key already parsed, is non-nil. With withLeaf the leaf
// is parsed too: crypto/tls needs it to choose among an entity's chains
// (ClientHelloInfo.SupportsCertificate, and for an upstream client
// certificate CertificateRequestInfo.SupportsCertificate), and never for
// a single server chain, so the entries of single-chain entities, most of
// them, neither parse a certificate on a cache miss nor keep a parsed one
// (~3 KB of pointer-dense heap each). The result refers to this
// snapshot's arena only, to certs when it has room for the chain's
// certificates, and to k when it is not nil and the key is decoded
// there (own is true then).
func (s *snapshot) parseChain(rec *chainRec, key crypto.PrivateKey, withLeaf bool, certs [][]byte, k *ecKey) (c tls.Certificate, own bool, err error) {
	if rec.pinned >= 0 {
		return s.pinned[rec.pinned], false, nil
	}
	if int(rec.nCerts) <= len(certs) {
		c.Certificate = certs[:rec.nCerts:rec.nCerts]
	} else {
		c.Certificate = make([][]byte, rec.nCerts)
	}
	for n := range c.Certificate {
		c.Certificate[n] = s.cert(rec, n)
	}
	if withLeaf {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return c, false, err
		}
		c.Leaf = leaf
	}
	if key == nil {
		if key, own, err = decodeKey(rec.keyForm, s.bytes(rec.key), k); err != nil {
			return c, false, err
		}
	}
	c.PrivateKey = key
	return c, own, nil
}

// certificate serves the first chain the client supports (ECDSA and
// Ed25519 chains come first). When none fits it serves the first chain
// anyway, so crypto/tls fails the handshake with a handshake_failure alert
// naming the missing signature algorithm, and the handshake is counted as
// a protocol failure.
func (e *entry) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	for n := range e.chains {
		if hello.SupportsCertificate(&e.chains[n]) == nil {
			return &e.chains[n], nil
		}
	}
	if tc, ok := hello.Conn.(*trackedConn); ok {
		tc.noFit = true
	}
	return &e.chains[0], nil
}

// ErrClientCertificate is wrapped by handshake errors of connections whose
// client certificate the gateway refused.
var ErrClientCertificate = errors.New("client certificate rejected")

// verifyConnection enforces the entity's client certificate policy on
// every handshake, resumed ones included: crypto/tls verified a fresh
// certificate against this entry's pool already, but a resumed session
// carries the chains verified when it began, possibly under another client
// CA, so its certificate is verified again against the current pool (Go
// 1.26 checks the stored chains' roots too; this does not depend on it,
// and adds the depth bound). The chain must have at most depth
// intermediates.
func (e *entry) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("gateway: entity %q: %w: none presented", e.name, ErrClientCertificate)
	}
	chains := cs.VerifiedChains
	if cs.DidResume {
		opts := x509.VerifyOptions{
			Roots:         e.pool,
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		var err error
		if chains, err = cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("gateway: entity %q: %w: resumed session: %w", e.name, ErrClientCertificate, err)
		}
	}
	for _, chain := range chains {
		// leaf, intermediates..., root
		if len(chain)-2 <= e.depth {
			return nil
		}
	}
	return fmt.Errorf("gateway: entity %q: %w: %q chains through more than %d intermediate(s)",
		e.name, ErrClientCertificate, cs.PeerCertificates[0].Subject.String(), e.depth)
}

// ServedChains returns the certificate chains the running configuration
// serves for the entity called name, leaf first, without their private
// keys, in the order they are served (ECDSA and Ed25519 before RSA). It
// returns false when no such entity runs, or when one of its chains has a
// key the gateway keeps as given (an opaque crypto.Signer), which only the
// caller can give again.
//
// Given back in an Entity to Apply, the chains keep their running keys
// (see Entity.Chains), so a caller that re-applies unchanged entities need
// keep neither their keys nor their certificates. The DER slices refer to
// the gateway's immutable storage: they must not be modified, and they
// keep that storage alive while they are held.
func (s *Server) ServedChains(name string) ([]tls.Certificate, bool) {
	snap := s.snap.Load()
	i := snap.indexOf(name)
	if i < 0 {
		return nil, false
	}
	rec := snap.entities.at(uint32(i))
	chains := make([]tls.Certificate, rec.nChains)
	for n := range chains {
		c := snap.chain(rec, n)
		if c.pinned >= 0 {
			return nil, false
		}
		chains[n] = snap.certificate(c)
	}
	return chains, true
}
