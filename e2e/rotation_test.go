package e2e

import (
	"crypto/tls"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rotationLoad is the outcome of rotateUnderLoad.
type rotationLoad struct {
	rounds           int   // rotations written
	applied          int   // revisions the daemon logged as applied
	handshakes       int64 // full handshakes completed
	failedHandshakes int64
	requests         int64 // requests on long-lived connections
	brokenConns      int64
	firstErr         atomic.Value // string: the first failure, for the message
}

// rotateUnderLoad serves a directory of n entities and, for d, rewrites
// every entity with a new certificate every period (atomically: a
// dot-file renamed into place) while clients run full handshakes against
// random entities and keep conns long-lived connections busy. It counts
// failed handshakes and broken connections; the target is zero of both.
func rotateUnderLoad(tb testing.TB, n, conns int, period, dur time.Duration) *rotationLoad {
	tb.Helper()
	requireBinary(tb)
	ca := newCA(tb, "rotation CA")
	key := newKey(tb, algECDSA)
	dir := tb.TempDir()
	// Three generations of certificates, prepared before the clock runs so
	// that a rotation is only the writing of files: each round writes the
	// next generation, so every entity changes every round.
	const generations = 3
	docs := make([][][]byte, generations)
	for g := range docs {
		for i := range n {
			sni := fmt.Sprintf("r%04d.rotate.test", i)
			leaf := ca.issue(tb, algECDSA, sni, []string{sni}, leafOptions{key: key})
			docs[g] = append(docs[g], entity{name: fmt.Sprintf("r%04d", i), snis: []string{sni}, chains: []*testLeaf{leaf}}.yaml())
		}
	}
	round := 0
	write := func() {
		for i, doc := range docs[round%generations] {
			tmp := filepath.Join(dir, fmt.Sprintf(".r%04d.tmp", i))
			if err := os.WriteFile(tmp, doc, 0o644); err != nil {
				tb.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("r%04d.yaml", i))); err != nil {
				tb.Fatal(err)
			}
		}
		round++
	}
	write()
	d := startDaemon(tb, "--source", dir)
	roots := pool(ca)
	res := &rotationLoad{}
	fail := func(counter *int64, err error) {
		atomic.AddInt64(counter, 1)
		res.firstErr.CompareAndSwap(nil, err.Error())
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Long-lived connections, one request every 20 ms each.
	for c := range conns {
		sni := fmt.Sprintf("r%04d.rotate.test", c%n)
		ka := openKeepAlive(tb, d.listen, sni, roots)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := ka.get(); err != nil {
					fail(&res.brokenConns, fmt.Errorf("long-lived connection to %s: %w", sni, err))
					return
				}
				atomic.AddInt64(&res.requests, 1)
			}
		}()
	}
	// Full handshakes, back to back, from two clients.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(mrand.Uint64(), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				sni := fmt.Sprintf("r%04d.rotate.test", rng.IntN(n))
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", d.listen, &tls.Config{ServerName: sni, RootCAs: roots})
				if err != nil {
					fail(&res.failedHandshakes, fmt.Errorf("handshake for %s: %w", sni, err))
					continue
				}
				conn.Close()
				atomic.AddInt64(&res.handshakes, 1)
			}
		}()
	}
	// The rotations.
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		next := time.Now().Add(period)
		write()
		res.rounds++
		time.Sleep(time.Until(next))
	}
	close(stop)
	wg.Wait()
	d.stop()
	res.applied = strings.Count(d.logs.String(), `"msg":"revision applied"`)
	return res
}

func (r *rotationLoad) String() string {
	first, _ := r.firstErr.Load().(string)
	return fmt.Sprintf("%d rotations written, %d applied; %d handshakes, %d failed; %d requests on long-lived connections, %d broken (first failure: %q)",
		r.rounds, r.applied, r.handshakes, r.failedHandshakes, r.requests, r.brokenConns, first)
}

// rotationPeriod is how often the directory is rewritten. The daemon
// reloads a watched directory at its first event and once more for the
// events of the following 50 ms (a burst of writes is one or two
// reconciles), so the binary-level rotation runs at a 400 ms rhythm; the
// gateway's own benchmark re-applies every 100 ms.
const rotationPeriod = 400 * time.Millisecond

// TestRotationUnderLoad rewrites every entity of a watched directory every
// rotationPeriod for 4 s through the binary while clients run full
// handshakes and keep long-lived connections busy: no handshake may fail
// and no connection may break (DESIGN.md 3: rotation is hitless).
func TestRotationUnderLoad(t *testing.T) {
	r := rotateUnderLoad(t, 20, 4, rotationPeriod, 4*time.Second)
	t.Log(r)
	if r.failedHandshakes != 0 || r.brokenConns != 0 {
		t.Errorf("rotation under load: %v; want 0 failed handshakes and 0 broken connections", r)
	}
	if r.applied < 2 || r.handshakes == 0 || r.requests == 0 {
		t.Errorf("rotation under load: %v; want several revisions applied while traffic ran", r)
	}
}

// BenchmarkRotationUnderLoad is the 30-second version of
// TestRotationUnderLoad with 200 entities and 16 long-lived connections;
// it reports the failure counts (target 0) and how many rotations the
// daemon applied. Each rotation changes every entity, so the daemon
// re-validates every file: with 1,000 entities a round takes seconds on
// two shared cores and only a handful of swaps would happen in 30 s; 200
// keeps the swaps frequent, which is what the benchmark stresses.
func BenchmarkRotationUnderLoad(b *testing.B) {
	if testing.Short() {
		b.Skip("e2e: skipped under -short")
	}
	for range b.N {
		r := rotateUnderLoad(b, 200, 16, rotationPeriod, 30*time.Second)
		b.Log(r)
		b.ReportMetric(float64(r.failedHandshakes), "failed-handshakes")
		b.ReportMetric(float64(r.brokenConns), "broken-conns")
		b.ReportMetric(float64(r.handshakes), "handshakes")
		b.ReportMetric(float64(r.applied), "revisions-applied")
		b.ReportMetric(float64(r.rounds), "rotations-written")
		if r.failedHandshakes != 0 || r.brokenConns != 0 {
			b.Errorf("rotation under load: %v; want 0 failed handshakes and 0 broken connections", r)
		}
	}
}
