package schema_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"certops/fixtures"
	"certops/schema"
)

// writeRepo writes files into a temporary folder, expanding PEM
// placeholders, and returns the folder.
func writeRepo(tb testing.TB, files map[string]string) string {
	tb.Helper()
	expanded := map[string]string{}
	for k, v := range files {
		expanded[k] = string(expand(tb, []byte(v)))
	}
	return fixtures.WriteFiles(tb, expanded)
}

const shopEntity = "name: shop\nsnis: [shop.example.com]\ncert: |\n  {{pem shop.crt}}\nkey: |\n  {{pem shop.key}}\n"

func loadDir(tb testing.TB, dir string) *schema.Result {
	tb.Helper()
	res, err := schema.Load(os.DirFS(dir), schema.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		tb.Fatalf("Load(%s): %v", dir, err)
	}
	return res
}

func TestLoadSymlinks(t *testing.T) {
	outside := writeRepo(t, map[string]string{"secret.yaml": strings.Replace(shopEntity, "name: shop", "name: outside", 1)})
	dir := writeRepo(t, map[string]string{"real/shop.yaml": shopEntity})
	links := map[string]string{
		"inside.yaml":      "real/shop.yaml", // fine, but a duplicate of shop
		"abs.yaml":         filepath.Join(outside, "secret.yaml"),
		"rel.yaml":         "../" + filepath.Base(outside) + "/secret.yaml",
		"dirlink":          outside,
		"via-dirlink.yaml": "dirlink/secret.yaml",
	}
	// rel.yaml needs outside and dir to share a parent.
	if filepath.Dir(outside) != filepath.Dir(dir) {
		delete(links, "rel.yaml")
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skipf("symlinks not supported here: %v", err)
		}
	}
	res := loadDir(t, dir)
	got := map[string]string{}
	for _, e := range res.Problems {
		got[e.Pos.File] += e.Msg + "\n"
	}
	for _, name := range []string{"abs.yaml", "rel.yaml", "via-dirlink.yaml"} {
		if _, ok := links[name]; !ok {
			continue
		}
		if !strings.Contains(got[name], "outside the repository") {
			t.Errorf("%s: problem %q, want a symbolic link outside the repository refused", name, got[name])
		}
	}
	// inside.yaml is read: its entity duplicates the one it points to.
	if !strings.Contains(got["real/shop.yaml"], "also used at inside.yaml") {
		t.Errorf("real/shop.yaml: problem %q, want a duplicate of inside.yaml (the link inside the repository is read)", got["real/shop.yaml"])
	}
	for _, e := range res.Entities {
		if e.Name == "outside" {
			t.Errorf("an entity from outside the repository was loaded from %s", e.Pos)
		}
	}
}

func TestLoadRefusesLargeFiles(t *testing.T) {
	big := shopEntity + "# " + strings.Repeat("x", schema.MaxFileSize) + "\n"
	dir := writeRepo(t, map[string]string{"big.yaml": big, "big.cue": "package certops\n// " + strings.Repeat("x", schema.MaxFileSize)})
	res := loadDir(t, dir)
	if len(res.Problems) != 2 {
		t.Fatalf("problems = %v, want one per large file", res.Problems)
	}
	for _, e := range res.Problems {
		if !strings.Contains(e.Msg, "limited to 1 MiB") {
			t.Errorf("%v: want a size error", e)
		}
	}
	v, _ := schema.NewValidator(nil, schema.Options{})
	if fr := v.File("big.yaml", []byte(big)); fr.Problems.Err() == nil || len(fr.Entities) != 0 {
		t.Errorf("Validator.File accepted a file over 1 MiB")
	}
}

func TestLoadRoot(t *testing.T) {
	fsys := fstest.MapFS{
		"certs/shop.yaml":   {Data: expand(t, []byte(shopEntity))},
		"other/broken.yaml": {Data: []byte("name: [")},
	}
	res, err := schema.Load(fsys, schema.Options{Root: "certs", Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Problems.Err(); err != nil || len(res.Entities) != 1 {
		t.Fatalf("Load(Root: certs) = %d entities, %v; want 1 entity, no problems", len(res.Entities), err)
	}
	if got := res.Entities[0].Pos.File; got != "certs/shop.yaml" {
		t.Errorf("entity file = %q, want certs/shop.yaml", got)
	}
	if _, err := schema.Load(fsys, schema.Options{Root: "missing"}); err == nil {
		t.Errorf("Load(Root: missing) succeeded, want an error")
	}
	if _, err := schema.Load(fsys, schema.Options{Root: "../x"}); err == nil {
		t.Errorf("Load(Root: ../x) succeeded, want an error")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		path string
		want schema.FileKind
	}{
		{"shop.yaml", schema.FileEntity},
		{"a/b/shop.yml", schema.FileEntity},
		{"x.json", schema.FileEntity},
		{"policy.cue", schema.FilePolicy},
		{"README.md", schema.FileIgnored},
		{".hidden.yaml", schema.FileIgnored},
		{".github/workflows/ci.yml", schema.FileIgnored},
		{"a/.git/config.yaml", schema.FileIgnored},
		{"ca.pem", schema.FileIgnored},
		{"yaml", schema.FileIgnored},
	}
	for _, tt := range tests {
		if got := schema.Classify(tt.path); got != tt.want {
			t.Errorf("Classify(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
