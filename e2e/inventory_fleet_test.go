package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"certops/fixtures"
)

// TestInventoryFleetBinary inventories a fleet through the binary, on
// Debian's nats-server: `certops publish` follows a repository of two
// commits, a node serves it, and `certops inventory --fleet` lists the head
// with the commit that last changed each entity and the node that serves
// it; `inventory --live` on the node shows the issuer and the node's trust
// verdict. No output holds a key.
func TestInventoryFleetBinary(t *testing.T) {
	dir := t.TempDir()
	fleetKeys(t, dir)
	ns := startNATS(t, dir, "nats", freePort(t), nil, 0)
	ca := fixtures.NewRootCA(t, "inventory fleet CA")
	shop, api := ca.Server(t, "shop.example.com"), ca.Server(t, "api.example.com")
	yaml := func(name string, l *fixtures.Leaf) string {
		return fixtures.EntityYAML(fixtures.Entity{Name: name, SNIs: l.Cert.DNSNames, Chains: []*fixtures.Leaf{l}, Labels: map[string]string{"team": name + "-team"}})
	}
	repo := fixtures.NewGitRepo(t)
	repo.Commit(t, "shop and api", map[string]string{"shop.yaml": yaml("shop", shop), "api.yaml": yaml("api", api),
		"ca.roots.pem": string(ca.CertPEM)})
	shop2 := ca.Server(t, "shop.example.com")
	second := repo.Commit(t, "rotate shop", map[string]string{"shop.yaml": yaml("shop", shop2)})
	scan := fixtures.LeafScanner(shop, shop2, api)
	// *.roots.pem files do not travel on the bus: the node and the fleet
	// inventory are given the root with --roots.
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	pubAdmin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pub := startCertops(t, pubAdmin, "publish", "--source", repo.FileURL(), "--nats", ns.url(), "--fleet", "demo",
		"--signing-key", filepath.Join(dir, "signing.pem"), "--data-key-file", filepath.Join(dir, "data.key"),
		"--admin", pubAdmin, "--data-dir", filepath.Join(dir, "publisher"), "--interval", "1s")
	node := runDaemon(t, daemonConfig{args: []string{"--source", ns.url() + "/demo",
		"--trusted-key", filepath.Join(dir, "trusted.pem"), "--data-key-file", filepath.Join(dir, "data.key"),
		"--node", "edge-1", "--data-dir", filepath.Join(dir, "edge-1"), "--roots", filepath.Join(dir, "ca.pem")}})
	if w := certops(t, dir, nil, "fleet", "wait", "--nats", ns.url(), "--fleet", "demo", "--revision", second[:8], "--timeout", "60s"); w.code != 0 {
		t.Fatalf("fleet wait = exit %d: %s%s", w.code, w.stdout, w.stderr)
	}
	shop3 := ca.Server(t, "shop.example.com")
	scan = fixtures.LeafScanner(shop, shop2, shop3, api)
	third := repo.Commit(t, "rotate shop again", map[string]string{"shop.yaml": yaml("shop", shop3)})
	if w := certops(t, dir, nil, "fleet", "wait", "--nats", ns.url(), "--fleet", "demo", "--revision", third[:8], "--timeout", "60s"); w.code != 0 {
		t.Fatalf("fleet wait = exit %d: %s%s", w.code, w.stdout, w.stderr)
	}

	inv := certops(t, dir, nil, "inventory", "--fleet", "demo", "--nats", ns.url(), "--trusted-key", filepath.Join(dir, "trusted.pem"),
		"--roots", filepath.Join(dir, "ca.pem"), "--format", "json")
	var doc struct {
		Fleet struct {
			Revision string
			Verified bool
			Serving  []string
		}
		Certificates []struct{ Entity, Commit, Owner, Serial string }
	}
	if inv.code != 0 || json.Unmarshal([]byte(inv.stdout), &doc) != nil {
		t.Fatalf("inventory --fleet = exit %d %s%s", inv.code, inv.stdout, inv.stderr)
	}
	if doc.Fleet.Revision != third || !doc.Fleet.Verified || len(doc.Fleet.Serving) != 1 || doc.Fleet.Serving[0] != "edge-1" {
		t.Errorf("inventory --fleet: fleet %+v, want revision %s, verified, served by edge-1", doc.Fleet, third)
	}
	// The publisher's first manifest carried both at the second commit; the
	// third changes shop again. api has been the same since the first
	// manifest, which cannot say which commit changed it: no commit.
	want := map[string][2]string{"api": {"", api.Cert.SerialNumber.Text(16)}, "shop": {third, shop3.Cert.SerialNumber.Text(16)}}
	for _, c := range doc.Certificates {
		if w := want[c.Entity]; c.Commit != w[0] || c.Serial != w[1] || c.Owner != c.Entity+"-team" {
			t.Errorf("inventory --fleet %s: commit %s serial %s owner %s; want %s, %s, %s-team", c.Entity, c.Commit, c.Serial, c.Owner, w[0], w[1], c.Entity)
		}
	}
	if len(doc.Certificates) != 2 {
		t.Errorf("inventory --fleet listed %d certificates, want 2:\n%s", len(doc.Certificates), inv.stdout)
	}
	text := certops(t, dir, nil, "inventory", "--fleet", "demo", "--nats", ns.url(), "--trusted-key", filepath.Join(dir, "trusted.pem"))
	if text.code != 0 || !strings.Contains(text.stdout, "served and verified by 1 of 1 live nodes: edge-1") {
		t.Errorf("inventory --fleet (text) = exit %d %s%s", text.code, text.stdout, text.stderr)
	}
	live := certops(t, dir, nil, "inventory", "--live", node.admin, "--format", "csv")
	if live.code != 0 || !strings.Contains(live.stdout, "CN=inventory fleet CA") || !strings.Contains(live.stdout, ",private,") {
		t.Errorf("inventory --live on the node = exit %d, want the issuer and trust private (the repository pins the CA)\n%s%s", live.code, live.stdout, live.stderr)
	}
	for name, out := range map[string]string{"inventory --fleet": inv.stdout + inv.stderr + text.stdout + text.stderr,
		"inventory --live": live.stdout + live.stderr, "publisher and node logs": pub.logs.String() + node.logs.String()} {
		scan.Check(t, name, out)
	}
}
