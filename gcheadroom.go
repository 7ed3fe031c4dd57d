package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcFloor is the least heap goal the daemon keeps once it serves: the
// next garbage collection starts no sooner than when the heap reaches it.
// With GOGC=100 alone the runtime lets the heap grow by about its live
// size (4 MiB at least), and each cycle marks everything live: the
// daemon's small but fixed live heap (about 4 MiB with one entity: the
// public suffix list zlint builds at init, protobuf descriptors, the
// system roots, compiled regular expressions, 0.9 MiB of globals) was then
// marked every 4.5 MiB of allocation, about every 110 handshakes, which
// cost the daemon 70-200 µs of GC CPU per handshake against 13-44 for a
// plain crypto/tls server whose live heap is below 1 MiB
// (docs/performance.md, "Against HAProxy and nginx"). A 36 MiB goal
// leaves one entity's daemon 32 MiB of allocation between collections,
// about ten times fewer of them. It is a floor, not a headroom above the live heap: a live heap
// above 18 MiB already gets a larger goal from GOGC=100, so a large
// configuration keeps the runtime's default pacing and memory (10,000
// entities, about 27 MiB live: a fixed 32 MiB of headroom raised their
// goal by 5 MiB and their RSS by 7 against issue 13's 96 MiB target).
const gcFloor = 36 << 20

// servingHeadroom is the headroom keepGCHeadroom asks for once the daemon
// serves: what lifts the heap goal of a live heap of live bytes to gcFloor,
// and servingMinHeadroom at least.
func servingHeadroom(live uint64) uint64 {
	return max(gcFloor-min(live, gcFloor), servingMinHeadroom)
}

// servingMinHeadroom is the least headroom above the live heap once the
// daemon serves, whatever its size: each collection marks everything
// live, so the rarer they are, the less a handshake pays for them. With
// 10,000 entities, about 22 MiB live once the reconciler's results are at
// rest (schema.Results), GOGC=100 gave as much headroom: a collection
// every ~550 handshakes. 28 MiB collects every ~650 for 3 MiB more RSS
// (89 against 86 MiB, under issue 13's 96 and the 92 the daemon had before
// its results went to rest), and the collector's CPU per handshake fell
// from 14.4 to 11.5 µs (48 rounds of bench/peers.sh, docs/performance.md).
// A live heap above 28 MiB gets more from GOGC=100.
const servingMinHeadroom = 28 << 20

// startHeadroom is the headroom until the first revision is served. A
// cold start allocates several gigabytes for 10,000 entities (CUE's
// evaluation, YAML decoding, zlint) while its live heap grows to tens of
// MiB of results, and with 32 MiB of headroom it collected 55 times,
// marking that growing heap each time: 2.9 s of GC CPU, a third of the
// start's CPU (GODEBUG=gctrace=1). 64 MiB of headroom collects about
// half as often. 128 MiB collected less often still but started slower
// on the Intel VM of docs/performance.md (e2e ColdStart of 10,000: 6.3,
// 6.9 and 3.6 s to ready against 3.9, 3.1 and 2.6 s at 64 MiB, peak RSS
// about 225 MiB against 160): faulting fresh pages in cost more than the
// fewer collections saved. The peak is paid during the start only: the
// reconciler gives the free heap back to the OS once the first revision
// is served (debug.FreeOSMemory), and the headroom drops to
// servingHeadroom at that collection.
const startHeadroom = 64 << 20

// maxGCPercent bounds the GOGC the headroom may ask for (a nearly empty
// heap would otherwise ask for an unbounded one).
const maxGCPercent = 5000

// keepGCHeadroom raises GOGC after each garbage collection so that the
// next one starts no sooner than headroom(live) bytes of allocation later
// (live: the heap the last collection found live), and
// never lowers it below the value it started with. It returns when ctx is
// done, after restoring that value. It does nothing when the GOGC
// environment variable is set (the operator chose the pacing) or when the
// collector is off. A memory limit (GOMEMLIMIT) still caps the heap: the
// runtime collects at the lower of the two goals.
func keepGCHeadroom(ctx context.Context, headroom func(live uint64) uint64) {
	if os.Getenv("GOGC") != "" {
		return
	}
	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(gogc)
	if gogc[0].Value.Kind() != metrics.KindUint64 || gogc[0].Value.Uint64() > maxGCPercent {
		return // off (-1 reads as a huge value), or set far above what we would ask for
	}
	base := int(gogc[0].Value.Uint64())
	cycles := make(chan struct{}, 1)
	w := &gcWatch{cycles: cycles, done: ctx.Done()}
	w.arm()
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	current := base
	for {
		metrics.Read(samples)
		var roots, live uint64
		if s := samples[0].Value; s.Kind() == metrics.KindUint64 {
			live = s.Uint64()
		}
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				roots += s.Value.Uint64()
			}
		}
		if pct := gcPercentFor(roots, base, headroom(live)); pct != current {
			debug.SetGCPercent(pct)
			current = pct
		}
		select {
		case <-ctx.Done():
			debug.SetGCPercent(base)
			return
		case <-cycles:
		}
	}
}

// gcPercentFor returns the GOGC at which the runtime's next heap goal,
// live + roots*GOGC/100 (roots: the live heap, stacks and globals), is at
// least headroom above the live heap: base, or more when base gives less
// headroom, up to maxGCPercent.
func gcPercentFor(roots uint64, base int, headroom uint64) int {
	if roots == 0 {
		return base
	}
	need := int(min(headroom*100/roots+1, maxGCPercent))
	return max(base, need)
}

// gcWatch signals cycles once after every garbage collection, until done
// is closed: each cycle frees a sentinel whose cleanup signals and arms
// the next one. It costs nothing between collections.
type gcWatch struct {
	cycles chan<- struct{}
	done   <-chan struct{}
}

// gcSentinel holds a pointer so that it is not batched with other objects
// by the tiny allocator (whose objects may never run their cleanups).
type gcSentinel struct{ _ *byte }

func (w *gcWatch) arm() {
	runtime.AddCleanup(new(gcSentinel), func(w *gcWatch) {
		select {
		case <-w.done:
			return
		default:
		}
		select {
		case w.cycles <- struct{}{}:
		default: // a signal is pending already
		}
		w.arm()
	}, w)
}
