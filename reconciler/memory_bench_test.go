package reconciler

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
	"certops/gateway"
	"certops/plan"
	"certops/schema"
	"certops/source"
)

// heapSample is the live heap at the end of a forced GC: all of it, and
// the part the collector scans for pointers (what a GC cycle costs).
type heapSample struct {
	live, scan, objects uint64
	gc                  time.Duration // the CPU of one collection (gcCPU)
}

func sampleHeap() heapSample {
	runtime.GC()
	runtime.GC() // the second cycle frees what finalizers released in the first
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/heap:bytes"}, {Name: "/gc/heap/objects:objects"}}
	metrics.Read(s)
	return heapSample{live: s[0].Value.Uint64(), scan: s[1].Value.Uint64(), objects: s[2].Value.Uint64(), gc: gcCPU(8)}
}

func (a heapSample) minus(b heapSample) heapSample {
	return heapSample{
		live:    a.live - min(a.live, b.live),
		scan:    a.scan - min(a.scan, b.scan),
		objects: a.objects - min(a.objects, b.objects),
		gc:      max(a.gc-b.gc, 0),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// gcCPU returns the CPU time of one full collection of the heap as it is,
// the mean of n: what each cycle costs the daemon while it serves. It is
// the process's CPU time (getrusage) while nothing else runs in it, so
// other work on the machine moves it less than a clock would (the
// runtime's own GC CPU metrics are clock time while a worker runs).
func gcCPU(n int) time.Duration {
	runtime.GC()
	start := fixtures.ProcessCPU()
	for range n {
		runtime.GC()
	}
	return (fixtures.ProcessCPU() - start) / time.Duration(n)
}

// heapComponent is the heap one part of the daemon keeps alive: what a GC
// frees once it is dropped, with the parts dropped before it already gone.
type heapComponent struct {
	name string
	heap heapSample
}

// BenchmarkHeap10k loads 10,000 entities through the daemon's path (a
// folder or a Git source, hygiene checks on, a listening gateway), serves
// a handshake for as many names as the gateway's parsed cache holds, and
// reports the live heap by component (issue 13: heap by component). Each
// component is measured by dropping it and collecting: what was freed is
// what only it kept alive, the components dropped before it gone already,
// in this order:
//
//	gateway parsed cache  entries built by handshakes (gateway/entry.go)
//	descriptions          the plan.Set (packed descriptions) of the applied
//	                      state, status, metrics and the API; the status's
//	                      expiring list
//	built records         reconciler/resolve.go, beyond the descriptions
//	validation cache      reconciler/validate.go: file results, schema
//	                      entities (schema/entity.go) and what they hold
//	CUE validator         the compiled schema and policy
//	source and tree       source.Tree and the source (go-git storage for Git)
//	gateway snapshot      the arena and its indexes (gateway/snapshot.go)
//
// "other" is what stays: the runtime, package globals (CUE's and
// go-git's included). scan-MiB is the part of each that is scanned for
// pointers by every GC cycle. For a profile by allocation site of the
// heap while serving (CERTOPS_HEAP_PROFILE; -memprofile would be written
// after the drops):
//
//	CERTOPS_HEAP_PROFILE=mem.out go test -run XXX -bench Heap10k/dir -benchtime 1x ./reconciler/
//	go tool pprof -sample_index=inuse_space -top mem.out
func BenchmarkHeap10k(b *testing.B) {
	for _, kind := range []string{"dir", "git"} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				heapReport(b, kind)
			}
		})
	}
}

