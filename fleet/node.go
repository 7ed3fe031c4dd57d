package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"certops/internal/atomicfile"
)

// NodeOptions configure a Node.
type NodeOptions struct {
	// Trusted are the keys whose manifests the node accepts (more than one
	// during a key rotation). Required.
	Trusted []TrustedKey
	// DataKey opens sealed private keys; without it a revision with one is
	// refused (ReasonSealed).
	DataKey *DataKey
	// Dir keeps the blob cache and the last applied manifest; "" keeps
	// them in memory only (nothing survives a restart).
	Dir string
	// Poll is how often Watch checks head besides the watcher's pushes;
	// 0 means 10 s.
	Poll time.Duration

	// cache replaces the node's own (benchmarks share one between
	// in-process nodes: it is content-addressed).
	cache *blobCache
}

// Node reads a fleet's manifests for one gateway node.
type Node struct {
	f     *Fleet
	opts  NodeOptions
	cache *blobCache
	log   *slog.Logger

	mu      sync.Mutex // serialises Fetch, Restore and Applied; guards the fields below
	floor   uint64     // sequence of the applied manifest
	applied *Revision
	current *Revision              // last fetched
	parsed  map[string][]pageEntry // parsed pages of applied and current, by digest
	opened  map[string]bool        // blob digests of parsed pages known to decode and open
	headRev uint64                 // bucket revision of the head value Fetch read last
	keep    map[string]bool        // pruneLocked's scratch set, empty between calls

	watchMu sync.Mutex              // guards watched
	watched jetstream.KeyValueEntry // the newest head Watch delivered, until Fetch takes it
}

// Revision is a verified manifest whose blobs are all in the node's
// cache. It is immutable.
type Revision struct {
	Fleet    string
	Revision string // the Git revision the publisher followed
	Sequence uint64
	Time     time.Time
	Signer   string // TrustedKey.ID of the signing key
	Entities int
	// Fetched counts the pages and blobs this Fetch downloaded, and Bytes
	// their size.
	Fetched, Bytes int

	env     []byte
	digests []string      // page digests, by shard
	pages   [][]pageEntry // parsed pages, by shard; shared with other revisions
	node    *Node
}

