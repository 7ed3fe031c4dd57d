package schema

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
	"unsafe"

	"certops/fixtures"

	"golang.org/x/tools/txtar"
)

// frozenLoad is one set of validated results to freeze, and what it was
// validated with.
type frozenLoad struct {
	name    string
	results []*FileResult
}

// frozenCorpus validates every golden case (testdata/cases and
// testdata/compat: native, APISIX and ADC forms, several documents and
// chains, client CAs, references, disabled items, warnings and errors)
// with the hygiene checks on and off, lean and not, and adds packFiles'
// results, packed and not, with the facts of one entity replaced after
// validation and the material of another handed over.
func frozenCorpus(t *testing.T) []frozenLoad {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "cases", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	compat, err := filepath.Glob(filepath.Join("testdata", "compat", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, compat...)
	if len(paths) < 40 {
		t.Fatalf("%d golden cases, want at least 40", len(paths))
	}
	root, err := x509.ParseCertificate(pemBlock(t, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC) // the golden cases' testNow
	var loads []frozenLoad
	for _, p := range paths {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fsys := fstest.MapFS{}
		for _, f := range ar.Files {
			if f.Name != "want" {
				fsys[f.Name] = &fstest.MapFile{Data: ExpandCase(t, f.Data), Mode: 0o644}
			}
		}
		listing, err := ListTree(context.Background(), fsys, "")
		if err != nil {
			t.Fatal(err)
		}
		entities, policy, errs := splitListing(fsys, listing.Files)
		if errs != nil {
			t.Fatal(errs)
		}
		reread := func(p string) ([]byte, error) { return fsys.ReadFile(p) }
		for _, opt := range []struct {
			name string
			opts Options
		}{
			{"plain", Options{Now: func() time.Time { return now }}},
			{"lean", Options{Now: func() time.Time { return now }, Reread: reread}},
			{"hygiene", Options{Now: func() time.Time { return now },
				Hygiene: &Hygiene{Roots: []*x509.Certificate{root}, PublicRoots: x509.NewCertPool()}}},
			{"hygiene lean", Options{Now: func() time.Time { return now }, Reread: reread,
				Hygiene: &Hygiene{Roots: []*x509.Certificate{root}, PublicRoots: x509.NewCertPool()}}},
		} {
			v, _ := NewValidator(policy, opt.opts)
			var results []*FileResult
			for _, f := range entities {
				src, err := ReadTreeFile(fsys, f)
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, v.File(f.Path, src))
			}
			loads = append(loads, frozenLoad{filepath.Base(p) + " " + opt.name, results})
		}
	}

	// A non-lean entity with the checks, whose material is handed over,
	// then parsed again: its facts are replaced, out of line.
	var replaced *Entity
	for _, l := range loads {
		for _, fr := range l.results {
			for _, e := range fr.Entities {
				if replaced == nil && !e.Lean() && e.hygiene() != nil && e.material.Load() != nil {
					replaced = e
				}
			}
		}
	}
	if replaced == nil {
		t.Fatal("no entity with the checks and material that is not lean")
	}
	for range 2 {
		if _, err := replaced.Material(Literal); err != nil {
			t.Fatalf("Material of %s: %v", replaced.Name, err)
		}
	}
	// Shapes the golden cases lack: an SNI refused before one kept (the
	// placement's sniSrc, in the native form), an APISIX name derived
	// from sni.
	extra := map[string]string{
		"g.yaml": "name: g\nsnis: [\"bad..example\", g.example.com, \"UPPER_case\", h.example.com]\ncert: $env://G_CERT\nkey: $env://G_KEY\n",
		"h.yaml": "ssls:\n  - sni: h.example.com\n    cert: $env://H_CERT\n    key: $env://H_KEY\n    status: 0\n",
	}
	for _, h := range []*Hygiene{nil, {}} {
		v, _ := NewValidator(nil, Options{Now: func() time.Time { return now }, Hygiene: h})
		var results []*FileResult
		for _, p := range slices.Sorted(maps.Keys(extra)) {
			results = append(results, v.File(p, []byte(extra[p])))
		}
		loads = append(loads, frozenLoad{fmt.Sprintf("extra hygiene %v", h != nil), results})
	}

	_, results := packFiles(t)
	loads = append(loads, frozenLoad{"packFiles", results})
	_, fresh := packFiles(t)
	loads = append(loads, frozenLoad{"packFiles packed", Pack(fresh)})
	return loads
}

// syntheticFiles returns results validation does not make today but
// their types allow: empty lists that are not nil, a renaming of every
// kind (an item with no material is never valid), inline.strs and
// inline.facts that back nothing, positions in another file, held
// material without certificates, no validator.
func syntheticFiles() []*FileResult {
	a := &Entity{Name: "synthetic", Type: TypeClient, SNIs: []string{}, Protocols: []string{}, Labels: map[string]string{},
		ClientDepth: -3, Pos: Pos{File: "s.yaml", Line: 7, Col: 2}, Hash: Hash{1, 2, 3},
		place: &placement{
			index:  map[string]Pos{"name": {File: "other.yaml", Line: 1, Col: 1}, "cert" + missingSuffix: {}},
			rename: &itemRename{item: 7, noMaterial: true, sni: true, name: nameFromSNI},
			sniSrc: []int{},
		},
	}
	a.inline.strs = [2]string{"stale", ""}
	a.inline.facts = []chainFact{{trust: 2}, {key: [32]byte{9}, trust: 3}}
	a.inline.fact[0] = chainFact{trust: 1}
	a.facts.Store(&[]chainFact{})
	a.material.Store(&heldMaterial{chains: []heldChain{{}, {certs: [][]byte{{}, {1, 2}}, key: []byte{}}}})
	b := &Entity{Name: "b", Chains: []Chain{}, SNIs: []string{"a", "b", "c"}, Disabled: true, lean: true,
		place: &placement{fields: fieldIndex{s: "x\x00\x01\x00\x00\x00\x02\x00\x00\x00"}, rename: &itemRename{adc: true}}}
	b.inline.strs = [2]string{"", "stale too"}
	b.facts.Store(&b.inline.facts) // pointing at a nil slice
	return []*FileResult{
		{Path: "s.yaml", Entities: []*Entity{a, b}, Problems: ErrorList{}, Documents: 3},
		{Path: "t.yaml", Entities: []*Entity{}, Problems: ErrorList{{Msg: "m", Severity: 7}}},
	}
}

func pemBlock(tb testing.TB, name string) []byte {
	tb.Helper()
	block, _ := pem.Decode(CasePEM(tb, name))
	if block == nil {
		tb.Fatalf("no PEM in testdata/pki/%s", name)
	}
	return block.Bytes
}

// TestFrozenRoundTrip: every file thawed from a frozen load equals the one
// frozen, field by field, the unexported ones included, and its entities
// answer every method as the originals do.
func TestFrozenRoundTrip(t *testing.T) {
	if n := reflect.TypeFor[Entity]().NumField(); n != 18 {
		t.Fatalf("Entity has %d fields; freezeFiles and sameEntity know 18: freeze the new ones too, then update this test", n)
	}
	if n := reflect.TypeFor[FileResult]().NumField(); n != 5 {
		t.Fatalf("FileResult has %d fields; freezeFiles and sameFile know 5", n)
	}
	if n := reflect.TypeFor[placement]().NumField(); n != 4 {
		t.Fatalf("placement has %d fields; freezeFiles and samePlace know 4", n)
	}
	if n := reflect.TypeFor[Error]().NumField(); n != 4 {
		t.Fatalf("Error has %d fields; freezeFiles knows 4", n)
	}
	loads := frozenCorpus(t)
	var all []*FileResult
	for _, l := range loads {
		all = append(all, l.results...)
	}
	checkShapes(t, all)
	// What validation does not make today but an Entity can hold.
	all = append(all, syntheticFiles()...)

	// One frozen form of everything (its validators are many), and one
	// per load.
	f := freezeFiles(all)
	if f.len() != len(all) {
		t.Fatalf("frozen %d files, want %d", f.len(), len(all))
	}
	for i, want := range all {
		sameFile(t, f.thaw(i), want)
	}
	for _, l := range loads {
		f := freezeFiles(l.results)
		for i, want := range l.results {
			t.Run(l.name, func(t *testing.T) { sameFile(t, f.thaw(i), want) })
		}
	}
	// A thaw is a copy: two thaws share no entity.
	if a, b := f.thaw(0), f.thaw(0); len(a.Entities) > 0 && a.Entities[0] == b.Entities[0] {
		t.Error("two thaws of a file share an entity")
	}
}

// TestFrozenMaterial: a thawed entity hands over the same material as the
// one frozen, and each thaw its own.
func TestFrozenMaterial(t *testing.T) {
	loads := frozenCorpus(t)
	var all []*FileResult
	for _, l := range loads {
		all = append(all, l.results...)
	}
	f := freezeFiles(all)
	held := 0
	for i, want := range all {
		got, again := f.thaw(i), f.thaw(i)
		for j, w := range want.Entities {
			g, a := got.Entities[j], again.Entities[j]
			if w.material.Load() != nil {
				held++
			}
			gm, gerr := g.Material(Literal)
			wm, werr := w.Material(Literal)
			if fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Errorf("%s: %s: Material error = %v, want %v", want.Path, w.Name, gerr, werr)
				continue
			}
			sameMaterial(t, want.Path+": "+w.Name, gm, wm)
			if am, _ := a.Material(Literal); gm != nil && am != nil && len(gm.Chains) > 0 &&
				&am.Chains[0].Certificate[0][0] == &gm.Chains[0].Certificate[0][0] {
				t.Errorf("%s: %s: two thaws share their material's bytes", want.Path, w.Name)
			}
		}
	}
	if held == 0 {
		t.Fatal("no entity held material: the test does not cover it")
	}
	if got := f.LogValue().String(); strings.Contains(got, "PRIVATE") || !strings.Contains(got, "redacted") {
		t.Errorf("LogValue() = %q, want it redacted", got)
	}
}

