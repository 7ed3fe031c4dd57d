package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMTLS checks an entity with client.ca (DESIGN.md 3) with curl and
// openssl s_client: a client certificate from the entity's CA is accepted
// and its subject reaches the HTTP side; no certificate, or one from
// another CA, fails the handshake so no request is answered; an entity
// without client.ca on the same gateway needs none; and a request whose
// Host picks a different entity than its SNI, when either requires client
// certificates, is answered 421 Misdirected Request.
func TestMTLS(t *testing.T) {
	requireBinary(t)
	serverCA, clientCA, otherCA := newCA(t, "e2e server CA"), newCA(t, "e2e client CA"), newCA(t, "e2e other CA")
	repo := t.TempDir()
	writeFile(t, repo, "mtls.yaml", entity{
		name:     "mtls-test",
		snis:     []string{"mtls.test"},
		chains:   []*testLeaf{serverCA.issue(t, algECDSA, "mtls.test", []string{"mtls.test"})},
		clientCA: clientCA.certPEM,
	}.yaml())
	writeFile(t, repo, "open.yaml", entity{
		name:   "open-test",
		snis:   []string{"open.test"},
		chains: []*testLeaf{serverCA.issue(t, algECDSA, "open.test", []string{"open.test"})},
	}.yaml())

	files := t.TempDir()
	caFile := filepath.Join(files, "server-ca.pem")
	writeFile(t, files, "server-ca.pem", serverCA.certPEM)
	good := clientCA.issue(t, algECDSA, "good client", nil, leafOptions{client: true})
	wrong := otherCA.issue(t, algECDSA, "wrong client", nil, leafOptions{client: true})
	writeFile(t, files, "good.pem", good.certPEM)
	writeFile(t, files, "good.key", good.keyPEM)
	writeFile(t, files, "wrong.pem", wrong.certPEM)
	writeFile(t, files, "wrong.key", wrong.keyPEM)
	goodArgs := []string{"--cert", filepath.Join(files, "good.pem"), "--key", filepath.Join(files, "good.key")}
	wrongArgs := []string{"--cert", filepath.Join(files, "wrong.pem"), "--key", filepath.Join(files, "wrong.key")}

	d := startDaemon(t, "--source", repo)

	t.Run("curl", func(t *testing.T) {
		ci := curl(t, "mtls.test", d.port, caFile, goodArgs...).info(t)
		if ci.Entity != "mtls-test" || !strings.Contains(ci.ClientSubject, "good client") {
			t.Errorf("curl with a good client certificate: entity %q, client subject %q; want mtls-test, CN=good client", ci.Entity, ci.ClientSubject)
		}
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"no client certificate", nil},
			{"client certificate from another CA", wrongArgs},
		} {
			if r := curl(t, "mtls.test", d.port, caFile, tc.args...); r.code == 0 {
				t.Errorf("curl with %s: exit 0 and answer %q, want a failed handshake", tc.name, r.stdout)
			}
		}
		if ci := curl(t, "open.test", d.port, caFile).info(t); ci.Entity != "open-test" {
			t.Errorf("curl without client certificate to open.test: entity %q, want open-test", ci.Entity)
		}
	})

	t.Run("s_client", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			args   []string
			wantOK bool
		}{
			{"good client certificate", []string{"-cert", filepath.Join(files, "good.pem"), "-key", filepath.Join(files, "good.key")}, true},
			{"no client certificate", nil, false},
			{"client certificate from another CA", []string{"-cert", filepath.Join(files, "wrong.pem"), "-key", filepath.Join(files, "wrong.key")}, false},
		} {
			for _, v := range []string{"-tls1_2", "-tls1_3"} {
				args := append([]string{"-servername", "mtls.test", "-CAfile", caFile, v}, tc.args...)
				h, answered := sClientGet(t, d.listen, "mtls.test", args...)
				if answered != tc.wantOK {
					t.Errorf("s_client %s with %s: HTTP answer %v, want %v:\n%s", v, tc.name, answered, tc.wantOK, tail(h.out, 20))
				}
			}
		}
	})

	t.Run("421 when Host picks another entity", func(t *testing.T) {
		for _, tc := range []struct {
			name, sni, host string
			args            []string
		}{
			{"SNI of the open entity, Host of the mTLS one", "open.test", "mtls.test", nil},
			{"SNI of the mTLS entity, Host of the open one", "mtls.test", "open.test", goodArgs},
		} {
			args := append([]string{"-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: " + tc.host}, tc.args...)
			r := curl(t, tc.sni, d.port, caFile, args...)
			if r.code != 0 || r.stdout != "421" {
				t.Errorf("%s: curl exit %d, status %q; want 421 Misdirected Request (%s)", tc.name, r.code, r.stdout, r.stderr)
			}
		}
		// The same entity under its own name is answered.
		r := curl(t, "mtls.test", d.port, caFile, append([]string{"-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: mtls.test"}, goodArgs...)...)
		if r.stdout != "200" {
			t.Errorf("SNI and Host of the mTLS entity: status %q, want 200", r.stdout)
		}
	})
}
