package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"
)

// Document is one SSL entity as it travels: the fields of an entity file
// (DESIGN.md 2), secret references as written. Key and Keys hold PEM
// private keys or references; literal keys are sealed on the bus.
type Document struct {
	Name      string            `json:"name"`
	Type      string            `json:"type,omitempty"`
	SNIs      []string          `json:"snis,omitempty"`
	Cert      string            `json:"cert"`
	Key       string            `json:"key"`
	Certs     []string          `json:"certs,omitempty"`
	Keys      []string          `json:"keys,omitempty"`
	Client    *Client           `json:"client,omitempty"`
	Protocols []string          `json:"ssl_protocols,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Client is the client-certificate policy of a Document.
type Client struct {
	CA    string `json:"ca"`
	Depth *int   `json:"depth,omitempty"`
}

// LogValue keeps private keys out of logs.
func (d Document) LogValue() slog.Value { return slog.StringValue("entity " + d.Name) }

// Entity is a Document and the file of the repository it was read from.
type Entity struct {
	File string   `json:"file,omitempty"`
	Doc  Document `json:"entity"`
	// Hash, when set, identifies the entity's content and file: equal
	// hashes mean equal entities. A Publisher then skips encoding an
	// entity it has published before, so a one-file change costs it one
	// encoding, not one per entity.
	Hash string `json:"-"`
}

// isReference reports whether a key field holds a secret reference
// rather than a literal key: references start with "$" (DESIGN.md 2.4),
// PEM text with "-----BEGIN". Anything else is sealed too, to err on the
// side of secrecy.
func isReference(v string) bool { return strings.HasPrefix(strings.TrimSpace(v), "$") }

// HasLiteralKey reports whether d has a private key written in the clear.
func (d *Document) HasLiteralKey() bool {
	if d.Key != "" && !isReference(d.Key) {
		return true
	}
	for _, k := range d.Keys {
		if k != "" && !isReference(k) {
			return true
		}
	}
	return false
}

func sealContext(fleet, entity, field string) string {
	return fleet + "\x00" + entity + "\x00" + field
}

// encodeBlob returns the blob of e: its JSON with literal keys sealed.
func encodeBlob(fleet string, e Entity, dk *DataKey) ([]byte, error) {
	d := e.Doc
	if d.HasLiteralKey() {
		if dk == nil {
			return nil, fmt.Errorf("entity %s: %w", d.Name, ErrLiteralKey)
		}
		if d.Key != "" && !isReference(d.Key) {
			d.Key = dk.sealDeterministic(sealContext(fleet, d.Name, "key"), []byte(d.Key))
		}
		keys := slices.Clone(d.Keys)
		for i, k := range keys {
			if k != "" && !isReference(k) {
				keys[i] = dk.sealDeterministic(sealContext(fleet, d.Name, fmt.Sprintf("keys[%d]", i)), []byte(k))
			}
		}
		d.Keys = keys
	}
	return json.Marshal(Entity{File: e.File, Doc: d})
}

// decodeBlob parses a blob and opens its sealed keys.
func decodeBlob(fleet string, b []byte, dk *DataKey) (Entity, error) {
	var e Entity
	if err := json.Unmarshal(b, &e); err != nil {
		return Entity{}, refuse(ReasonMalformed, "blob does not parse: %v", err)
	}
	if !ValidEntityName(e.Doc.Name) {
		return Entity{}, refuse(ReasonMalformed, "blob has no valid entity name")
	}
	open := func(field, v string) (string, error) {
		if !isSealed(v) {
			if v != "" && !isReference(v) {
				// A publisher never sends a literal key: refuse one
				// rather than serve what travelled in the clear.
				return "", refuse(ReasonSealed, "entity %s: %s travelled unsealed", e.Doc.Name, field)
			}
			return v, nil
		}
		if dk == nil {
			return "", refuse(ReasonSealed, "entity %s: %s is sealed and this node has no data key (--data-key-file)", e.Doc.Name, field)
		}
		pt, err := dk.open(sealContext(fleet, e.Doc.Name, field), v)
		if err != nil {
			return "", refuse(ReasonSealed, "entity %s: %s: %v", e.Doc.Name, field, err)
		}
		return string(pt), nil
	}
	var err error
	if e.Doc.Key, err = open("key", e.Doc.Key); err != nil {
		return Entity{}, err
	}
	for i, k := range e.Doc.Keys {
		if e.Doc.Keys[i], err = open(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return Entity{}, err
		}
	}
	return e, nil
}

// ValidEntityName reports whether s may name an entity on the bus: the
// schema's name rule, so names are safe as file names.
func ValidEntityName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(s)-1 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// digestOf is the content address of b: its SHA-256 in hex.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// validDigest reports whether s looks like a digest (64 lowercase hex).
func validDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// pageEntry is one line of a manifest page.
type pageEntry struct {
	Name string `json:"name"`
	Blob string `json:"blob"`
}

// page is a manifest page: the entities whose name hashes to its shard,
// sorted by name.
type page struct {
	Entries []pageEntry `json:"entities"`
}

// root is the signed part of a manifest.
type root struct {
	Fleet    string    `json:"fleet"`
	Revision string    `json:"revision"`
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time"`
	Entities int       `json:"entities"`
	// Pages lists the digest of each shard's page; the shard of an entity
	// is shardOf(name, len(Pages)).
	Pages []string `json:"pages"`
}

