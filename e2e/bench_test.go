package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks of the binary as a user runs it. They measure and report;
// they assert only that the daemon works. Reproduce the README figures with
//
//	go test ./e2e -run '^$' -bench . -benchtime 1x

// benchRepo is a generated repository of n entities, one file each, named
// e000000 ... with the SNI e000000.bench.test. All leaves share one key
// (generation is the bottleneck, not what is measured) but each has its
// own certificate and serial.
type benchRepo struct {
	dir   string
	n     int
	ca    *testCA
	roots *x509.CertPool
}

// benchReadyTimeout bounds a benchmark daemon's start with up to 100,000
// entities; it is a limit for a shared machine, not a measurement.
const benchReadyTimeout = 15 * time.Minute

var (
	benchReposMu sync.Mutex // guards benchRepos
	benchRepos   = map[int]*benchRepo{}
)

// getBenchRepo returns the repository of n entities, generating it on
// first use; it lives until the test binary ends.
func getBenchRepo(tb testing.TB, n int) *benchRepo {
	tb.Helper()
	requireBinary(tb)
	benchReposMu.Lock()
	defer benchReposMu.Unlock()
	if r, ok := benchRepos[n]; ok {
		return r
	}
	r := &benchRepo{dir: filepath.Join(workDir, fmt.Sprintf("bench-%d", n)), n: n, ca: newCA(tb, "e2e bench CA")}
	r.roots = pool(r.ca)
	key := newKey(tb, algECDSA)
	for i := range n {
		name := benchSNI(i)
		leaf := r.ca.issue(tb, algECDSA, name, []string{name}, leafOptions{key: key})
		writeFile(tb, r.dir, fmt.Sprintf("%03d/e%06d.yaml", i/1000, i), entity{
			name: fmt.Sprintf("e%06d", i), snis: []string{name}, chains: []*testLeaf{leaf},
		}.yaml())
	}
	benchRepos[n] = r
	return r
}

func benchSNI(i int) string { return fmt.Sprintf("e%06d.bench.test", i) }

// rssKiB reads VmRSS of process pid from /proc.
func rssKiB(tb testing.TB, pid int) int {
	tb.Helper()
	return procStatus(tb, pid)["VmRSS"]
}

// cpuSeconds reads the CPU time (user and system) process pid has used,
// from /proc/PID/stat, in seconds.
func cpuSeconds(tb testing.TB, pid int) float64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatalf("read CPU time: %v", err)
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted from 3 (state) start after its closing parenthesis.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	if i < 0 || len(f) < 13 {
		tb.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	var ticks float64
	for _, s := range f[11:13] { // utime and stime, fields 14 and 15
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			tb.Fatalf("/proc/%d/stat: %q: %v", pid, s, err)
		}
		ticks += v
	}
	return ticks / 100 // USER_HZ, 100 on Linux
}

// procStatus reads the memory lines of /proc/PID/status, in KiB: VmRSS,
// its parts RssAnon (the Go heap, stacks, runtime) and RssFile (the
// binary's pages), and VmHWM (the peak of VmRSS).
func procStatus(tb testing.TB, pid int) map[string]int {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("read RSS: %v", err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch k := strings.TrimSuffix(f[0], ":"); k {
		case "VmRSS", "RssAnon", "RssFile", "VmHWM":
			kib, err := strconv.Atoi(f[1])
			if err != nil {
				tb.Fatalf("%s %q: %v", k, line, err)
			}
			out[k] = kib
		}
	}
	if _, ok := out["VmRSS"]; !ok {
		tb.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	return out
}

// BenchmarkColdStart measures `certops run --source DIR` from process
// start to /readyz 200 (load, validate, apply) for a directory of n
// entities, the CPU the daemon spent until then (cpu-s-to-ready, the mean
// of the iterations: on a shared machine it varies less than the wall
// time), and the RSS of the
// ready daemon: at /readyz (with its parts and the peak so far) and
// settled, settleTime later.
// settleTime is how long after /readyz BenchmarkColdStart reads the
// settled RSS: the start's free heap is given back right after the first
// revision is served, and the proof of the served state then runs.
const settleTime = 3 * time.Second

func BenchmarkColdStart(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
			if testing.Short() {
				b.Skip("e2e: skipped under -short")
			}
			r := getBenchRepo(b, n)
			var mem map[string]int
			var settled int
			var cpu float64 // summed over the iterations
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				d := runDaemon(b, daemonConfig{args: []string{"--source", r.dir}, readyTimeout: benchReadyTimeout})
				elapsed := time.Since(start)
				b.StopTimer()
				cpu += cpuSeconds(b, d.cmd.Process.Pid)
				if c, err := servedLeaf(d.listen, benchSNI(n-1), r.roots); err != nil || c.Subject.CommonName != benchSNI(n-1) {
					b.Fatalf("after cold start: %s served %v, err %v", benchSNI(n-1), c, err)
				}
				mem = procStatus(b, d.cmd.Process.Pid)
				// Once the first revision is served the daemon gives the
				// start's free heap back (releaseColdStart): what it keeps
				// while it serves is read a moment later.
				time.Sleep(settleTime)
				settled = procStatus(b, d.cmd.Process.Pid)["VmRSS"]
				d.stop()
				b.ReportMetric(elapsed.Seconds(), "s-to-ready")
				b.StartTimer()
			}
			b.ReportMetric(cpu/float64(b.N), "cpu-s-to-ready")
			rss := mem["VmRSS"]
			b.ReportMetric(float64(rss)/1024, "RSS-MiB")
			b.ReportMetric(float64(rss)/float64(n)*10_000/1024, "RSS-MiB/10k-entities")
			b.ReportMetric(float64(mem["RssAnon"])/1024, "anon-MiB")
			b.ReportMetric(float64(mem["RssFile"])/1024, "file-MiB")
			b.ReportMetric(float64(mem["VmHWM"])/1024, "peak-MiB")
			b.ReportMetric(float64(settled)/1024, "settled-MiB")
		})
	}
}

