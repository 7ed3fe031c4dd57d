package schema

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"sync/atomic"

	"certops/certcheck"
)

// Type is the role of an SSL entity.
type Type string

// Entity types (DESIGN.md 2).
const (
	TypeServer Type = "server" // served to clients by SNI
	TypeClient Type = "client" // presented by the gateway to an upstream
)

// String returns the type as written in entity files.
func (t Type) String() string { return string(t) }

// Entity is one SSL entity as written in the repository, after schema
// validation. Cert, key and client CA values are either PEM text or secret
// references; [Entity.Material] turns them into usable certificates. An
// entity validated with [Options].Reread may be lean: its literal certs
// and keys are "" (see [Entity.Lean]).
// Its exported fields hold no parsed private key, so it is safe to log and
// compare. An Entity is immutable once returned (only the material parsed
// during validation is handed over, once, by Material) and safe for
// concurrent use.
type Entity struct {
	Name   string
	Type   Type
	SNIs   []string // normalised: lowercase, no trailing dot, A-labels
	Chains []Chain  // cert/key first, then certs[i]/keys[i]
	// ClientCA is the PEM bundle (or secret reference) of the CAs that
	// client certificates must chain to; empty means no mTLS.
	ClientCA  string
	Protocols []string
	Labels    map[string]string
	// Desc describes the entity for people (APISIX's and ADC's desc).
	Desc string

	// place is where the document's fields are written (document.go),
	// kept by lean entities too: diagnostics across files (a key shared
	// by every entity) need them for many entities at once. Once the
	// entity is validated, nil when inline.fields says it all.
	place *placement
	// v is the validator that made the entity: its clock, its hygiene
	// checker (nil when the checks are off), and, for a lean entity, the
	// reader of its file (lean.go).
	v *Validator
	// facts are what the last hygiene check of the entity's material
	// learnt of each chain, by chain index (Entity.Trust, key reuse);
	// nil when the checks are off.
	facts atomic.Pointer[[]chainFact]
	// material is parsed during validation when there are no references,
	// held in pointer-free form (held.go) until the first Material call
	// hands it over.
	material atomic.Pointer[heldMaterial]
	// inline holds the field index, and backs facts and the SNIs and
	// protocols, of most entities once validated, in the entity's own
	// allocation (compact.go).
	inline inlined

	// Pos is where the entity's document (or ADC item) starts. It is the
	// last field with a pointer (Pos.File): the collector scans an entity
	// up to there, not the fields below, which hold none (issue 13).
	Pos         Pos
	ClientDepth int // intermediates allowed below ClientCA (default 1)
	// Disabled is APISIX's `status: 0`: the entity is validated and kept,
	// shown as disabled, but not served, and its SNIs do not conflict with
	// an enabled entity's. Use Enabled to filter what a gateway serves.
	Disabled bool
	// lean is true when the entity dropped its PEM text, which v reads
	// again (lean.go).
	lean bool
	// Hash is the SHA-256 of the entity's content (every exported field
	// but Pos), so an unchanged entity keeps its hash when its file
	// changes around it.
	Hash Hash
}

// Hash is a SHA-256 content hash. It prints as lowercase hex.
type Hash [sha256.Size]byte

// String returns h in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// inlined is what a validated entity keeps inline instead of in
// allocations of its own: a cached entity was several small objects, each
// marked by every garbage collection (issue 13).
type inlined struct {
	// fields is the field index of an entity whose place is nil: one
	// with no renaming and no refused SNI, most of them. The rest keep
	// their placement out of line, so that an entity is 40 bytes and 3
	// pointer words smaller (issue 13).
	fields fieldIndex
	facts  []chainFact
	fact   [1]chainFact
	strs   [2]string
}

// placement is where an entity's fields are written: the compact field
// index (or the index itself when it did not compact), the renaming of an
// ADC or APISIX item's fields, the indexes of SNIs after a refused one.
type placement struct {
	fields fieldIndex
	index  map[string]Pos // native field path -> position; nil when fields holds it
	rename *itemRename    // native field path -> as written; nil is the identity
	sniSrc []int          // index in the file's snis of each of SNIs; nil is the identity
}

// hygiene is the checker of the entity's validator; nil when the checks
// are off.
func (e *Entity) hygiene() *certcheck.Checker {
	if e.v == nil {
		return nil
	}
	return e.v.hygiene
}

// Enabled reports whether the entity is to be served (not APISIX
// `status: 0`).
func (e *Entity) Enabled() bool { return !e.Disabled }

// Chain is one certificate chain of an entity and its key, each PEM text
// or a secret reference.
type Chain struct {
	Cert string
	Key  string
}

// Position returns where field (a path such as "snis[1]" or "client.ca",
// in the native form) is written, or where its nearest written parent is.
func (e *Entity) Position(field string) Pos {
	pos, _ := e.where(field)
	return pos
}

// References returns the secret references of the entity, in field order
// (cert, key, certs[i], keys[i], client.ca), each once. Validation has
// checked their syntax.
func (e *Entity) References() []Reference {
	var refs []Reference
	seen := map[string]bool{}
	add := func(v string) {
		if !IsReference(v) || seen[v] {
			return
		}
		if r, err := ParseReference(v); err == nil {
			seen[v] = true
			refs = append(refs, r)
		}
	}
	for _, ch := range e.Chains {
		add(ch.Cert)
		add(ch.Key)
	}
	add(e.ClientCA)
	return refs
}

// Material is an entity's parsed certificates: what the gateway serves,
// in the form it takes them (DER chains as decoded from the PEM, the key
// as parsed, the leaf as parsed), so nothing is encoded or parsed again on
// the way. It holds private keys; never log or print it. It belongs to the
// caller of [Entity.Material]; its ClientCAs pool is not to be modified
// once handed to the gateway.
type Material struct {
	Chains    []tls.Certificate // Leaf set
	ClientCAs *x509.CertPool    // nil when the entity has no client CA

	keys [][]byte // the key of each chain as parsed (PEM), for hold
}

// LogValue redacts the material in logs.
func (m *Material) LogValue() slog.Value { return slog.StringValue("[material redacted]") }
