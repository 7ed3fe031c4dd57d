package e2e

import (
	"strings"
	"testing"
)

// TestRepositoryLayout checks which files are entities (DESIGN.md 2):
// YAML and JSON files in nested folders are; with --path only the folder
// below it counts; dot-files and dot-folders (.github workflows) are
// skipped; other extensions are ignored and listed by `validate -v`; a
// broken file outside --path stalls nothing.
func TestRepositoryLayout(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "layout CA")
	prod := ca.issue(t, algECDSA, "prod.test", []string{"prod.test"})
	repo := t.TempDir()
	writeFile(t, repo, "prod/shop.yaml", entity{name: "prod-shop", snis: []string{"prod.test"}, chains: []*testLeaf{prod}}.yaml())
	api := ca.issue(t, algECDSA, "api.prod.test", []string{"api.prod.test"})
	writeFile(t, repo, "prod/nested/api.json", []byte(`{"name": "prod-api", "snis": ["api.prod.test"], "cert": `+
		jsonString(api.certPEM)+`, "key": "$env://E2E_API_KEY"}`))
	writeFile(t, repo, "prod/.github/workflows/ci.yaml", []byte("on: [push]\njobs: {}\n"))
	writeFile(t, repo, "prod/.hidden.yaml", []byte("not: an entity\n"))
	writeFile(t, repo, "prod/README.md", []byte("# prod\n"))
	writeFile(t, repo, "staging/broken.yaml", []byte("name: [broken\n"))

	r := certops(t, repo, nil, "validate", "prod", "-v")
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "README.md") {
		t.Errorf("validate prod -v: exit %d, want 0 and README.md listed as ignored:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := certops(t, repo, nil, "validate", "."); r.code != 1 || !strings.Contains(r.stdout, "staging/broken.yaml") {
		t.Errorf("validate . (with staging): exit %d, want 1 and the error in staging/broken.yaml:\n%s%s", r.code, r.stdout, r.stderr)
	}

	d := runDaemon(t, daemonConfig{
		args: []string{"--source", repo, "--path", "prod"},
		env:  []string{"E2E_API_KEY=" + string(api.keyPEM)},
	})
	st, raw := d.status()
	if st.Entities != 2 || st.LastAttempt == nil || len(st.LastAttempt.Errors) != 0 {
		t.Errorf("run --path prod: status %s; want the 2 entities of prod applied without errors", raw)
	}
	waitServed(t, d.listen, "prod.test", pool(ca), prod)
	waitServed(t, d.listen, "api.prod.test", pool(ca), api)
}

// jsonString quotes b as a JSON string.
func jsonString(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range string(b) {
		switch c {
		case '\n':
			sb.WriteString(`\n`)
		case '"', '\\':
			sb.WriteByte('\\')
			sb.WriteRune(c)
		default:
			sb.WriteRune(c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
