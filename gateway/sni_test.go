package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// verifyChain checks the server's chain against roots without a host name,
// so that tests can offer any SNI (or none) and still insist on a real
// chain.
func verifyChain(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no server certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
}

// sniConfig is the configuration of the SNI table: every selection rule
// once, with and without a default entity.
func sniConfig(tb testing.TB, p *pki, withDefault bool) Config {
	tb.Helper()
	cfg := Config{Entities: []Entity{
		p.entity(tb, "shop", "shop.example.com"),
		p.entity(tb, "wild", "*.example.com"),
		p.entity(tb, "deep", "*.b.example.com"),
		p.entity(tb, "upper", "Upper.Example.NET."),
		p.entity(tb, "idn", "xn--bcher-kva.example"),
	}}
	if withDefault {
		cfg.Entities = append(cfg.Entities, p.entity(tb, "default", "*"))
	}
	return cfg
}

func TestSNISelection(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name       string
		serverName string
		want       string // entity; "" means unrecognized_name
		noDefault  string // entity without a default entity
	}{
		{"exact", "shop.example.com", "shop", "shop"},
		{"wildcard one label", "a.example.com", "wild", "wild"},
		{"exact beats wildcard", "shop.example.com", "shop", "shop"},
		{"apex not matched by wildcard", "example.com", "default", ""},
		{"two labels not matched", "x.a.example.com", "default", ""},
		{"deeper wildcard", "a.b.example.com", "deep", "deep"},
		{"uppercase", "SHOP.Example.COM", "shop", "shop"},
		{"uppercase wildcard", "A.EXAMPLE.COM", "wild", "wild"},
		{"configured name normalised", "upper.example.net", "upper", "upper"},
		{"trailing dot (stripped by Go's client)", "shop.example.com.", "shop", "shop"},
		{"no SNI", "", "default", ""},
		{"unknown", "nope.example.net", "default", ""},
		{"IDN A-label", "xn--bcher-kva.example", "idn", "idn"},
		{"IDN U-label is not an SNI", "bücher.example", "default", ""},
	}
	for _, withDefault := range []bool{true, false} {
		var res results
		_, addr := serve(t, Options{OnHandshake: res.record}, sniConfig(t, p, withDefault))
		var wantRejected int
		for _, tt := range tests {
			want := tt.want
			if !withDefault {
				want = tt.noDefault
			}
			name := tt.name
			if !withDefault {
				name += " without default"
			}
			t.Run(name, func(t *testing.T) {
				cfg := &tls.Config{ServerName: tt.serverName, InsecureSkipVerify: true, VerifyConnection: verifyChain(p.roots)}
				conn, err := handshake(addr, cfg)
				if want == "" {
					wantRejected++
					if err == nil {
						conn.Close()
						t.Fatalf("handshake(%q) succeeded, want unrecognized_name", tt.serverName)
					}
					if !isAlert(err, "unrecognized name") {
						t.Fatalf("handshake(%q) = %v, want the unrecognized_name alert", tt.serverName, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("handshake(%q): %v", tt.serverName, err)
				}
				defer conn.Close()
				if got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; got != want {
					t.Errorf("handshake(%q) served %q, want %q", tt.serverName, got, want)
				}
				host := tt.serverName
				if host == "" || strings.ContainsFunc(host, func(r rune) bool { return r > 0x7f }) {
					host = "127.0.0.1" // no Host header can carry it
				}
				status, info := get(t, conn, host)
				if status != 200 || info.Entity != want {
					t.Errorf("GET over handshake(%q) = %d, entity %q, want 200, %q", tt.serverName, status, info.Entity, want)
				}
			})
		}
		got := res.wait(t, len(tests))
		if got[HandshakeNoCertificate] != wantRejected || got[HandshakeOK] != len(tests)-wantRejected {
			t.Errorf("OnHandshake results = %v, want %d ok and %d no_certificate", got, len(tests)-wantRejected, wantRejected)
		}
	}
}

// TestSNIOpenSSL checks what OpenSSL clients see: the alert on an unknown
// name, case-insensitive selection of names Go's client would not send as
// is, and the refusal of a trailing dot by Go's TLS stack (RFC 6066).
func TestSNIOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	p := newPKI(t)
	_, addr := serve(t, Options{}, sniConfig(t, p, false))
	tests := []struct {
		name       string
		serverName string
		wantOK     bool
		want       string // in the output
	}{
		{"unknown name", "nope.example.net", false, "tlsv1 unrecognized name"},
		{"apex", "example.com", false, "SSL alert number 112"},
		{"uppercase", "SHOP.EXAMPLE.COM", true, "CN = shop"},
		{"trailing dot", "shop.example.com.", false, "alert"},
		{"IDN", "xn--bcher-kva.example", true, "CN = idn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := openssl(t, addr, "-servername", tt.serverName)
			if tt.wantOK != (err == nil) {
				t.Fatalf("openssl s_client -servername %q: err = %v, want success %v\n%s", tt.serverName, err, tt.wantOK, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("openssl s_client -servername %q output lacks %q:\n%s", tt.serverName, tt.want, out)
			}
		})
	}
}

