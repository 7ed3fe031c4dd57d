package examples_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"certops/examples"
	"certops/schema"
)

const testAdmin = "127.0.0.1:9180"

// loadDemo issues the demo and loads it as the daemon does: the loader
// with the hygiene checks, under basic/.
func loadDemo(tb testing.TB, now time.Time) (*examples.Demo, *schema.Result) {
	tb.Helper()
	d, err := examples.NewDemo(testAdmin, now)
	if err != nil {
		tb.Fatalf("NewDemo(%q): %v", testAdmin, err)
	}
	res, err := schema.Load(d.FS, schema.Options{Root: "basic", Hygiene: &schema.Hygiene{}})
	if err != nil {
		tb.Fatalf("Load(demo.FS): %v", err)
	}
	return d, res
}

func demoRoots(tb testing.TB) (*x509.Certificate, *x509.CertPool) {
	tb.Helper()
	ca, _, err := examples.DemoCA()
	if err != nil {
		tb.Fatalf("DemoCA(): %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return ca, pool
}

// leaves returns every leaf of every entity of res, by entity name.
func leaves(tb testing.TB, res *schema.Result) map[string][]*x509.Certificate {
	tb.Helper()
	out := map[string][]*x509.Certificate{}
	for _, e := range res.Entities {
		m, err := e.Material(schema.Literal)
		if err != nil {
			tb.Fatalf("entity %s: %v", e.Name, err)
		}
		for _, c := range m.Chains {
			out[e.Name] = append(out[e.Name], c.Leaf)
		}
	}
	return out
}

// TestDemoServesShortLivedLeaves: the in-memory example is valid under
// the daemon's checks, and every leaf is a 90-day leaf of the demo CA that
// names the demo CRL on the admin address.
func TestDemoServesShortLivedLeaves(t *testing.T) {
	d, res := loadDemo(t, time.Now())
	if len(res.Problems) > 0 {
		t.Fatalf("the in-memory example has problems:\n%v", res.Problems)
	}
	_, roots := demoRoots(t)
	wantCRL := []string{"http://127.0.0.1:9180/examples/ca.crl"}
	n := 0
	for name, ls := range leaves(t, res) {
		for i, l := range ls {
			n++
			if got := l.NotAfter.Sub(l.NotBefore); got != examples.DemoValidity {
				t.Errorf("%s chain %d: valid for %s, want %s", name, i, got, examples.DemoValidity)
			}
			if !l.NotBefore.Equal(d.NotBefore) || !l.NotAfter.Equal(d.NotAfter) {
				t.Errorf("%s chain %d: valid %s to %s, want the demo's %s to %s", name, i, l.NotBefore, l.NotAfter, d.NotBefore, d.NotAfter)
			}
			if !slices.Equal(l.CRLDistributionPoints, wantCRL) {
				t.Errorf("%s chain %d: CRL distribution points %q, want %q", name, i, l.CRLDistributionPoints, wantCRL)
			}
			if _, err := l.Verify(x509.VerifyOptions{Roots: roots}); err != nil {
				t.Errorf("%s chain %d: does not verify with the demo CA: %v", name, i, err)
			}
		}
	}
	if n != 5 {
		t.Errorf("the in-memory example has %d leaves, want 5 (4 entities, one dual)", n)
	}
}

// shape is what the checked-in example and the in-memory one must share.
type shape struct {
	File, Name string
	SNIs       []string
	Labels     map[string]string
	Chains     []string // key algorithm and SANs of each leaf
}

func shapes(tb testing.TB, res *schema.Result) map[string]shape {
	tb.Helper()
	ls := leaves(tb, res)
	out := map[string]shape{}
	for _, e := range res.Entities {
		s := shape{File: e.Pos.File, Name: e.Name, SNIs: e.SNIs, Labels: e.Labels}
		for _, l := range ls[e.Name] {
			s.Chains = append(s.Chains, l.PublicKeyAlgorithm.String()+" "+strings.Join(l.DNSNames, ","))
		}
		out[e.Name] = s
	}
	return out
}

// TestDemoMatchesBasic: the daemon's in-memory example has the entities
// of the checked-in examples/basic (files, names, SNIs, labels, chains by
// key type and SANs) and the same other files (CA, pinned roots, policy).
func TestDemoMatchesBasic(t *testing.T) {
	d, res := loadDemo(t, time.Now())
	checkedIn, err := schema.Load(examples.Basic, schema.Options{Root: "basic"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(shapes(t, checkedIn), shapes(t, res)); diff != "" {
		t.Errorf("in-memory example differs from examples/basic (-checked in +in memory):\n%s", diff)
	}
	for _, name := range []string{"basic/ca.pem", "basic/ca.roots.pem", "basic/checks.cue"} {
		want, err := examples.Basic.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fsReadFile(d, name)
		if err != nil || string(got) != string(want) {
			t.Errorf("in-memory %s differs from the checked-in file (err %v)", name, err)
		}
	}
}

func fsReadFile(d *examples.Demo, name string) ([]byte, error) {
	f, err := d.FS.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// TestDemoRestartIssuesNewLeaves: every start issues new keys and leaves.
func TestDemoRestartIssuesNewLeaves(t *testing.T) {
	_, a := loadDemo(t, time.Now())
	_, b := loadDemo(t, time.Now())
	la, lb := leaves(t, a), leaves(t, b)
	for name := range la {
		for i := range la[name] {
			if la[name][i].SerialNumber.Cmp(lb[name][i].SerialNumber) == 0 {
				t.Errorf("%s chain %d: two starts issued serial %x twice", name, i, la[name][i].SerialNumber)
			}
			pa, _ := x509.MarshalPKIXPublicKey(la[name][i].PublicKey)
			pb, _ := x509.MarshalPKIXPublicKey(lb[name][i].PublicKey)
			if string(pa) == string(pb) {
				t.Errorf("%s chain %d: two starts used the same key", name, i)
			}
		}
	}
}

// TestDemoLongRunningWarns: a demo left running until 29 days before its
// leaves expire is reported like any repository, with the expiry warning
// of --warn-within (720h), and stays valid.
func TestDemoLongRunningWarns(t *testing.T) {
	d, err := examples.NewDemo(testAdmin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	later := d.NotAfter.Add(-29 * 24 * time.Hour)
	res, err := schema.Load(d.FS, schema.Options{Root: "basic", Hygiene: &schema.Hygiene{}, Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Problems.Err(); err != nil {
		t.Fatalf("after 61 days the demo has errors:\n%v", err)
	}
	warned := 0
	for _, p := range res.Problems {
		if strings.Contains(p.Error(), "expires") {
			warned++
		}
	}
	if warned == 0 {
		t.Errorf("after 61 days: problems %v, want an expiry warning", res.Problems)
	}
}

// TestDemoCRL: the demo CRL is served as DER with its media type, is
// signed by the demo CA, lists nothing and is valid as long as the leaves;
// openssl verifies a served leaf against it.
func TestDemoCRL(t *testing.T) {
	d, res := loadDemo(t, time.Now())
	mux := http.NewServeMux()
	for pattern, h := range d.Routes() {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + examples.CRLPath)
	if err != nil {
		t.Fatal(err)
	}
	der, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET %s = %d %q, want 200 application/pkix-crl", examples.CRLPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("ParseRevocationList: %v", err)
	}
	ca, _ := demoRoots(t)
	if err := crl.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CRL.CheckSignatureFrom(demo CA) = %v, want nil", err)
	}
	if len(crl.RevokedCertificateEntries) != 0 || !crl.NextUpdate.Equal(d.NotAfter) || crl.Number == nil || crl.Number.Sign() <= 0 {
		t.Errorf("CRL: %d entries, next update %s, number %v; want 0, %s, a positive number",
			len(crl.RevokedCertificateEntries), crl.NextUpdate, crl.Number, d.NotAfter)
	}

	dir := t.TempDir()
	writePEM(t, filepath.Join(dir, "crl.pem"), "X509 CRL", der)
	writePEM(t, filepath.Join(dir, "leaf.pem"), "CERTIFICATE", leaves(t, res)["shop-example-com"][0].Raw)
	out, err := exec.Command("openssl", "verify", "-crl_check", "-CRLfile", filepath.Join(dir, "crl.pem"),
		"-CAfile", filepath.Join("basic", "ca.pem"), filepath.Join(dir, "leaf.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Errorf("openssl verify -crl_check: %v\n%s", err, out)
	}
}

func writePEM(tb testing.TB, name, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestDemoCANameConstraints: the demo CA's key is published, so what it
// can sign must not verify for any name but the example ones, nor as an
// intermediate. Checked with crypto/x509 and with openssl.
func TestDemoCANameConstraints(t *testing.T) {
	ca, key, err := examples.DemoCA()
	if err != nil {
		t.Fatal(err)
	}
	_, roots := demoRoots(t)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(tmpl, parent *x509.Certificate) *x509.Certificate {
		t.Helper()
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		signer := key
		if parent != ca {
			signer = leafKey
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, leafKey.Public(), signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	intermediate := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "rogue intermediate"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, ca)

	tests := []struct {
		name    string
		dns     []string
		ips     []net.IP
		via     *x509.Certificate // issuer: the demo CA unless set
		wantErr bool
	}{
		{"example name", []string{"shop.example.com"}, nil, nil, false},
		{"example wildcard", []string{"*.example.com"}, nil, nil, false},
		{"deeper example name", []string{"a.b.example.net"}, nil, nil, false},
		{"default name", []string{"default.certops.invalid"}, nil, nil, false},
		{"another domain", []string{"www.google.com"}, nil, nil, true},
		{"example.org", []string{"shop.example.org"}, nil, nil, true},
		{"example name as a prefix", []string{"example.com.evil.test"}, nil, nil, true},
		{"example name as a suffix of a label", []string{"evilexample.com"}, nil, nil, true},
		{"one bad name among good ones", []string{"shop.example.com", "bank.test"}, nil, nil, true},
		{"IP address", []string{"shop.example.com"}, []net.IP{net.ParseIP("127.0.0.1")}, nil, true},
		{"IPv6 address", []string{"shop.example.com"}, []net.IP{net.ParseIP("::1")}, nil, true},
		{"example name through an intermediate", []string{"shop.example.com"}, nil, intermediate, true},
	}
	dir := t.TempDir()
	caFile := filepath.Join("basic", "ca.pem")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := ca
			if tt.via != nil {
				parent = tt.via
			}
			leaf := sign(&x509.Certificate{Subject: pkix.Name{CommonName: tt.dns[0]}, DNSNames: tt.dns, IPAddresses: tt.ips}, parent)
			inter := x509.NewCertPool()
			if tt.via != nil {
				inter.AddCert(tt.via)
			}
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			var invalid x509.CertificateInvalidError
			switch {
			case tt.wantErr && !errors.As(err, &invalid):
				t.Errorf("Verify(leaf for %v %v) = %v, want a CertificateInvalidError", tt.dns, tt.ips, err)
			case !tt.wantErr && err != nil:
				t.Errorf("Verify(leaf for %v %v) = %v, want nil", tt.dns, tt.ips, err)
			}

			args := []string{"verify", "-CAfile", caFile}
			if tt.via != nil {
				f := filepath.Join(dir, "inter.pem")
				writePEM(t, f, "CERTIFICATE", tt.via.Raw)
				args = append(args, "-untrusted", f)
			}
			f := filepath.Join(dir, "leaf"+string(rune('a'+i))+".pem")
			writePEM(t, f, "CERTIFICATE", leaf.Raw)
			out, err := exec.Command("openssl", append(args, f)...).CombinedOutput()
			if ok := err == nil && strings.Contains(string(out), ": OK"); ok == tt.wantErr {
				t.Errorf("openssl verify (leaf for %v %v): %v\n%s", tt.dns, tt.ips, err, out)
			}
		})
	}
}

// TestCRLURL: the URL of the demo CRL for each form of --admin.
func TestCRLURL(t *testing.T) {
	tests := []struct{ admin, want string }{
		{"127.0.0.1:9180", "http://127.0.0.1:9180/examples/ca.crl"},
		{"localhost:9180", "http://localhost:9180/examples/ca.crl"},
		{":9180", "http://127.0.0.1:9180/examples/ca.crl"},
		{"0.0.0.0:9180", "http://127.0.0.1:9180/examples/ca.crl"},
		{"[::]:9180", "http://127.0.0.1:9180/examples/ca.crl"},
		{"[::1]:9180", "http://[::1]:9180/examples/ca.crl"},
		{"127.0.0.1:0", ""},
		{"127.0.0.1", ""},
	}
	for _, tt := range tests {
		if got := examples.CRLURL(tt.admin); got != tt.want {
			t.Errorf("CRLURL(%q) = %q, want %q", tt.admin, got, tt.want)
		}
	}
}
