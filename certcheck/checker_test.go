package certcheck

import (
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// pki is the test PKI: root -> inter -> leaves, and an unrelated CA.
type pki struct {
	root, inter, other *fixtures.CA
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	root := fixtures.NewRootCA(t, "Test Root")
	return &pki{root: root, inter: root.Intermediate(t, "Test Intermediate"), other: fixtures.NewRootCA(t, "Other Root")}
}

// want is a finding expected by check and a piece of its message.
type want struct {
	check    Check
	severity Severity
	contains string
}

// withoutLints drops zlint's findings, which the zlint test checks.
func withoutLints(fs []Finding) []Finding {
	return slices.DeleteFunc(slices.Clone(fs), func(f Finding) bool {
		return f.Check == LintError || f.Check == LintWarning || f.Check == LintPrivateWarning
	})
}

// noKeyMaterial fails when a finding carries PEM text or key bytes.
func noKeyMaterial(t testing.TB, fs []Finding, leaves ...*fixtures.Leaf) {
	t.Helper()
	for _, f := range fs {
		s := f.String()
		if strings.Contains(s, "-----BEGIN") || strings.Contains(s, "PRIVATE KEY") {
			t.Errorf("finding holds PEM: %s", s)
		}
		for _, l := range leaves {
			if body := string(l.KeyPEM[30:90]); strings.Contains(s, body) {
				t.Errorf("finding holds key material: %s", s)
			}
		}
	}
}

func certs(cs ...*x509.Certificate) []*x509.Certificate { return cs }

func TestEntity(t *testing.T) {
	p := newPKI(t)
	i2 := p.inter.Intermediate(t, "Second Intermediate")
	leaf := p.inter.Server(t, "shop.example.com")
	aiaLeaf := p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}},
		IssuingCertificateURL: []string{"http://ca.example.com/inter.crt"}})
	rootLeaf := p.root.Server(t, "shop.example.com")
	deepLeaf := i2.Server(t, "deep.example.com")
	sha1Inter := p.root.IntermediateSignedWith(t, "SHA-1 Intermediate", x509.ECDSAWithSHA1)
	constrained := fixtures.NewConstrainedRootCA(t, "Constrained Root", "example.org")
	private := []*x509.Certificate{p.root.Cert}
	tests := []struct {
		name    string
		client  bool
		certs   []*x509.Certificate
		private []*x509.Certificate
		policy  Policy
		want    []want
	}{
		{name: "good chain, private root pinned", certs: certs(leaf.Cert, p.inter.Cert), private: private},
		{name: "good chain with root included", certs: certs(leaf.Cert, p.inter.Cert, p.root.Cert), private: private},
		{name: "private root not pinned", certs: certs(leaf.Cert, p.inter.Cert),
			want: []want{{UntrustedRoot, SeverityWarning, "issued by CN=Test Root, which is not a trusted root"}}},
		{name: "untrusted root in the chain", certs: certs(leaf.Cert, p.inter.Cert, p.root.Cert),
			want: []want{{UntrustedRoot, SeverityWarning, "ends at the root CN=Test Root"}}},
		{name: "untrusted root made an error by policy", certs: certs(leaf.Cert, p.inter.Cert), policy: Policy{UntrustedRoot: SeverityError},
			want: []want{{UntrustedRoot, SeverityError, "not a trusted root"}}},
		{name: "missing intermediate", certs: certs(aiaLeaf.Cert), private: private,
			want: []want{{MissingIntermediate, SeverityError, "the leaf's issuer CN=Test Intermediate is neither in the chain nor a trusted root; append its certificate (from http://ca.example.com/inter.crt)"}}},
		{name: "issuer of a leaf without AIA unknown", certs: certs(leaf.Cert), private: private,
			want: []want{{UntrustedRoot, SeverityWarning, "the leaf's issuer CN=Test Intermediate is neither in the chain nor a trusted root: append it after the leaf if it is an intermediate"}}},
		{name: "leaf of a pinned root alone", certs: certs(rootLeaf.Cert), private: private},
		{name: "wrong order", certs: certs(deepLeaf.Cert, p.inter.Cert, i2.Cert), private: private,
			want: []want{{ChainOrder, SeverityError, "certificate 3 (CN=Second Intermediate) issued certificate 1"}}},
		{name: "unrelated extra certificate", certs: certs(leaf.Cert, p.inter.Cert, p.other.Cert), private: private,
			want: []want{{ChainUnrelated, SeverityError, "certificate 3 (CN=Other Root, issued by CN=Other Root) is not on the path"}}},
		{name: "duplicate certificate", certs: certs(leaf.Cert, p.inter.Cert, p.inter.Cert), private: private,
			want: []want{{ChainDuplicate, SeverityError, "certificate 3 (CN=Test Intermediate) repeats"}}},
		{name: "RSA-1024 leaf", certs: certs(p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}},
			PrivateKey: fixtures.RSAKey(t, 1024)}).Cert, p.inter.Cert), private: private,
			want: []want{{WeakKey, SeverityError, "the leaf has an RSA-1024 key"}}},
		{name: "RSA-1024 made a warning by policy", policy: Policy{WeakKey: SeverityWarning},
			certs: certs(p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}},
				PrivateKey: fixtures.RSAKey(t, 1024)}).Cert, p.inter.Cert), private: private,
			want: []want{{WeakKey, SeverityWarning, "RSA-1024"}}},
		{name: "RSA-1024 turned off by policy", policy: Policy{WeakKey: SeverityOff},
			certs: certs(p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}},
				PrivateKey: fixtures.RSAKey(t, 1024)}).Cert, p.inter.Cert), private: private},
		{name: "SHA-1 leaf", certs: certs(p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}},
			SignatureAlgorithm: x509.ECDSAWithSHA1}).Cert, p.inter.Cert), private: private,
			want: []want{{WeakSignature, SeverityError, "the leaf is signed with ECDSA-SHA1"}}},
		{name: "SHA-1 intermediate", certs: certs(sha1Inter.Server(t, "a.example.com").Cert, sha1Inter.Cert), private: private,
			want: []want{{WeakSignature, SeverityError, "certificate 2 (CN=SHA-1 Intermediate) is signed with ECDSA-SHA1"}}},
		{name: "P-224 leaf", certs: certs(p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}},
			PrivateKey: fixtures.ECDSAKey(t, elliptic.P224())}).Cert, p.inter.Cert), private: private,
			want: []want{{WeakCurve, SeverityError, "the leaf has an ECDSA key on P-224"}}},
		{name: "server leaf without EKU", certs: certs(p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}},
			NoEKU: true}).Cert, p.inter.Cert), private: private,
			want: []want{{MissingEKU, SeverityError, "no extended key usage; a server entity needs serverAuth"}}},
		{name: "server leaf with clientAuth only", certs: certs(p.inter.Client(t, "svc").Cert, p.inter.Cert), private: private,
			want: []want{{MissingEKU, SeverityError, "lacks serverAuth"}}},
		{name: "client entity with a server leaf", client: true, certs: certs(leaf.Cert, p.inter.Cert), private: private,
			want: []want{{MissingEKU, SeverityError, "lacks clientAuth, which a client entity needs"}}},
		{name: "client entity with a client leaf", client: true, certs: certs(p.inter.Client(t, "svc").Cert, p.inter.Cert), private: private},
		{name: "name constraints", certs: certs(constrained.Server(t, "shop.example.com").Cert), private: []*x509.Certificate{constrained.Cert},
			want: []want{{ChainInvalid, SeverityError, "not authorized to sign for this name"}}},
		{name: "name constraints respected", certs: certs(constrained.Server(t, "shop.example.org").Cert), private: []*x509.Certificate{constrained.Cert}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{Public: x509.NewCertPool(), Private: tt.private, Policy: tt.policy})
			e := Entity{Name: "shop", Client: tt.client, Chains: []Chain{{Field: "cert", Certs: tt.certs}}}
			all := c.Entity(e)
			noKeyMaterial(t, all)
			// Without the public roots' subjects, verify always makes the
			// public attempt first, as it did before publicCandidate: the
			// findings must not depend on the order.
			publicFirst := New(Options{Public: x509.NewCertPool(), Private: tt.private, Policy: tt.policy})
			publicFirst.publicSubjects = nil
			if slow := publicFirst.Entity(e); !slices.Equal(all, slow) {
				t.Errorf("Entity() = %v, but %v with the public attempt first", all, slow)
			}
			got := withoutLints(all)
			if len(got) != len(tt.want) {
				t.Fatalf("Entity() = %v, want %d findings %v", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				f := got[i]
				if f.Check != w.check || f.Severity != w.severity || !strings.Contains(f.Message, w.contains) || f.Entity != "shop" || f.Field != "cert" {
					t.Errorf("Entity() finding %d = %v, want %s %s containing %q", i, f, w.check, w.severity, w.contains)
				}
			}
		})
	}
}

