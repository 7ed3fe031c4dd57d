package gateway

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	mathrand "math/rand/v2"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"

	"certops/fixtures"
)

// TestEntryBytes keeps the entry size estimates of the cache's memory
// budget honest: the heap that parsed entries keep, their keys used once
// (crypto/ecdsa and crypto/rsa keep a FIPS form of a key they signed
// with), is within a third of snapshot.entryBytes for each kind of entity.
func TestEntryBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap of parsed entries")
	}
	p := newPKI(t)
	ecdsaLeaf := p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"x.example.com"}}).TLS(t)
	rsaLeaf := p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"x.example.com"}, Key: fixtures.RSA}).TLS(t)
	edLeaf := p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"x.example.com"}, Key: fixtures.Ed25519}).TLS(t)
	for _, tc := range []struct {
		name   string
		chains []tls.Certificate
	}{
		{"ecdsa", []tls.Certificate{ecdsaLeaf}},
		{"rsa", []tls.Certificate{rsaLeaf}},
		{"ed25519", []tls.Certificate{edLeaf}},
		{"ecdsa+rsa", []tls.Certificate{ecdsaLeaf, rsaLeaf}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 256
			var cfg Config
			for i := range n {
				name := fmt.Sprintf("e%d", i)
				cfg.Entities = append(cfg.Entities, Entity{Name: name, SNIs: []string{name + ".example.com"}, Chains: tc.chains})
			}
			s := New(Options{CacheSize: n})
			if err := s.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			snap := s.snap.Load()
			digest := sha256.Sum256([]byte("entry"))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			scanBefore := scanBytes()
			for i := range int32(n) {
				e, err := snap.entry(i)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range e.chains {
					opts := crypto.SignerOpts(crypto.SHA256)
					if _, ok := c.PrivateKey.(interface{ Seed() []byte }); ok {
						opts = crypto.Hash(0) // Ed25519 signs the message itself
					}
					if _, err := c.PrivateKey.(crypto.Signer).Sign(rand.Reader, digest[:], opts); err != nil {
						t.Fatal(err)
					}
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			got := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
			scanned := float64(int64(scanBytes())-int64(scanBefore)) / n
			want := float64(snap.entryBytes())
			t.Logf("%s: %.0f bytes per entry (%.0f scanned), estimated %.0f", tc.name, got, scanned, want)
			if got < want*2/3 || got > want*4/3 {
				t.Errorf("an entry of %s keeps %.0f bytes of heap, estimated %.0f: update the estimates in snapshot.go", tc.name, got, want)
			}
			runtime.KeepAlive(snap)
		})
	}
}

// BenchmarkEntryMiss measures what a cache miss adds to a handshake: an
// entry built from the arena and its key's first signature ("miss")
// against a signature with a cached entry's key ("hit").
//
//	go test ./gateway/ -run '^$' -bench EntryMiss
func BenchmarkEntryMiss(b *testing.B) {
	for _, kt := range []fixtures.KeyType{fixtures.ECDSA, fixtures.Ed25519, fixtures.RSA} {
		p := newPKI(b)
		leaf := p.root.Leaf(b, fixtures.LeafOptions{DNSNames: []string{"x.example.com"}, Key: kt}).TLS(b)
		var cfg Config
		for i := range 1024 {
			name := fmt.Sprintf("e%d", i)
			cfg.Entities = append(cfg.Entities, Entity{Name: name, SNIs: []string{name + ".example.com"}, Chains: []tls.Certificate{leaf}})
		}
		s := New(Options{CacheSize: 1})
		if err := s.Apply(cfg); err != nil {
			b.Fatal(err)
		}
		snap := s.snap.Load()
		digest := sha256.Sum256([]byte("entry"))
		opts := crypto.SignerOpts(crypto.SHA256)
		if kt == fixtures.Ed25519 {
			opts = crypto.Hash(0)
		}
		sign := func(e *entry) {
			if _, err := e.chains[0].PrivateKey.(crypto.Signer).Sign(rand.Reader, digest[:], opts); err != nil {
				b.Fatal(err)
			}
		}
		for _, mode := range []string{"hit", "miss"} {
			b.Run(string(kt)+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				hot, err := snap.build(0, nil)
				if err != nil {
					b.Fatal(err)
				}
				i := int32(0)
				for b.Loop() {
					e := hot
					if mode == "miss" {
						i = (i + 1) % 1024
						if e, err = snap.build(i, nil); err != nil {
							b.Fatal(err)
						}
					}
					sign(e)
				}
			})
		}
	}
}

