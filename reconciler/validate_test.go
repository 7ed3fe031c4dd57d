package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"certops/fixtures"
	"certops/schema"
	"certops/source"
)

func TestClassifyBelowRoot(t *testing.T) {
	tests := []struct {
		root, path string
		want       fileKind
	}{
		{"", "a.yaml", kindEntity},
		{"", "dir/policy.cue", kindPolicy},
		{"", ".github/x.yaml", kindIgnored},
		{"prod", "prod/a.yml", kindEntity},
		{"prod", "staging/a.yaml", kindIgnored},
		{"prod", "production/a.yaml", kindIgnored},
		{"prod", "prod/.hidden/a.yaml", kindIgnored},
		{"prod", "README.md", kindIgnored},
	}
	for _, tt := range tests {
		for _, root := range []string{tt.root, "./" + tt.root, tt.root + "/"} {
			l := newLoader(root, schema.Options{})
			if got := classify(l.root, tt.path); got != tt.want {
				t.Errorf("classify(%q, %q) = %v, want %v", root, tt.path, got, tt.want)
			}
		}
	}
}

// TestLoadAllReusesUnchangedResults checks the full load's cache, the
// results of the revision loaded last: a file whose content id and policy
// did not change keeps its result (the same pointer), a changed file, or
// every file under a new policy, is validated again, and a file gone is
// counted as removed.
func TestLoadAllReusesUnchangedResults(t *testing.T) {
	ca := fixtures.NewRootCA(t, "loader CA")
	a, _ := entity(t, ca, "a", "a.example.com")
	b, _ := entity(t, ca, "b", "b.example.com")
	b2, _ := entity(t, ca, "b", "b.example.com", "www.b.example.com")
	tree := func(files map[string]string) *source.Tree {
		ids := map[string]string{}
		for p, c := range files {
			sum := sha256.Sum256([]byte(c))
			ids[p] = hex.EncodeToString(sum[:])
		}
		return source.NewTree("r", ids, func(name string) ([]byte, error) { return []byte(files[name]), nil })
	}
	l := newLoader("certs", schema.Options{WarnWithin: schema.DefaultWarnWithin})
	load := func(files map[string]string) (*loadResult, map[string]*schema.FileResult) {
		t.Helper()
		res, err := l.loadAll(t.Context(), tree(files))
		if err != nil {
			t.Fatal(err)
		}
		byPath := map[string]*schema.FileResult{}
		for i := range l.last.files.Len() {
			r := l.last.files.File(i)
			byPath[r.Path] = r
		}
		return res, byPath
	}
	files := map[string]string{"certs/a.yaml": a, "certs/b.yaml": b}
	res, first := load(files)
	if res.validated != 2 || res.removed != 0 {
		t.Fatalf("first load: validated %d, removed %d; want 2, 0", res.validated, res.removed)
	}

	res, again := load(files)
	if res.validated != 0 || again["certs/a.yaml"] != first["certs/a.yaml"] || again["certs/b.yaml"] != first["certs/b.yaml"] {
		t.Errorf("unchanged files: validated %d, results reused %v; want 0, true", res.validated,
			again["certs/a.yaml"] == first["certs/a.yaml"] && again["certs/b.yaml"] == first["certs/b.yaml"])
	}

	files["certs/b.yaml"] = b2
	res, changed := load(files)
	if res.validated != 1 || changed["certs/a.yaml"] != first["certs/a.yaml"] || changed["certs/b.yaml"] == first["certs/b.yaml"] {
		t.Errorf("one file changed: validated %d; want 1, with a's result kept and b's new", res.validated)
	}
	if got := changed["certs/b.yaml"].Entities; len(got) != 1 || len(got[0].SNIs) != 2 {
		t.Errorf("the changed file's result is not its new content's: %+v", got)
	}

	// A policy refusing b's second SNI: every file is validated again.
	files["certs/policy.cue"] = "package certops\n#SSL: snis: [...=~\"^[ab]\\\\.example\\\\.com$\"]\n"
	res, _ = load(files)
	if err := res.problems().Err(); res.validated != 2 || err == nil || !strings.Contains(err.Error(), `snis[1]: invalid value "www.b.example.com"`) {
		t.Errorf("a new policy: validated %d, errors %v; want 2 files validated again and b's snis[1] refused", res.validated, err)
	}

	delete(files, "certs/a.yaml")
	res, _ = load(files)
	if res.validated != 0 || res.removed != 1 || res.files != 1 {
		t.Errorf("a file removed: validated %d, removed %d, files %d; want 0, 1, 1", res.validated, res.removed, res.files)
	}
}
