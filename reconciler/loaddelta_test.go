package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"weak"

	"certops/fixtures"
	"certops/schema"
	"certops/source"
)

// TestLoadChangedMatchesFullLoad loads random sequences of revisions
// (entity files added, rewritten, renamed, removed; names and SNIs claimed
// twice; broken files; policy files and other files coming and going)
// with the loader's incremental path, and without it (the full listing
// each time, with the cache): the results are the same.
func TestLoadChangedMatchesFullLoad(t *testing.T) {
	ca := fixtures.NewRootCA(t, "loader CA")
	var docs []string
	for i := range 8 {
		y, _ := entity(t, ca, fmt.Sprintf("e%d", i%6), fmt.Sprintf("e%d.example.com", i%5))
		docs = append(docs, y)
	}
	docs = append(docs, "name: [broken\n", "")
	policies := []string{"package certops\n#SSL: labels?: [string]: string\n", "package certops\n#SSL: snis: [...=~\"example\\\\.com$\"]\n"}
	files := map[string]string{}
	tree := func(step int) *source.Tree {
		ids := map[string]string{}
		for p, c := range files {
			sum := sha256.Sum256([]byte(c))
			ids[p] = hex.EncodeToString(sum[:])
		}
		content := maps.Clone(files)
		return source.NewTree(fmt.Sprintf("r%d", step), ids, func(name string) ([]byte, error) { return []byte(content[name]), nil })
	}
	opts := schema.Options{WarnWithin: schema.DefaultWarnWithin}
	inc, full := newLoader("certs", opts), newLoader("certs", opts)
	rng := rand.New(rand.NewPCG(13, 4))
	fast, deltas := 0, 0
	for step := range 150 {
		for range 1 + rng.IntN(3) {
			p := fmt.Sprintf("certs/d%d/f%d.yaml", rng.IntN(2), rng.IntN(10))
			switch r := rng.IntN(20); {
			case r < 4:
				delete(files, p)
			case r == 4:
				files["certs/policy.cue"] = policies[rng.IntN(len(policies))]
			case r == 5:
				delete(files, "certs/policy.cue")
			case r == 6:
				files[fmt.Sprintf("other/f%d.yaml", rng.IntN(3))] = docs[0] // outside the path
			case r == 7:
				files["certs/README.md"] = fmt.Sprint(step)
			default:
				files[p] = docs[rng.IntN(len(docs))]
			}
		}
		tr := tree(step)
		before := inc.last
		a, err := inc.load(t.Context(), tr)
		if err != nil {
			t.Fatalf("step %d: incremental load: %v", step, err)
		}
		if before != nil && inc.last != nil && inc.last.tree == tr && a.validated < a.files {
			fast++
		}
		if d := inc.last.delta; d != nil {
			if d.base != weak.Make(before) {
				t.Fatalf("step %d: the delta is not from the load before", step)
			}
			if err := checkDelta(before, inc.last); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			deltas++
		}
		b, err := full.loadAll(t.Context(), tr) // the full listing each time
		if err != nil {
			t.Fatalf("step %d: full load: %v", step, err)
		}
		if got, want := describeLoad(a), describeLoad(b); got != want {
			t.Fatalf("step %d: incremental load\n%s\nwant (full load)\n%s", step, got, want)
		}
		if rng.IntN(2) == 0 {
			inc.freeze() // as a reconcile does when done: the next load starts from results at rest
		}
		if rng.IntN(3) == 0 {
			full.freeze()
		}
	}
	if fast == 0 || deltas == 0 {
		t.Errorf("the incremental path ran %d times, with a delta %d times; want both", fast, deltas)
	}
}

// checkDelta checks that the entities of the load before, without the
// delta's gone names and with its entities in place of those of the same
// name, are the entities of the load (the same pointers), when neither
// load claims a name twice (a refused revision, which is not resolved).
func checkDelta(before, cur *loaded) error {
	names := func(l *loaded) (map[string]string, bool) {
		m := map[string]string{}
		for i := range l.files.Len() {
			for _, e := range l.files.File(i).Entities {
				if m[e.Name] != "" {
					return nil, false
				}
				m[e.Name] = describeEntity(e)
			}
		}
		return m, true
	}
	want, ok1 := names(cur)
	got, ok2 := names(before)
	if !ok1 || !ok2 {
		return nil
	}
	for _, name := range cur.delta.gone {
		if got[name] == "" {
			return fmt.Errorf("delta: %s gone, but the load before has no such entity", name)
		}
		delete(got, name)
	}
	for _, e := range cur.delta.entities {
		got[e.Name] = describeEntity(e)
	}
	if !maps.Equal(got, want) {
		return fmt.Errorf("the load before with its delta has entities %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	return nil
}

func describeLoad(r *loadResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "files %d validated %d removed %d\n", r.files, r.validated, r.removed)
	es, _ := r.entities()
	for _, e := range es {
		fmt.Fprintf(&b, "entity %s at %s %v\n", e.Name, e.Pos, e.SNIs)
	}
	b.WriteString(r.problems().Error())
	return b.String()
}

// describeEntity is what tells an entity of a load from another: its
// place and its content's hash (a thawed entity is another pointer).
func describeEntity(e *schema.Entity) string {
	return fmt.Sprintf("%s at %s, %s", e.Name, e.Pos, e.Hash)
}
