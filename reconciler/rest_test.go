package reconciler

import (
	"fmt"
	"testing"
	"testing/fstest"

	"certops/fixtures"
	"certops/schema"
)

// TestResultsAtRest checks that once a reconcile is done nothing it keeps
// holds a live entity of its load: the loader's results are frozen and
// every applied build holds its entity at rest, after a start and after a
// one-file change, and that the builds thawed for a rebuild serve as
// before.
func TestResultsAtRest(t *testing.T) {
	ca := fixtures.NewRootCA(t, "rest CA")
	gw := startGateway(t, ca)
	fsys := fstest.MapFS{}
	leaves := map[string]*fixtures.Leaf{}
	for i := range 40 {
		name := fmt.Sprintf("e%d", i)
		y, leaf := entity(t, ca, name, name+".example.com")
		fsys[name+".yaml"] = &fstest.MapFile{Data: []byte(y)}
		leaves[name] = leaf
	}
	rec := New(Options{FS: fsys, Gateway: gw, Hygiene: &schema.Hygiene{}})
	atRest := func(what string) {
		t.Helper()
		files := rec.loader.last.files
		for i := range files.Len() {
			if !files.Frozen(i) {
				t.Errorf("%s: %s is live in the loader's results", what, files.Path(i))
			}
		}
		for name, b := range rec.applied.built {
			if b.entity != nil || b.ref.IsZero() || b.name() != name {
				t.Errorf("%s: the build of %s holds a live entity (%v) or no reference, named %s", what, name, b.entity != nil, b.name())
			}
			if !files.Holds(b.ref) {
				t.Errorf("%s: the build of %s holds a form the loader dropped", what, name)
			}
		}
		for name, leaf := range leaves {
			gw.wantServed(t, name+".example.com", leaf)
		}
	}
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	atRest("after the start")

	y, leaf := entity(t, ca, "e2", "e2.example.com")
	fsys["e2.yaml"] = &fstest.MapFile{Data: []byte(y)}
	leaves["e2"] = leaf
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	atRest("after a one-file change")

	// A rebuild (after the gateway refused an Apply) thaws every build's
	// entity and parses it again.
	rec.rebuild = true
	y, leaf = entity(t, ca, "e3", "e3.example.com")
	fsys["e3.yaml"] = &fstest.MapFile{Data: []byte(y)}
	leaves["e3"] = leaf
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	atRest("after a rebuild")

	// One file at a time, as an operator edits: the forms of the loads
	// are merged now and then, and the builds follow.
	for step := range 60 {
		name := fmt.Sprintf("e%d", (step*7)%40)
		y, leaf := entity(t, ca, name, name+".example.com")
		fsys[name+".yaml"] = &fstest.MapFile{Data: []byte(y)}
		leaves[name] = leaf
		wantResult(t, reconcileNow(t, rec), ResultApplied)
	}
	atRest("after 60 one-file changes")
}
