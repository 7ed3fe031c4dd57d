package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// headKey is the key of the head bucket that points to the newest
// manifest.
const headKey = "head"

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Signing signs every manifest. Required.
	Signing *SigningKey
	// DataKey seals literal private keys; without it a revision with one
	// is refused with ErrLiteralKey.
	DataKey *DataKey
	// Now is the clock of manifest times; nil is time.Now.
	Now func() time.Time
}

// Publisher writes revisions to a fleet. Publish calls are serialised.
type Publisher struct {
	f    *Fleet
	opts PublisherOptions

	mu      sync.Mutex        // serialises Publish; guards the fields below
	known   map[string]bool   // digests present in the blob bucket
	encoded map[string]string // Entity.Hash → blob digest, for the last publish
	pageSet pageSet           // the manifest pages of the last publish

	// last is read without mu, so that a status never waits for a
	// Publish (which NATS being down holds for minutes).
	last atomic.Pointer[Published]
}

// Published describes a manifest that a Publisher wrote.
type Published struct {
	Revision string    `json:"revision"`
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time"`
	Entities int       `json:"entities"`
	// Uploaded counts the blobs and pages this publish wrote (those the
	// bucket lacked); Bytes their size.
	Uploaded int `json:"uploaded"`
	Bytes    int `json:"bytes"`
}

// NewPublisher returns a Publisher for f.
func (f *Fleet) NewPublisher(opts PublisherOptions) (*Publisher, error) {
	if opts.Signing == nil {
		return nil, errors.New("fleet publisher: a signing key is required (--signing-key)")
	}
	return &Publisher{f: f, opts: opts}, nil
}

// Last returns the last manifest this publisher wrote or found current,
// or nil.
func (p *Publisher) Last() *Published {
	return p.last.Load()
}

// publishTimeout bounds one Publish: a JetStream request without a
// deadline can wait forever.
const publishTimeout = 2 * time.Minute

// uploadWorkers bounds the blob writes in flight.
const uploadWorkers = 32

// Publish writes the entities of revision to the fleet and moves head to
// a new manifest signed by the publisher, with a sequence one above the
// current head. Blobs and pages the bucket already has are not written
// again. When head already describes exactly these entities at this
// revision nothing is written and the current manifest is returned.
//
// A literal private key without a data key is refused with
// ErrLiteralKey before anything is written; an error from NATS is
// retryable. head moves by compare-and-set: a concurrent publish by
// another publisher makes this one build on it.
func (p *Publisher) Publish(ctx context.Context, revision string, entities []Entity) (*Published, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	blobs := make(map[string][]byte)
	index := make(map[string]string, len(entities))
	encoded := make(map[string]string)
	for _, e := range entities {
		if !ValidEntityName(e.Doc.Name) {
			return nil, fmt.Errorf("entity %q: not a valid entity name", e.Doc.Name)
		}
		if _, dup := index[e.Doc.Name]; dup {
			return nil, fmt.Errorf("entity %s: listed twice", e.Doc.Name)
		}
		if d, ok := p.encoded[e.Hash]; ok && e.Hash != "" && p.known[d] {
			index[e.Doc.Name] = d
			encoded[e.Hash] = d
			continue
		}
		b, err := encodeBlob(p.f.name, e, p.opts.DataKey)
		if err != nil {
			return nil, err
		}
		d := digestOf(b)
		blobs[d] = b
		index[e.Doc.Name] = d
		if e.Hash != "" {
			encoded[e.Hash] = d
		}
	}
	pages := p.pageSet.pages(index)
	r := &root{Fleet: p.f.name, Revision: revision, Entities: len(index), Pages: make([]string, len(pages))}
	for i, pg := range pages {
		d := digestOf(pg)
		r.Pages[i] = d
		blobs[d] = pg
	}

	headKV, err := p.f.bucket(ctx, bucketHead, false)
	if err != nil {
		return nil, err
	}
	blobKV, err := p.f.bucket(ctx, bucketBlobs, false)
	if err != nil {
		return nil, err
	}
	cur, err := headKV.Get(ctx, headKey)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("fleet %s: read head: %w", p.f.name, err)
	}
	if cur != nil {
		if old, _, err := peekHead(cur.Value()); err == nil && old.Revision == revision && slices.Equal(old.Pages, r.Pages) {
			last := &Published{Revision: old.Revision, Sequence: old.Sequence, Time: old.Time, Entities: old.Entities}
			p.last.Store(last)
			p.encoded = encoded
			return last, nil
		}
	}

	up, size, err := p.upload(ctx, blobKV, blobs)
	if err != nil {
		return nil, err
	}
	p.encoded = encoded
	for attempt := 0; ; attempt++ {
		var seq uint64
		if cur != nil {
			old, _, err := peekHead(cur.Value())
			if err != nil {
				return nil, fmt.Errorf("fleet %s: the current head is unreadable: %w", p.f.name, err)
			}
			seq = old.Sequence
		}
		// An older head written back (a replay) must not give this
		// manifest a sequence the nodes refuse: never go below what this
		// publisher published itself.
		if l := p.last.Load(); l != nil && l.Sequence > seq {
			seq = l.Sequence
		}
		r.Sequence = seq + 1
		r.Time = p.now().UTC().Truncate(time.Millisecond)
		env, err := sign(r, p.opts.Signing)
		if err != nil {
			return nil, fmt.Errorf("fleet %s: sign manifest: %w", p.f.name, err)
		}
		err = moveHead(ctx, headKV, cur, env)
		if err == nil {
			last := &Published{Revision: revision, Sequence: r.Sequence, Time: r.Time, Entities: r.Entities, Uploaded: up, Bytes: size}
			p.last.Store(last)
			return last, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || attempt == 4 {
			return nil, fmt.Errorf("fleet %s: move head: %w", p.f.name, err)
		}
		// Another publisher moved head meanwhile: build on its sequence.
		if cur, err = headKV.Get(ctx, headKey); err != nil {
			return nil, fmt.Errorf("fleet %s: read head: %w", p.f.name, err)
		}
	}
}

