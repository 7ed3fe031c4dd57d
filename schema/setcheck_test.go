package schema

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"certops/certcheck"
)

// randomSetFile returns a result at path of one or two entities named
// from a to f, each with some of snis, one in six disabled, and with
// twice, one SNI in ten listed twice by its entity.
func randomSetFile(rng *rand.Rand, path string, snis []string, twice bool) *FileResult {
	names := []string{"a", "b", "c", "d", "e", "f"}
	f := &FileResult{Path: path}
	for n := range 1 + rng.IntN(2) {
		e := &Entity{Name: names[rng.IntN(len(names))], Pos: Pos{File: path, Line: 1 + 10*n, Col: 1}, Disabled: rng.IntN(6) == 0}
		for _, s := range snis {
			if rng.IntN(4) == 0 {
				e.SNIs = append(e.SNIs, s)
			}
		}
		if twice && rng.IntN(10) == 0 && len(e.SNIs) > 0 {
			e.SNIs = append(e.SNIs, e.SNIs[0]) // listed twice by one entity
		}
		f.Entities = append(f.Entities, e)
	}
	return f
}

// TestSetCheckerMatchesCheckSet checks random sequences of revisions
// (files added, changed, removed; names and SNIs duplicated within and
// across files; disabled entities) incrementally and in full: the
// problems are the same, in the same order.
func TestSetCheckerMatchesCheckSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 3))
	snis := []string{"a.example.com", "b.example.com", "*.example.com", "*", "c.example.org"}
	newFile := func(path string) *FileResult { return randomSetFile(rng, path, snis, true) }
	files := map[string]*FileResult{}
	var c SetChecker
	found := 0
	for step := range 500 {
		for range 1 + rng.IntN(3) {
			path := fmt.Sprintf("d%d/f%d.yaml", rng.IntN(2), rng.IntN(8))
			if rng.IntN(4) == 0 {
				delete(files, path)
			} else {
				files[path] = newFile(path)
			}
		}
		var list []*FileResult
		for _, f := range files {
			list = append(list, f)
		}
		if rng.IntN(2) == 0 {
			slices.SortFunc(list, func(a, b *FileResult) int { return cmpString(a.Path, b.Path) })
		}
		got, want := c.Check(list), CheckSet(list)
		found += len(want)
		if g, w := got.Error(), want.Error(); g != w || len(got) != len(want) {
			t.Fatalf("step %d: SetChecker.Check =\n%s\nwant (CheckSet)\n%s", step, g, w)
		}
	}
	if found == 0 {
		t.Error("no duplicate in any revision: the test checked nothing")
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestSetCheckerKeyReuse checks random sequences of revisions whose
// entities run the hygiene checks and serve keys from a small pool (so
// that some are shared, by one name or by several), some of them by a
// certificate reference whose recorded key changes between checks (as
// Material records a resolved certificate's): SetChecker.Check reports
// the key reuse CheckSet reports, and runs the whole-set check only when
// a key may be shared.
func TestSetCheckerKeyReuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 5))
	checker := certcheck.New(certcheck.Options{})
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	var pool [6][sha256.Size]byte
	for i := range pool {
		pool[i] = sha256.Sum256([]byte{byte(i)})
	}
	facts := func(n int, shared bool) *[]chainFact {
		f := make([]chainFact, n)
		for i := range f {
			k := rng.IntN(len(pool))
			if !shared {
				k = rng.IntN(1 << 30) // a key of its own
			}
			f[i] = chainFact{trust: codeOf(certcheck.TrustPrivate), key: sha256.Sum256([]byte(fmt.Sprint(k)))}
			if shared {
				f[i].key = pool[k]
			}
			if rng.IntN(8) == 0 {
				f[i].trust = 0 // not checked: no key use
			}
		}
		return &f
	}
	var refs []*Entity // entities whose certificate is a reference
	newFile := func(path string) *FileResult {
		f := &FileResult{Path: path}
		for n := range 1 + rng.IntN(2) {
			e := &Entity{Name: names[rng.IntN(len(names))], Pos: Pos{File: path, Line: 1 + 10*n, Col: 1}, v: &Validator{hygiene: checker}}
			e.Chains = make([]Chain, 1+rng.IntN(2))
			for i := range e.Chains {
				e.Chains[i] = Chain{Cert: "-----BEGIN CERTIFICATE-----", Key: "-----BEGIN PRIVATE KEY-----"}
			}
			switch rng.IntN(4) {
			case 0:
				e.Chains[0].Cert = "$env://CERT"
				refs = append(refs, e)
				if rng.IntN(2) == 0 {
					e.facts.Store(facts(len(e.Chains), rng.IntN(3) == 0))
				}
			default:
				e.facts.Store(facts(len(e.Chains), rng.IntN(3) == 0))
			}
			f.Entities = append(f.Entities, e)
		}
		return f
	}
	files := map[string]*FileResult{}
	var c SetChecker
	found, skipped := 0, 0
	for step := range 400 {
		for range 1 + rng.IntN(3) {
			path := fmt.Sprintf("d%d/f%d.yaml", rng.IntN(2), rng.IntN(10))
			if rng.IntN(4) == 0 {
				delete(files, path)
			} else {
				files[path] = newFile(path)
			}
		}
		for _, e := range refs { // resolved anew, now and then
			if rng.IntN(5) == 0 {
				e.facts.Store(facts(len(e.Chains), rng.IntN(2) == 0))
			}
		}
		var list []*FileResult
		for _, f := range files {
			list = append(list, f)
		}
		slices.SortFunc(list, func(a, b *FileResult) int { return cmpString(a.Path, b.Path) })
		got, want := c.CheckSorted(list), CheckSet(list)
		for _, p := range want {
			if strings.Contains(p.Msg, "key_reuse") {
				found++
			}
		}
		if c.keys.shared == 0 {
			skipped++
		}
		if g, w := got.Error(), want.Error(); g != w || len(got) != len(want) {
			t.Fatalf("step %d: SetChecker.CheckSorted =\n%s\nwant (CheckSet)\n%s", step, g, w)
		}
	}
	if found == 0 || skipped == 0 {
		t.Errorf("key reuse found %d times, the whole-set check skipped %d times: want both", found, skipped)
	}
}

