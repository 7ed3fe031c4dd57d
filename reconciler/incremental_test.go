package reconciler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"testing/fstest"

	"certops/fixtures"
	"certops/gateway"
	"certops/plan"
)

// fullGateway hides ApplyChanges: the reconciler gives it whole Configs.
type fullGateway struct{ *testGateway }

func (g fullGateway) Apply(cfg gateway.Config) error { return g.testGateway.Apply(cfg) }

// TestIncrementalMatchesFull runs random change sequences (creates,
// rotations, SNIs moved or claimed twice, renames, deletions, disabled
// entities) through two reconcilers, one whose gateway takes changes and
// one given whole Configs: every attempt has the same result, and both
// gateways serve the same leaf, or refuse, for every name.
func TestIncrementalMatchesFull(t *testing.T) {
	ca := fixtures.NewRootCA(t, "incremental CA")
	snis := []string{"a.example.com", "x.w.example.com", "e0.test", "e1.test", "e2.test", "e3.test", "e4.test", "e5.test", "e6.test", "e9.test"}
	pool := []string{"a.example.com", "*.w.example.com"} // claimed now and then, by one or two
	inc, full := startGateway(t, ca), startGateway(t, ca)
	fsInc, fsFull := fstest.MapFS{}, fstest.MapFS{}
	recInc := New(Options{FS: fsInc, Gateway: inc, AllowMassDelete: true})
	recFull := New(Options{FS: fsFull, Gateway: fullGateway{full}, AllowMassDelete: true})
	rng := rand.New(rand.NewPCG(13, 2))
	steps := 80
	if testing.Short() {
		steps = 20
	}
	results := map[Result]int{}
	for step := range steps {
		for range 1 + rng.IntN(2) {
			name := fmt.Sprintf("e%d", rng.IntN(10))
			file := name + ".yaml"
			if rng.IntN(4) == 0 {
				delete(fsInc, file)
				delete(fsFull, file)
				continue
			}
			mine := []string{name + ".test"}
			if rng.IntN(5) == 0 {
				mine[0] = fmt.Sprintf("e%d.test", rng.IntN(10)) // another's: moved, or claimed twice
			}
			if rng.IntN(6) == 0 {
				mine = append(mine, pool[rng.IntN(len(pool))])
			}
			y, _ := entity(t, ca, name, mine...)
			if rng.IntN(8) == 0 {
				y += "status: 0\n"
			}
			fsInc[file] = &fstest.MapFile{Data: []byte(y)}
			fsFull[file] = &fstest.MapFile{Data: []byte(y)}
		}
		before := recInc.Entities()
		a, b := reconcileNow(t, recInc), reconcileNow(t, recFull)
		results[a.Result]++
		if a.Result == ResultApplied {
			// The entities and the plan, merged from the delta, are what
			// a reconciler without an applied state and a full diff find.
			fresh := New(Options{FS: fsInc, Gateway: gateway.New(gateway.Options{}), AllowMassDelete: true})
			wantResult(t, reconcileNow(t, fresh), ResultApplied)
			if got, want := recInc.Entities(), fresh.Entities(); !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d: entities\n%+v\nwant\n%+v", step, got, want)
			}
			if got, want := *recInc.Status().Plan, plan.Diff(before, recInc.Entities()).Summary; got != want {
				t.Fatalf("step %d: plan %+v, want %+v", step, got, want)
			}
		}
		if a.Result != b.Result {
			t.Fatalf("step %d: incremental %s (%v), full %s (%v)", step, a.Result, a.Err(), b.Result, b.Err())
		}
		for _, sni := range snis {
			x, errX := inc.served(sni)
			y, errY := full.served(sni)
			switch {
			case (errX == nil) != (errY == nil):
				t.Fatalf("step %d: %s: incremental %v, full %v", step, sni, errX, errY)
			case errX == nil && !x.Equal(y):
				t.Fatalf("step %d: %s: incremental serves serial %x, full %x", step, sni, x.SerialNumber, y.SerialNumber)
			}
		}
	}
	if results[ResultApplied] < steps/4 || results[ResultStalled] == 0 {
		t.Errorf("results %v: the sequence did not exercise both applies and refusals", results)
	}
	t.Logf("results %v", results)
}
