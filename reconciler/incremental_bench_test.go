package reconciler

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
	"certops/schema"
	"certops/source"
)

// BenchmarkFolderWriteServed10k measures, in a watched folder of 10,000
// entities, the time from rewriting one entity file (an editor's atomic
// save: a dot-file renamed over it) to the end of the reconcile that makes
// the gateway serve it; each write is then checked with a real handshake
// (untimed). It reports p50 and p99 of that latency (issue 13: p50 ≤
// 10 ms), and the phases of the reconcile.
func BenchmarkFolderWriteServed10k(b *testing.B) { folderWriteServed(b, nil) }

// BenchmarkFolderWriteServed10kHygiene is BenchmarkFolderWriteServed10k
// with the certificate hygiene checks on, as `certops run` has them.
func BenchmarkFolderWriteServed10kHygiene(b *testing.B) { folderWriteServed(b, &schema.Hygiene{}) }

func folderWriteServed(b *testing.B, hygiene *schema.Hygiene) {
	dir := b.TempDir()
	ca := fixtures.NewRootCA(b, "bench CA")
	for i := range benchEntities {
		name := fmt.Sprintf("e%05d", i)
		yaml, _ := entity(b, ca, name, name+".example.com")
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i/100), name+".yaml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	origin, err := source.NewDir(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	gw := startGateway(b, ca)
	var mu sync.Mutex
	var last RunReport
	applied := make(chan time.Time, 100)
	rec := New(Options{Source: origin, Gateway: gw.Server, Hygiene: hygiene, Observe: func(r RunReport) {
		mu.Lock()
		last = r
		mu.Unlock()
		if r.Result == ResultApplied {
			applied <- time.Now()
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	wait := func(what string) time.Time {
		select {
		case t := <-applied:
			return t
		case <-time.After(5 * time.Minute):
			b.Fatalf("%s: no applied revision", what)
		}
		return time.Time{}
	}
	wait("cold start")
	// Watch is in place once its first (full) fetch ran: settle it with
	// one change, then measure.
	name, sni := "e00042", "e00042.example.com"
	p := filepath.Join(dir, "d000", name+".yaml")
	write := func() (time.Time, string) {
		yaml, leaf := entity(b, ca, name, sni)
		tmp := filepath.Join(dir, "d000", "."+name+".yaml.tmp")
		if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := os.Rename(tmp, p); err != nil {
			b.Fatal(err)
		}
		return t0, leaf.Cert.SerialNumber.String()
	}
	drain := func() {
		for {
			select {
			case <-applied:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	for range 2 {
		write()
		wait("warm-up")
		drain()
	}
	var lat []time.Duration
	phases := make(map[Phase]time.Duration)
	for b.Loop() {
		t0, want := write()
		t1 := wait("one-file write")
		lat = append(lat, t1.Sub(t0))
		b.StopTimer()
		got, err := gw.served(sni)
		if err != nil || got.SerialNumber.String() != want {
			b.Fatalf("after the write: served %v (%v), want serial %s", got.SerialNumber, err, want)
		}
		mu.Lock()
		for ph, d := range last.Phases {
			phases[ph] += d
		}
		mu.Unlock()
		drain()
		b.StartTimer()
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*99)/100]), "p99-ms")
	for _, ph := range []Phase{PhaseFetch, PhaseLoad, PhaseResolve, PhasePlan, PhaseApply} {
		b.ReportMetric(ms(phases[ph])/float64(len(lat)), ph.String()+"-ms")
	}
}
