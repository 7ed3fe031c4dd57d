package source

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"
)

// TestTreeFS checks a Tree against the io/fs contract: folders implied by
// the paths, files read through the tree's read function.
func TestTreeFS(t *testing.T) {
	content := map[string]string{"a.yaml": "a\n", "b/c.yaml": "c\n", "b/d/e.cue": "e\n"}
	files := map[string]string{}
	for p, c := range content {
		files[p] = "id-" + c
	}
	tree := NewTree("r1", files, func(name string) ([]byte, error) { return []byte(content[name]), nil })
	if err := fstest.TestFS(tree, "a.yaml", "b/c.yaml", "b/d/e.cue"); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.ReadFile("missing.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing.yaml) = %v, want fs.ErrNotExist", err)
	}
	empty := NewTree("r0", nil, nil)
	if err := fstest.TestFS(empty); err != nil {
		t.Errorf("empty tree: %v", err)
	}
}

func TestFSSource(t *testing.T) {
	fsys := fstest.MapFS{"a.yaml": {Data: []byte("a\n")}, ".hidden/x.yaml": {Data: []byte("x\n")}}
	s := NewFS(fsys, "embedded")
	t1, err := s.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(t1.Files) != 1 || t1.Files["a.yaml"] == "" {
		t.Errorf("Fetch files = %v, want a.yaml only (dot-folders skipped)", t1.Files)
	}
	fsys["a.yaml"] = &fstest.MapFile{Data: []byte("changed\n")}
	t2, err := s.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if t1.Revision == t2.Revision {
		t.Errorf("revision %s unchanged after a file changed", t1.Revision)
	}
	if _, err := NewFS(nil, "none").Fetch(t.Context()); err == nil {
		t.Error("Fetch of a nil FS = nil error")
	}
}

// TestTreeShape walks, stats and follows the links of a tree's shape as
// schema.ListTree does, and checks that no file of the tree is read.
func TestTreeShape(t *testing.T) {
	files := map[string]string{"a.yaml": "id-a", "b/c.yaml": "id-c"}
	tree := NewTree("r1", files, func(name string) ([]byte, error) {
		t.Errorf("read(%q) through the shape", name)
		return nil, errors.New("not read")
	})
	tree.Links = map[string]string{"b/l.yaml": "../a.yaml"}
	tree.Special = map[string]fs.FileMode{"p.yaml": fs.ModeNamedPipe}
	shape := tree.Shape()
	var walked []string
	err := fs.WalkDir(shape, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			walked = append(walked, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.yaml", "b/c.yaml", "b/l.yaml", "p.yaml"}; !slices.Equal(walked, want) {
		t.Errorf("WalkDir(shape) = %v, want %v", walked, want)
	}
	for _, tt := range []struct {
		name string
		mode fs.FileMode
	}{{"a.yaml", 0}, {"b/c.yaml", 0}, {"p.yaml", fs.ModeNamedPipe}} {
		fi, err := fs.Stat(shape, tt.name)
		if err != nil || fi.Mode().Type() != tt.mode || fi.Size() != 0 {
			t.Errorf("Stat(shape, %q) = %v, %v, want type %v, size 0", tt.name, fi, err, tt.mode)
		}
	}
	if to, err := fs.ReadLink(shape, "b/l.yaml"); err != nil || to != "../a.yaml" {
		t.Errorf("ReadLink(shape, b/l.yaml) = %q, %v, want ../a.yaml", to, err)
	}
	if shape.Revision != "r1" {
		t.Errorf("shape revision = %q, want r1", shape.Revision)
	}
}