func sameMaterial(t *testing.T, what string, got, want *Material) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Fatalf("%s: Material = %v, want %v", what, got != nil, want != nil)
	}
	if want == nil {
		return
	}
	if len(got.Chains) != len(want.Chains) || (got.ClientCAs == nil) != (want.ClientCAs == nil) ||
		want.ClientCAs != nil && !got.ClientCAs.Equal(want.ClientCAs) {
		t.Errorf("%s: Material has %d chains (client CAs %v); want %d (%v)", what, len(got.Chains), got.ClientCAs != nil,
			len(want.Chains), want.ClientCAs != nil)
		return
	}
	for i, w := range want.Chains {
		g := got.Chains[i]
		type equaler interface {
			Equal(x crypto.PrivateKey) bool
		}
		if !reflect.DeepEqual(g.Certificate, w.Certificate) || !g.Leaf.Equal(w.Leaf) ||
			!g.PrivateKey.(equaler).Equal(w.PrivateKey) || !reflect.DeepEqual(got.keys, want.keys) {
			t.Errorf("%s: chain %d of the thawed material differs", what, i)
		}
	}
}

// checkShapes fails unless the results hold every shape the frozen form
// stores differently.
func checkShapes(t *testing.T, all []*FileResult) {
	t.Helper()
	shapes := map[string]bool{}
	for _, fr := range all {
		shapes[fmt.Sprintf("%d problems", min(len(fr.Problems), 3))] = true
		shapes[fmt.Sprintf("%d entities", min(len(fr.Entities), 2))] = true
		for _, p := range fr.Problems {
			shapes[p.Severity.String()] = true
		}
		for _, e := range fr.Entities {
			shapes[fmt.Sprintf("lean %v", e.lean)] = true
			shapes[fmt.Sprintf("disabled %v", e.Disabled)] = true
			shapes[fmt.Sprintf("%d chains", min(len(e.Chains), 2))] = true
			shapes[fmt.Sprintf("labels %v", e.Labels != nil)] = true
			shapes[fmt.Sprintf("type %s", e.Type)] = true
			shapes[fmt.Sprintf("references %v", len(e.References()) > 0)] = true
			shapes[fmt.Sprintf("desc %v", e.Desc != "")] = true
			shapes[fmt.Sprintf("client CA %v", e.ClientCA != "")] = true
			shapes[fmt.Sprintf("protocols %v", len(e.Protocols) > 0)] = true
			shapes[fmt.Sprintf("SNIs inline %v", len(e.SNIs) > 0 && &e.SNIs[0] == &e.inline.strs[0])] = true
			shapes[fmt.Sprintf("placement %v", e.place != nil)] = true
			if p := e.place; p != nil {
				shapes[fmt.Sprintf("renamed %v", p.rename != nil)] = true
				shapes[fmt.Sprintf("index map %v", p.index != nil)] = true
				shapes[fmt.Sprintf("sniSrc %v", p.sniSrc != nil)] = true
				if p.rename != nil {
					shapes[fmt.Sprintf("rename adc %v", p.rename.adc)] = true
					shapes[fmt.Sprintf("rename sni %v", p.rename.sni)] = true
					shapes[fmt.Sprintf("rename name %d", p.rename.name)] = true
				}
			}
			switch fs := e.facts.Load(); {
			case fs == nil:
				shapes["facts nil"] = true
			case fs == &e.inline.facts:
				shapes["facts inline"] = true
			default:
				shapes["facts own"] = true
			}
			if h := e.material.Load(); h != nil {
				shapes["material held"] = true
				shapes[fmt.Sprintf("material client CAs %v", h.clientCAs != nil)] = true
			} else {
				shapes["material none"] = true
			}
		}
	}
	for _, s := range []string{"0 problems", "1 problems", "2 problems", "3 problems", "0 entities", "1 entities", "2 entities",
		"error", "warning", "lean true", "lean false", "disabled true", "disabled false", "1 chains", "2 chains",
		"labels true", "labels false", "type server", "type client", "references true", "references false",
		"desc true", "desc false", "client CA true", "client CA false", "protocols true", "protocols false",
		"SNIs inline true", "SNIs inline false", "placement true", "placement false", "renamed true", "renamed false",
		"index map true", "index map false", "sniSrc true", "sniSrc false", "rename adc true", "rename adc false",
		"rename sni true", "rename sni false", "rename name 1", "rename name 2", "rename name 3",
		"facts nil", "facts inline", "facts own", "material held", "material none",
		"material client CAs true", "material client CAs false"} {
		if !shapes[s] {
			t.Errorf("the corpus has no entity or file with %s: the test does not cover it", s)
		}
	}
}

