package e2e

import (
	"path/filepath"
	"testing"
	"time"
)

// TestSessionResumption checks session tickets with openssl s_client
// -sess_out/-sess_in (DESIGN.md 3): a session resumes into the entity that
// issued it, including after a rotation of the gateway's certificates (the
// ticket keys survive it), and never into another entity, even when the
// client offers it for that entity's name; and a resumed mTLS session is
// checked against the entity's current client CA.
func TestSessionResumption(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "resumption CA")
	repo := t.TempDir()
	write := func(name string) *testLeaf {
		leaf := ca.issue(t, algECDSA, name+".test", []string{name + ".test"})
		writeFile(t, repo, name+".yaml", entity{name: name, snis: []string{name + ".test"}, chains: []*testLeaf{leaf}}.yaml())
		return leaf
	}
	write("shop")
	write("other")
	files := t.TempDir()
	writeFile(t, files, "ca.pem", ca.certPEM)
	caFile := filepath.Join(files, "ca.pem")
	d := startDaemon(t, "--source", repo)

	for _, version := range []string{"-tls1_2", "-tls1_3"} {
		t.Run(version, func(t *testing.T) {
			sess := filepath.Join(t.TempDir(), "shop.session")
			// Read the answer (-ign_eof) so that TLS 1.3 tickets, sent after
			// the handshake, arrive before the session is saved.
			h, answered := sClientGet(t, d.listen, "shop.test", version, "-servername", "shop.test", "-CAfile", caFile, "-sess_out", sess)
			if !answered || h.reused {
				t.Fatalf("first connection: answered %v, reused %v: %s", answered, h.reused, h.describe())
			}
			h, _ = sClientGet(t, d.listen, "shop.test", version, "-servername", "shop.test", "-CAfile", caFile, "-sess_in", sess)
			if !h.ok || !h.reused {
				t.Errorf("resuming into the same entity: %s, reused %v; want a resumed session", h.describe(), h.reused)
			}
			h, _ = sClientGet(t, d.listen, "other.test", version, "-servername", "other.test", "-CAfile", caFile, "-sess_in", sess)
			if h.reused {
				t.Errorf("a shop.test session offered for other.test was resumed; want a full handshake")
			}
			if h.ok && (h.leaf == nil || h.leaf.Subject.CommonName != "other.test") {
				t.Errorf("offering a shop.test session for other.test: %s; want other.test's certificate", h.describe())
			}
		})
	}

	t.Run("across a rotation", func(t *testing.T) {
		sess := filepath.Join(t.TempDir(), "shop.session")
		if _, answered := sClientGet(t, d.listen, "shop.test", "-tls1_3", "-servername", "shop.test", "-CAfile", caFile, "-sess_out", sess); !answered {
			t.Fatal("first connection was not answered")
		}
		// Rotate another entity: the gateway swaps in a new snapshot.
		waitServed(t, d.listen, "other.test", pool(ca), write("other"))
		h, _ := sClientGet(t, d.listen, "shop.test", "-tls1_3", "-servername", "shop.test", "-CAfile", caFile, "-sess_in", sess)
		if !h.ok || !h.reused {
			t.Errorf("resuming into shop.test after a rotation of other.test: %s, reused %v; want a resumed session (ticket keys survive rotations)", h.describe(), h.reused)
		}
	})

	t.Run("mTLS session after the client CA changes", func(t *testing.T) {
		clientCA, newClientCA := newCA(t, "resumption client CA"), newCA(t, "resumption new client CA")
		server := ca.issue(t, algECDSA, "mtls.test", []string{"mtls.test"})
		writeMTLS := func(clientCAPEM []byte) {
			writeFile(t, repo, "mtls.yaml", entity{name: "mtls", snis: []string{"mtls.test"}, chains: []*testLeaf{server}, clientCA: clientCAPEM}.yaml())
		}
		writeMTLS(clientCA.certPEM)
		client := clientCA.issue(t, algECDSA, "resuming client", nil, leafOptions{client: true})
		writeFile(t, files, "client.pem", client.certPEM)
		writeFile(t, files, "client.key", client.keyPEM)
		certArgs := []string{"-cert", filepath.Join(files, "client.pem"), "-key", filepath.Join(files, "client.key")}
		waitServed(t, d.listen, "mtls.test", pool(ca), server)

		for _, version := range []string{"-tls1_2", "-tls1_3"} {
			sess := filepath.Join(t.TempDir(), "mtls.session")
			args := append([]string{version, "-servername", "mtls.test", "-CAfile", caFile}, certArgs...)
			if _, answered := sClientGet(t, d.listen, "mtls.test", append(args, "-sess_out", sess)...); !answered {
				t.Fatalf("%s: first mTLS connection was not answered", version)
			}
			if h, answered := sClientGet(t, d.listen, "mtls.test", append(args, "-sess_in", sess)...); !answered || !h.reused {
				t.Errorf("%s: resuming with the client CA unchanged: answered %v, reused %v; want a resumed, answered session", version, answered, h.reused)
			}
			writeMTLS(newClientCA.certPEM)
			// Wait until the new client CA is in force for full handshakes.
			eventually(t, 60*time.Second, "the new client CA in force", func() (bool, string) {
				_, answered := sClientGet(t, d.listen, "mtls.test", args...)
				return !answered, "the old client certificate is still accepted"
			})
			if h, answered := sClientGet(t, d.listen, "mtls.test", append(args, "-sess_in", sess)...); answered {
				t.Errorf("%s: a session resumed after its client CA was replaced was answered (reused %v); want it refused (VerifyConnection on resumption)", version, h.reused)
			}
			writeMTLS(clientCA.certPEM)
			eventually(t, 60*time.Second, "the old client CA back in force", func() (bool, string) {
				_, answered := sClientGet(t, d.listen, "mtls.test", args...)
				return answered, "the client certificate is still refused"
			})
		}
	})
}
