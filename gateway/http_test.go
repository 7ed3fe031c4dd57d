package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"certops/fixtures"
)

// httpClient returns a client for the gateway at addr that sends every
// request there, whatever the URL's host, with the URL's host as SNI.
func httpClient(p *pki, addr string, h2 bool, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: p.roots, Certificates: certs},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr}
}

func TestJSONAnswer(t *testing.T) {
	p := newPKI(t)
	_, addr := serve(t, Options{}, Config{Entities: []Entity{p.entity(t, "shop", "shop.example.com")}})
	for _, tt := range []struct {
		h2    bool
		proto string
	}{{false, "HTTP/1.1"}, {true, "HTTP/2.0"}} {
		t.Run(tt.proto, func(t *testing.T) {
			resp, err := httpClient(p, addr, tt.h2).Get("https://shop.example.com/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got ConnectionInfo
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			want := ConnectionInfo{SNI: "shop.example.com", Entity: "shop", TLSVersion: "TLS 1.3",
				CipherSuite: got.CipherSuite, Protocol: tt.proto, Host: "shop.example.com"}
			if got != want || !strings.HasPrefix(got.CipherSuite, "TLS_") {
				t.Errorf("GET = %+v, want %+v", got, want)
			}
		})
	}
}

func TestMisdirectedRequest(t *testing.T) {
	p := newPKI(t)
	_, addr := serve(t, Options{}, Config{Entities: []Entity{
		p.entity(t, "a", "a.example.com"),
		p.entity(t, "a2", "a2.example.com"),
		mtlsEntity(t, p, "m", "m.example.com", 0, p.clientRoot),
		mtlsEntity(t, p, "m2", "m2.example.com", 0, p.clientRoot),
		p.entity(t, "default", "*"),
	}})
	alice := p.clientRoot.Client(t, "alice").TLS(t)
	tests := []struct {
		name, sni, host string
		cert            bool
		want            int
	}{
		{"same entity", "a.example.com", "a.example.com:443", false, 200},
		{"same entity, Host in upper case", "a.example.com", "A.Example.COM", false, 200},
		{"other entity, neither mTLS", "a.example.com", "a2.example.com", false, 200},
		{"Host selects an mTLS entity", "a.example.com", "m.example.com", false, 421},
		{"handshake with an mTLS entity, Host elsewhere", "m.example.com", "a.example.com", true, 421},
		{"handshake with an mTLS entity, Host the default", "m.example.com", "unknown.example.com", true, 421},
		{"between two mTLS entities", "m.example.com", "m2.example.com", true, 421},
		{"mTLS entity, same Host", "m.example.com", "m.example.com", true, 200},
		{"no SNI, Host selects an mTLS entity", "", "m.example.com", false, 421},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{ServerName: tt.sni, InsecureSkipVerify: true, VerifyConnection: verifyChain(p.roots)}
			if tt.cert {
				cfg.Certificates = []tls.Certificate{alice}
			}
			conn, err := handshake(addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got, _ := get(t, conn, tt.host); got != tt.want {
				t.Errorf("GET Host %q over SNI %q = %d, want %d", tt.host, tt.sni, got, tt.want)
			}
		})
	}
}

func TestReverseProxy(t *testing.T) {
	p := newPKI(t)
	upRoot := fixtures.NewRootCA(t, "upstream root")
	clientRoot := fixtures.NewRootCA(t, "upstream client root")

	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			subject = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		w.Header().Set("Connection", "close") // every request on a new upstream connection
		_ = json.NewEncoder(w).Encode(map[string]string{
			"client": subject, "host": r.Host, "path": r.URL.Path,
			"xff": r.Header.Get("X-Forwarded-For"), "xfh": r.Header.Get("X-Forwarded-Host"), "xfp": r.Header.Get("X-Forwarded-Proto"),
		})
	}))
	upstream.TLS = &tls.Config{
		Certificates: []tls.Certificate{upRoot.Leaf(t, fixtures.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, CommonName: "upstream"}).TLS(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    fixtures.Pool(clientRoot),
	}
	upstream.StartTLS()
	t.Cleanup(upstream.Close)
	upURL, _ := url.Parse(upstream.URL)

	clientEntity := func(cn string) Entity {
		return Entity{Name: "upstream-client", Client: true, Chains: []tls.Certificate{clientRoot.Client(t, cn).TLS(t)}}
	}
	config := func(cn string) Config {
		return Config{Entities: []Entity{p.entity(t, "shop", "shop.example.com"), clientEntity(cn)}}
	}
	s, addr := serve(t, Options{Upstream: upURL, UpstreamCAs: fixtures.Pool(upRoot), UpstreamClientCert: "upstream-client"}, config("gateway-1"))
	client := httpClient(p, addr, true)
	fetch := func() map[string]string {
		t.Helper()
		resp, err := client.Get("https://shop.example.com/some/path")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET through the proxy = %d %s, want 200", resp.StatusCode, body)
		}
		var got map[string]string
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("decode %q: %v", body, err)
		}
		return got
	}
	got := fetch()
	want := map[string]string{"client": "gateway-1", "host": upURL.Host, "path": "/some/path",
		"xff": "127.0.0.1", "xfh": "shop.example.com", "xfp": "https"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("upstream saw %s = %q, want %q", k, got[k], v)
		}
	}
	if err := s.Apply(config("gateway-2")); err != nil {
		t.Fatal(err)
	}
	if got := fetch(); got["client"] != "gateway-2" {
		t.Errorf("after rotation the upstream saw client %q, want gateway-2", got["client"])
	}
}

func TestReverseProxyUntrustedUpstream(t *testing.T) {
	p := newPKI(t)
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	upstream.Config.ErrorLog = log.New(io.Discard, "", 0) // it logs the refused handshake
	upstream.StartTLS()
	t.Cleanup(upstream.Close)
	upURL, _ := url.Parse(upstream.URL)
	_, addr := serve(t, Options{Upstream: upURL, UpstreamCAs: fixtures.Pool(p.root)}, Config{Entities: []Entity{p.entity(t, "shop", "shop.example.com")}})
	resp, err := httpClient(p, addr, false).Get("https://shop.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("GET through a proxy to an untrusted upstream = %d, want 502", resp.StatusCode)
	}
}