// moveHead writes env to head by compare-and-set on cur, the entry read
// before (nil: head does not exist yet), with retryAPI's deadline per
// attempt: a request lost while the head stream elects its leader (one
// NATS server of three killed) would otherwise hold the publish for its
// whole timeout. An attempt that got no answer may still have been
// applied, so the next one reads head back first: holding env, it was;
// moved elsewhere, another publisher won, and the conflict is returned
// (jetstream.ErrKeyRevisionMismatch) for the caller to build on it.
func moveHead(ctx context.Context, kv jetstream.KeyValue, cur jetstream.KeyValueEntry, env []byte) error {
	lost := false
	return retryAPI(ctx, func(ctx context.Context) error {
		if lost {
			now, err := kv.Get(ctx, headKey)
			switch {
			case err == nil && bytes.Equal(now.Value(), env):
				return nil // applied; the answer was lost
			case err == nil && (cur == nil || now.Revision() != cur.Revision()), isNotFound(err) && cur != nil:
				return fmt.Errorf("head moved while an attempt went unanswered: %w", jetstream.ErrKeyRevisionMismatch)
			case err != nil && !isNotFound(err):
				return err // retried while unanswered
			}
		}
		var err error
		if cur == nil {
			_, err = kv.Create(ctx, headKey, env)
		} else {
			_, err = kv.Update(ctx, headKey, env, cur.Revision())
		}
		lost = unanswered(err)
		return err
	})
}

// upload writes the blobs the bucket lacks.
func (p *Publisher) upload(ctx context.Context, kv jetstream.KeyValue, blobs map[string][]byte) (int, int, error) {
	if p.known == nil {
		known := make(map[string]bool)
		lister, err := kv.ListKeys(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("fleet %s: list blobs: %w", p.f.name, err)
		}
		for k := range lister.Keys() {
			known[k] = true
		}
		_ = lister.Stop() // the lister has ended by itself once drained
		p.known = known
	}
	var todo []string
	size := 0
	for d, b := range blobs {
		if !p.known[d] {
			todo = append(todo, d)
			size += len(b)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadWorkers)
	for _, d := range todo {
		g.Go(func() error {
			if _, err := kv.Put(gctx, d, blobs[d]); err != nil {
				return fmt.Errorf("fleet %s: write blob %s: %w", p.f.name, d[:12], err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	for _, d := range todo {
		p.known[d] = true
	}
	return len(todo), size, nil
}

func (p *Publisher) now() time.Time {
	if p.opts.Now != nil {
		return p.opts.Now()
	}
	return time.Now()
}
