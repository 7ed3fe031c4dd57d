package reconciler_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"certops/fixtures"
	"certops/gateway"
	"certops/reconciler"
	"certops/schema"
)

// mapResolver resolves references from a map, like $env would.
type mapResolver map[string][]byte

func (m mapResolver) Resolve(_ context.Context, ref string) ([]byte, error) {
	if v, ok := m[ref]; ok {
		return v, nil
	}
	return nil, errors.New("no such reference")
}

// TestHygieneInTheDaemon: with Options.Hygiene the daemon refuses a
// revision whose literal or resolved material has a hygiene error (here an
// RSA-1024 key), reporting it at the cert line, and applies a good one.
func TestHygieneInTheDaemon(t *testing.T) {
	root := fixtures.NewRootCA(t, "daemon hygiene root")
	good := root.Server(t, "shop.example.com")
	weak := root.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}}, PrivateKey: fixtures.RSAKey(t, 1024)})
	ref := "name: shop\nsnis: [shop.example.com]\ncert: $env://SHOP_CERT\nkey: $env://SHOP_KEY\n"
	tests := []struct {
		name    string
		files   fstest.MapFS
		secrets mapResolver
		want    string // "" for applied
	}{
		{"literal, good", fstest.MapFS{"shop.yaml": {Data: []byte(fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{good}}))}}, nil, ""},
		{"literal, weak key", fstest.MapFS{"shop.yaml": {Data: []byte(fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{weak}}))}}, nil,
			"shop.yaml:4:7: cert: the leaf has an RSA-1024 key"},
		{"resolved, good", fstest.MapFS{"shop.yaml": {Data: []byte(ref)}}, mapResolver{"$env://SHOP_CERT": good.ChainPEM, "$env://SHOP_KEY": good.KeyPEM}, ""},
		{"resolved, weak key", fstest.MapFS{"shop.yaml": {Data: []byte(ref)}}, mapResolver{"$env://SHOP_CERT": weak.ChainPEM, "$env://SHOP_KEY": weak.KeyPEM},
			"cert ($env://SHOP_CERT): the leaf has an RSA-1024 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files["ca.roots.pem"] = &fstest.MapFile{Data: root.CertPEM}
			opts := reconciler.Options{FS: tt.files, Gateway: gateway.New(gateway.Options{}),
				Hygiene: &schema.Hygiene{PublicRoots: x509.NewCertPool()}}
			if tt.secrets != nil {
				opts.Secrets = tt.secrets
			}
			att, _ := reconciler.New(opts).ReconcileNow(t.Context())
			var msgs []string
			for _, p := range att.Errors {
				msgs = append(msgs, p.String())
				if strings.Contains(p.String(), "BEGIN") {
					t.Errorf("problem holds PEM: %s", p)
				}
			}
			got := strings.Join(msgs, "\n")
			switch {
			case tt.want == "" && att.Result != reconciler.ResultApplied:
				t.Errorf("ReconcileNow() = %s\n%s\nwant applied", att.Result, got)
			case tt.want != "" && (att.Result == reconciler.ResultApplied || !strings.Contains(got, tt.want)):
				t.Errorf("ReconcileNow() = %s\n%s\nwant refused with %q", att.Result, got, tt.want)
			}
		})
	}
}
