package e2e

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// sslDoc is the part of an /api/v1/ssls element the suite reads.
type sslDoc struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	SNIs   []string `json:"snis"`
	File   string   `json:"file"`
	Chains []struct {
		Subject              string   `json:"subject"`
		SANs                 []string `json:"sans"`
		Serial               string   `json:"serial"`
		KeyType              string   `json:"key_type"`
		Fingerprint          string   `json:"fingerprint_sha256"`
		PublicKeyFingerprint string   `json:"public_key_sha256"`
	} `json:"chains"`
}

// normHex lowercases a hex string and drops colons, so that
// "AB:CD" and "abcd" compare equal.
func normHex(s string) string { return strings.ToLower(strings.ReplaceAll(s, ":", "")) }

// TestStatusAPI follows a repository over git http-backend and checks what
// the daemon reports about it (DESIGN.md 5) — /api/v1/status through an
// applied, an invalid and a mass-deleting revision and after a restart with
// git down; /api/v1/ssls against the certificates in the repository;
// /metrics; POST /api/v1/reconcile; `certops status` and `certops diff
// --live` — and scans all of it, and the log, for the keys.
func TestStatusAPI(t *testing.T) {
	requireBinary(t)
	f := newFleet(t, 1)
	clientCA := newCA(t, "status client CA")
	leafA := f.shop(t)
	apiRSA := f.ca.issue(t, algRSA, "api.test", []string{"api.test"})
	apiEC := f.ca.issue(t, algECDSA, "api.test", []string{"api.test"})
	writeFile(t, f.repo.work, "api.yaml", entity{name: "api", snis: []string{"api.test"}, chains: []*testLeaf{apiRSA, apiEC}, clientCA: clientCA.certPEM}.yaml())
	revA := f.repo.commit(t, "first")
	keys := map[string]crypto.Signer{"shop": leafA.key, "api RSA": apiRSA.key, "api ECDSA": apiEC.key, "static": f.static[0].key}
	outputs := map[string]string{}

	url, srv := gitHTTP(t, f.repo.root, f.repo.name)
	args := []string{"--source", url, "--data-dir", t.TempDir(), "--interval", "300ms", "--log-level", "debug"}
	d := startDaemon(t, args...)
	waitApplied(t, d, revA)
	adminURL := "http://" + d.admin

	st, raw := d.status()
	outputs["/api/v1/status (applied)"] = string(raw)
	if !st.Ready || st.Entities != 3 || st.Source == "" {
		t.Errorf("status after the first apply: %s; want ready, 3 entities and the source", raw)
	}

	// /api/v1/ssls describes what is served, from the certificates.
	code, body := d.get("/api/v1/ssls")
	outputs["/api/v1/ssls"] = string(body)
	var ssls []sslDoc
	if err := json.Unmarshal(body, &ssls); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/v1/ssls: %d, %v in %s", code, err, body)
	}
	byName := map[string]sslDoc{}
	for _, s := range ssls {
		byName[s.Name] = s
	}
	shop, api := byName["shop"], byName["api"]
	wantFP := sha256.Sum256(leafA.cert.Raw)
	if len(shop.Chains) != 1 || normHex(shop.Chains[0].Serial) != fmt.Sprintf("%x", leafA.cert.SerialNumber) ||
		normHex(shop.Chains[0].Fingerprint) != hex.EncodeToString(wantFP[:]) || shop.File != "shop.yaml" ||
		shop.Chains[0].PublicKeyFingerprint == "" || shop.Chains[0].KeyType == "" {
		t.Errorf("/api/v1/ssls shop = %+v; want file shop.yaml, serial %x, fingerprint %x, a key type and a public-key fingerprint",
			shop, leafA.cert.SerialNumber, wantFP)
	}
	if len(api.Chains) != 2 || len(ssls) != 3 {
		t.Errorf("/api/v1/ssls: %d entities, api with %d chains; want 3 entities and 2 chains for api", len(ssls), len(api.Chains))
	}
	code, body = d.get("/api/v1/ssls/api")
	outputs["/api/v1/ssls/api"] = string(body)
	if code != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf("%x", apiEC.cert.SerialNumber)) {
		t.Errorf("GET /api/v1/ssls/api: %d %s; want 200 with the ECDSA chain's serial", code, body)
	}
	if code, body := d.get("/api/v1/ssls/no-such-entity"); code != http.StatusNotFound {
		t.Errorf("GET /api/v1/ssls/no-such-entity: %d %s; want 404", code, body)
	}

	// POST /api/v1/reconcile?wait=1 answers with the run's result.
	code, body = httpDo(t, http.MethodPost, adminURL+"/api/v1/reconcile?wait=1", nil, nil)
	outputs["POST /api/v1/reconcile"] = string(body)
	if code != http.StatusOK {
		t.Errorf("POST /api/v1/reconcile?wait=1: %d %s; want 200", code, body)
	}

	// diff --live: the working tree against the running daemon.
	r := certops(t, f.repo.work, nil, "diff", "--live", adminURL, f.repo.work, "--exit-code")
	outputs["diff --live (no change)"] = r.stdout + r.stderr
	if r.code != 0 {
		t.Errorf("diff --live with the applied tree: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	leafB := f.shop(t) // uncommitted
	keys["shop B"] = leafB.key
	r = certops(t, f.repo.work, nil, "diff", "--live", adminURL, f.repo.work, "--exit-code")
	outputs["diff --live (drift)"] = r.stdout + r.stderr
	if r.code != 2 || !strings.Contains(r.stdout, "~ update shop") || !strings.Contains(r.stdout, fmt.Sprintf("%x", leafB.cert.SerialNumber)) {
		t.Errorf("diff --live with shop rotated in the working tree: exit %d, want 2 and the update of shop to serial %x:\n%s%s",
			r.code, leafB.cert.SerialNumber, r.stdout, r.stderr)
	}

	// An invalid revision: refused, reported with its position.
	bad := *leafB
	bad.keyPEM = leafA.keyPEM
	writeFile(t, f.repo.work, "shop.yaml", entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{&bad}}.yaml())
	revC := f.repo.commit(t, "broken key")
	st = waitAttempt(t, d, revC)
	_, raw = d.status()
	outputs["/api/v1/status (invalid)"] = string(raw)
	if st.LastAttempt.Result == "applied" || st.Applied == nil || st.Applied.Revision != revA {
		t.Errorf("invalid revision: status %s; want it refused and %s still applied", raw, revA)
	}
	if !hasProblemAt(st.LastAttempt.Errors, "shop.yaml") {
		t.Errorf("invalid revision: status errors %+v, want one in shop.yaml with its line", st.LastAttempt.Errors)
	}
	for _, format := range []string{"text", "json"} {
		r := certops(t, t.TempDir(), nil, "status", "--admin", adminURL, "--format", format)
		outputs["certops status --format "+format] = r.stdout + r.stderr
		if r.code != 0 || !strings.Contains(r.stdout, "shop.yaml") || !strings.Contains(r.stdout, revA[:12]) {
			t.Errorf("certops status --format %s: exit %d, want 0 with the applied revision and the error in shop.yaml:\n%s%s", format, r.code, r.stdout, r.stderr)
		}
	}

	// A mass delete: refused, and the status says why.
	removeFile(t, f.repo.work, "shop.yaml")
	removeFile(t, f.repo.work, "api.yaml")
	removeFile(t, f.repo.work, "static/0.yaml")
	writeFile(t, f.repo.work, "README.md", []byte("oops\n"))
	revE := f.repo.commit(t, "delete everything")
	st = waitAttempt(t, d, revE)
	_, raw = d.status()
	outputs["/api/v1/status (mass delete)"] = string(raw)
	if st.LastAttempt.Result == "applied" || st.Applied == nil || st.Applied.Revision != revA || !strings.Contains(strings.ToLower(string(raw)), "delete") {
		t.Errorf("mass delete: status %s; want it refused, saying so, with %s still applied", raw, revA)
	}

	// Metrics.
	code, body = d.get("/metrics")
	outputs["/metrics"] = string(body)
	for _, want := range []string{
		"certops_reconcile_total", "certops_reconcile_duration_seconds", `certops_applied_revision_info{revision="` + revA + `"}`,
		"certops_last_applied_timestamp_seconds", "certops_entities", "certops_certificate_not_after_timestamp_seconds", "certops_tls_handshakes_total",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /metrics (%d) lacks %s", code, want)
		}
	}

	// Restart with git down: the data dir's revision is applied at once.
	d.stop()
	outputs["daemon log"] = d.logs.String()
	srv.Close()
	d2 := startDaemon(t, args...)
	st, raw = d2.status()
	if !st.Ready || st.Applied == nil || st.Applied.Revision != revA {
		t.Errorf("restart with git down: status %s; want ready with %s applied from the data dir", raw, revA)
	}
	waitServed(t, d2.listen, "shop.test", pool(f.ca), leafA)
	d2.stop()
	outputs["daemon log after restart"] = d2.logs.String()

	leakScan(t, keys, outputs)
}
