package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"certops/fixtures"
	"certops/fleet"
)

// startNATS starts an embedded nats-server with JetStream on loopback and
// returns its URL.
func startNATS(tb testing.TB) string {
	tb.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("embedded nats-server did not start")
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// TestInventoryFleet publishes two revisions to a fleet on an embedded
// nats-server and inventories its head: every certificate in every
// format and as a forecast, the publisher revision that last changed each
// entity, trust under --roots, the signature checked with --trusted-key,
// the nodes that serve it, and never a key (neither the leaves' nor the
// signing or data key).
func TestInventoryFleet(t *testing.T) {
	url := startNATS(t)
	root := fixtures.NewRootCA(t, "fleet inventory CA")
	other := fixtures.NewRootCA(t, "unpinned CA")
	shop1 := root.Server(t, "shop.example.com")
	shop2 := root.Server(t, "shop.example.com")
	api := root.Server(t, "api.example.com")
	ext := other.Server(t, "ext.example.com")
	entity := func(file string, l *fixtures.Leaf, key string, labels map[string]string) fleet.Entity {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		if key == "" {
			key = string(l.KeyPEM)
		}
		return fleet.Entity{File: file, Doc: fleet.Document{Name: name, SNIs: l.Cert.DNSNames, Cert: string(l.ChainPEM), Key: key, Labels: labels}}
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signing := fleet.NewSigningKey(priv)
	rawDK := make([]byte, 32)
	rand.Read(rawDK)
	dk, err := fleet.NewDataKey(rawDK)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(priv.Public())
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	otherDER, _ := x509.MarshalPKIXPublicKey(otherPriv.Public())
	dir := fixtures.WriteFiles(t, map[string]string{
		"trusted.pem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})),
		"other.pem":   string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: otherDER})),
		"roots.pem":   string(root.CertPEM),
	})
	keys := [][]byte{shop1.KeyPEM, shop2.KeyPEM, api.KeyPEM, ext.KeyPEM, fixtures.KeyPEM(t, priv)}

	conn, err := fleet.Connect(fleet.ConnOptions{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f, err := fleet.Open(conn, "prod", fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	p, err := f.NewPublisher(fleet.PublisherOptions{Signing: signing, DataKey: dk})
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := strings.Repeat("1a", 20), strings.Repeat("2b", 20)
	team := map[string]string{"team": "storefront"}
	if _, err := p.Publish(t.Context(), c1, []fleet.Entity{entity("certs/shop.yaml", shop1, "", team),
		entity("certs/api.yaml", api, "$env://API_KEY", nil), entity("ext.yaml", ext, "", nil)}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(t.Context(), c2, []fleet.Entity{entity("certs/shop.yaml", shop2, "", team),
		entity("certs/api.yaml", api, "$env://API_KEY", nil), entity("ext.yaml", ext, "", nil)}); err != nil {
		t.Fatal(err)
	}
	for _, rec := range []fleet.Record{
		{Node: "edge-1", Revision: c2, Sequence: 2, Time: time.Now(), Result: "applied", Verified: true},
		{Node: "edge-2", Revision: c1, Sequence: 1, Time: time.Now(), Result: "applied", Verified: true},
	} {
		if err := f.WriteRecord(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}

	// run runs inventory --fleet and also checks that neither the data
	// key nor its base64 is in the output.
	run := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		code, out, stderr := runCLI(t, keys, append([]string{"inventory", "--fleet", "prod"}, args...)...)
		for _, s := range []string{out, stderr} {
			if strings.Contains(s, base64.StdEncoding.EncodeToString(rawDK)) {
				t.Errorf("inventory %v prints the data key", args)
			}
		}
		return code, out, stderr
	}
	base := []string{"--nats", url, "--trusted-key", filepath.Join(dir, "trusted.pem"), "--roots", filepath.Join(dir, "roots.pem")}

	code, out, stderr := run(t, append(base, "--format", "json")...)
	if code != 0 {
		t.Fatalf("inventory --fleet --format json: exit %d\n%s", code, stderr)
	}
	var doc struct {
		Source string
		Fleet  struct {
			Name, Revision string
			Sequence       uint64
			Verified       bool
			Serving        []string
			Live           int
		}
		Certificates []struct {
			Entity, File, Issuer, Serial, Trust, Owner, Commit string
			KeyBits                                            int `json:"key_bits"`
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if fl := doc.Fleet; doc.Source != "fleet prod" || fl.Name != "prod" || fl.Revision != c2 || fl.Sequence != 2 || !fl.Verified ||
		!slices.Equal(fl.Serving, []string{"edge-1"}) || fl.Live != 2 {
		t.Errorf("inventory --fleet: source %q, fleet %+v; want fleet prod at %s/2, verified, served by edge-1 of 2", doc.Source, fl, c2)
	}
	want := map[string]struct{ file, serial, trust, owner, commit string }{
		// The same since the fleet's first manifest: its commit is not told.
		"api":  {"certs/api.yaml", api.Cert.SerialNumber.Text(16), "private", "", ""},
		"ext":  {"ext.yaml", ext.Cert.SerialNumber.Text(16), "untrusted", "", ""},
		"shop": {"certs/shop.yaml", shop2.Cert.SerialNumber.Text(16), "private", "storefront", c2},
	}
	for _, c := range doc.Certificates {
		w, ok := want[c.Entity]
		if !ok || c.File != w.file || c.Serial != w.serial || c.Trust != w.trust || c.Owner != w.owner || c.Commit != w.commit || c.KeyBits != 256 {
			t.Errorf("inventory --fleet %s = %+v; want %+v", c.Entity, c, w)
		}
		delete(want, c.Entity)
	}
	if len(want) > 0 {
		t.Errorf("inventory --fleet lacks %v:\n%s", want, out)
	}

	for _, format := range []string{"text", "csv", "markdown"} {
		code, out, stderr := run(t, append(base, "--format", format)...)
		if code != 0 || !strings.Contains(out, "shop.example.com") || !strings.Contains(out, "storefront") || !strings.Contains(out, "CN=fleet inventory CA") {
			t.Errorf("inventory --fleet --format %s: exit %d\n%s%s", format, code, out, stderr)
		}
		if format == "text" && (!strings.Contains(out, "served and verified by 1 of 2 live nodes: edge-1") || !strings.Contains(out, "verified")) {
			t.Errorf("inventory --fleet text lacks the serving nodes:\n%s", out)
		}
		if format == "csv" && !strings.Contains(out, c2) {
			t.Errorf("inventory --fleet csv lacks the full commit %s:\n%s", c2, out)
		}
		code, out, stderr = run(t, append(base, "--forecast", "52w", "--format", format)...)
		if code != 0 || !strings.Contains(out, "storefront") {
			t.Errorf("inventory --fleet --forecast 52w --format %s: exit %d\n%s%s", format, code, out, stderr)
		}
	}

	t.Run("NATS_URL", func(t *testing.T) {
		t.Setenv("NATS_URL", url)
		if code, out, stderr := run(t, "--format", "csv"); code != 0 || !strings.Contains(out, "shop.example.com") ||
			!strings.Contains(stderr, "signature was not checked") {
			t.Errorf("inventory --fleet with NATS_URL and no --trusted-key: exit %d, want 0 and a note\n%s%s", code, out, stderr)
		}
		// --nats wins over NATS_URL.
		t.Setenv("NATS_URL", "nats://127.0.0.1:1")
		if code, _, stderr := run(t, "--nats", url, "--format", "csv"); code != 0 {
			t.Errorf("inventory --fleet --nats over a dead NATS_URL: exit %d\n%s", code, stderr)
		}
	})
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"untrusted signer", []string{"--nats", url, "--trusted-key", filepath.Join(dir, "other.pem")}, "not trusted"},
		{"no such trusted key", []string{"--nats", url, "--trusted-key", filepath.Join(dir, "missing.pem")}, "--trusted-key"},
		{"nothing published", []string{"--nats", url, "--fleet", "staging"}, "nothing published"},
		{"no server", []string{"--nats", "nats://127.0.0.1:1", "--timeout", "1s"}, "connect to nats://127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused"},
		{"with --live", []string{"--nats", url, "--live", "127.0.0.1:9"}, "one of DIR, --live and --fleet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("inventory --fleet %v: exit %d, stderr %q; want 1 and %q", tt.args, code, stderr, tt.want)
			}
		})
	}
	if code, _, stderr := runCLI(t, keys, "inventory", "--trusted-key", filepath.Join(dir, "trusted.pem")); code != 1 || !strings.Contains(stderr, "go with --fleet") {
		t.Errorf("inventory --trusted-key without --fleet: exit %d, stderr %q", code, stderr)
	}
}