// sameFile compares a thawed result with the one frozen.
func sameFile(t *testing.T, got, want *FileResult) {
	t.Helper()
	if got.Path != want.Path || got.Documents != want.Documents || len(got.Entities) != len(want.Entities) ||
		(got.Entities == nil) != (want.Entities == nil) {
		t.Fatalf("%s: thawed %s, %d documents, %d entities (nil %v); want %s, %d, %d (nil %v)", want.Path,
			got.Path, got.Documents, len(got.Entities), got.Entities == nil, want.Path, want.Documents, len(want.Entities), want.Entities == nil)
	}
	if len(got.Problems) != len(want.Problems) || (got.Problems == nil) != (want.Problems == nil) {
		t.Fatalf("%s: thawed problems %v, want %v", want.Path, got.Problems, want.Problems)
	}
	for i := range want.Problems {
		if *got.Problems[i] != *want.Problems[i] {
			t.Errorf("%s: problem %d = %#v, want %#v", want.Path, i, *got.Problems[i], *want.Problems[i])
		}
	}
	if len(want.Entities) > 0 && (&got.Entities[0] == &got.one[0]) != (&want.Entities[0] == &want.one[0]) {
		t.Errorf("%s: the lone entity's slot differs", want.Path)
	}
	if (got.one[0] == nil) != (want.one[0] == nil) {
		t.Errorf("%s: one[0] set %v, want %v", want.Path, got.one[0] != nil, want.one[0] != nil)
	}
	for i, w := range want.Entities {
		if got.Entities[i] == w {
			t.Fatalf("%s: entity %s was not thawed anew", want.Path, w.Name)
		}
		sameEntity(t, want.Path, got.Entities[i], w)
	}
}

