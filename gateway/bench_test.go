package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"certops/fixtures"
)

// The handshake benchmarks compare a plain crypto/tls server with one
// static certificate (tls.Config.Certificates) against the gateway with
// 10,000 and 100,000 entities loaded. The clients run in a child process
// (this test binary, re-executed), so the server's CPU per handshake is
// the process's own CPU time; both servers run the same accept loop.
//
//	go test ./gateway/ -run '^$' -bench Handshake -benchtime 4000x -count 3
//
// Metrics: handshakes/s (wall clock, server side), server-us/handshake
// (user+system CPU of the server process, GC included) and gc/1k (GC
// cycles per 1,000 handshakes).

const (
	benchClientEnv = "CERTOPS_GATEWAY_BENCH_CLIENT" // addr|n|concurrency|sni,sni,...
	benchHot       = 64                             // distinct entities the clients visit
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(benchClientEnv); spec != "" {
		os.Exit(benchClient(spec))
	}
	os.Exit(m.Run())
}

// benchClient does n full TLS 1.3 handshakes against addr with the given
// concurrency, cycling through the server names.
func benchClient(spec string) int {
	parts := strings.SplitN(spec, "|", 4)
	if len(parts) != 4 {
		fmt.Fprintln(os.Stderr, "bad spec")
		return 2
	}
	addr := parts[0]
	n, _ := strconv.Atoi(parts[1])
	conc, _ := strconv.Atoi(parts[2])
	names := strings.Split(parts[3], ",")
	if file, ok := strings.CutPrefix(parts[3], "@"); ok {
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		names = strings.Split(string(data), ",")
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Bool
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				cfg := &tls.Config{ServerName: names[int(i)%len(names)], InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
				conn, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					failed.Store(true)
					return
				}
				conn.Close()
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		return 1
	}
	return 0
}

// benchServer accepts connections and completes their handshakes with
// cfg, timing the window from the first accept to the n-th handshake.
type benchServer struct {
	ln                  net.Listener
	cfg                 *tls.Config
	n                   int64
	done                atomic.Int64
	errs                atomic.Int64
	start, end          time.Time
	cpuStart, cpuEnd    time.Duration
	gcStart, gcEnd      uint32
	startOnce, finished sync.Once
	complete            chan struct{}
}

func numGC() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

func (s *benchServer) run() {
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.startOnce.Do(func() { s.start, s.cpuStart, s.gcStart = time.Now(), fixtures.ProcessCPU(), numGC() })
		go func() {
			conn := tls.Server(&trackedConn{Conn: raw}, s.cfg)
			if err := conn.Handshake(); err != nil {
				s.errs.Add(1)
			}
			conn.Close()
			if s.done.Add(1) == s.n {
				s.end, s.cpuEnd, s.gcEnd = time.Now(), fixtures.ProcessCPU(), numGC()
				close(s.complete)
			}
		}()
	}
}

// measurement is what one batch of handshakes cost the server.
type measurement struct {
	n    int
	wall time.Duration // first accept to last handshake
	cpu  time.Duration // server process CPU in that window
	gcs  uint32
}

func (m *measurement) add(o measurement) {
	m.n += o.n
	m.wall += o.wall
	m.cpu += o.cpu
	m.gcs += o.gcs
}

func (m measurement) rate() float64     { return float64(m.n) / m.wall.Seconds() }
func (m measurement) cpuPerOp() float64 { return float64(m.cpu.Microseconds()) / float64(m.n) }

// measure has a child process do n handshakes against cfg, asking for
// names, and returns what they cost the server.
func measure(tb testing.TB, cfg *tls.Config, names []string, n int) measurement {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	srv := &benchServer{ln: ln, cfg: cfg, n: int64(n), complete: make(chan struct{})}
	go srv.run()
	list := strings.Join(names, ",")
	if len(list) > 64<<10 { // too long for the environment
		file := filepath.Join(tb.TempDir(), "names")
		if err := os.WriteFile(file, []byte(list), 0o600); err != nil {
			tb.Fatal(err)
		}
		list = "@" + file
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d|%d|%s", benchClientEnv, ln.Addr(), n, 4, list))
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("client: %v\n%s", err, out)
	}
	<-srv.complete
	if e := srv.errs.Load(); e > 0 {
		tb.Fatalf("%d server handshakes failed", e)
	}
	return measurement{n: n, wall: srv.end.Sub(srv.start), cpu: srv.cpuEnd - srv.cpuStart, gcs: srv.gcEnd - srv.gcStart}
}