func TestLifetime(t *testing.T) {
	root := fixtures.NewRootCAValidity(t, "Long Root", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC))
	p := &pki{root: root, inter: root.Intermediate(t, "Long Intermediate")}
	tests := []struct {
		name      string
		notBefore time.Time
		days      int
		public    bool
		want      Check
	}{
		{"398 days in 2025, public", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), 398, true, ""},
		{"400 days in 2025, public", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), 400, true, LifetimePublic},
		{"400 days in 2025, private", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), 400, false, LifetimePrivate},
		{"200 days after 2026-03-15, public", time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 200, true, ""},
		{"201 days after 2026-03-15, public", time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 201, true, LifetimePublic},
		{"100 days in 2027, public", time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC), 100, true, ""},
		{"101 days in 2027, public", time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC), 101, true, LifetimePublic},
		{"48 days in 2029, private", time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC), 48, false, LifetimePrivate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// notAfter is notBefore + days - 1s: the Baseline Requirements count
			// both ends, so this is exactly tt.days long.
			l := p.inter.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"a.example.com"}, NotBefore: tt.notBefore,
				NotAfter: tt.notBefore.Add(time.Duration(tt.days)*24*time.Hour - time.Second)})
			opts := Options{Public: x509.NewCertPool(), Private: []*x509.Certificate{p.root.Cert}, Now: func() time.Time { return tt.notBefore.Add(time.Hour) }}
			if tt.public {
				opts = Options{Public: fixtures.Pool(p.root), Now: opts.Now}
			}
			var got []Check
			for _, f := range withoutLints(New(opts).Entity(Entity{Name: "e", Chains: []Chain{{Field: "cert", Certs: certs(l.Cert, p.inter.Cert)}}})) {
				got = append(got, f.Check)
				if tt.public && f.Severity != SeverityError || !tt.public && f.Severity != SeverityWarning {
					t.Errorf("finding %v: severity %s, want error for public and warning for private", f, f.Severity)
				}
			}
			var want []Check
			if tt.want != "" {
				want = []Check{tt.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("lifetime findings = %v, want %v", got, want)
			}
		})
	}
}

