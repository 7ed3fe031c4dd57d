package reconciler

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"certops/fixtures"
)

// TestRunReleasesColdStartOnce: Run gives the cold start's heap back to the
// operating system once the first revision is served, and only then.
func TestRunReleasesColdStartOnce(t *testing.T) {
	var calls atomic.Int32
	released := make(chan struct{}, 10)
	old := freeOSMemory
	freeOSMemory = func() { calls.Add(1); released <- struct{}{} }
	t.Cleanup(func() { freeOSMemory = old })

	ca := fixtures.NewRootCA(t, "release CA")
	yaml, _ := entity(t, ca, "shop", "shop.test")
	gw := startGateway(t, ca)
	r := New(Options{FS: fstest.MapFS{"shop.yaml": {Data: []byte(yaml)}}, Gateway: gw})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-released:
	case <-time.After(time.Minute):
		t.Fatal("Run served the first revision without releasing the cold start's heap")
	}
	if !r.Ready() {
		t.Error("released before the first revision was served")
	}
	for range 3 {
		r.Trigger()
		if _, err := r.ReconcileNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("freeOSMemory called %d times, want 1", n)
	}
}
