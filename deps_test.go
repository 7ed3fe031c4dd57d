package main

import (
	"errors"
	"go/build"
	"go/token"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDependencyDirection holds the layout of DESIGN.md 7: main ->
// reconciler -> {schema, gateway}. It reads imports from the source with
// go/build (not a cached tool) and follows certops' own packages
// transitively, so a rule cannot be broken through a sub-package.
func TestDependencyDirection(t *testing.T) {
	rules := []struct {
		pkg       string
		forbidden []string // import path prefixes
	}{
		{"certops/gateway", []string{"certops/schema", "certops/reconciler", "certops/plan", "certops/source", "certops/examples", "github.com/go-git/", "cuelang.org/", "github.com/prometheus/", "github.com/spf13/"}},
		{"certops/schema", []string{"certops/gateway", "certops/reconciler", "certops/plan", "certops/source", "github.com/go-git/", "github.com/prometheus/", "github.com/spf13/"}},
		// Sources produce file trees and know nothing of what is in them.
		{"certops/source", []string{"certops/schema", "certops/gateway", "certops/reconciler", "certops/plan", "cuelang.org/", "github.com/prometheus/", "github.com/spf13/"}},
		// Plans and descriptions are read by diff without any repository
		// library: no go-git, no fsnotify, no reconciler.
		{"certops/plan", []string{"certops/reconciler", "certops/source", "certops/gateway", "github.com/go-git/", "github.com/fsnotify/", "github.com/prometheus/", "github.com/spf13/"}},
		{"certops/reconciler", []string{"github.com/spf13/"}},
		// Reports render plain types; the HTTP surface is admin's.
		{"certops/reconciler/report", []string{"certops/reconciler/admin", "github.com/prometheus/", "github.com/spf13/"}},
		// Signature checks, notifications and commit statuses are leaves:
		// the source hands trust raw objects, and main feeds the other two
		// from the reconciler's status (issue 15).
		// The shared rules of schema and gateway are leaves: the standard
		// library only, so the gateway may import them.
		{"certops/sni", []string{"certops/", "golang.org/"}},
		{"certops/clientauth", []string{"certops/", "golang.org/"}},
		{"certops/trust", []string{"certops/", "github.com/go-git/", "github.com/prometheus/", "github.com/spf13/"}},
		{"certops/notify", []string{"certops/", "github.com/go-git/", "github.com/prometheus/", "github.com/spf13/"}},
		{"certops/commitstatus", []string{"certops/", "github.com/go-git/", "github.com/prometheus/", "github.com/spf13/"}},
		{"certops/fixtures", []string{"certops/gateway", "certops/schema", "certops/reconciler"}},
	}
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			imports := transitiveImports(t, r.pkg)
			for _, imp := range imports {
				for _, bad := range r.forbidden {
					if imp == strings.TrimSuffix(bad, "/") || strings.HasPrefix(imp, strings.TrimSuffix(bad, "/")+"/") {
						t.Errorf("%s imports %s (directly or through certops packages); forbidden by DESIGN.md 7", r.pkg, imp)
					}
				}
			}
		})
	}
}

// TestHeavyImportsStayInOneFile keeps CUE inside package schema (STYLE.md:
// one package per heavy library, split into files by concern inside it). It
// walks every package of the module, test files included, and refuses a
// cuelang.org import anywhere but in certops/schema.
func TestHeavyImportsStayInOneFile(t *testing.T) {
	var dirs []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, dir := range dirs {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			var noGo *build.NoGoError
			if errors.As(err, &noGo) {
				continue
			}
			t.Fatalf("read imports of %s: %v", dir, err)
		}
		checked++
		inSchema := filepath.ToSlash(dir) == "schema" && pkg.Name == "schema"
		for _, imports := range []map[string][]token.Position{pkg.ImportPos, pkg.TestImportPos, pkg.XTestImportPos} {
			for imp, positions := range imports {
				if !strings.HasPrefix(imp, "cuelang.org/") {
					continue
				}
				for _, p := range positions {
					if !inSchema {
						t.Errorf("%s imported in %s; keep CUE imports in package schema", imp, p.Filename)
					}
				}
			}
		}
	}
	if checked < 3 {
		t.Fatalf("checked %d packages; the walk found too few", checked)
	}
}

// heavyImports maps each heavy library (an import path prefix) to the one
// certops package allowed to import it (STYLE.md: one package per heavy
// library, split into files by concern inside it). CUE's rule is
// TestHeavyImportsStayInOneFile.
var heavyImports = map[string]string{
	"github.com/go-git/":           "certops/source",
	"github.com/fsnotify/fsnotify": "certops/source",
	"github.com/aws/":              "certops/secrets",
	"github.com/nats-io/":          "certops/fleet",
	"github.com/zmap/zlint/":       "certops/certcheck",
}

