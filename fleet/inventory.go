package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// This file reads what a fleet publishes for `certops inventory --fleet`:
// read-only (it writes nothing to the bus, not even a node record) and
// without the data key, since an inventory describes certificates only.

// Inventory is what a fleet's head manifest publishes.
type Inventory struct {
	Fleet    string
	Revision string // the Git revision the publisher followed
	Sequence uint64
	Time     time.Time
	Signer   string // TrustedKey.ID of the key that signed head
	// Verified is true when head's signature was checked against trusted
	// keys; false when none were given (ReadInventory reads it anyway).
	Verified bool
	// Entities are the manifest's entities, sorted by name.
	Entities []PublishedEntity
}

// PublishedEntity is one entity of a manifest, its private keys left out.
type PublishedEntity struct {
	// Entity is the blob as published: Key and Keys keep the secret
	// references as written, and a literal key (sealed on the bus) is
	// blanked to "". Nothing in it is secret.
	Entity
	// Sealed is true when a literal key was blanked.
	Sealed bool
	// Changed is the publisher revision (the Git commit it followed) of
	// the manifest that first carried the entity's current blob, found by
	// following the blob back through head's history (the last 64
	// manifests) to a manifest whose blob differs or lacks the entity: the
	// Git commit that last changed the entity, or a later one when the
	// publisher published several commits at once. A blob holds the entity
	// as written and its file, so a change to either counts (and so does a
	// new data key, which reseals literal keys). It is "" when the history
	// cannot tell: the blob is the same in every kept manifest (the fleet's
	// first manifest says nothing of when Git changed what it carries), or
	// an older manifest does not verify or read.
	Changed string
}

// ReadInventory reads head, its pages and the blobs they list, each
// checked against its digest. With trusted keys, head (and every older
// manifest used for Changed) must be signed by one of them, else a
// *RefusalError; without, the signatures are not checked and Verified is
// false. Nothing published yet is ErrNoHead.
func (f *Fleet) ReadInventory(ctx context.Context, trusted []TrustedKey) (*Inventory, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	headKV, err := f.bucket(ctx, bucketHead, false)
	if err != nil {
		return nil, err
	}
	blobKV, err := f.bucket(ctx, bucketBlobs, false)
	if err != nil {
		return nil, err
	}
	hist, err := headKV.History(ctx, headKey)
	if errors.Is(err, jetstream.ErrNoKeysFound) || isNotFound(err) {
		return nil, fmt.Errorf("fleet %s: %w", f.name, ErrNoHead)
	}
	if err != nil {
		return nil, fmt.Errorf("fleet %s: read head: %w", f.name, err)
	}
	var envs [][]byte // newest first, puts only
	for _, e := range slices.Backward(hist) {
		if e.Operation() == jetstream.KeyValuePut {
			envs = append(envs, e.Value())
		}
	}
	if len(envs) == 0 {
		return nil, fmt.Errorf("fleet %s: %w", f.name, ErrNoHead)
	}
	rd := &reader{f: f, kv: blobKV, got: map[string][]byte{}}
	head, signer, err := rd.root(envs[0], trusted)
	if err != nil {
		return nil, err
	}
	index, err := rd.index(ctx, head)
	if err != nil {
		return nil, wrapRefusal(err, head)
	}
	names := make([]string, 0, len(index))
	for name := range index {
		names = append(names, name)
	}
	slices.Sort(names)
	digests := make([]string, len(names))
	for i, n := range names {
		digests[i] = index[n]
	}
	if err := rd.fetch(ctx, digests); err != nil {
		return nil, wrapRefusal(err, head)
	}
	pub := &Inventory{Fleet: head.Fleet, Revision: head.Revision, Sequence: head.Sequence, Time: head.Time,
		Signer: signer, Verified: len(trusted) > 0, Entities: make([]PublishedEntity, len(names))}
	for i, name := range names {
		pe, err := publishedEntity(rd.got[index[name]], name)
		if err != nil {
			return nil, wrapRefusal(err, head)
		}
		pub.Entities[i] = pe
	}
	rd.changed(ctx, pub, index, head, envs[1:], trusted)
	return pub, nil
}

