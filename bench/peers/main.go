// Command peers measures certops against HAProxy, nginx and a plain Go
// crypto/tls server on loopback: server CPU per full TLS 1.3 handshake
// (X25519, ECDSA P-256, from /proc/PID/stat), handshakes per second, RSS,
// start-up time and the latency of rotating one certificate, with one and
// with 10,000 certificates. Run it with bench/peers.sh from the repository
// root; it is not part of the test suite.
//
// Every server runs at once, idle but for the one under load; the load
// client visits them in rounds, in a rotating order, so that the varying
// load of a shared machine weighs on all of them alike. Request loops are
// bounded in count and in time, and only loopback addresses are used.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	var (
		static    = flag.String("serve-static", "", "internal: serve the baseline on this address")
		certFile  = flag.String("cert", "", "internal: the baseline's certificate")
		keyFile   = flag.String("key", "", "internal: the baseline's key")
		n         = flag.Int("n", 10_000, "certificates in the large set")
		rounds    = flag.Int("rounds", 4, "rounds over every target")
		perRound  = flag.Int("handshakes", 1000, "handshakes per target and round")
		conc      = flag.Int("concurrency", 4, "concurrent client connections")
		rotations = flag.Int("rotations", 3, "rotations timed per server")
		bin       = flag.String("certops", "", "certops binary (built from the repository when empty)")
		keep      = flag.Bool("keep", false, "keep the work directory")
		only      = flag.String("only", "", "run only the servers whose label matches this regular expression (go-static always; certops-base/X with certops/X)")
		extra     = flag.String("certops-env", "", "also run certops with 1 and 10,000 certificates with this environment (e.g. GOGC=400)")
		baseline  = flag.String("baseline", "", "also run this certops binary (e.g. built from main) with 1 and 10,000 certificates, as certops-base")
		target    = flag.Float64("target", 1.03, "the ratio to go-static each interval is read against (issue 13: 1.03)")
		valid     = flag.Duration("valid", 90*24*time.Hour, "validity of each leaf; below certops' --warn-within (720h) every certificate is a warning the daemon reports at each reconcile")
	)
	flag.Parse()
	if *static != "" {
		if err := serveStatic(*static, *certFile, *keyFile); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	re, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers: -only:", err)
		os.Exit(2)
	}
	b := &bench{valid: *valid, n: *n, rounds: *rounds, perRound: *perRound, conc: *conc, rotations: *rotations, bin: *bin, keep: *keep, only: re, extra: *extra, baseline: *baseline, target: *target}
	if err := b.run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

type bench struct {
	valid                                time.Duration
	n, rounds, perRound, conc, rotations int
	bin                                  string
	keep                                 bool
	only                                 *regexp.Regexp
	target                               float64 // the ratio intervals are read against
	extra                                string
	baseline                             string
	work                                 string
	servers                              []*server
}

// target is one server under one traffic pattern.
type target struct {
	srv     *server
	label   string
	names   []string
	next    int // position in names, carried across rounds
	hs      int
	failed  int
	gc      gcTotals  // the collections during the rounds
	gcLost  bool      // a round's collections were not read (not a Go server)
	perHS   []float64 // CPU µs per handshake in each round
	cpu     time.Duration
	wall    time.Duration
	rss     int64
	pattern string
}