func (m measurement) report(b *testing.B, prefix string) {
	b.ReportMetric(m.rate(), prefix+"handshakes/s")
	b.ReportMetric(m.cpuPerOp(), prefix+"server-us/handshake")
	b.ReportMetric(float64(m.gcs)*1000/float64(m.n), prefix+"gc/1k")
}

// benchHandshakes measures b.N handshakes against cfg with clients asking
// for names.
func benchHandshakes(b *testing.B, cfg *tls.Config, names []string) {
	runtime.GC()
	b.ResetTimer()
	m := measure(b, cfg, names, b.N)
	b.StopTimer()
	m.report(b, "")
}

// benchMaterial is the certificate material of the benchmarks for one key
// type: one key (generating 100,000 keys would take minutes, and the GC
// cost under study is about per-entity parsed objects, not key
// generation) and 1,000 distinct leaves, shared round-robin by entities.
type benchMaterial struct {
	key    *fixtures.Leaf
	leaves []tls.Certificate
}

var (
	benchMu        sync.Mutex
	benchMaterials = map[fixtures.KeyType]*benchMaterial{}
)

func material(b *testing.B, kt fixtures.KeyType) *benchMaterial {
	benchMu.Lock()
	defer benchMu.Unlock()
	if m, ok := benchMaterials[kt]; ok {
		return m
	}
	root := fixtures.NewRootCA(b, "bench root")
	inter := root.Intermediate(b, "bench intermediate")
	first := inter.Leaf(b, fixtures.LeafOptions{DNSNames: []string{"e0.bench.example"}, Key: kt})
	m := &benchMaterial{key: first}
	for i := range 1000 {
		leaf := first
		if i > 0 {
			// Same key, new certificate: fixtures generate a key per
			// leaf, so re-sign the template with the first key.
			tmpl := *first.Cert
			tmpl.SerialNumber = new(big.Int).Add(first.Cert.SerialNumber, big.NewInt(int64(i)))
			tmpl.DNSNames = []string{fmt.Sprintf("e%d.bench.example", i)}
			der, err := x509.CreateCertificate(nil, &tmpl, inter.Cert, first.Key.Public(), inter.Key)
			if err != nil {
				b.Fatal(err)
			}
			parsed, err := x509.ParseCertificate(der)
			if err != nil {
				b.Fatal(err)
			}
			c := tls.Certificate{Certificate: [][]byte{der, inter.Cert.Raw}, PrivateKey: first.Key, Leaf: parsed}
			m.leaves = append(m.leaves, c)
			continue
		}
		m.leaves = append(m.leaves, leaf.TLS(b))
	}
	benchMaterials[kt] = m
	return m
}

// benchConfig returns n entities, each with its own SNI and its own
// parsed tls.Certificate (Leaf parsed per entity; with parseKeys, the
// private key too), as the reconciler would hand them over.
func benchConfig(b *testing.B, m *benchMaterial, n int, parseKeys bool) Config {
	cfg := Config{Entities: make([]Entity, n)}
	keyDER, err := x509.MarshalPKCS8PrivateKey(m.key.Key)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		c := m.leaves[i%len(m.leaves)]
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			b.Fatal(err)
		}
		c.Leaf = leaf
		if parseKeys {
			if c.PrivateKey, err = x509.ParsePKCS8PrivateKey(keyDER); err != nil {
				b.Fatal(err)
			}
		}
		cfg.Entities[i] = Entity{Name: fmt.Sprintf("e%d", i), SNIs: []string{fmt.Sprintf("e%d.bench.example", i)}, Chains: []tls.Certificate{c}}
	}
	return cfg
}

