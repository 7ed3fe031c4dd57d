package reconciler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"testing/fstest"

	"certops/fixtures"
)

// TestResolveDeltaMatchesFull runs random sequences of commits (entity
// files rewritten, removed, moved to secret references and back) and
// secret rotations (a new pair, a key that does not match, a missing
// value, a store that is down, a stale value, while a refused revision
// waits for a fix) through two reconcilers:
// one resolving each load's delta against its applied state
// (resolveDelta), one made to resolve and build every entity each run.
// Every attempt has the same result, entities, plan, degraded entities and
// served certificates.
func TestResolveDeltaMatchesFull(t *testing.T) {
	ca := fixtures.NewRootCA(t, "delta CA")
	const n = 8
	var leaves [n][]*fixtures.Leaf // by entity: the pairs its references may take
	for i := range n {
		for range 2 {
			leaves[i] = append(leaves[i], ca.Server(t, fmt.Sprintf("e%d.test", i)))
		}
	}
	res := &mapResolver{values: map[string]string{}, stale: map[string]error{}}
	setPair := func(i int, l *fixtures.Leaf) {
		res.set(fmt.Sprintf("$env://CERT_%d", i), string(l.ChainPEM))
		res.set(fmt.Sprintf("$env://KEY_%d", i), string(l.KeyPEM))
	}
	var cur [n]int // the pair each entity's references take
	for i := range n {
		setPair(i, leaves[i][0])
	}
	fsys := fstest.MapFS{}
	write := func(i int, ref bool) {
		y, _ := entity(t, ca, fmt.Sprintf("e%d", i), fmt.Sprintf("e%d.test", i))
		if ref {
			y = fmt.Sprintf("name: e%d\nsnis: [e%d.test]\ncert: $env://CERT_%d\nkey: $env://KEY_%d\n", i, i, i, i)
		}
		fsys[fmt.Sprintf("d%d/e%d.yaml", i%2, i)] = &fstest.MapFile{Data: []byte(y)}
	}
	for i := range n {
		write(i, i%3 == 0)
	}
	gwInc, gwFull := startGateway(t, ca), startGateway(t, ca)
	inc := New(Options{FS: fsys, Gateway: gwInc, Secrets: res, AllowMassDelete: true})
	full := New(Options{FS: fsys, Gateway: gwFull, Secrets: res, AllowMassDelete: true})
	rng := rand.New(rand.NewPCG(13, 9))
	steps := 80
	if testing.Short() {
		steps = 25
	}
	results := map[Result]int{}
	for step := range steps {
		res.mu.Lock()
		res.err = nil
		res.mu.Unlock()
		if rng.IntN(3) == 0 {
			delete(fsys, "d0/broken.yaml") // fixed
		}
		if rng.IntN(2) == 0 {
			for i := range n {
				setPair(i, leaves[i][cur[i]]) // the store's values fixed
			}
		}
		for range 1 + rng.IntN(2) {
			i := rng.IntN(n)
			switch r := rng.IntN(12); {
			case r < 3:
				write(i, rng.IntN(2) == 0)
			case r == 3:
				delete(fsys, fmt.Sprintf("d%d/e%d.yaml", i%2, i))
			case r < 7:
				cur[i] = rng.IntN(2)
				setPair(i, leaves[i][cur[i]])
			case r == 7: // a key that does not match its certificate
				res.set(fmt.Sprintf("$env://KEY_%d", i), string(leaves[(i+1)%n][0].KeyPEM))
			case r == 8: // a value missing from the store
				res.mu.Lock()
				delete(res.values, fmt.Sprintf("$env://CERT_%d", i))
				res.mu.Unlock()
			case r == 9:
				res.mu.Lock()
				res.err = errors.New("store: connection refused")
				res.mu.Unlock()
			case r == 10:
				res.mu.Lock()
				if res.stale[fmt.Sprintf("$env://CERT_%d", i)] == nil {
					res.stale[fmt.Sprintf("$env://CERT_%d", i)] = errors.New("refresh failed")
				} else {
					delete(res.stale, fmt.Sprintf("$env://CERT_%d", i))
				}
				res.mu.Unlock()
			case r == 11: // a refused revision, while rotations go on (rotate)
				fsys["d0/broken.yaml"] = &fstest.MapFile{Data: []byte("name: [broken\n")}
			}
		}
		a := reconcileNow(t, inc)
		full.rebuild = true // builds every entity: no delta
		b := reconcileNow(t, full)
		results[a.Result]++
		if a.Result != b.Result {
			t.Fatalf("step %d: delta %s (%v), full %s (%v)", step, a.Result, a.Err(), b.Result, b.Err())
		}
		if got, want := inc.Entities(), full.Entities(); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: entities\n%+v\nwant\n%+v", step, got, want)
		}
		si, sf := inc.Status(), full.Status()
		if !reflect.DeepEqual(si.Plan, sf.Plan) || !reflect.DeepEqual(si.Degraded, sf.Degraded) {
			t.Fatalf("step %d: plan %+v degraded %+v, want %+v %+v", step, si.Plan, si.Degraded, sf.Plan, sf.Degraded)
		}
		for i := range n {
			sni := fmt.Sprintf("e%d.test", i)
			x, errX := gwInc.served(sni)
			y, errY := gwFull.served(sni)
			switch {
			case (errX == nil) != (errY == nil):
				t.Fatalf("step %d: %s: delta %v, full %v", step, sni, errX, errY)
			case errX == nil && !x.Equal(y):
				t.Fatalf("step %d: %s: delta serves serial %x, full %x", step, sni, x.SerialNumber, y.SerialNumber)
			}
		}
		if got, want := inc.applied != nil, full.applied != nil; got && want && !reflect.DeepEqual(refdSet(inc), refdSet(full)) {
			t.Fatalf("step %d: entities with references %v, want %v", step, refdSet(inc), refdSet(full))
		}
	}
	if results[ResultApplied] < steps/5 || results[ResultFailed]+results[ResultStalled] == 0 {
		t.Errorf("results %v: the sequence did not exercise both applies and failures", results)
	}
	t.Logf("results %v", results)
}

func refdSet(r *Reconciler) map[string]bool {
	m := map[string]bool{}
	for _, name := range r.applied.refd {
		m[name] = true
	}
	return m
}