// TestHeavyImportsStayInOnePackage reads the non-test imports of every
// package of the module and fails for a heavy library imported outside
// its package.
func TestHeavyImportsStayInOnePackage(t *testing.T) {
	for _, pkg := range modulePackages(t) {
		bp, err := build.ImportDir("."+strings.TrimPrefix(pkg, "certops"), 0)
		if err != nil {
			t.Fatalf("read imports of %s: %v", pkg, err)
		}
		for _, imp := range bp.Imports {
			for prefix, owner := range heavyImports {
				if (imp == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(imp, prefix)) && pkg != owner {
					t.Errorf("%s imports %s; only %s may (STYLE.md: one package per heavy library)", pkg, imp, owner)
				}
			}
		}
	}
}

// testSupport are the packages whose role is to help tests: their non-test
// files may import package testing, and production code may not import
// them.
var testSupport = map[string]bool{"certops/fixtures": true, "certops/internal/daemontest": true}

// TestNoTestingInProduction fails for a non-test file that imports
// package testing or one below it (testing/fstest, testing/synctest, ...),
// directly or through a certops package: the daemon links no test code
// (issue 11).
func TestNoTestingInProduction(t *testing.T) {
	isTesting := func(imp string) bool {
		return imp == "testing" || strings.HasPrefix(imp, "testing/") || testSupport[imp]
	}
	for _, pkg := range modulePackages(t) {
		if testSupport[pkg] {
			continue
		}
		bp, err := build.ImportDir("."+strings.TrimPrefix(pkg, "certops"), 0)
		if err != nil {
			t.Fatalf("read imports of %s: %v", pkg, err)
		}
		for imp, positions := range bp.ImportPos {
			if isTesting(imp) {
				t.Errorf("%s imports %s in a non-test file; only _test.go files and %v may", positions[0], imp, slices.Sorted(maps.Keys(testSupport)))
			}
		}
		for _, imp := range transitiveImports(t, pkg) {
			if isTesting(imp) && !slices.Contains(bp.Imports, imp) {
				t.Errorf("%s imports %s through a certops package", pkg, imp)
			}
		}
	}
}

// modulePackages lists the import paths of the module's packages that have
// non-test Go files, from the file tree.
func modulePackages(t *testing.T) []string {
	t.Helper()
	var pkgs []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); p != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		if _, err := build.ImportDir(p, 0); err != nil {
			var noGo *build.NoGoError
			if errors.As(err, &noGo) {
				return nil
			}
			return err
		}
		pkgs = append(pkgs, path.Join("certops", filepath.ToSlash(p)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 5 {
		t.Fatalf("found %d packages (%v): the walk is broken", len(pkgs), pkgs)
	}
	return pkgs
}

// transitiveImports returns every import of pkg's non-test files, following
// certops packages recursively.
func transitiveImports(t *testing.T, pkg string) []string {
	t.Helper()
	seen := map[string]bool{}
	var all []string
	var visit func(p string)
	visit = func(p string) {
		dir := "." + strings.TrimPrefix(p, "certops")
		bp, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("read imports of %s: %v", p, err)
		}
		for _, imp := range bp.Imports {
			if seen[imp] {
				continue
			}
			seen[imp] = true
			all = append(all, imp)
			if imp == "certops" || strings.HasPrefix(imp, "certops/") {
				visit(imp)
			}
		}
	}
	visit(pkg)
	slices.Sort(all)
	return all
}

// TestSecretGrammarIsLight holds issue 11: schema checks secret references
// with the grammar of package secrets/ref, and neither it nor the grammar
// links a store's client (the AWS SDK, Vault's HTTP client, the secrets
// package that holds them).
func TestSecretGrammarIsLight(t *testing.T) {
	for _, pkg := range []string{"certops/schema", "certops/secrets/ref"} {
		t.Run(pkg, func(t *testing.T) {
			for _, imp := range transitiveImports(t, pkg) {
				for _, bad := range []string{"github.com/aws/", "github.com/hashicorp/", "certops/secrets"} {
					if imp == bad || strings.HasPrefix(imp, bad+"/") && imp != "certops/secrets/ref" {
						t.Errorf("%s imports %s (directly or through certops packages); the reference grammar must not link a store client", pkg, imp)
					}
				}
			}
		})
	}
	if imps := transitiveImports(t, "certops/secrets/ref"); len(imps) > 0 {
		for _, imp := range imps {
			if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				t.Errorf("certops/secrets/ref imports %s; it is standard library only", imp)
			}
		}
	}
}