// sameEntity compares every field of a thawed entity with the one frozen:
// by value where it is one, by what it points to where it is a pointer
// (the validator by identity), by calling it where it is a function, by
// Load where it is atomic; and where a field backs another (inline.strs,
// inline.facts), that it does in the thawed entity too.
func sameEntity(t *testing.T, file string, g, w *Entity) {
	t.Helper()
	what := file + ": entity " + w.Name
	if !reflect.DeepEqual(exported(g), exported(w)) {
		t.Errorf("%s: exported fields %+v, want %+v", what, exported(g), exported(w))
	}
	if (g.SNIs == nil) != (w.SNIs == nil) || (g.Protocols == nil) != (w.Protocols == nil) ||
		(g.Chains == nil) != (w.Chains == nil) || (g.Labels == nil) != (w.Labels == nil) {
		t.Errorf("%s: nil lists differ", what)
	}
	if g.v != w.v || g.lean != w.lean {
		t.Errorf("%s: validator %p, lean %v; want %p, %v", what, g.v, g.lean, w.v, w.lean)
	}
	if got, want := unsafe.SliceData(g.Chains) == &noChains[0], unsafe.SliceData(w.Chains) == &noChains[0]; got != want {
		t.Errorf("%s: chains shared with noChains %v, want %v", what, got, want)
	}

	// inline
	if g.inline.fields != w.inline.fields || g.inline.fact != w.inline.fact || g.inline.strs != w.inline.strs ||
		!reflect.DeepEqual(g.inline.facts, w.inline.facts) || (g.inline.facts == nil) != (w.inline.facts == nil) {
		t.Errorf("%s: inline %+v, want %+v", what, g.inline, w.inline)
	}
	selfFacts := func(e *Entity) bool { return len(e.inline.facts) > 0 && &e.inline.facts[0] == &e.inline.fact[0] }
	if selfFacts(g) != selfFacts(w) {
		t.Errorf("%s: inline.facts in inline.fact %v, want %v", what, selfFacts(g), selfFacts(w))
	}
	inlineStrs := func(e *Entity) bool {
		return len(e.SNIs) > 0 && &e.SNIs[0] == &e.inline.strs[0] ||
			len(e.SNIs) == 0 && len(e.Protocols) > 0 && &e.Protocols[0] == &e.inline.strs[0]
	}
	if inlineStrs(g) != inlineStrs(w) {
		t.Errorf("%s: SNIs and protocols in inline.strs %v, want %v", what, inlineStrs(g), inlineStrs(w))
	}

	// facts
	gf, wf := g.facts.Load(), w.facts.Load()
	if (gf == nil) != (wf == nil) || gf != nil && (!reflect.DeepEqual(*gf, *wf) || (*gf == nil) != (*wf == nil)) {
		t.Errorf("%s: facts %v, want %v", what, gf, wf)
	}
	if (gf == &g.inline.facts) != (wf == &w.inline.facts) {
		t.Errorf("%s: facts point at inline.facts %v, want %v", what, gf == &g.inline.facts, wf == &w.inline.facts)
	}

	// material
	gh, wh := g.material.Load(), w.material.Load()
	if (gh == nil) != (wh == nil) {
		t.Fatalf("%s: held material %v, want %v", what, gh != nil, wh != nil)
	}
	if wh != nil {
		if !reflect.DeepEqual(gh.chains, wh.chains) || (gh.clientCAs == nil) != (wh.clientCAs == nil) ||
			wh.clientCAs != nil && !gh.clientCAs.Equal(wh.clientCAs) {
			t.Errorf("%s: held material differs", what)
		}
		if gh == wh {
			t.Errorf("%s: held material is not a copy", what)
		}
		for i, c := range wh.chains {
			if len(c.key) > 0 && len(gh.chains[i].key) > 0 && &gh.chains[i].key[0] == &c.key[0] {
				t.Errorf("%s: the key of held chain %d is not a copy", what, i)
			}
		}
	}

	samePlace(t, what, g, w)

	// Methods.
	if g.Enabled() != w.Enabled() || g.Lean() != w.Lean() || !reflect.DeepEqual(g.References(), w.References()) {
		t.Errorf("%s: Enabled %v Lean %v References %v; want %v %v %v", what, g.Enabled(), g.Lean(), g.References(),
			w.Enabled(), w.Lean(), w.References())
	}
	for i := -1; i <= len(w.Chains); i++ {
		if got, want := g.Trust(i), w.Trust(i); got != want {
			t.Errorf("%s: Trust(%d) = %q, want %q", what, i, got, want)
		}
	}
	for i := range w.SNIs {
		if got, want := g.sniIndex(i), w.sniIndex(i); got != want {
			t.Errorf("%s: sniIndex(%d) = %d, want %d", what, i, got, want)
		}
	}
	for _, p := range fieldPaths(w) {
		gp, gs := g.where(p)
		wp, ws := w.where(p)
		if gp != wp || gs != ws || g.Position(p) != w.Position(p) || g.written(p) != w.written(p) ||
			len(w.Chains) > 0 && g.describeField(p) != w.describeField(p) { // a valid entity has a chain
			t.Errorf("%s: where(%q) = %v %q, want %v %q", what, p, gp, gs, wp, ws)
		}
	}
}

