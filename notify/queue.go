package notify

import "sync"

// queue is a bounded FIFO that drops its oldest item when full, so that a
// slow consumer costs memory up to a bound and the producer never waits.
type queue[T any] struct {
	mu      sync.Mutex // guards items, dropped, closed
	items   []T
	max     int
	dropped uint64
	closed  bool
	ready   chan struct{} // capacity 1: signalled when items become non-empty or closed
}

func newQueue[T any](max int) *queue[T] {
	return &queue[T]{max: max, ready: make(chan struct{}, 1)}
}

// push appends v, dropping the oldest item when the queue is full. It
// reports whether v was queued (false when the queue is closed) and the
// count of drops so far when this push dropped one, else 0.
func (q *queue[T]) push(v T) (queued bool, dropped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false, 0
	}
	if len(q.items) >= q.max {
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		q.dropped++
		dropped = q.dropped
	}
	q.items = append(q.items, v)
	q.signal()
	return true, dropped
}

func (q *queue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop removes the oldest item; ok is false when the queue is empty.
func (q *queue[T]) pop() (v T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return v, false
	}
	v = q.items[0]
	var zero T
	q.items[0] = zero
	q.items = q.items[1:]
	return v, true
}

// close stops pushes; pop still drains what is queued.
func (q *queue[T]) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.signal()
}

func (q *queue[T]) state() (length int, dropped uint64, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), q.dropped, q.closed
}