// reader fetches a fleet's pages and blobs by digest, each once.
type reader struct {
	f   *Fleet
	kv  jetstream.KeyValue
	got map[string][]byte // checked content, by digest
}

// root parses an envelope, verified when trusted keys are given, and
// checks that it is this fleet's.
func (rd *reader) root(env []byte, trusted []TrustedKey) (*root, string, error) {
	var r *root
	var signer string
	var err error
	if len(trusted) > 0 {
		r, signer, err = verify(env, trusted)
	} else {
		r, signer, err = peekHead(env)
	}
	if err != nil {
		return nil, "", err
	}
	if r.Fleet != rd.f.name {
		e := refuse(ReasonFleet, "manifest of fleet %q, want %q", r.Fleet, rd.f.name)
		e.Sequence, e.Revision = r.Sequence, r.Revision
		return nil, "", e
	}
	return r, signer, nil
}

// index returns entity name → blob digest of the manifest r.
func (rd *reader) index(ctx context.Context, r *root) (map[string]string, error) {
	if err := rd.fetch(ctx, r.Pages); err != nil {
		return nil, err
	}
	out := make(map[string]string, r.Entities)
	for i, d := range r.Pages {
		entries, err := parsePage(rd.got[d], i, len(r.Pages))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			out[e.Name] = e.Blob
		}
	}
	if len(out) != r.Entities {
		return nil, refuse(ReasonMalformed, "manifest lists %d entities, its pages %d", r.Entities, len(out))
	}
	return out, nil
}

// fetch reads the digests not read yet, checking each.
func (rd *reader) fetch(ctx context.Context, digests []string) error {
	var missing []string
	seen := map[string]bool{}
	for _, d := range digests {
		if _, have := rd.got[d]; !have && !seen[d] {
			missing = append(missing, d)
			seen[d] = true
		}
	}
	got, _, err := rd.f.download(ctx, rd.kv, missing)
	for d, b := range got {
		rd.got[d] = b
	}
	return err
}

// publishedEntity decodes a blob of entity name and blanks its literal
// keys, without opening them.
func publishedEntity(b []byte, name string) (PublishedEntity, error) {
	var e Entity
	if err := json.Unmarshal(b, &e); err != nil {
		return PublishedEntity{}, refuse(ReasonMalformed, "blob of entity %s does not parse: %v", name, err)
	}
	if e.Doc.Name != name {
		return PublishedEntity{}, refuse(ReasonMalformed, "blob holds entity %q, the manifest says %s", e.Doc.Name, name)
	}
	pe := PublishedEntity{Entity: e}
	blank := func(v string) string {
		if v == "" || isReference(v) {
			return v
		}
		pe.Sealed = true
		return ""
	}
	pe.Doc.Key = blank(e.Doc.Key)
	pe.Doc.Keys = slices.Clone(e.Doc.Keys)
	for i, k := range pe.Doc.Keys {
		pe.Doc.Keys[i] = blank(k)
	}
	return pe, nil
}

// changed fills Changed from the older manifests (newest first): an
// entity's blob is followed back while it stays head's.
func (rd *reader) changed(ctx context.Context, inv *Inventory, index map[string]string, head *root, older [][]byte, trusted []TrustedKey) {
	since := make(map[string]string, len(index)) // open entities: the oldest revision with head's blob so far
	for name := range index {
		since[name] = head.Revision
	}
	done := map[string]string{}
	for _, env := range older {
		if len(since) == 0 {
			break
		}
		r, _, err := rd.root(env, trusted)
		var idx map[string]string
		if err == nil {
			idx, err = rd.index(ctx, r)
		}
		if err != nil {
			break // nothing is told beyond a manifest that does not verify or read
		}
		for name, rev := range since {
			if idx[name] == index[name] {
				since[name] = r.Revision
				continue
			}
			done[name] = rev
			delete(since, name)
		}
	}
	for i := range inv.Entities {
		inv.Entities[i].Changed = done[inv.Entities[i].Doc.Name]
	}
}