// openssl runs one s_client handshake against addr, sends one HTTP
// request and reads until the server closes, so that alerts sent after
// the client's handshake (a refused client certificate in TLS 1.3) show.
// It returns the output.
func openssl(tb testing.TB, addr string, args ...string) (string, error) {
	tb.Helper()
	cmd := exec.CommandContext(tb.Context(), "openssl", append([]string{"s_client", "-connect", addr, "-brief", "-ign_eof"}, args...)...)
	cmd.Stdin = strings.NewReader("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestLookupDoesNotAllocate(t *testing.T) {
	p := newPKI(t)
	s := New(Options{})
	if err := s.Apply(sniConfig(t, p, false)); err != nil {
		t.Fatal(err)
	}
	snap := s.snap.Load()
	for _, name := range []string{"shop.example.com", "SHOP.EXAMPLE.COM", "a.example.com", "nope.example.net", "", strings.Repeat("a", 300)} {
		var got int32
		allocs := testing.AllocsPerRun(100, func() { got = snap.lookup(name) })
		if allocs != 0 {
			t.Errorf("lookup(%q) allocates %v times, want 0", name, allocs)
		}
		_ = got
	}
}

// TestConfigForClientDoesNotAllocate: selecting the config of a cached
// entity, the whole of the gateway's work on the handshake's hit path,
// allocates nothing.
func TestConfigForClientDoesNotAllocate(t *testing.T) {
	p := newPKI(t)
	s := New(Options{})
	if err := s.Apply(sniConfig(t, p, true)); err != nil {
		t.Fatal(err)
	}
	tc := &trackedConn{}
	for _, name := range []string{"shop.example.com", "Shop.Example.com", "a.example.com", "unknown.example.net"} {
		hello := &tls.ClientHelloInfo{ServerName: name, Conn: tc}
		if _, err := s.configForClient(hello); err != nil { // fills the cache
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() { _, _ = s.configForClient(hello) })
		if allocs != 0 {
			t.Errorf("configForClient(%q) allocates %v times, want 0", name, allocs)
		}
		if tc.entry == nil {
			t.Errorf("configForClient(%q) did not record the entity on the connection", name)
		}
	}
}

func TestCheckSNI(t *testing.T) {
	tests := []struct {
		sni     string
		wantErr string
	}{
		{"shop.example.com", ""},
		{"*", ""},
		{"*.example.com", ""},
		{"xn--bcher-kva.example", ""},
		{"", "empty server name"},
		{"a.*.example.com", "whole leftmost label"},
		{"*a.example.com", "whole leftmost label"},
		{"bücher.example", "A-label"},
		{"a..b", "empty label"},
		{"a b.example", "white space"},
		{strings.Repeat("a", 254), "longer than"},
		// The schema's rule, which the gateway shares (package sni).
		{"*.com", `not "*.com"`},
		{"_acme.example.com", "underscore"},
		{"10.0.0.1", "IP address"},
	}
	for _, tt := range tests {
		err := checkSNI(tt.sni)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("checkSNI(%q) = %v, want error containing %q", tt.sni, err, tt.wantErr)
		}
	}
}