// TestSetCheckerResults is TestSetCheckerMatchesCheckSet through
// CheckResults: the files are Results edited from one revision to the
// next, frozen after some checks (the checker then keeps the frozen
// ones), and the problems are CheckSet's.
func TestSetCheckerResults(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 4))
	snis := []string{"a.example.com", "b.example.com", "*.example.com", "c.example.org"}
	newFile := func(path string) *FileResult { return randomSetFile(rng, path, snis, false) }
	var c SetChecker
	var files *Results
	found, frozen := 0, 0
	for step := range 500 {
		next := files.Clone()
		for range 1 + rng.IntN(3) {
			path := fmt.Sprintf("d%d/f%d.yaml", rng.IntN(2), rng.IntN(8))
			i, ok := next.Find(path)
			switch {
			case rng.IntN(4) == 0 && ok:
				next.Remove(i)
			case rng.IntN(4) == 0:
			case ok:
				next.Set(i, newFile(path))
			default:
				next.Insert(i, newFile(path))
			}
		}
		files = next
		got, want := c.CheckResults(files), CheckSet(files.all())
		found += len(want)
		if g, w := got.Error(), want.Error(); g != w || len(got) != len(want) {
			t.Fatalf("step %d: SetChecker.CheckResults =\n%s\nwant (CheckSet)\n%s", step, g, w)
		}
		if rng.IntN(2) == 0 {
			files, _ = files.Freeze()
			c.Use(files)
			for i := range files.Len() {
				if files.Frozen(i) {
					frozen++
				}
			}
		}
	}
	if found == 0 || frozen == 0 {
		t.Errorf("%d duplicates, %d frozen files in all revisions: the test checked nothing", found, frozen)
	}
}

