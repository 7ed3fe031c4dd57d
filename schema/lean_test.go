package schema_test

import (
	"bytes"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"certops/fixtures"
	"certops/schema"
)

// TestLeanEntity checks the entities of a validator with Reread: literal
// PEM text is dropped once parsed, the first Material hands over what
// validation parsed, a later one reads the file again, and an entity with
// a reference keeps its values.
func TestLeanEntity(t *testing.T) {
	ca := fixtures.NewRootCA(t, "lean CA")
	leaf := ca.Server(t, "shop.example.com")
	src := []byte(fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{leaf}}))
	files := map[string][]byte{"shop.yaml": src}
	var reads []string
	v, errs := schema.NewValidator(nil, schema.Options{Reread: func(p string) ([]byte, error) {
		reads = append(reads, p)
		b, ok := files[p]
		if !ok && p == "removed.yaml" {
			return nil, &fs.PathError{Op: "read", Path: p, Err: fs.ErrNotExist}
		}
		if !ok {
			return nil, errors.New("no such file")
		}
		return b, nil
	}})
	if errs.Err() != nil {
		t.Fatal(errs)
	}
	fr := v.File("shop.yaml", src)
	if err := fr.Problems.Err(); err != nil || len(fr.Entities) != 1 {
		t.Fatalf("File: %d entities, %v", len(fr.Entities), err)
	}
	e := fr.Entities[0]
	if !e.Lean() || e.Chains[0].Cert != "" || e.Chains[0].Key != "" {
		t.Fatalf("Lean() = %v, chain %q/%q; want lean with no text", e.Lean(), e.Chains[0].Cert, e.Chains[0].Key)
	}
	want := leaf.Cert.Raw
	for i, wantReads := range []int{0, 1, 2} {
		m, err := e.Material(schema.Literal)
		if err != nil {
			t.Fatalf("Material #%d: %v", i+1, err)
		}
		if got := m.Chains[0].Certificate[0]; !bytes.Equal(got, want) || m.Chains[0].PrivateKey == nil {
			t.Errorf("Material #%d: leaf differs or no key", i+1)
		}
		if len(reads) != wantReads {
			t.Errorf("after Material #%d: %d reads, want %d", i+1, len(reads), wantReads)
		}
	}

	t.Run("file changed", func(t *testing.T) {
		other := ca.Server(t, "shop.example.com")
		files["shop.yaml"] = []byte(fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{other}}))
		_, err := e.Material(schema.Literal)
		if !errors.Is(err, schema.ErrFileChanged) || !strings.Contains(err.Error(), "entity shop: shop.yaml changed") {
			t.Errorf("Material = %v, want the file named as changed", err)
		}
		noKey(t, err, leaf, other)
	})
	t.Run("file gone", func(t *testing.T) {
		delete(files, "shop.yaml")
		_, err := e.Material(schema.Literal)
		if err == nil || !strings.Contains(err.Error(), "entity shop: read shop.yaml again") {
			t.Errorf("Material = %v, want the read error with entity and file", err)
		}
	})
	t.Run("file removed", func(t *testing.T) {
		fr := v.File("removed.yaml", src)
		_, _ = fr.Entities[0].Material(schema.Literal) // hands over what validation parsed
		_, err := fr.Entities[0].Material(schema.Literal)
		if !errors.Is(err, schema.ErrFileChanged) || !strings.Contains(err.Error(), "removed.yaml changed since it was validated (it was removed)") {
			t.Errorf("Material = %v, want ErrFileChanged naming the removed file", err)
		}
	})
	t.Run("reference kept", func(t *testing.T) {
		ref := []byte("name: vault-shop\nsnis: [shop.example.com]\ncert: $env://SHOP_CERT\nkey: $env://SHOP_KEY\n")
		fr := v.File("ref.yaml", ref)
		if err := fr.Problems.Err(); err != nil || len(fr.Entities) != 1 {
			t.Fatalf("File: %d entities, %v", len(fr.Entities), err)
		}
		if e := fr.Entities[0]; e.Lean() || e.Chains[0].Cert != "$env://SHOP_CERT" {
			t.Errorf("Lean() = %v, cert %q; want the reference kept", e.Lean(), e.Chains[0].Cert)
		}
	})
}

// noKey fails the test if err's message holds a private key of leaves.
func noKey(tb testing.TB, err error, leaves ...*fixtures.Leaf) {
	tb.Helper()
	if err == nil {
		return
	}
	if found := fixtures.LeafScanner(leaves...).Find(err.Error()); found != "" {
		tb.Errorf("error holds %s", found)
	}
}

// TestLeanPositions checks that a lean entity names the same file, line
// and field in the checks across files as an entity that keeps its text,
// without reading its file again: it keeps its field positions (a key
// shared by 10,000 entities is 10,000 findings, and reading each file
// again for them doubled a cold start).
func TestLeanPositions(t *testing.T) {
	ca := fixtures.NewRootCA(t, "lean CA")
	entity := func(name string, snis ...string) string {
		return fixtures.EntityYAML(fixtures.Entity{Name: name, SNIs: snis, Chains: []*fixtures.Leaf{ca.Server(t, snis...)}})
	}
	files := map[string][]byte{
		"a.yaml": []byte(entity("shop", "shop.example.com", "www.example.com")),
		"b.yaml": []byte("# moved down\n\n" + entity("shop", "www.example.com")),
		"c.yaml": []byte(entity("blog", "blog.example.com") + "---\n" + entity("wiki", "wiki.example.com", "shop.example.com")),
	}
	check := func(opts schema.Options) (schema.ErrorList, []string) {
		v, errs := schema.NewValidator(nil, opts)
		if errs.Err() != nil {
			t.Fatal(errs)
		}
		var results []*schema.FileResult
		var positions []string
		for _, p := range []string{"a.yaml", "b.yaml", "c.yaml"} {
			fr := v.File(p, files[p])
			if err := fr.Problems.Err(); err != nil {
				t.Fatalf("File(%s): %v", p, err)
			}
			for _, e := range fr.Entities {
				if e.Lean() != (opts.Reread != nil) {
					t.Fatalf("%s: Lean() = %v with Reread %v", e.Name, e.Lean(), opts.Reread != nil)
				}
				positions = append(positions, e.Position("snis[0]").String(), e.Position("key").String())
			}
			results = append(results, fr)
		}
		return schema.CheckSet(results), positions
	}
	reads := 0
	lean, leanPos := check(schema.Options{Reread: func(p string) ([]byte, error) { reads++; return files[p], nil }})
	kept, keptPos := check(schema.Options{})
	if len(kept) < 3 {
		t.Fatalf("CheckSet found %d problems, want the duplicated name and SNIs:\n%v", len(kept), kept)
	}
	if got, want := lean.Error(), kept.Error(); got != want {
		t.Errorf("lean CheckSet =\n%s\nwant (entities that keep their positions)\n%s", got, want)
	}
	if !slices.Equal(leanPos, keptPos) {
		t.Errorf("lean Position = %v, want %v", leanPos, keptPos)
	}
	if reads != 0 {
		t.Errorf("the checks across files read lean entities' files %d times, want none", reads)
	}
}
