package secrets

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// reads shares the reads of secrets between references. The references
// "…/shop/cert" and "…/shop/key" name two fields of one secret and must
// come from one read of it, or a rotation between two reads would pair a
// new certificate with an old key (issue 17.6). Each refresh round has its
// own reads, shared for as long as it runs; first resolutions between
// rounds use the latest round's reads, each for firstUseWindow after it was
// made: long enough for a reconcile to resolve every field of a secret
// from one read, short enough that a field added to the store later is
// found without waiting for the next round.
type reads struct {
	g singleflight.Group

	mu         sync.Mutex // guards done and keepErrors
	done       map[string]readResult
	keepErrors bool // while its round runs: a failed read fails every field of it once
}

type readResult struct {
	val []byte
	err error
	at  time.Time
}

// firstUseWindow is how long a read serves first resolutions after its
// round ended.
const firstUseWindow = 10 * time.Second

func newReads(round bool) *reads {
	return &reads{done: make(map[string]readResult), keepErrors: round}
}

// endRound forgets the failed reads, so that a first resolution after the
// round tries the store again.
func (r *reads) endRound() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keepErrors = false
	for k, res := range r.done {
		if res.err != nil {
			delete(r.done, k)
		}
	}
}

func (r *reads) do(key string, fn func() ([]byte, error)) ([]byte, error) {
	r.mu.Lock()
	res, ok := r.done[key]
	if ok && !r.keepErrors && time.Since(res.at) >= firstUseWindow {
		delete(r.done, key)
		ok = false
	}
	r.mu.Unlock()
	if ok {
		return res.val, res.err
	}
	v, err, _ := r.g.Do(key, func() (any, error) {
		b, err := fn()
		r.mu.Lock()
		if err == nil || r.keepErrors {
			r.done[key] = readResult{val: b, err: err, at: time.Now()}
		}
		r.mu.Unlock()
		return b, err
	})
	b, _ := v.([]byte)
	return b, err
}

type readsKey struct{}

func withReads(ctx context.Context, r *reads) context.Context {
	return context.WithValue(ctx, readsKey{}, r)
}

// ReadOnce returns fn's result for key (a provider-qualified secret name,
// such as "vault:secret/data/tls/shop"), calling fn once for every
// reference of the same round that reads it. Outside a Cache's fetch it
// just calls fn. Callers must not modify the returned slice.
func ReadOnce(ctx context.Context, key string, fn func() ([]byte, error)) ([]byte, error) {
	r, ok := ctx.Value(readsKey{}).(*reads)
	if !ok {
		return fn()
	}
	return r.do(key, fn)
}
