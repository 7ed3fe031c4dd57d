package reconciler

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
	"certops/gateway"
	"certops/source"
)

// benchEntities is the size of the benchmark repository; CERTOPS_BENCH_N
// overrides it for quick profiling.
var benchEntities = func() int {
	if n, err := strconv.Atoi(os.Getenv("CERTOPS_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 10000
}()

// benchRepo commits n entities, 100 per folder, to a new repository.
func benchRepo(b *testing.B, n int) (*fixtures.GitRepo, *fixtures.CA) {
	b.Helper()
	ca := fixtures.NewRootCA(b, "bench CA")
	files := make(map[string]string, n)
	for i := range n {
		name := fmt.Sprintf("e%05d", i)
		yaml, _ := entity(b, ca, name, name+".example.com")
		files[fmt.Sprintf("d%03d/%s.yaml", i/100, name)] = yaml
	}
	repo := fixtures.NewGitRepo(b)
	repo.Commit(b, "fleet", files)
	return repo, ca
}

// rss returns the process's resident set size and its peak, from
// /proc/self/status (Linux), in MiB.
func rss() (cur, peak float64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			cur = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return cur, peak
}

func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// BenchmarkColdStart10k clones a 10,000-entity repository over file:// into
// a fresh data dir, validates it and applies it to a gateway.
func BenchmarkColdStart10k(b *testing.B) {
	repo, _ := benchRepo(b, benchEntities)
	var last RunReport
	var rec *Reconciler
	for b.Loop() {
		origin, err := source.NewGit(source.GitOptions{URL: repo.FileURL(), Dir: filepath.Join(b.TempDir(), "clone")})
		if err != nil {
			b.Fatal(err)
		}
		rec = New(Options{Source: origin, Gateway: gateway.New(gateway.Options{}), Observe: func(r RunReport) { last = r }})
		att, err := rec.ReconcileNow(b.Context())
		if err != nil || att.Result != ResultApplied {
			b.Fatalf("cold start: %v %+v", err, att)
		}
	}
	for _, p := range []Phase{PhaseFetch, PhaseLoad, PhaseResolve, PhasePlan, PhaseApply} {
		b.ReportMetric(float64(last.Phases[p])/float64(time.Millisecond), p.String()+"-ms")
	}
	cur, peak := rss()
	b.ReportMetric(heapMiB(), "heap-MiB")
	runtime.KeepAlive(rec)
	b.ReportMetric(cur, "rss-MiB")
	b.ReportMetric(peak, "peak-rss-MiB")
}

// BenchmarkOneFileCommit10k measures the reconcile of a commit that changes
// one file of a 10,000-entity repository: the fetch, and everything after
// it (load, resolve, plan, apply), which DESIGN.md 8 wants under 100 ms.
func BenchmarkOneFileCommit10k(b *testing.B) {
	repo, ca := benchRepo(b, benchEntities)
	origin, err := source.NewGit(source.GitOptions{URL: repo.FileURL(), Dir: filepath.Join(b.TempDir(), "clone")})
	if err != nil {
		b.Fatal(err)
	}
	var last RunReport
	rec := New(Options{Source: origin, Gateway: gateway.New(gateway.Options{}), Observe: func(r RunReport) { last = r }})
	if att, _ := rec.ReconcileNow(b.Context()); att.Result != ResultApplied {
		b.Fatalf("cold start: %+v", att)
	}
	heap := heapMiB()
	var fetch, rest time.Duration
	phases := make(map[Phase]time.Duration)
	for b.Loop() {
		b.StopTimer()
		yaml, _ := entity(b, ca, "e00042", "e00042.example.com")
		repo.Commit(b, "rotate", map[string]string{"d000/e00042.yaml": yaml})
		b.StartTimer()
		att, err := rec.ReconcileNow(b.Context())
		if err != nil || att.Result != ResultApplied {
			b.Fatalf("one-file commit: %v %+v", err, att)
		}
		for p, d := range last.Phases {
			phases[p] += d
		}
		fetch += last.Phases[PhaseFetch]
		rest += last.Phases[PhaseLoad] + last.Phases[PhaseResolve] + last.Phases[PhasePlan] + last.Phases[PhaseApply]
	}
	n := float64(b.N) * float64(time.Millisecond)
	b.ReportMetric(float64(fetch)/n, "fetch-ms")
	b.ReportMetric(float64(rest)/n, "excl-fetch-ms")
	for _, p := range []Phase{PhaseLoad, PhaseResolve, PhasePlan, PhaseApply} {
		b.ReportMetric(float64(phases[p])/n, p.String()+"-ms")
	}
	b.ReportMetric(heap, "heap-MiB")
	cur, _ := rss()
	b.ReportMetric(cur, "rss-MiB")
}
