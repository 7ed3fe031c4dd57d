// Package gateway is certops' in-process TLS engine. It selects a
// certificate by SNI, serves HTTP/1.1 and HTTP/2 behind it (a JSON
// description of the connection, or a reverse proxy to an upstream), and
// rotates certificates in memory without a restart.
//
// # Selection
//
// A ClientHello's server name is compared case-insensitively, one trailing
// dot ignored: first the exact name, then the wildcard "*.parent" of its
// parent (one label only: "*.example.com" covers "a.example.com", not
// "example.com" nor "a.b.example.com"), then the default entity (SNI "*").
// Otherwise the handshake fails with the unrecognized_name alert. A
// ClientHello without SNI goes to the default entity. Lookups are O(1) map
// lookups for hits and misses alike and do not allocate. Within the entity
// the first chain the client supports is served, ECDSA and Ed25519 chains
// before RSA, within the entity's TLS version bounds (TLS 1.2 at least).
//
// # Client certificates
//
// An entity with client CAs requires a client certificate chaining to one
// of them through at most ClientDepth intermediates; the check runs in
// VerifyConnection, so resumed sessions are verified again against the
// current CAs. Session tickets are bound to the entity (and its client
// certificate policy) that issued them. An HTTP request whose Host selects
// another entity than the handshake did is answered 421 Misdirected
// Request when either entity requires client certificates.
//
// # Rotation
//
// The running state is an immutable snapshot behind an atomic pointer:
// [Server.Apply] builds and checks the whole next snapshot aside and swaps
// it in with one store, so a handshake always sees one complete
// configuration, connections already established are never touched, and
// an invalid Config changes nothing. [Server.ApplyChanges] does the same
// for a few entities at a time, at a cost in the number of changes: the
// snapshots share the storage of unchanged entities. Session-ticket keys belong to the
// server, not the snapshot, and survive every Apply; they rotate every
// Options.TicketKeyRotation (12 h), the two previous keys still decrypting.
// All methods of [Server] are safe for concurrent use.
//
// # Memory
//
// A snapshot keeps certificates, keys and names as bytes in one arena with
// pointer-free indexes, and parses an entity (certificate, key, tls.Config)
// on first use into a cache bounded by a memory budget (Options.CacheBytes,
// 1 MiB: ~720 ECDSA entities, fewer RSA ones) with two ways per entity, so
// that a hot set that fits in it stays parsed whatever its indexes. With
// 100,000 entities the garbage collector therefore has almost nothing to
// scan, and a handshake costs what it costs with one static certificate;
// a map of parsed certificates cost 9-19% more CPU per handshake. A cache
// miss costs little: an ECDSA or Ed25519 entity with one chain is rebuilt
// by copying bytes into one allocation (keys are stored raw, leaves are
// not parsed), an RSA one parses its key. snapshot.go and key.go have
// the details; docs/performance.md, section "Gateway", the figures. For
// the same reason the caller should not keep the Config it applied, and
// need not keep the keys of chains the gateway serves (see Entity.Chains).
//
// # Observability
//
// Options.OnHandshake is called with the [HandshakeResult] of every
// handshake, failures included, exactly once, cheaply enough for a metrics
// counter: net/http does the handshake in its connection goroutine, and
// the gateway observes its end on the connection under it (see
// handshakeListener). What is served is described by the caller, which built the
// Config. Per-handshake decisions are logged at Debug level only.
//
// The package knows nothing of Git, CUE or files: its input is [Config].
package gateway
