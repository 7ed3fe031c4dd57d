package gateway

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"certops/fixtures"
)

// TestRotationUnderLoad applies fresh certificates in a loop while many
// clients do full handshakes and keep their connections open: no
// handshake fails, no connection breaks, and every handshake is served one
// generation's complete chain (leaf and intermediate of the same Apply),
// never older than the last Apply that returned before it began; with
// Apply and with ApplyChanges (the storage then shared between snapshots
// while handshakes read it).
func TestRotationUnderLoad(t *testing.T) {
	for _, mode := range []string{"Apply", "ApplyChanges"} {
		t.Run(mode, func(t *testing.T) { testRotationUnderLoad(t, mode) })
	}
}

func testRotationUnderLoad(t *testing.T, mode string) {
	const (
		entities = 3
		workers  = 8
		held     = 8 // connections each worker keeps open
	)
	applies := 40
	if testing.Short() {
		applies = 10
	}
	p := newPKI(t)

	type origin struct {
		entity string
		gen    int64
	}
	var (
		mu      sync.Mutex
		serials = make(map[string]origin) // certificate serial -> where it came from
	)
	generation := func(gen int64) Config {
		inter := p.root.Intermediate(t, fmt.Sprintf("generation %d", gen))
		mu.Lock()
		serials[inter.Cert.SerialNumber.String()] = origin{"intermediate", gen}
		mu.Unlock()
		var cfg Config
		for i := range entities {
			name := fmt.Sprintf("r%d", i)
			leaf := inter.Leaf(t, fixtures.LeafOptions{DNSNames: []string{name + ".example.com"}})
			mu.Lock()
			serials[leaf.Cert.SerialNumber.String()] = origin{name, gen}
			mu.Unlock()
			cfg.Entities = append(cfg.Entities, Entity{Name: name, SNIs: []string{name + ".example.com"}, Chains: []tls.Certificate{leaf.TLS(t)}})
		}
		return cfg
	}

	var res results
	initial := generation(0)
	if mode == "ApplyChanges" {
		// Entities that never change, so that most changes share the
		// storage and some compact it.
		static := p.entity(t, "static", "static.example.com")
		for i := range 30 {
			e := static
			e.Name, e.SNIs = fmt.Sprintf("static%d", i), []string{fmt.Sprintf("static%d.example.com", i)}
			initial.Entities = append(initial.Entities, e)
		}
	}
	s, addr := serve(t, Options{OnHandshake: res.record}, initial)
	var applied, started atomic.Int64 // generations whose Apply returned / began

	var (
		wg         sync.WaitGroup
		stop       = make(chan struct{})
		handshakes atomic.Int64
		failures   = make(chan error, workers*4)
	)
	fail := func(err error) {
		select {
		case failures <- err:
		default:
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var open []*tls.Conn
			defer func() {
				for _, c := range open {
					if status, _, err := request(c, c.ConnectionState().ServerName); err != nil || status != 200 {
						fail(fmt.Errorf("worker %d: held connection broken at the end: %d, %v", w, status, err))
					}
					c.Close()
				}
			}()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("r%d", rng.IntN(entities))
				sni := name + ".example.com"
				low := applied.Load()
				conn, err := handshake(addr, p.clientConfig(sni))
				if err != nil {
					fail(fmt.Errorf("worker %d: handshake(%s): %w", w, sni, err))
					return
				}
				high := started.Load()
				handshakes.Add(1)
				chain := conn.ConnectionState().PeerCertificates
				mu.Lock()
				leaf, leafOK := serials[chain[0].SerialNumber.String()]
				inter, interOK := serials[chain[1].SerialNumber.String()]
				mu.Unlock()
				switch {
				case !leafOK || !interOK || len(chain) != 2:
					fail(fmt.Errorf("worker %d: %s served an unknown chain", w, sni))
				case leaf.entity != name:
					fail(fmt.Errorf("worker %d: %s served the certificate of %s", w, sni, leaf.entity))
				case leaf.gen != inter.gen:
					fail(fmt.Errorf("worker %d: %s served a mixed chain: leaf of generation %d, intermediate of %d", w, sni, leaf.gen, inter.gen))
				case leaf.gen < low || leaf.gen > high:
					fail(fmt.Errorf("worker %d: %s served generation %d, want %d..%d", w, sni, leaf.gen, low, high))
				}
				if status, _, err := request(conn, sni); err != nil || status != 200 {
					fail(fmt.Errorf("worker %d: request on a new connection: %d, %v", w, status, err))
				}
				open = append(open, conn)
				if len(open) > held {
					old := open[0]
					open = open[1:]
					if status, _, err := request(old, old.ConnectionState().ServerName); err != nil || status != 200 {
						fail(fmt.Errorf("worker %d: held connection broken: %d, %v", w, status, err))
					}
					old.Close()
				}
			}
		}()
	}
	for gen := int64(1); gen <= int64(applies); gen++ {
		cfg := generation(gen)
		started.Store(gen)
		apply := s.Apply
		if mode == "ApplyChanges" {
			apply = func(cfg Config) error { return s.ApplyChanges(cfg.Entities, nil) }
		}
		if err := apply(cfg); err != nil {
			t.Fatalf("%s(generation %d): %v", mode, gen, err)
		}
		applied.Store(gen)
		// Let every worker overlap this generation before the next one.
		want := handshakes.Load() + workers
		deadline := time.Now().Add(30 * time.Second)
		for handshakes.Load() < want && len(failures) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	n := handshakes.Load()
	got := res.wait(t, int(n))
	if got[HandshakeOK] != int(n) {
		t.Errorf("OnHandshake results = %v, want %d ok", got, n)
	}
	t.Logf("%d handshakes during %d applies", n, applies)
	if n < int64(applies*workers) {
		t.Errorf("only %d handshakes during %d applies; the test did not overlap them", n, applies)
	}
}