func TestMaxLifetimeDays(t *testing.T) {
	tests := []struct {
		at   string
		want int
	}{
		{"2020-08-31", 0}, {"2020-09-01", 398}, {"2026-03-14", 398}, {"2026-03-15", 200}, {"2027-03-14", 200},
		{"2027-03-15", 100}, {"2029-03-14", 100}, {"2029-03-15", 47}, {"2035-01-01", 47},
	}
	for _, tt := range tests {
		at, _ := time.Parse(time.DateOnly, tt.at)
		if got := MaxLifetimeDays(at); got != tt.want {
			t.Errorf("MaxLifetimeDays(%q) = %d, want %d", tt.at, got, tt.want)
		}
	}
}

func TestLints(t *testing.T) {
	p := newPKI(t)
	leaf := p.inter.Server(t, "shop.example.com")
	chain := []Chain{{Field: "cert", Certs: certs(leaf.Cert, p.inter.Cert)}}
	// A publicly trusted leaf without certificate policies or AIA breaks
	// the Baseline Requirements; zlint says so, with the lint's name.
	public := New(Options{Public: fixtures.Pool(p.root)}).Entity(Entity{Name: "shop", Chains: chain})
	noKeyMaterial(t, public, leaf)
	var names []string
	for _, f := range public {
		if f.Check == LintError && f.Severity == SeverityError {
			names = append(names, strings.Fields(f.Message)[1])
		}
	}
	for _, want := range []string{"e_sub_cert_aia_missing:", "e_sub_cert_certificate_policies_missing:"} {
		if !slices.Contains(names, want) {
			t.Errorf("zlint errors on a public leaf = %v, want %s among them", names, want)
		}
	}
	// A private leaf is held to the RFC lints only.
	private := New(Options{Public: x509.NewCertPool(), Private: []*x509.Certificate{p.root.Cert}}).Entity(Entity{Name: "shop", Chains: chain})
	for _, f := range private {
		if strings.Contains(f.Message, "e_sub_cert_") {
			t.Errorf("private leaf got a Baseline Requirements lint: %v", f)
		}
	}
	// Its RFC warnings (a leaf without a subject key identifier, as Go
	// makes them) are off by default, and policy turns them on.
	for _, f := range private {
		if f.Check == LintPrivateWarning {
			t.Errorf("zlint_private_warning is off by default, got %v", f)
		}
	}
	on := New(Options{Public: x509.NewCertPool(), Private: []*x509.Certificate{p.root.Cert}, Policy: Policy{LintPrivateWarning: SeverityWarning}}).Entity(Entity{Name: "shop", Chains: chain})
	if len(on) != 1 || on[0].Check != LintPrivateWarning || !strings.Contains(on[0].Message, "w_ext_subject_key_identifier_missing_sub_cert") {
		t.Errorf("zlint_private_warning on = %v, want the missing subject key identifier", on)
	}
	// Policy can silence zlint's errors.
	off := New(Options{Public: fixtures.Pool(p.root), Policy: Policy{LintError: SeverityOff}}).Entity(Entity{Name: "shop", Chains: chain})
	for _, f := range off {
		if f.Check == LintError {
			t.Errorf("zlint_error off, got %v", f)
		}
	}
}

