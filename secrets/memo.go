package secrets

import (
	"context"
	"sync"
)

// roundMemo shares the reads of one refresh round: the references
// "…/shop/cert" and "…/shop/key" name two fields of one secret, and must
// come from one read of it, or a rotation between two reads would pair a
// new certificate with an old key. It lives as long as its round.
type roundMemo struct {
	mu    sync.Mutex // guards reads
	reads map[string]*call
}

type roundMemoKey struct{}

func withRoundMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, roundMemoKey{}, &roundMemo{reads: make(map[string]*call)})
}

// memoized returns fn's result for key, calling fn once per round. Outside
// a round (a first resolution) it just calls fn.
func memoized(ctx context.Context, key string, fn func() ([]byte, error)) ([]byte, error) {
	m, ok := ctx.Value(roundMemoKey{}).(*roundMemo)
	if !ok {
		return fn()
	}
	m.mu.Lock()
	c, ok := m.reads[key]
	if ok {
		m.mu.Unlock()
		<-c.done
		return c.val, c.err
	}
	c = &call{done: make(chan struct{})}
	m.reads[key] = c
	m.mu.Unlock()
	c.val, c.err = fn()
	close(c.done)
	return c.val, c.err
}