// hotNames returns benchHot server names spread over n entities.
func hotNames(n int) []string {
	names := make([]string, benchHot)
	for i := range names {
		names[i] = fmt.Sprintf("e%d.bench.example", i*n/benchHot)
	}
	return names
}

func BenchmarkHandshake(b *testing.B) {
	for _, kt := range []fixtures.KeyType{fixtures.ECDSA, fixtures.RSA} {
		b.Run(string(kt), func(b *testing.B) {
			m := material(b, kt)
			b.Run("static", func(b *testing.B) {
				cfg := &tls.Config{Certificates: []tls.Certificate{m.leaves[0]}, MinVersion: tls.VersionTLS12}
				benchHandshakes(b, cfg, hotNames(benchHot))
			})
			for _, n := range []int{10_000, 100_000} {
				b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
					s := New(Options{})
					if err := s.Apply(benchConfig(b, m, n, false)); err != nil {
						b.Fatal(err)
					}
					benchHandshakes(b, s.base, hotNames(n))
				})
			}
			if kt != fixtures.ECDSA {
				return
			}
			// The naive design's live heap: every entity's parsed
			// certificate and key kept reachable, as a map of
			// tls.Certificate would.
			b.Run("naive-heap/entities=100000", func(b *testing.B) {
				s := New(Options{})
				cfg := benchConfig(b, m, 100_000, true)
				if err := s.Apply(cfg); err != nil {
					b.Fatal(err)
				}
				benchHandshakes(b, s.base, hotNames(100_000))
				runtime.KeepAlive(cfg)
			})
			// Every handshake a different, mostly uncached entity: the
			// cost of parsing on a cache miss.
			b.Run("uniform/entities=100000", func(b *testing.B) {
				s := New(Options{})
				if err := s.Apply(benchConfig(b, m, 100_000, false)); err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				names := make([]string, 20_000)
				for i := range names {
					names[i] = fmt.Sprintf("e%d.bench.example", rng.IntN(100_000))
				}
				benchHandshakes(b, s.base, names)
			})
		})
	}
}

// BenchmarkApply measures building and swapping in a snapshot of n
// entities, and the heap the snapshot retains.
//
//	go test ./gateway/ -run '^$' -bench Apply -benchtime 3x
//
// BenchmarkApply measures Apply of n entities into an empty gateway
// ("first") and the same Config applied again ("again", what a one-file
// commit costs for the entities it does not touch: their encoded keys are
// reused from the running snapshot).
func BenchmarkApply(b *testing.B) {
	for _, kt := range []fixtures.KeyType{fixtures.ECDSA, fixtures.RSA} {
		for _, n := range []int{10_000, 100_000} {
			for _, mode := range []string{"first", "again"} {
				b.Run(fmt.Sprintf("%s/entities=%d/%s", kt, n, mode), func(b *testing.B) {
					cfg := benchConfig(b, material(b, kt), n, false)
					s := New(Options{})
					if mode == "again" {
						if err := s.Apply(cfg); err != nil {
							b.Fatal(err)
						}
					}
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					cpu := fixtures.ProcessCPU()
					applies := 0
					b.ResetTimer()
					for b.Loop() {
						if mode == "first" {
							b.StopTimer()
							s = New(Options{})
							b.StartTimer()
						}
						if err := s.Apply(cfg); err != nil {
							b.Fatal(err)
						}
						applies++
					}
					b.StopTimer()
					b.ReportMetric(float64((fixtures.ProcessCPU()-cpu).Milliseconds())/float64(applies), "cpu-ms/op")
					runtime.GC()
					runtime.ReadMemStats(&after)
					b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "retained-MiB")
					runtime.KeepAlive(cfg)
					runtime.KeepAlive(s)
				})
			}
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	s := New(Options{})
	if err := s.Apply(benchConfig(b, material(b, fixtures.ECDSA), 100_000, false)); err != nil {
		b.Fatal(err)
	}
	snap := s.snap.Load()
	for _, name := range []string{"e77777.bench.example", "E77777.Bench.Example", "x.unknown.example"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				snap.lookup(name)
			}
		})
	}
}