// samePlace compares the placements of two entities: their fields, and
// the renaming by calling it on every path of the entity.
func samePlace(t *testing.T, what string, g, w *Entity) {
	t.Helper()
	if (g.place == nil) != (w.place == nil) {
		t.Fatalf("%s: placement %v, want %v", what, g.place != nil, w.place != nil)
	}
	if w.place == nil {
		return
	}
	gp, wp := g.place, w.place
	if gp.fields != wp.fields || !reflect.DeepEqual(gp.index, wp.index) || (gp.index == nil) != (wp.index == nil) ||
		!reflect.DeepEqual(gp.sniSrc, wp.sniSrc) || (gp.sniSrc == nil) != (wp.sniSrc == nil) {
		t.Errorf("%s: placement %+v, want %+v", what, *gp, *wp)
	}
	if (gp.rename == nil) != (wp.rename == nil) || wp.rename != nil && *gp.rename != *wp.rename {
		t.Errorf("%s: rename %+v, want %+v", what, gp.rename, wp.rename)
	}
	if wp.rename != nil {
		for _, p := range fieldPaths(w) {
			if got, want := gp.rename.path(p), wp.rename.path(p); got != want {
				t.Errorf("%s: rename(%q) = %q, want %q", what, p, got, want)
			}
		}
	}
}