func (b *bench) run(ctx context.Context) (err error) {
	if b.work, err = os.MkdirTemp("", "certops-peers-"); err != nil {
		return err
	}
	if !b.keep {
		defer os.RemoveAll(b.work)
	} else {
		fmt.Println("work directory:", b.work)
	}
	defer func() {
		for _, s := range b.servers {
			s.stop()
		}
	}()
	for _, tool := range []string{"haproxy", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not installed (bench/peers.sh installs it from Debian)", tool)
		}
	}
	if b.bin == "" {
		b.bin = filepath.Join(b.work, "certops")
		build := exec.CommandContext(ctx, "go", "build", "-o", b.bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build certops (run from the repository root): %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	t0 := time.Now()
	p, err := newPKI(b.valid)
	if err != nil {
		return err
	}
	one, err := writeSet(p, filepath.Join(b.work, "set-1"), 1)
	if err != nil {
		return err
	}
	many, err := writeSet(p, filepath.Join(b.work, fmt.Sprintf("set-%d", b.n)), b.n)
	if err != nil {
		return err
	}
	fmt.Printf("generated %d ECDSA P-256 certificates in %v\n", 1+b.n, time.Since(t0).Round(time.Millisecond))

	type spec struct {
		label string
		mk    func(dir string) (*server, error)
	}
	specs := []spec{
		{"go-static", func(d string) (*server, error) { return newStatic(self, d, one) }},
		{"go-static GOMAXPROCS=1", func(d string) (*server, error) { return newStatic(self, d, one, "GOMAXPROCS=1") }},
		{"certops/1", func(d string) (*server, error) { return newCertops(b.bin, d, one) }},
		{"certops/1 GOMAXPROCS=1", func(d string) (*server, error) { return newCertops(b.bin, d, one, "GOMAXPROCS=1") }},
		{"certops/10k", func(d string) (*server, error) { return newCertops(b.bin, d, many) }},
		{"certops/10k GOMAXPROCS=1", func(d string) (*server, error) { return newCertops(b.bin, d, many, "GOMAXPROCS=1") }},
		{"haproxy/1", func(d string) (*server, error) { return newHAProxy(d, one) }},
		{"haproxy/10k", func(d string) (*server, error) { return newHAProxy(d, many) }},
		{"nginx/1", func(d string) (*server, error) { return newNginx(d, one) }},
		{"nginx/10k", func(d string) (*server, error) { return newNginx(d, many) }},
	}
	if b.extra != "" {
		env := strings.Fields(b.extra)
		specs = append(specs,
			spec{"certops/1 " + b.extra, func(d string) (*server, error) { return newCertops(b.bin, d, one, env...) }},
			spec{"certops/10k " + b.extra, func(d string) (*server, error) { return newCertops(b.bin, d, many, env...) }})
	}
	if b.baseline != "" {
		base := func(set *certSet) func(d string) (*server, error) {
			return func(d string) (*server, error) {
				s, err := newCertops(b.baseline, d, set)
				if s != nil {
					s.kind = "certops-base"
				}
				return s, err
			}
		}
		specs = append(specs, spec{"certops-base/1", base(one)}, spec{"certops-base/10k", base(many)})
	}
	var targets []*target
	all := make([]string, b.n)
	for i := range all {
		all[i] = name(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	hot := make([]string, min(64, b.n))
	for i := range hot {
		hot[i] = name(i)
	}
	for k, sp := range specs {
		// go-static always runs, and the -baseline binary wherever
		// certops does: -only '^certops/1$' compares the two.
		if sp.label != "go-static" && !b.only.MatchString(sp.label) &&
			!b.only.MatchString(strings.Replace(sp.label, "certops-base/", "certops/", 1)) {
			continue
		}
		dir := filepath.Join(b.work, fmt.Sprintf("srv-%d", k))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		s, err := sp.mk(dir)
		if err != nil {
			return err
		}
		s.label = sp.label
		b.servers = append(b.servers, s)
		if err := s.start(ctx); err != nil {
			return err
		}
		settled, err := s.settle(ctx, 3*time.Minute)
		if err != nil {
			return fmt.Errorf("%s: %w", s.label, err)
		}
		fmt.Printf("started %-26s in %v, idle %v later\n", s.label, s.startup.Round(time.Millisecond), settled.Round(time.Second))
		if s.set.n == 1 {
			targets = append(targets, &target{srv: s, label: s.label, names: []string{name(0)}, pattern: "1 name"})
			continue
		}
		if !strings.Contains(s.label, "GOMAXPROCS") && (b.extra == "" || !strings.HasSuffix(s.label, b.extra)) {
			targets = append(targets, &target{srv: s, label: s.label + " hot-64", names: hot, pattern: "hot 64"})
		}
		targets = append(targets, &target{srv: s, label: s.label + " all", names: all, pattern: "all names"})
	}

	// Warm up every target (and the client), then the measured rounds.
	for _, t := range targets {
		if _, _, err := b.load(ctx, t, 100); err != nil {
			return fmt.Errorf("%s: warm-up: %w", t.label, err)
		}
	}
	for r := range b.rounds {
		for j := range targets {
			t := targets[(r+j)%len(targets)]
			g0, gcKnown := t.srv.gcTrace()
			c0, err := t.srv.cpu()
			if err != nil {
				return err
			}
			wall, failed, err := b.load(ctx, t, b.perRound)
			if err != nil {
				return fmt.Errorf("%s: %w", t.label, err)
			}
			c1, _ := t.srv.cpu()
			if g1, ok := t.srv.gcTrace(); gcKnown && ok {
				d := g1.minus(g0)
				t.gc.cycles += d.cycles
				t.gc.cpu += d.cpu
			} else {
				t.gcLost = true
			}
			t.hs += b.perRound - failed
			t.failed += failed
			t.cpu += c1 - c0
			if ok := b.perRound - failed; ok > 0 {
				t.perHS = append(t.perHS, float64((c1-c0).Microseconds())/float64(ok))
			}
			t.wall += wall
		}
		fmt.Printf("round %d/%d done\n", r+1, b.rounds)
	}
	for _, t := range targets {
		t.rss = t.srv.rss()
	}

	// Rotation: one certificate of the large set, served anew. The
	// servers take turns, one rotation each per round in a rotating order,
	// so that the varying load of a shared machine weighs on all of them
	// alike, as in the load rounds.
	rot := map[*server][]time.Duration{}
	var rotating []*server
	for _, s := range b.servers {
		if s.set.n == 1 || s.kind == "go-static" || strings.Contains(s.label, "GOMAXPROCS") ||
			b.extra != "" && strings.HasSuffix(s.label, b.extra) {
			continue
		}
		// The load rounds leave work behind (a GC cycle, the daemon's
		// proof of its served state): the rotations wait for it, as the
		// rounds do at start.
		if _, err := s.settle(ctx, time.Minute); err != nil {
			return fmt.Errorf("%s: before the rotations: %w", s.label, err)
		}
		rotating = append(rotating, s)
	}
	for k := range b.rotations {
		i := (k*7919 + 4999) % b.n
		for j := range rotating {
			s := rotating[(k+j)%len(rotating)]
			l, err := p.leaf(name(i))
			if err != nil {
				return err
			}
			// Handshakes start with the rotation, whatever the server: a
			// daemon applying a written file and HAProxy answering its
			// runtime API both serve them meanwhile.
			begin := time.Now()
			rotated := make(chan error, 1)
			go func() { rotated <- s.rotate(i, l) }()
			_, err = s.waitFor(ctx, name(i), l.serial, rotationLimit, rotationPoll)
			if rerr := <-rotated; rerr != nil {
				return fmt.Errorf("%s: rotate: %w", s.label, rerr)
			}
			if err != nil {
				// Counted as the limit: a slow reload is a result, not a
				// reason to lose the table.
				fmt.Fprintf(os.Stderr, "%s: rotation of %s: %v\n", s.label, name(i), err)
				rot[s] = append(rot[s], rotationLimit)
			} else {
				rot[s] = append(rot[s], time.Since(begin))
			}
			time.Sleep(time.Second) // let a reload settle before the next one
		}
	}
	b.print(targets, rot)
	return nil
}

// rotationLimit bounds the wait for a rotated certificate to be served.
const rotationLimit = 2 * time.Minute

// rotationPoll is the pause between two handshakes that still see the old
// leaf: back to back, they would take a core of a small machine from the
// server while it applies the rotation (a handshake costs both sides
// about 0.5 ms of CPU), and the rotation would be timed under that load.
const rotationPoll = time.Millisecond

// load does count full handshakes against t, cycling through its names,
// and returns the wall time and the number that failed. It gives up after
// a minute.
func (b *bench) load(ctx context.Context, t *target, count int) (time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := t.next
	t.next = (t.next + count) % len(t.names)
	var next, failed atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	begin := time.Now()
	for range b.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= int64(count) {
					return
				}
				if _, err := handshake(t.srv.addr, t.names[(start+int(k))%len(t.names)]); err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(begin)
	if ctx.Err() != nil {
		return wall, int(failed.Load()), fmt.Errorf("load: %w", ctx.Err())
	}
	if f := failed.Load(); f > int64(count)/100 {
		return wall, int(f), fmt.Errorf("%d of %d handshakes failed, first: %w", f, count, first)
	}
	return wall, int(failed.Load()), nil
}

// handshake does one full TLS 1.3 handshake (X25519, no session cache)
// and returns the serial number of the leaf served.
func handshake(addr, sni string) (*big.Int, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, &tls.Config{
		ServerName:         sni,
		MinVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.X25519},
		InsecureSkipVerify: true, // the serial is checked; verification would only load the client
		NextProtos:         []string{"http/1.1"},
	})
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs[0].SerialNumber, nil
}

func (b *bench) print(targets []*target, rot map[*server][]time.Duration) {
	var base *target
	onePer := map[string]*target{}
	for _, t := range targets {
		if t.srv.label == "go-static" {
			base = t
		}
		if t.srv.set.n == 1 && !strings.Contains(t.srv.label, "GOMAXPROCS") && (b.extra == "" || !strings.HasSuffix(t.srv.label, b.extra)) {
			onePer[t.srv.kind] = t
		}
	}
	us := func(t *target) float64 {
		if t.hs == 0 {
			return 0
		}
		return float64(t.cpu.Microseconds()) / float64(t.hs)
	}
	// gcUS is the collector's CPU per handshake by the runtime's account
	// (gctrace), a part of us.
	gcUS := func(t *target) float64 {
		if t.hs == 0 {
			return 0
		}
		return float64(t.gc.cpu.Microseconds()) / float64(t.hs)
	}
	fmt.Printf("\n%d rounds x %d full TLS 1.3 handshakes (X25519, ECDSA P-256) per target, %d connections at once\n\n",
		b.rounds, b.perRound, b.conc)
	// hotOf is the hot-64 target of the server of an all-names target.
	hotOf := map[*server]*target{}
	for _, t := range targets {
		if t.pattern == "hot 64" {
			hotOf[t.srv] = t
		}
	}
	// baseOf is the certops-base target of a certops target: the same
	// set and traffic, the -baseline binary.
	baseOf := map[*target]*target{}
	for _, t := range targets {
		if t.srv.kind != "certops" || strings.Contains(t.srv.label, "GOMAXPROCS") || b.extra != "" && strings.HasSuffix(t.srv.label, b.extra) {
			continue
		}
		for _, o := range targets {
			if o.srv.kind == "certops-base" && o.srv.set.n == t.srv.set.n && o.pattern == t.pattern {
				baseOf[t] = o
			}
		}
	}
	w := os.Stdout
	fmt.Fprintln(w, "| server | traffic | CPU µs/hs | × go-static | median × go-static | × 1 cert | × hot 64 | median × base | hs/s | failed | GC/1k hs | GC µs/hs | × go-static without GC | RSS MiB | start-up | rotation p50 |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, t := range targets {
		ratio := "-"
		if one := onePer[t.srv.kind]; one != nil && one != t && t.srv.set.n > 1 && us(one) > 0 {
			ratio = fmt.Sprintf("%.3f", us(t)/us(one))
		}
		hot := "-"
		if h := hotOf[t.srv]; h != nil && h != t && us(h) > 0 {
			hot = fmt.Sprintf("%.3f", us(t)/us(h))
		}
		rotation := "-"
		if d := rot[t.srv]; len(d) > 0 {
			slices.Sort(d)
			rotation = fmt.Sprintf("%.1f ms", float64(d[len(d)/2].Microseconds())/1000)
		}
		vsBase := "-"
		if o := baseOf[t]; o != nil {
			vsBase = fmt.Sprintf("%.3f", medianRatio(t.perHS, o.perHS))
		}
		gcs, gcCPU, noGC := "-", "-", "-"
		if !t.gcLost && t.hs > 0 {
			gcs = fmt.Sprintf("%.1f", float64(t.gc.cycles)*1000/float64(t.hs))
			gcCPU = fmt.Sprintf("%.1f", gcUS(t))
			if !base.gcLost {
				noGC = fmt.Sprintf("%.3f", (us(t)-gcUS(t))/(us(base)-gcUS(base)))
			}
		}
		fmt.Fprintf(w, "| %-24s | %-9s | %4.0f | %.3f | %.3f | %5s | %5s | %5s | %4.0f | %d | %4s | %4s | %5s | %3.0f | %.2f s | %s |\n",
			t.srv.label, t.pattern, us(t), us(t)/us(base), medianRatio(t.perHS, base.perHS), ratio, hot, vsBase,
			float64(t.hs)/t.wall.Seconds(), t.failed, gcs, gcCPU, noGC, float64(t.rss)/(1<<20), t.srv.startup.Seconds(), rotation)
	}
	fmt.Println("\nmedian × go-static: the median over rounds of the ratio to go-static's figure in the same round,")
	fmt.Println("which one round disturbed by other work on the machine moves less than the totals.")
	fmt.Println("Where the median may lie (at least 95% confidence, from the rounds' order; none with fewer than 6 rounds),")
	fmt.Printf("and what that says of a target of %.3f × go-static:\n", b.target)
	for _, t := range targets {
		if t == base {
			continue
		}
		if lo, hi, ok := medianInterval(roundRatios(t.perHS, base.perHS)); ok {
			fmt.Printf("  %-24s %-9s × go-static %.3f to %.3f: %s\n", t.srv.label, t.pattern, lo, hi, verdict(lo, hi, b.target))
		}
	}
	if b.baseline != "" {
		fmt.Println("median × base: the same for certops against the -baseline binary, same set and traffic.")
	}
	fmt.Println("GC µs/hs: the collector's CPU per handshake as the Go runtime counts it (GODEBUG=gctrace=1: both")
	fmt.Println("stop-the-world phases, assists, background and idle marking); × go-static without GC: the rest, as a ratio.")
	fmt.Println("\nrotation: certops = rewrite one entity file, HAProxy = runtime API set/commit ssl cert,")
	fmt.Println("nginx = write the files and reload; each timed until a handshake serves the new leaf.")
	for _, s := range b.servers {
		d := rot[s]
		slices.Sort(d)
		if len(d) == 0 {
			continue
		}
		ms := make([]string, len(d))
		for i, x := range d {
			ms[i] = fmt.Sprintf("%.1f", float64(x.Microseconds())/1000)
		}
		fmt.Printf("rotation %-18s p50 %s ms, min %s, max %s (ms, sorted: %s)\n", s.label, ms[len(d)/2], ms[0], ms[len(d)-1], strings.Join(ms, " "))
	}
}

// roundRatios returns a[r]/b[r] for each round r where b[r] > 0.
func roundRatios(a, b []float64) []float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return r
}

