package e2e

import (
	"slices"
	"strings"
	"testing"
)

// leakScan fails tb for every output that holds any of the markers (the
// PEM body lines and base64 DER of private keys). The failure names the
// output and the key, never the matching text.
func leakScan(tb testing.TB, keys map[string][]string, outputs map[string]string) {
	tb.Helper()
	names := make([]string, 0, len(outputs))
	for name := range outputs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		out := outputs[name]
		for key, markers := range keys {
			for _, m := range markers {
				if strings.Contains(out, m) {
					tb.Errorf("%s contains material of private key %s", name, key)
					break
				}
			}
		}
	}
}

// recordTB records Errorf calls instead of failing.
type recordTB struct {
	testing.TB
	errs []string
}

func (r *recordTB) Helper() {}

func (r *recordTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, format)
}

// TestLeakScanDetects proves the scanner finds a key however an output
// would carry it: as PEM, indented in YAML, escaped in JSON, or as base64
// DER; and that it stays quiet on public material.
func TestLeakScanDetects(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "leak CA")
	for _, alg := range []keyAlg{algECDSA, algRSA} {
		leaf := ca.issue(t, alg, "leak.test", []string{"leak.test"})
		keys := map[string][]string{"leak.test": leaf.secretMarkers(t)}
		yamlDoc := string(entity{name: "leak", snis: []string{"leak.test"}, chains: []*testLeaf{leaf}}.yaml())
		jsonEscaped := strings.ReplaceAll(string(leaf.keyPEM), "\n", `\n`)
		for name, out := range map[string]string{
			"PEM":         string(leaf.keyPEM),
			"YAML":        yamlDoc,
			"JSON string": `{"error":"bad key ` + jsonEscaped + `"}`,
			"base64 DER":  "key=" + base64Std(leaf.keyDER),
		} {
			rec := &recordTB{TB: t}
			leakScan(rec, keys, map[string]string{name: out})
			if len(rec.errs) == 0 {
				t.Errorf("%s key as %s: leakScan found nothing", alg, name)
			}
		}
		rec := &recordTB{TB: t}
		leakScan(rec, keys, map[string]string{"public": string(leaf.certPEM) + string(ca.certPEM)})
		if len(rec.errs) != 0 {
			t.Errorf("%s: leakScan flagged public certificates: %v", alg, rec.errs)
		}
	}
}