// fieldPaths returns every path of e's field index, then paths around
// them and the native fields, written or not.
func fieldPaths(e *Entity) []string {
	var paths []string
	if e.place != nil && e.place.index != nil {
		for p := range e.place.index {
			paths = append(paths, p)
		}
	}
	for rest := e.fieldIndex().s; len(rest) > 0; {
		i := strings.IndexByte(rest, 0)
		paths = append(paths, rest[:i])
		rest = rest[i+9:]
	}
	slices.Sort(paths)
	for _, p := range slices.Clone(paths) {
		paths = append(paths, p+".x", p+"[0]")
	}
	paths = append(paths, "", "name", "type", "snis", "cert", "key", "certs", "keys", "client", "client.ca",
		"client.depth", "labels", "labels.team", "desc", "ssl_protocols", "status", "nope", "cert"+missingSuffix)
	for i := range 4 {
		paths = append(paths, fmt.Sprintf("snis[%d]", i), fmt.Sprintf("certs[%d]", i), fmt.Sprintf("keys[%d]", i),
			fmt.Sprintf("certs[%d].x", i), fmt.Sprintf("ssl_protocols[%d]", i))
	}
	return paths
}

// TestFrozenNoPointers: the bulk of a frozen form holds no pointer, so
// the collector does not scan it: every table but validators is a slice
// of a type without pointers (checked by reflect, recursively), and
// validators is the one pointer table.
func TestFrozenNoPointers(t *testing.T) {
	ft := reflect.TypeFor[frozenFiles]()
	tables := 0
	for i := range ft.NumField() {
		f := ft.Field(i)
		if f.Type.Kind() != reflect.Slice {
			t.Errorf("frozenFiles.%s is a %v, want a slice", f.Name, f.Type)
			continue
		}
		if f.Name == "validators" {
			continue
		}
		tables++
		if p := pointerIn(f.Type.Elem()); p != "" {
			t.Errorf("frozenFiles.%s holds a pointer: %s", f.Name, p)
		}
	}
	if tables != ft.NumField()-1 {
		t.Errorf("%d bulk tables of %d fields", tables, ft.NumField())
	}
	// And the runtime agrees: with the results and validators kept (as
	// the loader keeps its validators), dropping a frozen form frees heap
	// the collector did not scan, but for the frozenFiles itself and its
	// validators table. Other garbage freed meanwhile only adds to what
	// is freed: the least of a few tries is the measure.
	var all []*FileResult
	for _, l := range frozenCorpus(t) {
		all = append(all, l.results...)
	}
	validators := freezeFiles(all).validators
	var freed frozenSample
	size := 0
	for try := range 5 {
		f := freezeFiles(all)
		size = f.size()
		with := frozenHeap()
		runtime.KeepAlive(f) // dropped here
		d := with.minus(frozenHeap())
		if try == 0 || d.scan < freed.scan {
			freed = d
		}
	}
	runtime.KeepAlive(all)
	runtime.KeepAlive(validators)
	if freed.live < uint64(size)/2 || freed.scan > 16<<10 {
		t.Errorf("dropping a frozen form of %d bytes freed %d bytes, %d of them scanned; want about %d, at most 16 KiB scanned",
			size, freed.live, freed.scan, size)
	}
	t.Logf("a frozen form of %d bytes: %d bytes freed, %d scanned", size, freed.live, freed.scan)
}

