package schema_test

import (
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"certops/fixtures"
	"certops/schema"
)

// hygieneRepo is a repository of fixture entities for the hygiene checks.
type hygieneRepo struct {
	root   *fixtures.CA
	files  fstest.MapFS
	leaves []*fixtures.Leaf
}

func newHygieneRepo(t *testing.T) *hygieneRepo {
	t.Helper()
	return &hygieneRepo{root: fixtures.NewRootCA(t, "Hygiene Root"), files: fstest.MapFS{}}
}

func (r *hygieneRepo) add(name string, l *fixtures.Leaf) {
	r.leaves = append(r.leaves, l)
	r.files[name+".yaml"] = &fstest.MapFile{Data: []byte(fixtures.EntityYAML(fixtures.Entity{Name: name, SNIs: []string{l.Cert.DNSNames[0]}, Chains: []*fixtures.Leaf{l}}))}
}

func (r *hygieneRepo) file(name, content string) {
	r.files[name] = &fstest.MapFile{Data: []byte(content)}
}

func (r *hygieneRepo) load(t *testing.T, h *schema.Hygiene) []string {
	t.Helper()
	res, err := schema.Load(r.files, schema.Options{Hygiene: h, WarnWithin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range res.Problems {
		out = append(out, p.Error())
		for _, l := range r.leaves {
			if strings.Contains(p.Error(), strings.Split(string(l.KeyPEM), "\n")[1]) || strings.Contains(p.Error(), "BEGIN") {
				t.Errorf("problem holds PEM or key material: %s", p)
			}
		}
	}
	return out
}

func TestHygiene(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name  string
		setup func(t *testing.T, r *hygieneRepo)
		off   bool     // no Options.Hygiene
		want  []string // each problem, in order, by a piece of its text
	}{
		{"clean, root pinned", func(t *testing.T, r *hygieneRepo) {
			r.add("shop", r.root.Server(t, "shop.example.com"))
			r.file("pki/ca.roots.pem", string(r.root.CertPEM))
		}, false, nil},
		{"root not pinned", func(t *testing.T, r *hygieneRepo) {
			r.add("shop", r.root.Server(t, "shop.example.com"))
		}, false, []string{"shop.yaml:4:7: cert: warning: the leaf's issuer CN=Hygiene Root is neither in the chain nor a trusted root"}},
		{"hygiene off", func(t *testing.T, r *hygieneRepo) {
			r.add("shop", r.root.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}}, PrivateKey: fixtures.RSAKey(t, 1024)}))
		}, true, nil},
		{"RSA-1024 at the cert line", func(t *testing.T, r *hygieneRepo) {
			r.add("shop", r.root.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}}, PrivateKey: fixtures.RSAKey(t, 1024)}))
			r.file("ca.roots.pem", string(r.root.CertPEM))
		}, false, []string{"shop.yaml:4:7: cert: the leaf has an RSA-1024 key; use at least RSA-2048 or ECDSA P-256 [weak_key]"}},
		{"policy makes weak_key a warning", func(t *testing.T, r *hygieneRepo) {
			r.add("shop", r.root.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}}, PrivateKey: fixtures.RSAKey(t, 1024)}))
			r.file("ca.roots.pem", string(r.root.CertPEM))
			r.file("checks.cue", "package certops\n\n#Checks: weak_key: \"warning\"\n")
		}, false, []string{"shop.yaml:4:7: cert: warning: the leaf has an RSA-1024 key"}},
		{"policy makes untrusted_root an error", func(t *testing.T, r *hygieneRepo) {
			r.add("shop", r.root.Server(t, "shop.example.com"))
			r.file("checks.cue", "package certops\n\n#Checks: untrusted_root: \"error\"\n")
		}, false, []string{"shop.yaml:4:7: cert: the leaf's issuer CN=Hygiene Root is neither in the chain nor a trusted root"}},
		{"unknown check in policy", func(t *testing.T, r *hygieneRepo) {
			r.add("shop", r.root.Server(t, "shop.example.com"))
			r.file("ca.roots.pem", string(r.root.CertPEM))
			r.file("checks.cue", "package certops\n\n#Checks: weak_keys: \"error\"\n")
		}, false, []string{"checks.cue:3:"}},
		{"unknown severity in policy", func(t *testing.T, r *hygieneRepo) {
			r.add("shop", r.root.Server(t, "shop.example.com"))
			r.file("ca.roots.pem", string(r.root.CertPEM))
			r.file("checks.cue", "package certops\n\n#Checks: weak_key: \"fatal\"\n")
		}, false, []string{"checks.cue:3:"}},
		{"pinned roots file holds a leaf", func(t *testing.T, r *hygieneRepo) {
			l := r.root.Server(t, "shop.example.com")
			r.add("shop", l)
			r.file("bad.roots.pem", string(l.CertPEM))
		}, false, []string{"bad.roots.pem:1:1: pinned roots: certificate 1 (CN=shop.example.com) is not a CA certificate",
			"shop.yaml:4:7: cert: warning: the leaf's issuer CN=Hygiene Root"}},
		{"key reused by two entities", func(t *testing.T, r *hygieneRepo) {
			key := fixtures.RSAKey(t, 2048)
			r.add("a", r.root.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}}, PrivateKey: key}))
			r.add("b", r.root.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"b.example.com"}}, PrivateKey: key}))
			r.file("ca.roots.pem", string(r.root.CertPEM))
		}, false, []string{"a.yaml:4:7: cert: warning: the leaf's key (public key SHA-256", "is also the key of entity b: give each entity its own key [key_reuse]",
			"b.yaml:4:7: cert: warning: the leaf's key", "is also the key of entity a: give each entity its own key [key_reuse]"}},
		{"400-day private leaf", func(t *testing.T, r *hygieneRepo) {
			r.add("shop", r.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}, NotAfter: time.Now().Add(400 * day)}))
			r.file("ca.roots.pem", string(r.root.CertPEM))
		}, false, []string{"shop.yaml:4:7: cert: warning: the leaf is valid for 400 days, over the 200 days"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newHygieneRepo(t)
			tt.setup(t, r)
			h := &schema.Hygiene{PublicRoots: x509.NewCertPool()}
			if tt.off {
				h = nil
			}
			got := strings.Join(r.load(t, h), "\n")
			if tt.want == nil && got != "" {
				t.Errorf("Load() problems:\n%s\nwant none", got)
			}
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("Load() problems:\n%s\nwant, in order, %q", got, w)
					break
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestHygieneOnResolvedMaterial: the daemon's Material refuses resolved
// material that the hygiene checks find an error in, naming the entity,
// the field and its reference, never the value.
func TestHygieneOnResolvedMaterial(t *testing.T) {
	root := fixtures.NewRootCA(t, "Resolved Root")
	weak := root.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}}, PrivateKey: fixtures.RSAKey(t, 1024)})
	good := root.Server(t, "shop.example.com")
	fsys := fstest.MapFS{
		"shop.yaml":    {Data: []byte("name: shop\nsnis: [shop.example.com]\ncert: $env://SHOP_CERT\nkey: $env://SHOP_KEY\n")},
		"ca.roots.pem": {Data: root.CertPEM},
	}
	res, err := schema.Load(fsys, schema.Options{Hygiene: &schema.Hygiene{PublicRoots: x509.NewCertPool()}})
	if err != nil || res.Problems.Err() != nil || len(res.Entities) != 1 {
		t.Fatalf("Load() = %v, %v", res.Problems, err)
	}
	values := func(l *fixtures.Leaf) schema.Values {
		return func(v string) ([]byte, error) {
			switch v {
			case "$env://SHOP_CERT":
				return l.ChainPEM, nil
			case "$env://SHOP_KEY":
				return l.KeyPEM, nil
			}
			return nil, fmt.Errorf("unexpected reference")
		}
	}
	if _, err := res.Entities[0].Material(values(good)); err != nil {
		t.Errorf("Material(good) = %v", err)
	}
	_, err = res.Entities[0].Material(values(weak))
	if err == nil || !strings.Contains(err.Error(), "entity shop: cert ($env://SHOP_CERT): the leaf has an RSA-1024 key") ||
		strings.Contains(err.Error(), "BEGIN") {
		t.Errorf("Material(weak) = %v, want the weak key named at cert ($env://SHOP_CERT)", err)
	}
}
