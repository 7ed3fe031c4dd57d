package certcheck

import (
	"go/build"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// TestZlintStaysHere keeps zlint and zcrypto inside certcheck/zlint.go
// (STYLE.md: one package imports each heavy library), and certcheck free
// of certops' other packages but the leaf ones under internal/ (which
// import none), so schema and the reconciler can call it.
func TestZlintStaysHere(t *testing.T) {
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != ".." {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(p, 0)
		if err != nil {
			return nil // no Go files
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		for imp, positions := range pkg.ImportPos {
			heavy := strings.HasPrefix(imp, "github.com/zmap/")
			for _, pos := range positions {
				if heavy && (abs != self || path.Base(filepath.ToSlash(pos.Filename)) != "zlint.go") {
					t.Errorf("%s imported in %s; keep zlint in certcheck/zlint.go", imp, pos.Filename)
				}
			}
			if abs == self && strings.HasPrefix(imp, "certops/") && !strings.HasPrefix(imp, "certops/internal/") {
				t.Errorf("certcheck imports %s; it takes parsed certificates and imports no other certops package", imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
