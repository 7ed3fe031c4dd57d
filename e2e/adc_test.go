package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
)

// adcFile renders an API7 ADC document (DESIGN.md 2.3): a list under
// ssls:, each with snis and certificates [{certificate, key}, ...].
func adcFile(items []adcItem) []byte {
	var b bytes.Buffer
	b.WriteString("ssls:\n")
	for _, it := range items {
		if it.id != "" {
			fmt.Fprintf(&b, "  - id: %s\n    snis:\n", it.id)
		} else {
			b.WriteString("  - snis:\n")
		}
		for _, s := range it.snis {
			fmt.Fprintf(&b, "      - %q\n", s)
		}
		b.WriteString("    certificates:\n")
		for _, c := range it.chains {
			writeBlock(&b, "      - certificate: |", "          ", c.certPEM)
			writeBlock(&b, "        key: |", "          ", c.keyPEM)
		}
	}
	return b.Bytes()
}

type adcItem struct {
	id     string
	snis   []string
	chains []*testLeaf
}

// TestADCRepository serves a repository in the API7 ADC form unchanged:
// both items are served, the dual item by algorithm, and the item without
// an id gets a name.
func TestADCRepository(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "adc CA")
	dualRSA := ca.issue(t, algRSA, "dual.adc.test", []string{"dual.adc.test"})
	dualEC := ca.issue(t, algECDSA, "dual.adc.test", []string{"dual.adc.test"})
	plain := ca.issue(t, algECDSA, "plain.adc.test", []string{"plain.adc.test", "www.adc.test"})
	repo := t.TempDir()
	writeFile(t, repo, "adc.yaml", adcFile([]adcItem{
		{id: "adc-dual", snis: []string{"dual.adc.test"}, chains: []*testLeaf{dualRSA, dualEC}},
		{snis: []string{"www.adc.test", "plain.adc.test"}, chains: []*testLeaf{plain}},
	}))
	if r := certops(t, repo, nil, "validate", "."); r.code != 0 {
		t.Fatalf("validate of the ADC file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	d := startDaemon(t, "--source", repo)
	files := t.TempDir()
	writeFile(t, files, "ca.pem", ca.certPEM)
	caFile := filepath.Join(files, "ca.pem")

	for _, tc := range []struct {
		sni  string
		args []string
		want *testLeaf
	}{
		{"dual.adc.test", nil, dualEC},
		{"dual.adc.test", []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"}, dualRSA},
		{"plain.adc.test", nil, plain},
		{"www.adc.test", nil, plain},
	} {
		h := sClient(t, d.listen, append([]string{"-servername", tc.sni, "-CAfile", caFile}, tc.args...)...)
		if !h.ok || h.leaf.SerialNumber.Cmp(tc.want.cert.SerialNumber) != 0 {
			t.Errorf("s_client -servername %s %v: %s; want serial %x", tc.sni, tc.args, h.describe(), tc.want.cert.SerialNumber)
		}
	}
	code, body := d.get("/api/v1/ssls")
	var ssls []sslDoc
	if err := json.Unmarshal(body, &ssls); code != http.StatusOK || err != nil || len(ssls) != 2 {
		t.Fatalf("GET /api/v1/ssls: %d %s; want the two ADC items", code, body)
	}
	for _, s := range ssls {
		if s.Name == "" || s.File != "adc.yaml" {
			t.Errorf("ADC item %+v: want a name and file adc.yaml", s)
		}
		if s.Name == "adc-dual" && (len(s.Chains) != 2 || s.Chains[0].KeyType == s.Chains[1].KeyType) {
			t.Errorf("ADC item adc-dual: %+v; want an RSA and an ECDSA chain", s)
		}
	}
}