// pointerIn names the first pointer in t's layout, or "" if it has none.
func pointerIn(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Slice, reflect.String,
		reflect.Chan, reflect.Func, reflect.Interface:
		return t.String()
	case reflect.Array:
		if t.Len() == 0 {
			return ""
		}
		return pointerIn(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if p := pointerIn(t.Field(i).Type); p != "" {
				return t.Name() + "." + t.Field(i).Name + ": " + p
			}
		}
	}
	return ""
}

// TestFrozenConcurrentThaw: thaws of one frozen form run concurrently
// (run with -race).
func TestFrozenConcurrentThaw(t *testing.T) {
	_, results := packFiles(t)
	f := freezeFiles(Pack(results))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range f.len() {
				fr := f.thaw(i)
				for _, e := range fr.Entities {
					_ = e.Position("snis[0]")
					if _, err := e.Material(Literal); err != nil && e.References() == nil && fr.Problems.Err() == nil {
						t.Errorf("Material of thawed %s: %v", e.Name, err)
					}
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkFrozen freezes 10,000 validated files of one entity each (the
// daemon's shape: BenchmarkHeap10k's entities, the hygiene checks on with
// no roots, so two warnings each, lean, packed, their material handed
// over as an apply does) and thaws them, one and all; it reports the
// frozen form's bytes and the live and scanned heap of the results and of
// their frozen form (runtime/metrics after forced collections, as
// reconciler/memory_bench_test.go measures them).
//
//	go test ./schema/ -run XXX -bench Frozen -benchtime 2s
func BenchmarkFrozen(b *testing.B) {
	const n = 10_000
	ca := fixtures.NewRootCA(b, "heap CA")
	srcs := make([][]byte, n)
	paths := make([]string, n)
	for i := range n {
		name := fmt.Sprintf("e%05d", i)
		leaf := ca.Server(b, name+".example.com")
		srcs[i] = []byte(fixtures.EntityYAML(fixtures.Entity{Name: name, SNIs: []string{name + ".example.com"}, Chains: []*fixtures.Leaf{leaf}}))
		paths[i] = fmt.Sprintf("d%03d/%s.yaml", i/100, name)
	}
	byPath := make(map[string][]byte, n)
	for i, p := range paths {
		byPath[p] = srcs[i]
	}
	v, errs := NewValidator(nil, Options{Hygiene: &Hygiene{}, Reread: func(p string) ([]byte, error) { return byPath[p], nil }})
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	results := make([]*FileResult, n)
	var wg sync.WaitGroup
	for w := range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := w; i < n; i += runtime.GOMAXPROCS(0) {
				results[i] = v.File(paths[i], srcs[i])
			}
		})
	}
	wg.Wait()
	srcs = nil
	results = Pack(results)
	for _, fr := range results {
		if err := fr.Problems.Err(); err != nil || len(fr.Entities) != 1 {
			b.Fatalf("%s: %d entities, %v", fr.Path, len(fr.Entities), err)
		}
		if _, err := fr.Entities[0].Material(Literal); err != nil {
			b.Fatal(err)
		}
	}

	// The heap of the results and of their frozen form, each measured by
	// dropping it; a second frozen form is kept for the runs below.
	f, g := freezeFiles(results), freezeFiles(results)
	both := frozenHeap()
	runtime.KeepAlive(g) // g is dropped here
	withResults := frozenHeap()
	results = nil
	alone := frozenHeap()
	frozen, orig := both.minus(withResults), withResults.minus(alone)
	results = make([]*FileResult, n)
	for i := range n {
		results[i] = f.thaw(i)
	}
	thawed := frozenHeap().minus(alone)
	results = nil
	runtime.GC()

	b.Run("freeze-all", func(b *testing.B) {
		all := make([]*FileResult, n)
		for i := range n {
			all[i] = f.thaw(i)
		}
		b.ReportAllocs()
		for b.Loop() {
			freezeFiles(all)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entity")
	})
	b.Run("thaw-one", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			f.thaw(i % n)
			i++
		}
	})
	b.Run("thaw-all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range n {
				f.thaw(i)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entity")
	})
	b.Run("heap", func(b *testing.B) {
		for b.Loop() {
		}
		const mib = 1 << 20
		fv := reflect.ValueOf(f).Elem()
		for i := range fv.NumField() {
			t := fv.Field(i)
			b.Logf("%-10s %8d elements of %3d bytes: %.2f MiB", fv.Type().Field(i).Name, t.Len(), t.Type().Elem().Size(),
				float64(t.Cap()*int(t.Type().Elem().Size()))/mib)
		}
		b.ReportMetric(float64(f.size())/mib, "frozen-MiB")
		b.ReportMetric(float64(orig.live)/mib, "results-live-MiB")
		b.ReportMetric(float64(orig.scan)/mib, "results-scan-MiB")
		b.ReportMetric(float64(frozen.live)/mib, "frozen-live-MiB")
		b.ReportMetric(float64(frozen.scan)/mib, "frozen-scan-MiB")
		b.ReportMetric(float64(thawed.live)/mib, "thawed-live-MiB")
		b.ReportMetric(float64(thawed.scan)/mib, "thawed-scan-MiB")
	})
}

// frozenSample is the live and the scanned heap after forced collections.
type frozenSample struct{ live, scan uint64 }

func frozenHeap() frozenSample {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	return frozenSample{live: s[0].Value.Uint64(), scan: s[1].Value.Uint64()}
}

func (a frozenSample) minus(b frozenSample) frozenSample {
	return frozenSample{live: a.live - min(a.live, b.live), scan: a.scan - min(a.scan, b.scan)}
}

// TestFrozenOverflow: a value past the form's 32 bits marks the freezer
// overflowed instead of panicking, so Freeze keeps such results live.
func TestFrozenOverflow(t *testing.T) {
	z := &freezer{}
	if z.fit(math.MaxUint32); z.overflow {
		t.Fatal("fit(MaxUint32) overflowed")
	}
	if z.fit32(math.MinInt32); z.overflow {
		t.Fatal("fit32(MinInt32) overflowed")
	}
	for _, f := range []func(){func() { z.fit(math.MaxUint32 + 1) }, func() { z.fit(-1) }, func() { z.fit32(math.MaxInt32 + 1) }} {
		z.overflow = false
		if f(); !z.overflow {
			t.Error("a value past 32 bits did not mark the freezer overflowed")
		}
	}
}