// scanBytes is the heap the garbage collector scans for pointers.
func scanBytes() uint64 {
	m := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	metrics.Read(m)
	return m[0].Value.Uint64()
}

// TestCacheBudget checks the number of cache slots a snapshot gets: as
// many entries as its budget holds by their estimated size, fewer for
// larger entities, a fixed number with CacheSize, and never more than
// there are entities.
func TestCacheBudget(t *testing.T) {
	p := newPKI(t)
	ecdsaLeaf := p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"x.example.com"}}).TLS(t)
	rsaLeaf := p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"x.example.com"}, Key: fixtures.RSA}).TLS(t)
	config := func(n int, chains ...tls.Certificate) Config {
		var cfg Config
		for i := range n {
			name := fmt.Sprintf("e%d", i)
			cfg.Entities = append(cfg.Entities, Entity{Name: name, SNIs: []string{name + ".example.com"}, Chains: chains})
		}
		return cfg
	}
	ecdsaEntry := entryBaseBytes + chainBytes + ecKeyBytes
	rsaEntry := entryBaseBytes + chainBytes + rsaKeyBytes
	for _, tc := range []struct {
		name string
		opts Options
		cfg  Config
		want int
	}{
		{"default budget, few entities", Options{}, config(10, ecdsaLeaf), 10},
		{"default budget, ecdsa", Options{}, config(DefaultCacheSize+100, ecdsaLeaf), DefaultCacheSize},
		{"budget of 50 ecdsa entries", Options{CacheBytes: 50 * ecdsaEntry}, config(200, ecdsaLeaf), 50},
		{"the same budget, rsa", Options{CacheBytes: 50 * ecdsaEntry}, config(200, rsaLeaf), 50 * ecdsaEntry / rsaEntry},
		{"fixed size", Options{CacheSize: 7, CacheBytes: 1}, config(200, rsaLeaf), 7},
		{"budget below one entry", Options{CacheBytes: 1}, config(200, ecdsaLeaf), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.opts)
			if err := s.Apply(tc.cfg); err != nil {
				t.Fatal(err)
			}
			if got := len(s.snap.Load().cache); got != tc.want {
				t.Errorf("cache slots = %d, want %d", got, tc.want)
			}
			// A change keeps the budget; a removed entity's record stays
			// until a compaction (at once for the few entities).
			if err := s.ApplyChanges(nil, []string{"e0"}); err != nil {
				t.Fatal(err)
			}
			snap := s.snap.Load()
			if got, want := len(snap.cache), min(tc.want, int(snap.entities.len())); got != want {
				t.Errorf("cache slots after a removal = %d, want %d", got, want)
			}
		})
	}
}