// BenchmarkHandshakeRatio alternates the static server and the gateway
// with 10,000 entities (64 names visited, and all of them) and 100,000
// entities in rounds of 500 handshakes each, so
// that the varying load of a shared machine weighs on all of them alike,
// and reports their server CPU per handshake, rates and the ratios of the
// gateway's rates to the static one (the target is >= 0.97). Each variant
// is built before its batch and dropped (and collected) after it, so no
// variant's heap weighs on another's garbage collections.
//
//	go test ./gateway/ -run '^$' -bench HandshakeRatio -benchtime 10x
func BenchmarkHandshakeRatio(b *testing.B) {
	const round = 500
	for _, kt := range []fixtures.KeyType{fixtures.ECDSA, fixtures.RSA} {
		b.Run(string(kt), func(b *testing.B) {
			m := material(b, kt)
			type variant struct {
				name  string
				n     int  // entities; 0 means the static server
				all   bool // traffic over every name, not benchHot of them
				cache int  // Options.CacheSize; 0 is the default budget
				total measurement
			}
			// 10k-all-4096 is the fixed cache of 4,096 entries the
			// memory budget replaced, for comparison in the same run.
			vs := []*variant{{name: "static"}, {name: "10k", n: 10_000}, {name: "10k-all", n: 10_000, all: true},
				{name: "10k-all-4096", n: 10_000, all: true, cache: 4096}, {name: "100k", n: 100_000}}
			allNames := make([]string, 10_000)
			for i, j := range rand.New(rand.NewPCG(1, 2)).Perm(len(allNames)) {
				allNames[i] = fmt.Sprintf("e%d.bench.example", j)
			}
			run := func(v *variant, handshakes int) measurement {
				cfg := &tls.Config{Certificates: []tls.Certificate{m.leaves[0]}, MinVersion: tls.VersionTLS12}
				names := hotNames(benchHot)
				if v.n > 0 {
					s := New(Options{CacheSize: v.cache})
					if err := s.Apply(sharedLeafConfig(m, v.n)); err != nil {
						b.Fatal(err)
					}
					cfg, names = s.base, hotNames(v.n)
					if v.all {
						names = allNames
					}
				}
				runtime.GC()
				res := measure(b, cfg, names, handshakes)
				cfg = nil
				runtime.GC() // drop this variant's snapshot before the next one
				return res
			}
			for _, v := range vs {
				run(v, 50) // warm up
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for j := range vs {
					v := vs[(i+j)%len(vs)] // rotate the order too
					v.total.add(run(v, round))
				}
			}
			b.StopTimer()
			for _, v := range vs {
				b.ReportMetric(v.total.cpuPerOp(), v.name+"-server-us/hs")
				b.ReportMetric(v.total.rate(), v.name+"-hs/s")
			}
			static := vs[0].total
			for _, v := range vs[1:] {
				b.ReportMetric(v.total.rate()/static.rate(), v.name+"/static-rate")
				b.ReportMetric(static.cpuPerOp()/v.total.cpuPerOp(), v.name+"/static-cpu-rate")
			}
			// Every handshake of 10k-all misses the parsed cache (~720
			// ECDSA or ~200 RSA entries in the default budget) with a
			// likelihood of 93-98%, of 10k-all-4096 with one of ~60%;
			// the target is <= 1.03 (issue 13), ~1.01 for the budget.
			b.ReportMetric(vs[2].total.cpuPerOp()/vs[1].total.cpuPerOp(), "10k-all/10k-cpu")
			b.ReportMetric(vs[3].total.cpuPerOp()/vs[1].total.cpuPerOp(), "10k-all-4096/10k-cpu")
		})
	}
}

// sharedLeafConfig is benchConfig without parsing a Leaf per entity,
// which the gateway does not keep anyway, so that it is cheap to build
// again for every round.
func sharedLeafConfig(m *benchMaterial, n int) Config {
	cfg := Config{Entities: make([]Entity, n)}
	for i := range n {
		cfg.Entities[i] = Entity{Name: fmt.Sprintf("e%d", i), SNIs: []string{fmt.Sprintf("e%d.bench.example", i)},
			Chains: []tls.Certificate{m.leaves[i%len(m.leaves)]}}
	}
	return cfg
}
