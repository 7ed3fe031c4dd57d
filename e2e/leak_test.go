package e2e

import (
	"crypto"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"certops/fixtures"
)

// leakScan fails tb for every output that holds material of any of the
// keys (fixtures' leak scanner: PEM, base64 and hex of every encoding of
// each key), and for an empty output, which would prove nothing. The
// failure names the output and the key, never the matching text.
func leakScan(tb testing.TB, keys map[string]crypto.Signer, outputs map[string]string) {
	tb.Helper()
	scanner := fixtures.NewLeakScanner(keys)
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		out := outputs[name]
		if strings.TrimSpace(out) == "" {
			tb.Errorf("%s is empty: the scan would prove nothing", name)
		}
		scanner.Check(tb, name, out)
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
		keys := map[string]crypto.Signer{"leak.test": leaf.key}
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

// TestLeakScan runs the scenarios where key material is most likely to
// escape — a daemon at debug level following a repository through invalid
// revisions that put keys where they do not belong, and validate and diff
// over the same revisions in every format — and scans every output for the
// keys (DESIGN.md 2.4: never in a log line, an error, a status, a diff or a
// metric).
func TestLeakScan(t *testing.T) {
	requireBinary(t)
	ca, clientCA := newCA(t, "leak CA"), newCA(t, "leak client CA")
	shop := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
	apiRSA := ca.issue(t, algRSA, "api.test", []string{"api.test"})
	apiEC := ca.issue(t, algECDSA, "api.test", []string{"api.test"})
	mtls := ca.issue(t, algRSA, "mtls.test", []string{"mtls.test"})
	other := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
	keys := map[string]crypto.Signer{}
	for name, l := range map[string]*testLeaf{"shop": shop, "api RSA": apiRSA, "api ECDSA": apiEC, "mtls": mtls, "other": other} {
		keys[name] = l.key
	}

	repo := newGitRepo(t)
	writeAll := func(shopDoc []byte) {
		writeFile(t, repo.work, "shop.yaml", shopDoc)
		writeFile(t, repo.work, "api.yaml", entity{name: "api", snis: []string{"api.test"}, chains: []*testLeaf{apiRSA, apiEC}}.yaml())
		writeFile(t, repo.work, "mtls.yaml", entity{name: "mtls", snis: []string{"mtls.test"}, chains: []*testLeaf{mtls}, clientCA: clientCA.certPEM}.yaml())
	}
	goodShop := entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{shop}}.yaml()
	writeAll(goodShop)
	base := repo.commit(t, "good")

	url, _ := gitDaemon(t, repo.root, repo.name)
	d := startDaemon(t, "--source", url, "--data-dir", t.TempDir(), "--interval", "300ms", "--log-level", "debug")
	d.waitRevisionLogged(base)
	outputs := map[string]string{}

	// Each bad revision puts key material somewhere it must not be echoed
	// from: a key that does not match, a key where the certificate goes, a
	// corrupted key, a key whose YAML block is broken.
	mismatch := *other
	mismatch.keyPEM = shop.keyPEM
	corrupt := *shop
	lines := strings.Split(string(shop.keyPEM), "\n")
	lines[2] = strings.Repeat("A", len(lines[2]))
	corrupt.keyPEM = []byte(strings.Join(lines, "\n"))
	keyAsCert := *shop
	keyAsCert.certPEM = shop.keyPEM
	brokenYAML := append(entity{name: "shop", snis: []string{"shop.test"}}.yaml(), "key: |\n"...)
	brokenYAML = append(append(brokenYAML, shop.keyPEM...), "  cert: [unbalanced\n"...)
	bad := map[string][]byte{
		"key does not match":       entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{&mismatch}}.yaml(),
		"key in the cert field":    entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{&keyAsCert}}.yaml(),
		"corrupted key":            entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{&corrupt}}.yaml(),
		"broken YAML around a key": brokenYAML,
	}
	for name, doc := range bad {
		writeAll(doc)
		rev := repo.commit(t, name)
		if l := d.waitRevisionLogged(rev); l["level"] != "WARN" {
			t.Errorf("%s: revision logged at %v, want WARN (refused)", name, l["level"])
		}
		for _, format := range []string{"text", "json", "github"} {
			r := certops(t, repo.work, nil, "validate", ".", "--format", format)
			if r.code != 1 {
				t.Errorf("%s: validate --format %s exit %d, want 1", name, format, r.code)
			}
			outputs[fmt.Sprintf("validate --format %s (%s)", format, name)] = r.stdout + r.stderr
		}
		for _, format := range []string{"text", "json", "markdown"} {
			r := certops(t, repo.work, nil, "diff", "--repo", repo.work, "--base", base, "--head", rev, "--format", format)
			outputs[fmt.Sprintf("diff --format %s (%s)", format, name)] = r.stdout + r.stderr
		}
	}
	// A rotation to a good revision, diffed in every format.
	writeAll(entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{other}}.yaml())
	head := repo.commit(t, "rotate")
	waitServed(t, d.listen, "shop.test", pool(ca), other)
	for _, format := range []string{"text", "json", "markdown"} {
		r := certops(t, repo.work, nil, "diff", "--repo", repo.work, "--base", base, "--head", head, "--format", format)
		if r.code != 0 {
			t.Errorf("diff --format %s of a rotation: exit %d, want 0", format, r.code)
		}
		outputs["diff --format "+format+" (rotation)"] = r.stdout + r.stderr
	}
	d.stop()
	outputs["daemon log"] = d.logs.String()
	if !strings.Contains(outputs["daemon log"], `"level":"DEBUG"`) {
		t.Errorf("daemon log holds no DEBUG line; the scan wants the most verbose log")
	}
	leakScan(t, keys, outputs)
}
