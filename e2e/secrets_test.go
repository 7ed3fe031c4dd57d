package e2e

import (
	"crypto"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestEnvSecretReference serves an entity whose key is a $env:// reference
// (DESIGN.md 2.4): the daemon resolves it from its environment and serves
// the certificate; a commit whose certificate does not match the
// referenced key is refused, naming the entity and the reference; and no
// output — log, status, entity listing, metrics, validate, diff — holds the
// key the variable carries.
func TestEnvSecretReference(t *testing.T) {
	requireBinary(t)
	f := newFleet(t, 1)
	leaf := f.ca.issue(t, algECDSA, "vault.test", []string{"vault.test"})
	keys := map[string]crypto.Signer{"referenced key": leaf.key}
	doc := func(l *testLeaf) []byte {
		head := entity{name: "vaulted", snis: []string{"vault.test"}}.yaml()
		return fmt.Appendf(head, "cert: |\n%skey: $env://E2E_SHOP_KEY\n", indent(l.certPEM, "  "))
	}
	writeFile(t, f.repo.work, "vaulted.yaml", doc(leaf))
	revA := f.repo.commit(t, "vaulted entity")
	url, _ := gitDaemon(t, f.repo.root, f.repo.name)
	d := runDaemon(t, daemonConfig{
		args: []string{"--source", url, "--data-dir", t.TempDir(), "--interval", "300ms", "--log-level", "debug"},
		env:  []string{"E2E_SHOP_KEY=" + string(leaf.keyPEM)},
	})
	waitApplied(t, d, revA)
	waitServed(t, d.listen, "vault.test", pool(f.ca), leaf)
	outputs := map[string]string{}

	code, body := d.get("/api/v1/ssls/vaulted")
	outputs["/api/v1/ssls/vaulted"] = string(body)
	if code != http.StatusOK || !strings.Contains(string(body), "$env://E2E_SHOP_KEY") {
		t.Errorf("GET /api/v1/ssls/vaulted: %d %s; want the entity with its key reference", code, body)
	}

	// A certificate that does not match the referenced key.
	other := f.ca.issue(t, algECDSA, "vault.test", []string{"vault.test"})
	writeFile(t, f.repo.work, "vaulted.yaml", doc(other))
	revB := f.repo.commit(t, "certificate without its key")
	st := waitAttempt(t, d, revB)
	_, raw := d.status()
	outputs["/api/v1/status"] = string(raw)
	if st.LastAttempt.Result == "applied" || st.Applied == nil || st.Applied.Revision != revA {
		t.Errorf("mismatched secret: status %s; want %s refused and %s still applied", raw, revB, revA)
	}
	if !strings.Contains(string(raw), "vaulted") || !strings.Contains(string(raw), "E2E_SHOP_KEY") {
		t.Errorf("mismatched secret: status %s; want the entity and the reference named", raw)
	}
	waitServed(t, d.listen, "vault.test", pool(f.ca), leaf)

	_, body = d.get("/metrics")
	outputs["/metrics"] = string(body)
	r := certops(t, f.repo.work, nil, "validate", ".", "--format", "json")
	outputs["validate"] = r.stdout + r.stderr
	r = certops(t, f.repo.work, nil, "diff", "--repo", f.repo.work, "--base", revA, "--head", revB)
	outputs["diff"] = r.stdout + r.stderr
	d.stop()
	outputs["daemon log"] = d.logs.String()
	leakScan(t, keys, outputs)
}

// indent prefixes every line of pem with prefix.
func indent(pem []byte, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(string(pem), "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	return b.String()
}