// BenchmarkCacheHotSet measures the parsed cache's misses for traffic
// that visits a hot set of entities over and over, in a 10,000-entity
// snapshot with the default budget: a hot set that fits in the cache
// should stay parsed, whatever the indexes of its entities. Each op visits
// every entity of the hot set once, in a shuffled order; the hot sets are
// drawn at random (seeded) from all entities. A visit that misses builds
// the entry (ns/visit; the key's first signature is not part of it).
//
//	go test ./gateway/ -run '^$' -bench CacheHotSet -benchtime 30x
func BenchmarkCacheHotSet(b *testing.B) {
	for _, kt := range []fixtures.KeyType{fixtures.ECDSA, fixtures.RSA} {
		s := New(Options{})
		if err := s.Apply(sharedLeafConfig(material(b, kt), 10_000)); err != nil {
			b.Fatal(err)
		}
		snap := s.snap.Load()
		slots := len(snap.cache)
		// Hot sets of 1/8, 1/4 and 1/2 of the slots, and every entity
		// (what a miss costs the lookup: most visits miss).
		for _, frac := range []int{8, 4, 2, 0} {
			if frac == 0 && kt == fixtures.RSA {
				continue // 10,000 key parses a visit
			}
			hot := mathrand.New(mathrand.NewPCG(uint64(frac), 7)).Perm(10_000)
			if frac > 0 {
				hot = hot[:slots/frac]
			}
			b.Run(fmt.Sprintf("%s/slots=%d/hot=%d", kt, slots, len(hot)), func(b *testing.B) {
				rng := mathrand.New(mathrand.NewPCG(1, 2))
				visit := func() (misses int) {
					rng.Shuffle(len(hot), func(i, j int) { hot[i], hot[j] = hot[j], hot[i] })
					for _, i := range hot {
						if snap.cached(int32(i)) == nil {
							misses++
						}
						if _, err := snap.entry(int32(i)); err != nil {
							b.Fatal(err)
						}
					}
					return misses
				}
				for range 3 {
					visit() // warm up: the first visits miss
				}
				misses, visits := 0, 0
				for b.Loop() {
					misses += visit()
					visits += len(hot)
				}
				b.ReportMetric(100*float64(misses)/float64(visits), "miss-%")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(visits), "ns/visit")
			})
		}
	}
}

// TestCacheWays checks the parsed cache's placement: entities that share
// a slot both stay parsed, a hot set well within the cache never misses
// once parsed, whatever its entities' indexes, and concurrent lookups
// always get the entity they ask for.
func TestCacheWays(t *testing.T) {
	p := newPKI(t)
	leaf := p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"x.example.com"}}).TLS(t)
	const n, slots = 2000, 64
	var cfg Config
	for i := range n {
		name := fmt.Sprintf("e%d", i)
		cfg.Entities = append(cfg.Entities, Entity{Name: name, SNIs: []string{name + ".example.com"}, Chains: []tls.Certificate{leaf}})
	}
	s := New(Options{CacheSize: slots})
	if err := s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	snap := s.snap.Load()
	// misses visits each entity of hot rounds times and counts the visits
	// that found it unparsed.
	misses := func(hot []int32, rounds int) int {
		m := 0
		for range rounds {
			for _, i := range hot {
				if snap.cached(i) == nil {
					m++
				}
				e, err := snap.entry(i)
				if err != nil {
					t.Fatal(err)
				}
				if e.index != i || e.name != snap.entityName(i) {
					t.Fatalf("entry(%d) = entity %d (%s)", i, e.index, e.name)
				}
			}
		}
		return m
	}

	t.Run("two entities of one slot", func(t *testing.T) {
		// Two entities whose first ways are one slot, and whose second
		// ways are two others: a direct-mapped cache evicted one for the
		// other at every visit.
		i := int32(5)
		ai, bi := snap.ways(i)
		var j int32 = -1
		for k := i + slots; k < n; k += slots {
			if aj, bj := snap.ways(k); aj == ai && bj != ai && bj != bi {
				j = k
				break
			}
		}
		if j < 0 || bi == ai {
			t.Fatal("no pair of entities sharing only their first way")
		}
		misses([]int32{i, j}, 1)
		if m := misses([]int32{i, j}, 10); m != 0 {
			t.Errorf("%d misses in 20 visits of two entities sharing a slot", m)
		}
	})
	t.Run("a hot set of an eighth of the slots", func(t *testing.T) {
		for seed := range uint64(20) {
			perm := mathrand.New(mathrand.NewPCG(seed, 1)).Perm(n)[:slots/8]
			hot := make([]int32, len(perm))
			for k, i := range perm {
				hot[k] = int32(i)
			}
			misses(hot, 3) // the first visits parse, and may move earlier entries about
			if m := misses(hot, 5); m != 0 {
				t.Errorf("seed %d: %d misses in %d visits of a hot set of %d in %d slots", seed, m, 5*len(hot), len(hot), slots)
			}
		}
	})
	t.Run("concurrent lookups", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				rng := mathrand.New(mathrand.NewPCG(uint64(g), 2))
				for range 2000 {
					i := int32(rng.IntN(n))
					e, err := snap.entry(i)
					if err != nil || e.index != i || e.name != snap.entityName(i) {
						t.Errorf("entry(%d) = %v, %v", i, e, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}