// medianInterval returns a distribution-free confidence interval of at
// least 95% for the median of the population r is a sample of: its k-th
// smallest and k-th largest values, for the largest k such that fewer
// than k of n values fall below the median with probability at most
// 2.5% (the binomial distribution with p = 1/2). It assumes only that the
// rounds are independent draws of the same distribution. ok is false for
// fewer than 6 values, too few for any such interval.
func medianInterval(r []float64) (lo, hi float64, ok bool) {
	n := len(r)
	// cum is P(X <= j) for X ~ Binomial(n, 1/2), built term by term.
	k, cum, term := 0, 0.0, math.Pow(0.5, float64(n))
	for j := 0; j < n; j++ {
		cum += term
		if cum > 0.025 {
			break
		}
		k = j + 1 // P(X <= j) <= 2.5%: the (j+1)-th smallest may bound it
		term *= float64(n-j) / float64(j+1)
	}
	if k == 0 {
		return 0, 0, false
	}
	s := slices.Sorted(slices.Values(r))
	return s[k-1], s[n-k], true
}

// verdict reads a median's interval [lo, hi] against target, a bound the
// ratio is to stay under: met when the whole interval is at or below it,
// missed when the whole interval is above it, and undecided when the
// interval straddles it (the run cannot tell; more rounds narrow it).
func verdict(lo, hi, target float64) string {
	switch {
	case hi <= target:
		return "met"
	case lo > target:
		return "missed"
	}
	return "undecided"
}

// medianRatio returns the median over rounds of a[r]/b[r], 0 when there
// is none.
func medianRatio(a, b []float64) float64 {
	r := roundRatios(a, b)
	if len(r) == 0 {
		return 0
	}
	slices.Sort(r)
	if len(r)%2 == 1 {
		return r[len(r)/2]
	}
	return (r[len(r)/2-1] + r[len(r)/2]) / 2
}
