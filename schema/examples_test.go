package schema_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"certops/schema"
)

// TestExamplesValidate loads every example repository under ../examples
// (each folder holding entity files) and requires it to be valid, with no
// warnings, and every literal entity to yield material.
func TestExamplesValidate(t *testing.T) {
	dirs, err := os.ReadDir(filepath.Join("..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		n++
		t.Run(d.Name(), func(t *testing.T) {
			res, err := schema.Load(os.DirFS(filepath.Join("..", "examples", d.Name())), schema.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Files == 0 && len(res.Problems) == 0 {
				t.Logf("examples/%s holds no entity files: not a repository of entities", d.Name())
				return
			}
			if res.Failed(true) || len(res.Entities) == 0 {
				t.Fatalf("examples/%s: %d entities, problems:\n%v", d.Name(), len(res.Entities), res.Problems)
			}
			for _, e := range res.Entities {
				if _, err := e.Material(schema.Literal); err != nil {
					t.Errorf("entity %s: %v", e.Name, err)
				}
			}
		})
	}
	if n < 2 {
		t.Errorf("found %d example repositories, want basic and policy at least", n)
	}
}

// TestExamplePolicyFires changes one label of examples/policy so that its
// policy refuses it, at the line of the label.
func TestExamplePolicyFires(t *testing.T) {
	src := os.DirFS(filepath.Join("..", "examples", "policy"))
	fsys := fstest.MapFS{}
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		fsys[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	shop := string(fsys["shop.yaml"].Data)
	fsys["shop.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(shop, `team: "storefront"`, `team: "growth"`, 1))}
	fsys["extra.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(strings.Replace(shop, "shop-example-com", "shop-example-org", 1),
		`"shop.example.com"`, `"shop.example.org"`, 1))}
	res, err := schema.Load(fsys, schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(shop, "\n")
	teamLine := 0
	for i, l := range lines {
		if strings.Contains(l, "team:") {
			teamLine = i + 1
		}
	}
	var got []string
	for _, e := range res.Problems {
		got = append(got, e.Error())
	}
	want := []string{"labels.team", "shop.yaml:" + strconv.Itoa(teamLine) + ":", "extra.yaml:5:5: snis[0]"}
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("problems do not mention %q:\n%s", w, joined)
		}
	}
}