// TestPublicCandidate: a path can end at a public root only when a root's
// subject is the issuer of a certificate on it, or the leaf is a root.
func TestPublicCandidate(t *testing.T) {
	p := newPKI(t)
	leaf := p.inter.Server(t, "shop.example.com")
	tests := []struct {
		name   string
		public *x509.CertPool
		path   []*x509.Certificate
		want   bool
	}{
		{"no public roots", x509.NewCertPool(), certs(leaf.Cert, p.inter.Cert), false},
		{"other roots only", fixtures.Pool(p.other), certs(leaf.Cert, p.inter.Cert), false},
		{"the root is public", fixtures.Pool(p.root), certs(leaf.Cert, p.inter.Cert), true},
		{"the intermediate is public", fixtures.Pool(p.inter), certs(leaf.Cert), true},
		{"the leaf is a public root", fixtures.Pool(p.root), certs(p.root.Cert), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{Public: tt.public})
			if got := c.publicCandidate(tt.path); got != tt.want {
				t.Errorf("publicCandidate() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLintCache: a cached result is the result zlint gives, per lint set;
// a public leaf's results hold for the UTC day they were made on, a
// private leaf's (the RFC lints read no clock) for as long as the cache
// keeps them.
func TestLintCache(t *testing.T) {
	p := newPKI(t)
	leaf := p.inter.Server(t, "shop.example.com")
	for _, public := range []bool{false, true} {
		want, err := lintLeaf(leaf.Cert, public)
		if err != nil || len(want) == 0 {
			t.Fatalf("lintLeaf(public %v) = %v, %v; want results", public, want, err)
		}
		for i := range 2 { // a miss, then a hit
			got, err := runLints(leaf.Cert, public)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("runLints(public %v) call %d = %v, %v; want %v", public, i+1, got, err, want)
			}
		}
	}
	c := &lintCache{}
	k := lintKey{public: true}
	day := time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC)
	c.put(k, []lintResult{{name: "e_x"}}, day)
	if _, ok := c.get(k, day.Add(30*time.Second)); !ok {
		t.Errorf("get() the same day missed")
	}
	if _, ok := c.get(k, day.Add(2*time.Minute)); ok {
		t.Errorf("get() on the next day hit")
	}
	if _, ok := c.get(lintKey{}, day); ok {
		t.Errorf("get() of the other lint set hit")
	}
	c.put(lintKey{}, nil, day)
	if _, ok := c.get(lintKey{}, day.Add(48*time.Hour)); !ok {
		t.Errorf("get() of a private leaf two days later missed")
	}
}

func TestKeyReuse(t *testing.T) {
	p := newPKI(t)
	key := fixtures.RSAKey(t, 2048)
	a := p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}}, PrivateKey: key})
	b := p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"b.example.com"}}, PrivateKey: key})
	other := p.inter.Server(t, "c.example.com")
	c := New(Options{Public: x509.NewCertPool()})
	es := []Entity{
		{Name: "b", Chains: []Chain{{Field: "cert", Certs: certs(b.Cert)}}},
		{Name: "a", Chains: []Chain{{Field: "certs[0]", Certs: certs(a.Cert)}}},
		{Name: "c", Chains: []Chain{{Field: "cert", Certs: certs(other.Cert)}}},
	}
	got := c.Set(es)
	noKeyMaterial(t, got, a, b)
	if len(got) != 2 {
		t.Fatalf("Set() = %v, want one finding on a and one on b", got)
	}
	for i, w := range []struct{ entity, field, other string }{{"a", "certs[0]", "entity b"}, {"b", "cert", "entity a"}} {
		if f := got[i]; f.Check != KeyReuse || f.Severity != SeverityWarning || f.Entity != w.entity || f.Field != w.field || !strings.Contains(f.Message, w.other) {
			t.Errorf("Set() finding %d = %v, want key_reuse on %s %s naming %s", i, f, w.entity, w.field, w.other)
		}
	}
	if got := New(Options{Public: x509.NewCertPool(), Policy: Policy{KeyReuse: SeverityError}}).Set(es); len(got) != 2 || got[0].Severity != SeverityError {
		t.Errorf("Set() with key_reuse: error = %v, want two errors", got)
	}
	// One entity serving one key in two chains is not reuse.
	if got := c.Set([]Entity{{Name: "a", Chains: []Chain{{Field: "cert", Certs: certs(a.Cert)}, {Field: "certs[0]", Certs: certs(b.Cert)}}}}); len(got) != 0 {
		t.Errorf("Set() on one entity = %v, want nothing", got)
	}
}

