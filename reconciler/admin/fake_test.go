package admin

import (
	"context"
	"sync"
	"sync/atomic"

	"certops/plan"
	"certops/reconciler"
)

// fakeRec is a Reconciler for the handler tests that do not need a real
// one; the end-to-end tests use *reconciler.Reconciler.
type fakeRec struct {
	triggers atomic.Int64

	mu       sync.Mutex // guards the fields below
	ready    bool
	status   *reconciler.Status
	entities []plan.EntityInfo
	attempt  *reconciler.Attempt
	err      error
}

func (f *fakeRec) Trigger() { f.triggers.Add(1) }

func (f *fakeRec) ReconcileNow(ctx context.Context) (*reconciler.Attempt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempt, f.err
}

func (f *fakeRec) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeRec) Status() *reconciler.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeRec) Entities() []plan.EntityInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.entities
}