func heapReport(b *testing.B, kind string) {
	b.StopTimer()
	defer b.StartTimer()
	if os.Getenv("CERTOPS_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 4 << 10
	}
	ca := fixtures.NewRootCA(b, "heap CA")
	files := make(map[string]string, benchEntities)
	for i := range benchEntities {
		name := fmt.Sprintf("e%05d", i)
		yaml, _ := entity(b, ca, name, name+".example.com")
		files[fmt.Sprintf("d%03d/%s.yaml", i/100, name)] = yaml
	}
	var origin source.Source
	switch kind {
	case "dir":
		dir := b.TempDir()
		for p, yaml := range files {
			p = filepath.Join(dir, p)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		d, err := source.NewDir(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		origin = d
	case "git":
		repo := fixtures.NewGitRepo(b)
		repo.Commit(b, "fleet", files)
		g, err := source.NewGit(source.GitOptions{URL: repo.FileURL(), Dir: filepath.Join(b.TempDir(), "clone")})
		if err != nil {
			b.Fatal(err)
		}
		origin = g
	}
	files = nil
	gw := gateway.New(gateway.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = gw.Serve(ctx, ln) })
	defer func() { cancel(); wg.Wait() }()

	before := sampleHeap()
	b.StartTimer()
	rec := New(Options{Source: origin, Gateway: gw, Hygiene: &schema.Hygiene{}})
	origin = nil
	att, err := rec.ReconcileNow(b.Context())
	if err != nil || att.Result != ResultApplied {
		b.Fatalf("cold start: %v %+v", err, att)
	}
	b.StopTimer()
	rec.releaseColdStart() // what Run does once the first revision is served
	loaded := sampleHeap()

	// Fill the parsed cache: entity i takes slot i mod its size, so the
	// first DefaultCacheSize entities fill it.
	names := make(chan string)
	var hs sync.WaitGroup
	for range 2 {
		hs.Go(func() {
			for n := range names {
				if err := handshakeOnce(ln.Addr().String(), n); err != nil {
					b.Errorf("handshake %s: %v", n, err)
				}
			}
		})
	}
	for i := range min(benchEntities, gateway.DefaultCacheSize) {
		names <- fmt.Sprintf("e%05d.example.com", i)
	}
	close(names)
	hs.Wait()
	served := sampleHeap()
	if p := os.Getenv("CERTOPS_HEAP_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}

	var parts []heapComponent
	last := served
	drop := func(name string, f func()) {
		f()
		now := sampleHeap()
		parts = append(parts, heapComponent{name, last.minus(now)})
		last = now
	}
	parts = append(parts, heapComponent{"gateway parsed cache", served.minus(loaded)})
	drop("descriptions", func() {
		rec.entities.Store(&plan.Set{})
		rec.applied.infos = nil
		rec.applied.plan = nil
		st := *rec.status.Load()
		st.Expiring, st.Plan = nil, nil
		rec.status.Store(&st)
	})
	drop("built records", func() { rec.applied.built = nil })
	drop("validation cache", func() {
		// The results are held by the last load (the next load's
		// cache) and the checks across files.
		rec.loader.last = nil
		rec.loader.set = schema.SetChecker{}
	})
	drop("CUE validator", func() { rec.loader.validator = nil })
	drop("source and tree", func() {
		rec.applied.tree = nil
		rec.origin = nil
		rec.opts.Source = nil
	})
	drop("gateway snapshot", func() {
		if err := gw.Apply(gateway.Config{}); err != nil {
			b.Fatal(err)
		}
	})
	// The snapshot held the parsed cache too, measured above.
	snap := &parts[len(parts)-1].heap
	*snap = snap.minus(parts[0].heap)
	runtime.KeepAlive(rec)
	parts = append(parts, heapComponent{"other (runtime, globals)", last.minus(before)})

	const mib = 1 << 20
	total := served.minus(before)
	b.Logf("%s source, %d entities: live heap %.1f MiB, scanned %.1f MiB, %d objects (before the load: %.1f MiB); a collection: %.1f ms of CPU (%.1f before the load)",
		kind, benchEntities, float64(total.live)/mib, float64(total.scan)/mib, total.objects, float64(before.live)/mib,
		ms(served.gc), ms(before.gc))
	b.Logf("%-26s %9s %9s %9s %7s", "component", "live MiB", "scan MiB", "objects", "GC ms")
	for _, p := range parts {
		b.Logf("%-26s %9.2f %9.2f %9d %7.1f", p.name, float64(p.heap.live)/mib, float64(p.heap.scan)/mib, p.heap.objects, ms(p.heap.gc))
	}
	b.ReportMetric(float64(total.live)/mib, "heap-MiB")
	b.ReportMetric(float64(total.scan)/mib, "scan-MiB")
	b.ReportMetric(float64(total.objects), "objects")
	b.ReportMetric(ms(served.gc), "gc-cpu-ms")
	b.ReportMetric(float64(served.live)/mib, "process-heap-MiB")
	cur, _ := rss()
	b.ReportMetric(cur, "rss-MiB")
}

// handshakeOnce does one TLS 1.3 handshake for sni; the served chain is not
// verified (the cache is filled, not the gateway tested).
func handshakeOnce(addr, sni string) error {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		ServerName:         sni,
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
	}}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}