// TestResultsFreeze checks that Freeze keeps every file, its identity
// and problems, and that the references it gives thaw the entities.
func TestResultsFreeze(t *testing.T) {
	_, list := packFiles(t)
	r := NewResults(list)
	frozen, moves := r.Freeze()
	if frozen.Len() != r.Len() || frozen.HasErrors() != r.HasErrors() {
		t.Fatalf("Freeze: %d files (errors %v), want %d (%v)", frozen.Len(), frozen.HasErrors(), r.Len(), r.HasErrors())
	}
	if g, w := frozen.Problems().Error(), r.Problems().Error(); g != w {
		t.Errorf("frozen problems =\n%s\nwant\n%s", g, w)
	}
	for i := range r.Len() {
		if frozen.id(i) != r.id(i) || frozen.Path(i) != r.Path(i) {
			t.Errorf("file %d: %s, identity %d; want %s, %d", i, frozen.Path(i), frozen.id(i), r.Path(i), r.id(i))
		}
		if j, ok := frozen.Find(r.Path(i)); !ok || j != i {
			t.Errorf("Find(%q) = %d, %v; want %d, true", r.Path(i), j, ok, i)
		}
		f := r.File(i)
		if frozen.Frozen(i) == f.volatile() {
			t.Errorf("%s: frozen %v, volatile %v", f.Path, frozen.Frozen(i), f.volatile())
		}
		for _, e := range f.Entities {
			ref, ok := moves.Live(e)
			if ok != !f.volatile() {
				t.Errorf("%s: entity %s has a reference: %v", f.Path, e.Name, ok)
				continue
			}
			if ok && (ref.Name() != e.Name || ref.Entity().Name != e.Name) {
				t.Errorf("%s: reference of %s names %s, thaws %s", f.Path, e.Name, ref.Name(), ref.Entity().Name)
			}
		}
	}
	if _, moves := frozen.Freeze(); len(moves.live)+len(moves.moved) > 0 {
		t.Error("Freeze of frozen results froze again")
	}
}

// TestResultsMerge changes one file at a time and freezes after each
// change, as a daemon does: the forms stay at most maxForms, and
// references kept up to date with Moves (as builds keep theirs) thaw the
// entities of the current results.
func TestResultsMerge(t *testing.T) {
	_, base := packFiles(t)
	frozen := freezeFiles(base)
	var list []*FileResult // 8 copies of each file, in path order
	for c := range 8 {
		for i := range base {
			f := frozen.thaw(i)
			f.Path = fmt.Sprintf("c%d/%s", c, f.Path)
			list = append(list, f)
		}
	}
	r, _ := NewResults(list).Freeze()
	held := map[string]EntityRef{} // by path, the first entity's reference
	rng := rand.New(rand.NewPCG(13, 5))
	moved := 0
	for step := range 300 {
		i := rng.IntN(r.Len())
		next := r.Clone()
		next.Set(i, r.File(i)) // the same content, as a new result
		f := next.File(i)
		var m *Moves
		r, m = next.Freeze()
		if len(r.forms) > maxForms {
			t.Fatalf("step %d: %d forms, want at most %d", step, len(r.forms), maxForms)
		}
		for p, ref := range held {
			if to, ok := m.Moved(ref); ok {
				held[p] = to
				moved++
			}
		}
		if len(f.Entities) > 0 {
			if ref, ok := m.Live(f.Entities[0]); ok {
				held[f.Path] = ref
			}
		}
		for p, ref := range held {
			j, ok := r.Find(p)
			if !ok {
				t.Fatalf("step %d: %s is gone", step, p)
			}
			want := r.File(j).Entities[0]
			if got := ref.Entity(); got.Name != want.Name || got.Hash != want.Hash {
				t.Fatalf("step %d: %s: the held reference thaws %s, want %s", step, p, got.Name, want.Name)
			}
			if !slices.Contains(r.forms, ref.form) {
				t.Errorf("step %d: %s: the held reference is of a form the results dropped", step, p)
			}
		}
	}
	if moved == 0 {
		t.Error("no form was merged: the test checked nothing")
	}
}
