package schema

import (
	"crypto/x509"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"certops/fixtures"
)

// packFiles validates files of the shapes Pack moves: a lean entity with
// one SNI (its facts inline), three SNIs and two protocols (beyond what
// an entity holds inline), two documents in a file, an APISIX `ssls:` list
// (renamed fields), references with a client CA and two warnings, and a
// file with more problems than a short list holds.
func packFiles(t *testing.T) (*Validator, []*FileResult) {
	t.Helper()
	root := fixtures.NewRootCA(t, "Pack Root")
	leaf := func(names ...string) string {
		l := root.Server(t, names...)
		return fmt.Sprintf("cert: |\n%s\nkey: |\n%s\n", indentPEM(l.ChainPEM, "  "), indentPEM(l.KeyPEM, "  "))
	}
	srcs := map[string]string{
		"a.yaml": "name: shop\ndesc: the shop\nsnis: [shop.example.com]\n" + leaf("shop.example.com"),
		"b.yaml": "name: api\nsnis: [api.example.com, \"*.api.example.com\", v2.api.example.com]\n" +
			"ssl_protocols: [TLSv1.2, TLSv1.3]\nlabels: {team: edge}\n" +
			leaf("api.example.com", "*.api.example.com", "v2.api.example.com"),
		"c.yaml": "name: one\nsnis: [one.example.com]\n" + leaf("one.example.com") +
			"---\nname: two\nsnis: [two.example.com]\n" + leaf("two.example.com") +
			"client:\n  ca: |\n" + indentPEM(root.CertPEM, "    ") + "\n",
		"d.yaml": "ssls:\n  - id: adc\n    snis: [adc.example.com]\n    " +
			strings.ReplaceAll(strings.TrimSuffix(leaf("adc.example.com"), "\n"), "\n", "\n    ") + "\n",
		"e.yaml": "name: refs\nsnis: [refs.example.com]\ncert: $secret://vault/kv/tls/refs/cert\nkey: $env://KEY\n" +
			"client:\n  ca: $secret://aws/prod/client-ca\n  depth: 99\n---\nname: refs-b\nsnis: [b.refs.example.com]\n" +
			"cert: $env://CERT\nkey: $env://KEY\nclient:\n  ca: $env://CA\n  depth: 98\n",
		"f.yaml": "name: bad\nsnis: [\"bad..example\", \"UPPER_case\", \"-x.example\"]\ncert: nope\nkey: nope\n",
	}
	v, errs := NewValidator(nil, Options{
		Hygiene: &Hygiene{Roots: []*x509.Certificate{root.Cert}},
		Reread: func(p string) ([]byte, error) {
			if s, ok := srcs[p]; ok {
				return []byte(s), nil
			}
			return nil, fmt.Errorf("no %s", p)
		},
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var results []*FileResult
	for _, p := range []string{"a.yaml", "b.yaml", "c.yaml", "d.yaml", "e.yaml", "f.yaml"} {
		results = append(results, v.File(p, []byte(srcs[p])))
	}
	return v, results
}

func indentPEM(b []byte, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n"+prefix)
}

// TestPack: Pack changes no value of a load's results, and moves them
// into a fixed number of allocations, however many files there are.
func TestPack(t *testing.T) {
	if n := reflect.TypeFor[Entity]().NumField(); n != 18 {
		t.Fatalf("Entity has %d fields; packer.entity copies 18: copy the new ones too, then update this test", n)
	}
	_, results := packFiles(t)
	shapes := map[string]bool{}
	for _, fr := range results {
		switch {
		case len(fr.Problems) > len(problemsBox{}.errs):
			shapes["long problem list"] = true
		case len(fr.Problems) > 0:
			shapes["short problem list"] = true
		}
		if len(fr.Entities) > 1 {
			shapes["several entities"] = true
		}
		for _, e := range fr.Entities {
			shapes[fmt.Sprintf("lean %v", e.Lean())] = true
			if len(e.SNIs)+len(e.Protocols) > len(e.inline.strs) {
				shapes["SNIs beyond inline"] = true
			}
			if e.place != nil && e.place.rename != nil {
				shapes["renamed fields"] = true
			}
			if f := e.facts.Load(); f == &e.inline.facts {
				shapes["inline facts"] = true
			}
		}
	}
	for _, s := range []string{"long problem list", "short problem list", "several entities", "lean true", "lean false",
		"SNIs beyond inline", "renamed fields", "inline facts"} {
		if !shapes[s] {
			t.Errorf("the files have no %s: the test does not cover it", s)
		}
	}

	packed := Pack(results)
	if len(packed) != len(results) {
		t.Fatalf("Pack returned %d results, want %d", len(packed), len(results))
	}
	volatile := 0
	for i, fr := range results {
		if fr.volatile() {
			// Its facts may change: it stays where it is (Results.Freeze
			// keeps it live).
			if packed[i] != fr {
				t.Errorf("%s: a file with resolved references was moved", fr.Path)
			}
			volatile++
			continue
		}
		samePackedFile(t, packed[i], fr)
	}
	if volatile == 0 {
		t.Error("no file has resolved references: the test does not cover them")
	}
	// One block of strings: the entities' strings and one copy of each
	// message and field, with nothing else between them.
	lo, hi := uintptr(1<<63), uintptr(0)
	size := 0
	seen := map[*byte]bool{}
	add := func(s string) {
		if s == "" || seen[unsafe.StringData(s)] {
			return
		}
		seen[unsafe.StringData(s)] = true
		size += len(s)
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		lo, hi = min(lo, p), max(hi, p+uintptr(len(s)))
	}
	messages := map[string]*byte{}
	for _, fr := range packed {
		if fr.volatile() {
			continue
		}
		for _, e := range fr.Entities {
			e.eachString(add)
		}
		for _, e := range fr.Problems {
			add(e.Msg)
			add(e.Field)
			if m, ok := messages[e.Msg]; ok && m != unsafe.StringData(e.Msg) {
				t.Errorf("two copies of %q", e.Msg)
			}
			messages[e.Msg] = unsafe.StringData(e.Msg)
		}
	}
	if hi-lo != uintptr(size) {
		t.Errorf("the strings span %d bytes for %d of text: not one block", hi-lo, size)
	}

	once := testing.AllocsPerRun(5, func() { Pack(results) })
	twice := testing.AllocsPerRun(5, func() { Pack(append(results, results...)) })
	if once > 12 || twice > once+1 { // +1: the argument
		t.Errorf("Pack allocates %v times for %d files, %v for twice as many; want at most 12 (results, files, "+
			"entities, problems, their lists, entity lists, strings, block, the messages' map), whatever the number",
			once, len(results), twice)
	}
	if got := Pack(results[:1]); got[0] != results[0] {
		t.Error("Pack moved a lone result")
	}
}

// samePackedFile compares a packed result with the one it was moved from.
func samePackedFile(t *testing.T, got, want *FileResult) {
	t.Helper()
	if got.Path != want.Path || got.Documents != want.Documents || len(got.Entities) != len(want.Entities) {
		t.Fatalf("%s: packed %s, %d documents, %d entities; want %s, %d, %d", want.Path,
			got.Path, got.Documents, len(got.Entities), want.Path, want.Documents, len(want.Entities))
	}
	if len(got.Problems) != len(want.Problems) {
		t.Fatalf("%s: packed problems %v, want %v", want.Path, got.Problems, want.Problems)
	}
	for i := range want.Problems {
		if *got.Problems[i] != *want.Problems[i] {
			t.Errorf("%s: problem %d = %v, want %v", want.Path, i, got.Problems[i], want.Problems[i])
		}
	}
	if len(want.Problems) > 0 && cap(got.Problems) != len(got.Problems) {
		t.Errorf("%s: cap(Problems) = %d, want %d: an append must not write over the next file's", want.Path, cap(got.Problems), len(got.Problems))
	}
	if len(want.Entities) == 1 && &got.Entities[0] != &got.one[0] {
		t.Errorf("%s: the lone entity is not in the result's own slot", want.Path)
	}
	for i, w := range want.Entities {
		g := got.Entities[i]
		if g == w {
			t.Fatalf("%s: entity %s was not moved", want.Path, w.Name)
		}
		if !reflect.DeepEqual(exported(g), exported(w)) {
			t.Errorf("%s: entity %d = %+v, want %+v", want.Path, i, exported(g), exported(w))
		}
		if g.Lean() != w.Lean() || g.v != w.v || g.material.Load() != w.material.Load() {
			t.Errorf("%s: entity %s: lean %v, validator or material moved; want lean %v, the same", want.Path, w.Name, g.Lean(), w.Lean())
		}
		gf, wf := g.facts.Load(), w.facts.Load()
		if (gf == nil) != (wf == nil) || gf != nil && !reflect.DeepEqual(*gf, *wf) {
			t.Errorf("%s: entity %s: facts %v, want %v", want.Path, w.Name, gf, wf)
		}
		if wf == &w.inline.facts && (gf != &g.inline.facts || &(*gf)[0] != &g.inline.fact[0]) {
			t.Errorf("%s: entity %s: inline facts not in the packed entity", want.Path, w.Name)
		}
		if (g.place == nil) != (w.place == nil) {
			t.Fatalf("%s: entity %s: place %v, want %v", want.Path, w.Name, g.place, w.place)
		}
		if g.inline.fields != w.inline.fields {
			t.Errorf("%s: entity %s: inline field index %q, want %q", want.Path, w.Name, g.inline.fields.s, w.inline.fields.s)
		}
		if w.place != nil && (g.place.fields != w.place.fields || !reflect.DeepEqual(g.place.index, w.place.index) ||
			!reflect.DeepEqual(g.place.sniSrc, w.place.sniSrc) ||
			reflect.ValueOf(g.place.rename).Pointer() != reflect.ValueOf(w.place.rename).Pointer()) {
			t.Errorf("%s: entity %s: placement %+v, want %+v", want.Path, w.Name, *g.place, *w.place)
		}
		for _, f := range []string{"name", "snis", "snis[0]", "snis[2]", "cert", "key", "client.ca", "client.depth", "desc", "ssl_protocols"} {
			if gp, wp := g.Position(f), w.Position(f); gp != wp {
				t.Errorf("%s: entity %s: Position(%q) = %v, want %v", want.Path, w.Name, f, gp, wp)
			}
		}
		if len(w.SNIs) > 0 && cap(g.SNIs) != len(g.SNIs) {
			t.Errorf("%s: entity %s: cap(SNIs) = %d, want %d", want.Path, w.Name, cap(g.SNIs), len(g.SNIs))
		}
	}
}

// exportedEntity is what an Entity shows its users.
type exportedEntity struct {
	Name, Desc, ClientCA string
	Type                 Type
	SNIs, Protocols      []string
	Chains               []Chain
	Labels               map[string]string
	Pos                  Pos
	ClientDepth          int
	Disabled             bool
	Hash                 Hash
}

func exported(e *Entity) exportedEntity {
	return exportedEntity{e.Name, e.Desc, e.ClientCA, e.Type, e.SNIs, e.Protocols, e.Chains, e.Labels, e.Pos,
		e.ClientDepth, e.Disabled, e.Hash}
}

// TestPackedMaterial: a packed lean entity reads its material again from
// its file, and its hygiene facts can still be replaced.
func TestPackedMaterial(t *testing.T) {
	_, results := packFiles(t)
	packed := Pack(results)
	shop := packed[0].Entities[0]
	if !shop.Lean() {
		t.Fatalf("entity %s is not lean", shop.Name)
	}
	for range 2 { // the held material first, then the file read again
		m, err := shop.Material(nil)
		if err != nil {
			t.Fatalf("Material of packed %s: %v", shop.Name, err)
		}
		if got := m.Chains[0].Leaf.DNSNames; len(got) != 1 || got[0] != "shop.example.com" {
			t.Errorf("Material of packed %s serves %v, want [shop.example.com]", shop.Name, got)
		}
	}
	if got := shop.Trust(0); got != results[0].Entities[0].Trust(0) {
		t.Errorf("Trust(0) of packed %s = %v, want %v", shop.Name, got, results[0].Entities[0].Trust(0))
	}

}
