package main

import (
	"go/build"
	"path"
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
		{"certops/gateway", []string{"certops/schema", "certops/reconciler", "certops/examples", "github.com/go-git/", "cuelang.org/", "github.com/prometheus/", "github.com/spf13/"}},
		{"certops/schema", []string{"certops/gateway", "certops/reconciler", "github.com/go-git/", "github.com/prometheus/", "github.com/spf13/"}},
		{"certops/reconciler", []string{"github.com/spf13/"}},
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

// TestHeavyImportsStayInOneFile keeps CUE inside schema/cue.go (STYLE.md).
func TestHeavyImportsStayInOneFile(t *testing.T) {
	pkg, err := build.ImportDir("schema", 0)
	if err != nil {
		t.Fatal(err)
	}
	for imp, positions := range pkg.ImportPos {
		if !strings.HasPrefix(imp, "cuelang.org/") {
			continue
		}
		for _, p := range positions {
			if path.Base(p.Filename) != "cue.go" {
				t.Errorf("%s imported in %s; keep CUE imports in schema/cue.go", imp, p.Filename)
			}
		}
	}
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
