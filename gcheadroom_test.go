package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name     string
		roots    uint64
		base     int
		headroom uint64
		want     int
	}{
		{"one entity: 4.8 MiB of roots", 48 * mib / 10, 100, 32 * mib, 667},
		{"live heap larger than the headroom", 64 * mib, 100, 32 * mib, 100},
		{"exactly the headroom", 32 * mib, 100, 32 * mib, 101},
		{"a higher base is kept", 4 * mib, 1000, 32 * mib, 1000},
		{"nearly empty heap is bounded", 1024, 100, 32 * mib, maxGCPercent},
		{"nothing read", 0, 100, 32 * mib, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gcPercentFor(tt.roots, tt.base, tt.headroom); got != tt.want {
				t.Errorf("gcPercentFor(%d, %d, %d) = %d, want %d", tt.roots, tt.base, tt.headroom, got, tt.want)
			}
		})
	}
}

// TestServingHeadroom checks the floor and the least headroom: a small
// live heap is lifted to gcFloor, a middling one gets servingMinHeadroom
// above it, a large one keeps GOGC=100's pacing.
func TestServingHeadroom(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name     string
		live     uint64
		roots    uint64
		headroom uint64
		want     int // GOGC for a base of 100
	}{
		{"one entity: 4 MiB live", 4 * mib, 48 * mib / 10, gcFloor - 4*mib, 667},
		{"10,000 entities: 22 MiB live", 22 * mib, 23 * mib, servingMinHeadroom, 122},
		{"past the least headroom", 64 * mib, 65 * mib, servingMinHeadroom, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headroom := servingHeadroom(tt.live)
			if headroom != tt.headroom {
				t.Errorf("servingHeadroom(%d MiB) = %d MiB, want %d", tt.live/mib, headroom/mib, tt.headroom/mib)
			}
			if got := gcPercentFor(tt.roots, 100, headroom); got != tt.want {
				t.Errorf("GOGC for %d live = %d, want %d", tt.live, got, tt.want)
			}
		})
	}
}

func readGOGC(t testing.TB) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitGOGC collects until GOGC satisfies ok, for up to 10 s: the
// percent follows each collection a moment later.
func waitGOGC(t testing.TB, what string, ok func(uint64) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(readGOGC(t)) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC = %d after collections, want it %s", readGOGC(t), what)
		}
		runtime.GC()
		runtime.Gosched()
	}
}

// runHeadroom runs keepGCHeadroom with GOGC unset and a base of 100 until
// the returned stop is called (at the latest when the test ends); stop
// fails the test if keepGCHeadroom does not return within 10 s.
func runHeadroom(t *testing.T, headroom func(live uint64) uint64) (stop func()) {
	t.Setenv("GOGC", "")
	base := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(base) })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		keepGCHeadroom(ctx, headroom)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("keepGCHeadroom did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestKeepGCHeadroom runs the real collector: the percent is raised for
// a heap far smaller than the headroom, goes back to the base after a
// collection that finds a live heap larger than the headroom, rises again
// when that heap is gone, and the base is restored when the context ends.
func TestKeepGCHeadroom(t *testing.T) {
	const headroom = 64 << 20
	var seen atomic.Uint64 // the largest live heap keepGCHeadroom passed on
	stop := runHeadroom(t, func(live uint64) uint64 {
		if live > seen.Load() {
			seen.Store(live)
		}
		return headroom
	})
	waitGOGC(t, "raised for a small heap", func(v uint64) bool { return v > 100 })
	live := make([]byte, 2*headroom)
	waitGOGC(t, "back to 100 for a live heap twice the headroom", func(v uint64) bool { return v == 100 })
	runtime.KeepAlive(live)
	if got := seen.Load(); got < uint64(len(live)) {
		t.Errorf("headroom was asked for a live heap of at most %d bytes, want at least the %d held", got, len(live))
	}
	waitGOGC(t, "raised again once that heap is gone", func(v uint64) bool { return v > 100 })
	stop()
	if got := readGOGC(t); got != 100 {
		t.Errorf("GOGC = %d after keepGCHeadroom returned, want 100 restored", got)
	}
}

// TestKeepGCHeadroomLeavesGOGC checks that an operator's GOGC wins.
func TestKeepGCHeadroomLeavesGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	base := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(base) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		keepGCHeadroom(t.Context(), func(uint64) uint64 { return 4 << 30 })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("keepGCHeadroom runs although GOGC is set")
	}
	runtime.GC()
	if got := readGOGC(t); got != 100 {
		t.Errorf("GOGC = %d with GOGC=100 in the environment, want 100", got)
	}
}

// TestKeepGCHeadroomFollowsHeadroom checks that the headroom is read again
// after each collection: what the daemon asks for during its start drops
// to the steady headroom at the next collection once the first revision
// is served.
func TestKeepGCHeadroomFollowsHeadroom(t *testing.T) {
	var headroom atomic.Uint64
	headroom.Store(1 << 30)
	runHeadroom(t, func(uint64) uint64 { return headroom.Load() })
	var high uint64
	waitGOGC(t, "raised for 1 GiB of headroom", func(v uint64) bool { high = v; return v > 1000 })
	headroom.Store(1 << 20) // less than the test binary's live heap
	waitGOGC(t, "back to 100 for 1 MiB of headroom", func(v uint64) bool { return v == 100 })
	headroom.Store(64 << 20)
	waitGOGC(t, "raised again, below the first", func(v uint64) bool { return v > 100 && v < high })
}
