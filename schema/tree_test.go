package schema_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"certops/schema"

	"github.com/google/go-cmp/cmp"
)

// TestListTreeRule pins the reading rule on a tree served the way a Git
// tree is (fstest.MapFS implements fs.ReadLinkFS): symlink entries are read
// as their target blob when it is inside the root, other links are
// problems at the link's path, other files are listed by name only.
func TestListTreeRule(t *testing.T) {
	link := func(target string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
	}
	fsys := fstest.MapFS{
		"certs/shop.yaml":         {Data: []byte("name: shop\n")},
		"certs/policy.cue":        {Data: []byte("package certops\n")},
		"certs/README.md":         {Data: []byte("# notes\n")},
		"certs/.hidden.yaml":      {Data: []byte("name: hidden\n")},
		"certs/.git/config":       {Data: []byte("[core]\n")},
		"certs/alias.yaml":        link("shop.yaml"),
		"certs/deep/alias.yaml":   link("../shop.yaml"),
		"certs/outside.yaml":      link("../other/secret.yaml"),
		"certs/absolute.yaml":     link("/etc/passwd"),
		"certs/loop.yaml":         link("loop.yaml"),
		"certs/folder.yaml":       link("deep"),
		"certs/folderlink":        link("deep"),
		"certs/dangling.yaml":     link("gone.yaml"),
		"other/secret.yaml":       {Data: []byte("name: secret\n")},
		"certs/big.json":          {Data: make([]byte, schema.MaxFileSize+1)},
		"certs/pipe.yaml":         {Mode: fs.ModeNamedPipe},
		"certs/sub/api.yml":       {Data: []byte("name: api\n")},
		"certs/sub/notes.txt.bak": {Data: []byte("x")},
	}
	l, err := schema.ListTree(context.Background(), fsys, "certs")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range l.Files {
		files = append(files, f.Path+" -> "+f.Target+" "+f.Kind.String())
	}
	wantFiles := []string{
		"certs/alias.yaml -> certs/shop.yaml entity",
		"certs/deep/alias.yaml -> certs/shop.yaml entity",
		"certs/policy.cue -> certs/policy.cue policy",
		"certs/shop.yaml -> certs/shop.yaml entity",
		"certs/sub/api.yml -> certs/sub/api.yml entity",
	}
	if diff := cmp.Diff(wantFiles, files); diff != "" {
		t.Errorf("ListTree files (-want +got):\n%s", diff)
	}
	problems := map[string]string{}
	for _, e := range l.Problems {
		problems[e.Pos.File] = e.Msg
	}
	wantProblems := map[string]string{
		"certs/outside.yaml":  "outside the repository",
		"certs/absolute.yaml": "outside the repository",
		"certs/loop.yaml":     "too many levels of symbolic links",
		"certs/folder.yaml":   "a symbolic link to a folder is not followed",
		"certs/dangling.yaml": "cannot read",
		"certs/big.json":      "limited to 1 MiB",
		"certs/pipe.yaml":     "named pipe",
	}
	for p, want := range wantProblems {
		if !strings.Contains(problems[p], want) {
			t.Errorf("problem at %s = %q, want it to contain %q", p, problems[p], want)
		}
	}
	if len(problems) != len(wantProblems) {
		t.Errorf("problems = %v, want one for each of %d entries", l.Problems, len(wantProblems))
	}
	for _, ig := range []string{"certs/README.md", "certs/.hidden.yaml", "certs/.git/", "certs/folderlink", "certs/sub/notes.txt.bak"} {
		found := false
		for _, p := range l.Ignored {
			found = found || p == ig
		}
		if !found {
			t.Errorf("Ignored = %q, want it to hold %s", l.Ignored, ig)
		}
	}
	src, err := schema.ReadTreeFile(fsys, l.Files[0])
	if err != nil || string(src) != "name: shop\n" {
		t.Errorf("ReadTreeFile(%s) = %q, %v; want the target's content", l.Files[0].Path, src, err)
	}
}

// TestLoadDoesNotOpenFIFO is issue 16 item 6: a named pipe named like an
// entity file is refused from its type and never opened, so validation
// does not block waiting for a writer.
func TestLoadDoesNotOpenFIFO(t *testing.T) {
	dir := writeRepo(t, map[string]string{"shop.yaml": shopEntity})
	if err := mkfifo(filepath.Join(dir, "pipe.yaml")); err != nil {
		t.Skipf("cannot make a named pipe here: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	done := make(chan *schema.Result, 1)
	go func() {
		res, err := schema.LoadContext(ctx, os.DirFS(dir), schema.Options{Now: nowFunc})
		if err != nil {
			t.Errorf("Load: %v", err)
		}
		done <- res
	}()
	select {
	case res := <-done:
		if res == nil {
			return
		}
		if len(res.Problems) != 1 || res.Problems[0].Pos.File != "pipe.yaml" || !strings.Contains(res.Problems[0].Msg, "named pipe") {
			t.Errorf("problems = %v, want one: pipe.yaml is a named pipe", res.Problems)
		}
		if len(res.Entities) != 1 {
			t.Errorf("entities = %d, want shop", len(res.Entities))
		}
	case <-ctx.Done():
		t.Fatal("Load blocked on a named pipe")
	}
}

// testTimeout bounds a test that would hang on a regression; it is not a
// timing assertion.
const testTimeout = 30 * time.Second

func nowFunc() time.Time { return testNow }

func ExampleListTree() {
	fsys := fstest.MapFS{
		"certs/shop.yaml":    {Data: []byte("name: shop\n")},
		"certs/current.yaml": {Data: []byte("shop.yaml"), Mode: fs.ModeSymlink},
		"certs/escape.yaml":  {Data: []byte("../../etc/x.yaml"), Mode: fs.ModeSymlink},
		"certs/README.md":    {Data: []byte("notes\n")},
	}
	l, _ := schema.ListTree(context.Background(), fsys, "certs")
	for _, f := range l.Files {
		fmt.Println("read", f.Path, "from", f.Target)
	}
	for _, p := range l.Problems {
		fmt.Println(p)
	}
	fmt.Println("ignored", l.Ignored)
	// Output:
	// read certs/current.yaml from certs/shop.yaml
	// read certs/shop.yaml from certs/shop.yaml
	// certs/escape.yaml: symbolic link points outside the repository
	// ignored [certs/README.md]
}
