package secrets

import (
	"context"
	"sync"
	"time"
)

// fetchTimeout bounds one fetch of one reference, retries included. A fetch
// is shared by every caller waiting for it, so it does not run on any one
// caller's context.
const fetchTimeout = 2 * time.Minute

// call is one fetch in flight; done is closed once val and err are set.
type call struct {
	done chan struct{}
	val  secret
	err  error
}

// flights collapses concurrent fetches of one reference into one
// (singleflight): the first caller starts the fetch, later callers wait for
// its result. Each caller stops waiting when its own context ends; the fetch
// itself runs until it finishes or fetchTimeout passes.
type flights struct {
	mu    sync.Mutex // guards calls
	calls map[string]*call
}

// do returns the result of fn for key, sharing one run of fn among
// concurrent callers.
func (f *flights) do(ctx context.Context, key string, fn func(context.Context) (secret, error)) (secret, error) {
	f.mu.Lock()
	c, ok := f.calls[key]
	if !ok {
		if f.calls == nil {
			f.calls = make(map[string]*call)
		}
		c = &call{done: make(chan struct{})}
		f.calls[key] = c
		// The fetch outlives a caller that gives up: its values stay on ctx
		// (trace ids) but not its cancellation.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		go func() {
			defer cancel()
			c.val, c.err = fn(fctx)
			f.mu.Lock()
			delete(f.calls, key)
			f.mu.Unlock()
			close(c.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
