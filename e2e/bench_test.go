package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("read RSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, err := strconv.Atoi(f[1])
			if err != nil {
				tb.Fatalf("VmRSS %q: %v", line, err)
			}
			return kib
		}
	}
	tb.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// BenchmarkColdStart measures `certops run --source DIR` from process
// start to /readyz 200 (load, validate, apply) for a directory of n
// entities, and the RSS of the ready daemon.
func BenchmarkColdStart(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
			if testing.Short() {
				b.Skip("e2e: skipped under -short")
			}
			r := getBenchRepo(b, n)
			var rss int
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				d := startDaemon(b, "--source", r.dir)
				elapsed := time.Since(start)
				b.StopTimer()
				if c, err := servedLeaf(d.listen, benchSNI(n-1), r.roots); err != nil || c.Subject.CommonName != benchSNI(n-1) {
					b.Fatalf("after cold start: %s served %v, err %v", benchSNI(n-1), c, err)
				}
				rss = rssKiB(b, d.cmd.Process.Pid)
				d.stop()
				b.ReportMetric(elapsed.Seconds(), "s-to-ready")
				b.StartTimer()
			}
			b.ReportMetric(float64(rss)/1024, "RSS-MiB")
			b.ReportMetric(float64(rss)/float64(n)*10_000/1024, "RSS-MiB/10k-entities")
		})
	}
}

// BenchmarkHandshakes measures full TLS 1.3 handshakes per second through
// the binary with 1, 10,000 and 100,000 entities loaded, each handshake
// for a random entity's name. The client runs in this process on the same
// cores, so compare the rows of one run, not absolute values across
// machines.
func BenchmarkHandshakes(b *testing.B) {
	for _, n := range []int{1, 10_000, 100_000} {
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
			if testing.Short() {
				b.Skip("e2e: skipped under -short")
			}
			r := getBenchRepo(b, n)
			d := startDaemon(b, "--source", r.dir)
			cfg := &tls.Config{RootCAs: r.roots, MinVersion: tls.VersionTLS13}
			// Warm up: the first handshakes pay for lazy work.
			for i := range 10 {
				if _, err := servedLeaf(d.listen, benchSNI(i%n), r.roots); err != nil {
					b.Fatal(err)
				}
			}
			b.SetParallelism(4) // keep both cores busy while clients wait on the network
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				rng := mrand.New(mrand.NewPCG(mrand.Uint64(), 0))
				for pb.Next() {
					c := cfg.Clone()
					c.ServerName = benchSNI(rng.IntN(n))
					conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", d.listen, c)
					if err != nil {
						b.Error(err)
						return
					}
					conn.Close()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
		})
	}
}