// envelope is the value of head: the root as signed and its signature.
type envelope struct {
	Root json.RawMessage `json:"root"`
	Key  string          `json:"key"` // TrustedKey.ID of the signer
	Sig  []byte          `json:"sig"`
}

// shardCount is the number of manifest pages for n entities: the power of
// two nearest above √n, so that the root and one page weigh about the
// same and a one-entity change costs O(√n) bytes.
func shardCount(n int) int {
	s := 1
	for s*s < n && s < 1<<14 {
		s <<= 1
	}
	return s
}

// shardOf is the page of an entity name.
func shardOf(name string, shards int) int {
	sum := sha256.Sum256([]byte(name))
	return int(binary.BigEndian.Uint32(sum[:4]) % uint32(shards))
}

// buildPages splits name → blob digest into pages, returning each page's
// bytes in shard order. A Publisher keeps them in a pageSet instead, which
// re-encodes only the pages that changed.
func buildPages(entries map[string]string) [][]byte {
	var ps pageSet
	return ps.pages(entries)
}

// parsePage checks a page's content against its shard.
func parsePage(b []byte, shard, shards int) ([]pageEntry, error) {
	var p page
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, refuse(ReasonMalformed, "manifest page does not parse: %v", err)
	}
	for i, e := range p.Entries {
		if !ValidEntityName(e.Name) || !validDigest(e.Blob) || shardOf(e.Name, shards) != shard ||
			i > 0 && p.Entries[i-1].Name >= e.Name {
			return nil, refuse(ReasonMalformed, "manifest page %d: entry %d is invalid or out of place", shard, i)
		}
	}
	return p.Entries, nil
}

// sign returns the envelope of r signed by k.
func sign(r *root, k *SigningKey) ([]byte, error) {
	rb, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{Root: rb, Key: k.ID(), Sig: k.sign(rb)})
}

// verify checks an envelope's signature against the trusted keys and
// returns its root and the signer's key id.
func verify(b []byte, trusted []TrustedKey) (*root, string, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, "", refuse(ReasonMalformed, "head does not parse: %v", err)
	}
	var key *TrustedKey
	for i := range trusted {
		if trusted[i].ID() == env.Key {
			key = &trusted[i]
			break
		}
	}
	if key == nil {
		r, _ := peekRoot(env.Root)
		e := refuse(ReasonUntrusted, "manifest signed by key %q, which is not trusted (--trusted-key)", env.Key)
		if r != nil {
			e.Sequence, e.Revision = r.Sequence, r.Revision
		}
		return nil, "", e
	}
	if len(env.Sig) != ed25519.SignatureSize || !ed25519.Verify(key.pub, env.Root, env.Sig) {
		r, _ := peekRoot(env.Root)
		e := refuse(ReasonUntrusted, "manifest signature does not verify with key %s", env.Key)
		if r != nil {
			e.Sequence, e.Revision = r.Sequence, r.Revision
		}
		return nil, "", e
	}
	r, err := peekRoot(env.Root)
	if err != nil {
		return nil, "", err
	}
	return r, env.Key, nil
}

// peekRoot parses a root without checking its signature.
func peekRoot(b []byte) (*root, error) {
	var r root
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&r); err != nil {
		return nil, refuse(ReasonMalformed, "manifest does not parse: %v", err)
	}
	if r.Sequence == 0 || len(r.Pages) == 0 || len(r.Pages) > 1<<14 || r.Entities < 0 || r.Entities > math.MaxInt32 {
		return nil, refuse(ReasonMalformed, "manifest %d is incomplete", r.Sequence)
	}
	for _, p := range r.Pages {
		if !validDigest(p) {
			return nil, refuse(ReasonMalformed, "manifest %d: a page digest is invalid", r.Sequence)
		}
	}
	return &r, nil
}

// peekHead returns the root of an envelope without checking the
// signature, and the signer's key id, for fleet status.
func peekHead(b []byte) (*root, string, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, "", errors.New("head does not parse")
	}
	r, err := peekRoot(env.Root)
	return r, env.Key, err
}