// Digest returns the blob digest of entity name: equal digests mean equal
// entities.
func (r *Revision) Digest(name string) (string, bool) {
	if len(r.pages) == 0 {
		return "", false
	}
	pg := r.pages[shardOf(name, len(r.pages))]
	i, ok := slices.BinarySearchFunc(pg, name, func(e pageEntry, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return "", false
	}
	return pg[i].Blob, true
}

// Blobs returns a new map of every entity name to its blob digest.
func (r *Revision) Blobs() map[string]string {
	m := make(map[string]string, r.Entities)
	for _, pg := range r.pages {
		for _, e := range pg {
			m[e.Name] = e.Blob
		}
	}
	return m
}

// Diff reports the entities whose blob differs between prev and r by
// calling del for each entity of a changed page of prev and then set for
// each entity of the same page of r (unchanged entities of a changed page
// included), so that a map of prev's names patched this way describes r.
// It costs the changed pages, not the fleet. It returns false, calling
// neither, when prev is nil or paged differently: the caller then reads
// r whole (Blobs).
func (r *Revision) Diff(prev *Revision, del func(name string), set func(name, digest string)) bool {
	if prev == nil || len(prev.pages) != len(r.pages) {
		return false
	}
	for i := range r.pages {
		if prev.digests[i] == r.digests[i] {
			continue
		}
		for _, e := range prev.pages[i] {
			del(e.Name)
		}
		for _, e := range r.pages[i] {
			set(e.Name, e.Blob)
		}
	}
	return true
}

// Entity returns an entity of the revision, its sealed keys opened. The
// result holds private keys: keep it in memory only.
func (r *Revision) Entity(name string) (Entity, error) {
	d, ok := r.Digest(name)
	if !ok {
		return Entity{}, fmt.Errorf("entity %s: %w", name, os.ErrNotExist)
	}
	b, ok := r.node.cache.get(d)
	if !ok {
		return Entity{}, fmt.Errorf("entity %s: blob %s left the cache", name, d[:12])
	}
	return decodeBlob(r.Fleet, b, r.node.opts.DataKey)
}

// NewNode returns a Node of f.
func (f *Fleet) NewNode(opts NodeOptions) (*Node, error) {
	if len(opts.Trusted) == 0 {
		return nil, errors.New("fleet node: at least one trusted key is required (--trusted-key)")
	}
	if opts.Poll <= 0 {
		opts.Poll = 10 * time.Second
	}
	c := opts.cache
	if c == nil {
		var err error
		if c, err = newBlobCache(opts.Dir); err != nil {
			return nil, err
		}
	}
	return &Node{f: f, opts: opts, cache: c, log: f.log, parsed: map[string][]pageEntry{}, opened: map[string]bool{}}, nil
}

// fetchTimeout bounds one Fetch.
const fetchTimeout = 30 * time.Second

// appliedFile is where the data dir keeps the applied manifest (signed, as
// it travelled).
const appliedFile = "applied.json"

// Restore returns the last applied revision from the data dir, verified
// again against the trusted keys and the cached blobs, and makes its
// sequence the floor. It returns (nil, nil) when there is none.
func (n *Node) Restore() (*Revision, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.opts.Dir == "" {
		return nil, nil
	}
	env, err := os.ReadFile(filepath.Join(n.opts.Dir, appliedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet restore: %w", err)
	}
	rev, err := n.load(context.Background(), env, nil)
	if err != nil {
		return nil, fmt.Errorf("fleet restore: %w", err)
	}
	n.floor, n.applied, n.current = rev.Sequence, rev, rev
	return rev, nil
}

// Fetch reads head and returns its revision once verified, downloading
// only the pages and blobs the cache lacks. When head has not moved since
// the applied or last fetched revision, that revision is returned again.
// Content the node refuses is a *RefusalError; anything else (NATS down,
// nothing published yet: ErrNoHead) is retryable.
func (n *Node) Fetch(ctx context.Context) (*Revision, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// A JetStream request without a deadline can wait forever (a cluster
	// without a leader): bound the whole fetch.
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	// The value Watch was pushed saves reading head again, once: a Fetch
	// with nothing new from the watcher (a poll, a retry) reads head.
	e := n.takeWatched()
	if e == nil || e.Revision() <= n.headRev {
		kv, err := n.f.bucket(ctx, bucketHead, false)
		if err != nil {
			return nil, err
		}
		e, err = kv.Get(ctx, headKey)
		if isNotFound(err) {
			return nil, fmt.Errorf("fleet %s: %w", n.f.name, ErrNoHead)
		}
		if err != nil {
			return nil, fmt.Errorf("fleet %s: read head: %w", n.f.name, err)
		}
	}
	n.headRev = max(n.headRev, e.Revision())
	env := e.Value()
	for _, r := range []*Revision{n.current, n.applied} {
		if r != nil && bytes.Equal(r.env, env) {
			return r, nil
		}
	}
	blobKV, err := n.f.bucket(ctx, bucketBlobs, false)
	if err != nil {
		return nil, err
	}
	rev, err := n.load(ctx, env, blobKV)
	if err != nil {
		return nil, err
	}
	replaced := n.current
	n.current = rev
	// Until rev is applied, only the pages of a fetched revision that
	// was never applied can have become garbage: the applied ones are
	// still in use, and Applied prunes.
	if replaced != nil && replaced != n.applied {
		if err := n.pruneLocked(); err != nil {
			n.log.Warn("cannot prune the fleet cache", "err", err)
		}
	}
	return rev, nil
}

// load verifies env and gathers its pages and blobs: from the cache, and
// from kv when it is not nil.
func (n *Node) load(ctx context.Context, env []byte, kv jetstream.KeyValue) (*Revision, error) {
	r, signer, err := verify(env, n.opts.Trusted)
	if err != nil {
		return nil, err
	}
	fail := func(e *RefusalError) error {
		e.Sequence, e.Revision = r.Sequence, r.Revision
		return e
	}
	if r.Fleet != n.f.name {
		return nil, fail(refuse(ReasonFleet, "manifest of fleet %q, want %q", r.Fleet, n.f.name))
	}
	if r.Sequence <= n.floor {
		return nil, fail(refuse(ReasonReplay, "manifest sequence %d is not above the applied %d (replayed or rolled back)", r.Sequence, n.floor))
	}
	rev := &Revision{Fleet: r.Fleet, Revision: r.Revision, Sequence: r.Sequence, Time: r.Time, Entities: r.Entities,
		env: env, digests: r.Pages, pages: make([][]pageEntry, len(r.Pages)), node: n}
	rev.Signer = signer

	// Pages: parsed ones are reused; the others come from the cache or
	// the bus.
	var missing []string
	for _, d := range r.Pages {
		if _, ok := n.parsed[d]; !ok && !n.cache.has(d) && !slices.Contains(missing, d) {
			missing = append(missing, d)
		}
	}
	gotPages, size, err := n.download(ctx, kv, missing)
	if err != nil {
		return nil, wrapRefusal(err, r)
	}
	rev.Fetched, rev.Bytes = len(missing), size
	fresh := map[string][]pageEntry{} // pages parsed by this load
	var changed []pageEntry           // entries of those pages
	total := 0
	for i, d := range r.Pages {
		entries, ok := n.parsed[d]
		if !ok {
			if entries, ok = fresh[d]; !ok {
				b, ok := gotPages[d]
				if !ok {
					if b, ok = n.cache.get(d); !ok {
						return nil, fmt.Errorf("fleet: manifest page %s is not cached", d[:12])
					}
				}
				if entries, err = parsePage(b, i, len(r.Pages)); err != nil {
					return nil, wrapRefusal(err, r)
				}
				fresh[d] = entries
				changed = append(changed, entries...)
			}
		}
		rev.pages[i] = entries
		total += len(entries)
	}
	if total != r.Entities {
		return nil, fail(refuse(ReasonMalformed, "manifest lists %d entities, its pages %d", r.Entities, total))
	}
	// Blobs of the new pages only: the others were verified already.
	missing = missing[:0]
	for _, e := range changed {
		if !n.opened[e.Blob] && !n.cache.has(e.Blob) {
			missing = append(missing, e.Blob)
		}
	}
	got, size, err := n.download(ctx, kv, missing)
	if err != nil {
		return nil, wrapRefusal(err, r)
	}
	rev.Fetched += len(missing)
	rev.Bytes += size
	// Every new blob must decode, name its entity and open with the data
	// key before the revision is handed on: all or nothing.
	for _, e := range changed {
		if n.opened[e.Blob] {
			continue
		}
		b, ok := got[e.Blob]
		if !ok {
			if b, ok = n.cache.get(e.Blob); !ok {
				return nil, fmt.Errorf("fleet: blob %s is not cached", e.Blob[:12])
			}
		}
		ent, err := decodeBlob(r.Fleet, b, n.opts.DataKey)
		if err != nil {
			return nil, wrapRefusal(err, r)
		}
		if ent.Doc.Name != e.Name {
			return nil, fail(refuse(ReasonMalformed, "blob %s holds entity %s, the manifest says %s", e.Blob[:12], ent.Doc.Name, e.Name))
		}
	}
	if err := n.cache.putAll(gotPages); err != nil {
		return nil, fmt.Errorf("fleet cache: %w", err)
	}
	if err := n.cache.putAll(got); err != nil {
		return nil, fmt.Errorf("fleet cache: %w", err)
	}
	for d, entries := range fresh {
		n.parsed[d] = entries
	}
	for _, e := range changed {
		n.opened[e.Blob] = true
	}
	return rev, nil
}

// wrapRefusal stamps a refusal with the manifest it concerns.
func wrapRefusal(err error, r *root) error {
	var re *RefusalError
	if errors.As(err, &re) && re.Sequence == 0 {
		re.Sequence, re.Revision = r.Sequence, r.Revision
	}
	return err
}

// downloadWorkers bounds the blob reads in flight.
const downloadWorkers = 16

// download reads digests from kv and checks each against its digest.
func (n *Node) download(ctx context.Context, kv jetstream.KeyValue, digests []string) (map[string][]byte, int, error) {
	if len(digests) == 0 {
		return nil, 0, nil
	}
	if kv == nil {
		return nil, 0, fmt.Errorf("fleet: %d pages or blobs are not cached", len(digests))
	}
	return n.f.download(ctx, kv, digests)
}

// download reads the pages or blobs digests from kv, downloadWorkers at
// a time, and checks each against its digest: one missing or altered is a
// refusal. It returns them by digest, and their size.
func (f *Fleet) download(ctx context.Context, kv jetstream.KeyValue, digests []string) (map[string][]byte, int, error) {
	out := make(map[string][]byte, len(digests))
	var mu sync.Mutex
	size := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(downloadWorkers)
	for _, d := range digests {
		g.Go(func() error {
			e, err := kv.Get(gctx, d)
			if isNotFound(err) {
				return refuse(ReasonDigest, "blob %s is missing from the bus", d[:12])
			}
			if err != nil {
				return fmt.Errorf("fleet %s: read blob %s: %w", f.name, d[:12], err)
			}
			b := e.Value()
			if digestOf(b) != d {
				return refuse(ReasonDigest, "blob %s does not match its digest", d[:12])
			}
			mu.Lock()
			out[d] = b
			size += len(b)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	return out, size, nil
}

// Applied records that rev is being served: its sequence becomes the
// floor below which manifests are refused, the data dir keeps it for
// Restore, and cached blobs it does not use are removed.
func (n *Node) Applied(rev *Revision) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if rev.Sequence > n.floor {
		n.floor = rev.Sequence
	}
	n.applied = rev
	if n.opts.Dir == "" {
		return n.pruneLocked()
	}
	if err := atomicfile.Write(filepath.Join(n.opts.Dir, appliedFile), rev.env); err != nil {
		return fmt.Errorf("fleet: record the applied manifest: %w", err)
	}
	return n.pruneLocked()
}

// pruneLocked drops the parsed pages, and cached pages and blobs, that
// neither the applied nor the current revision uses. Its cost is that of
// the pages that left, not of the fleet.
func (n *Node) pruneLocked() error {
	var revs []*Revision
	for _, r := range []*Revision{n.applied, n.current} {
		if r != nil && (len(revs) == 0 || r != revs[0]) {
			revs = append(revs, r)
		}
	}
	size := 0
	for _, r := range revs {
		size += len(r.digests)
	}
	if n.keep == nil {
		n.keep = make(map[string]bool, size)
	}
	keep := n.keep
	defer clear(keep)
	for _, r := range revs {
		for _, d := range r.digests {
			keep[d] = true
		}
	}
	var drop []string
	for d, entries := range n.parsed {
		if keep[d] {
			continue
		}
		drop = append(drop, d)
		delete(n.parsed, d)
		for _, e := range entries {
			used := false
			for _, r := range revs {
				if bd, ok := r.Digest(e.Name); ok && bd == e.Blob {
					used = true
				}
			}
			if !used {
				drop = append(drop, e.Blob)
				delete(n.opened, e.Blob)
			}
		}
	}
	return n.cache.remove(drop)
}

// Close releases the node's cache file. The node must not be used after.
func (n *Node) Close() error { return n.cache.close() }

// AppliedSequence returns the floor: the sequence of the applied manifest.
func (n *Node) AppliedSequence() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.floor
}

// Watch calls trigger whenever head may have moved (a watcher push, a
// reconnect, or every Poll) until ctx ends. It returns nil then.
func (n *Node) Watch(ctx context.Context, trigger func()) error {
	tick := time.NewTicker(n.opts.Poll)
	defer tick.Stop()
	retry := time.Second
	for ctx.Err() == nil {
		kv, err := n.f.bucket(ctx, bucketHead, false)
		var w jetstream.KeyWatcher
		if err == nil {
			w, err = kv.Watch(ctx, headKey)
		}
		if err != nil {
			n.log.Debug("cannot watch the fleet head; retrying", "fleet", n.f.name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			case <-tick.C:
				trigger()
			}
			retry = min(retry*2, n.opts.Poll)
			continue
		}
		retry = time.Second
		n.follow(ctx, w, tick.C, trigger)
		w.Stop()
	}
	return nil
}

// noteHead keeps e, a head value the watcher delivered, for the next
// Fetch.
func (n *Node) noteHead(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		return
	}
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	if n.watched == nil || e.Revision() > n.watched.Revision() {
		n.watched = e
	}
}

// takeWatched returns the head value noteHead kept, if any, and forgets
// it.
func (n *Node) takeWatched() jetstream.KeyValueEntry {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	e := n.watched
	n.watched = nil
	return e
}

// follow triggers on every update of w and every tick until w ends or ctx
// does.
func (n *Node) follow(ctx context.Context, w jetstream.KeyWatcher, tick <-chan time.Time, trigger func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				n.noteHead(e)
				trigger()
			}
		case <-tick:
			trigger()
		}
	}
}

// Names returns the entity names of rev, sorted.
func (r *Revision) Names() []string {
	out := make([]string, 0, r.Entities)
	for _, pg := range r.pages {
		for _, e := range pg {
			out = append(out, e.Name)
		}
	}
	slices.Sort(out)
	return out
}