func TestRenewal(t *testing.T) {
	p := newPKI(t)
	key := fixtures.ECDSAKey(t, elliptic.P256())
	old := p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}}, PrivateKey: key})
	sameKey := p.inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"a.example.com"}}, PrivateKey: key})
	newKey := p.inter.Server(t, "a.example.com")
	c := New(Options{Public: x509.NewCertPool()})
	if got := c.Renewal("a", "cert", old.Cert, sameKey.Cert); len(got) != 1 || got[0].Check != KeyReusedOnRenewal ||
		!strings.Contains(got[0].Message, "key reused across renewal") {
		t.Errorf("Renewal(same key) = %v, want key reused across renewal", got)
	}
	if got := c.Renewal("a", "cert", old.Cert, newKey.Cert); len(got) != 0 {
		t.Errorf("Renewal(new key) = %v, want nothing", got)
	}
	if got := c.Renewal("a", "cert", old.Cert, old.Cert); len(got) != 0 {
		t.Errorf("Renewal(unchanged) = %v, want nothing", got)
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy(map[string]string{"weak_key": "warning", "untrusted_root": "error"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Severity(WeakKey) != SeverityWarning || p.Severity(UntrustedRoot) != SeverityError || p.Severity(WeakCurve) != SeverityError {
		t.Errorf("ParsePolicy() = %v", p)
	}
	for _, bad := range []map[string]string{{"weak_keys": "error"}, {"weak_key": "fatal"}} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%v) = nil error, want one", bad)
		}
	}
}

func TestParseRoots(t *testing.T) {
	p := newPKI(t)
	leaf := p.inter.Server(t, "a.example.com")
	tests := []struct {
		name string
		pem  []byte
		want string // "" for no error
	}{
		{"two roots", append(p.root.CertPEM, p.other.CertPEM...), ""},
		{"a leaf", leaf.CertPEM, "certificate 1 (CN=a.example.com) is not a CA certificate"},
		{"a key", append(p.root.CertPEM, leaf.KeyPEM...), `PEM block 2 is a "PRIVATE KEY" block`},
		{"empty", nil, "no PEM certificate"},
	}
	for _, tt := range tests {
		_, err := ParseRoots(tt.pem)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ParseRoots(%s) = %v, want no error", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ParseRoots(%s) = %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "BEGIN") {
			t.Errorf("ParseRoots(%s) error holds PEM: %v", tt.name, err)
		}
	}
}

// TestKeyReuseManyEntities: a key shared by many entities (a fleet-wide
// wildcard) is reported on each, naming a few others and counting the
// rest, so the findings grow linearly, not with the square of the count.
func TestKeyReuseManyEntities(t *testing.T) {
	p := newPKI(t)
	leaf := p.inter.Server(t, "shared.example.com")
	const n = 2000
	es := make([]Entity, n)
	for i := range es {
		es[i] = Entity{Name: fmt.Sprintf("e%04d", i), Chains: []Chain{{Field: "cert", Certs: certs(leaf.Cert)}}}
	}
	got := New(Options{Public: x509.NewCertPool()}).Set(es)
	if len(got) != n {
		t.Fatalf("Set(%d entities sharing a key) = %d findings, want %d", n, len(got), n)
	}
	want := "also the key of entities e0001, e0002, e0003 and 1996 others:"
	if !strings.Contains(got[0].Message, want) {
		t.Errorf("Set()[0].Message = %q, want it to contain %q", got[0].Message, want)
	}
	if last := got[n-1].Message; !strings.Contains(last, "entities e0000, e0001, e0002 and 1996 others") {
		t.Errorf("Set()[%d].Message = %q, want the first three others and a count", n-1, last)
	}
}