// BenchmarkHandshakes measures full TLS 1.3 handshakes per second through
// the binary with 1, 10,000 and 100,000 entities loaded, each handshake for
// a random entity's name. The three daemons run side by side and are
// measured in interleaved rounds (the order alternating), so that a change
// in the machine's load weighs on all of them alike; it reports the median
// rate of each and the ratios against one entity. The client runs in this
// process on the same cores: compare the rows of one run, not absolute
// values across machines.
func BenchmarkHandshakes(b *testing.B) {
	if testing.Short() {
		b.Skip("e2e: skipped under -short")
	}
	type target struct {
		n int
		r *benchRepo
		d *daemon
	}
	var targets []target
	for _, n := range []int{1, 10_000, 100_000} {
		r := getBenchRepo(b, n)
		d := runDaemon(b, daemonConfig{args: []string{"--source", r.dir}, readyTimeout: benchReadyTimeout})
		// Warm up: the first handshakes pay for lazy work.
		for i := range 20 {
			if _, err := servedLeaf(d.listen, benchSNI(i%n), r.roots); err != nil {
				b.Fatal(err)
			}
		}
		targets = append(targets, target{n, r, d})
	}
	const rounds, slice = 6, 1500 * time.Millisecond
	rates := make([][]float64, len(targets))
	b.ResetTimer()
	for range b.N {
		for round := range rounds {
			for j := range targets {
				i := j
				if round%2 == 1 {
					i = len(targets) - 1 - j
				}
				t := targets[i]
				rates[i] = append(rates[i], handshakeRate(b, t.d.listen, t.n, t.r.roots, slice))
			}
		}
	}
	b.StopTimer()
	base := medianF(rates[0])
	for i, t := range targets {
		m := medianF(rates[i])
		b.ReportMetric(m, fmt.Sprintf("hs/s-%d", t.n))
		if i > 0 {
			b.ReportMetric(m/base, fmt.Sprintf("ratio-%d/1", t.n))
		}
	}
}

// handshakeRate runs full TLS 1.3 handshakes against addr from 8 clients
// for d, each for a random one of n entities, and returns handshakes per
// second. A failed handshake fails the benchmark.
func handshakeRate(b *testing.B, addr string, n int, roots *x509.CertPool, d time.Duration) float64 {
	var count atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for time.Now().Before(deadline) {
				cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13, ServerName: benchSNI(rng.IntN(n))}
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
				if err != nil {
					b.Errorf("handshake for %s: %v", cfg.ServerName, err)
					return
				}
				conn.Close()
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(count.Load()) / time.Since(start).Seconds()
}

// medianF returns the middle of xs (sorted in place).
func medianF(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// benchGit returns a bare repository holding r's files in one commit,
// created on first use, and the folder that holds it (git daemon's base
// path).
func (r *benchRepo) git(tb testing.TB) (root, name string) {
	tb.Helper()
	benchReposMu.Lock()
	defer benchReposMu.Unlock()
	root = r.dir + ".git-root"
	name = "bench.git"
	bare := filepath.Join(root, name)
	if _, err := os.Stat(bare); err == nil {
		return root, name
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		tb.Fatal(err)
	}
	git(tb, root, "init", "-q", "--bare", "-b", "main", name)
	// Commit the generated folder without turning it into a working copy.
	gitDir := []string{"--git-dir", bare, "--work-tree", r.dir}
	git(tb, root, append(gitDir, "add", "-A")...)
	git(tb, root, append(gitDir, "commit", "-q", "-m", fmt.Sprintf("%d entities", r.n))...)
	return root, name
}

// BenchmarkColdStartGit measures `certops run --source git://...` with an
// empty data dir from process start to /readyz 200 (clone, load, validate,
// apply) for a repository of 10,000 entities served by git daemon.
func BenchmarkColdStartGit(b *testing.B) {
	if testing.Short() {
		b.Skip("e2e: skipped under -short")
	}
	const n = 10_000
	r := getBenchRepo(b, n)
	root, name := r.git(b)
	url, _ := gitDaemon(b, root, name)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		d := startDaemon(b, "--source", url, "--data-dir", b.TempDir(), "--interval", "0")
		elapsed := time.Since(start)
		b.StopTimer()
		if c, err := servedLeaf(d.listen, benchSNI(n-1), r.roots); err != nil || c.Subject.CommonName != benchSNI(n-1) {
			b.Fatalf("after cold start: %s served %v, err %v", benchSNI(n-1), c, err)
		}
		b.ReportMetric(float64(rssKiB(b, d.cmd.Process.Pid))/1024, "RSS-MiB")
		d.stop()
		b.ReportMetric(elapsed.Seconds(), "s-to-ready")
		b.StartTimer()
	}
}

// BenchmarkOneFileCommit measures, over 10 commits per iteration in a
// 10,000-entity repository followed through git daemon with a 100 ms
// polling interval, the median time from a push that rotates one entity to the first handshake served the new
// certificate (so it includes up to one interval of waiting and the
// fetch), the reconcile duration the daemon logs for that revision (fetch,
// load, validate, apply), and the reconcile work excluding the fetch: the
// growth of certops_reconcile_duration_seconds_sum for the load, resolve,
// plan and apply phases across the commit (DESIGN.md 8's measure).
func BenchmarkOneFileCommit(b *testing.B) {
	if testing.Short() {
		b.Skip("e2e: skipped under -short")
	}
	const n = 10_000
	r := getBenchRepo(b, n)
	root, name := r.git(b)
	// A clone of our own to push from; the bare repository is shared with
	// other benchmarks, so push to a copy of it.
	mine := b.TempDir()
	git(b, mine, "clone", "-q", "--bare", filepath.Join(root, name), "repo.git")
	work := filepath.Join(b.TempDir(), "work")
	git(b, mine, "clone", "-q", filepath.Join(mine, "repo.git"), work)
	url, _ := gitDaemon(b, mine, "repo.git")
	d := startDaemon(b, "--source", url, "--data-dir", b.TempDir(), "--interval", "100ms")
	var served, logged, noFetch []time.Duration
	const commits = 10
	b.ResetTimer()
	for i := range b.N * commits {
		b.StopTimer()
		idx := (i * 7919) % n
		sni := benchSNI(idx)
		leaf := r.ca.issue(b, algECDSA, sni, []string{sni})
		writeFile(b, work, fmt.Sprintf("%03d/e%06d.yaml", idx/1000, idx), entity{
			name: fmt.Sprintf("e%06d", idx), snis: []string{sni}, chains: []*testLeaf{leaf},
		}.yaml())
		git(b, work, "commit", "-q", "-a", "-m", "rotate "+sni)
		rev := strings.TrimSpace(git(b, work, "rev-parse", "HEAD"))
		before := phaseSums(b, d)
		b.StartTimer()
		start := time.Now()
		git(b, work, "push", "-q", "origin", "HEAD:main")
		waitServed(b, d.listen, sni, r.roots, leaf)
		served = append(served, time.Since(start))
		b.StopTimer()
		line := d.waitRevisionLogged(rev)
		if sec, ok := line["duration"].(float64); ok && line["msg"] == "revision applied" {
			logged = append(logged, time.Duration(sec*float64(time.Second))) // JSON logs write seconds
		}
		after := phaseSums(b, d)
		var spent time.Duration
		for _, phase := range []string{"load", "resolve", "plan", "apply"} {
			spent += time.Duration((after[phase] - before[phase]) * float64(time.Second))
		}
		noFetch = append(noFetch, spent)
		b.StartTimer()
	}
	b.ReportMetric(median(served).Seconds()*1000, "push-to-served-ms")
	if len(logged) > 0 {
		b.ReportMetric(median(logged).Seconds()*1000, "reconcile-ms")
	}
	b.ReportMetric(median(noFetch).Seconds()*1000, "reconcile-excl-fetch-ms")
}

// phaseSums scrapes /metrics and returns the sum of
// certops_reconcile_duration_seconds per phase, in seconds.
func phaseSums(tb testing.TB, d *daemon) map[string]float64 {
	tb.Helper()
	code, body := d.get("/metrics")
	if code != http.StatusOK {
		tb.Fatalf("GET /metrics: %d", code)
	}
	sums := map[string]float64{}
	const prefix = `certops_reconcile_duration_seconds_sum{phase="`
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		phase, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			tb.Fatalf("metric line %q: %v", line, err)
		}
		sums[phase] = v
	}
	if len(sums) == 0 {
		tb.Fatalf("GET /metrics: no certops_reconcile_duration_seconds_sum series")
	}
	return sums
}

// median returns the middle of ds (sorted in place).
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}
