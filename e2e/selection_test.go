package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSelectionWithoutDefault serves a repository without a "*" entity:
// an unknown name and a ClientHello without SNI fail the handshake with
// the unrecognized_name alert (DESIGN.md 3, step 4), and the entities'
// ssl_protocols bound the version each one negotiates.
func TestSelectionWithoutDefault(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "selection CA")
	repo := t.TempDir()
	for _, e := range []struct{ name, protocols string }{
		{"modern", "ssl_protocols: [TLSv1.3]\n"},
		{"legacy", "ssl_protocols: [TLSv1.2]\n"},
		{"both", ""},
	} {
		sni := e.name + ".test"
		writeFile(t, repo, e.name+".yaml", entity{name: e.name, snis: []string{sni},
			chains: []*testLeaf{ca.issue(t, algECDSA, sni, []string{sni})}, extra: e.protocols}.yaml())
	}
	files := t.TempDir()
	writeFile(t, files, "ca.pem", ca.certPEM)
	caFile := filepath.Join(files, "ca.pem")
	d := startDaemon(t, "--source", repo)

	t.Run("no default entity", func(t *testing.T) {
		for _, args := range [][]string{{"-servername", "unknown.test"}, {"-noservername"}} {
			h := sClient(t, d.listen, append([]string{"-CAfile", caFile}, args...)...)
			if h.ok {
				t.Errorf("s_client %v: %s; want a failed handshake", args, h.describe())
			}
			if !strings.Contains(h.out, "unrecognized name") {
				t.Errorf("s_client %v: no unrecognized_name alert in:\n%s", args, tail(h.out, 10))
			}
		}
	})

	t.Run("ssl_protocols", func(t *testing.T) {
		for _, tc := range []struct {
			sni, version string
			ok           bool
		}{
			{"modern.test", "-tls1_3", true},
			{"modern.test", "-tls1_2", false},
			{"legacy.test", "-tls1_2", true},
			{"legacy.test", "-tls1_3", false},
			{"both.test", "-tls1_2", true},
			{"both.test", "-tls1_3", true},
		} {
			h := sClient(t, d.listen, "-servername", tc.sni, "-CAfile", caFile, tc.version)
			if h.ok != tc.ok {
				t.Errorf("s_client -servername %s %s: %s; want handshake ok=%v", tc.sni, tc.version, h.describe(), tc.ok)
			}
		}
		// Without a version flag the client offers both: the entity's
		// bound picks.
		for sni, want := range map[string]string{"modern.test": "TLSv1.3", "legacy.test": "TLSv1.2"} {
			if h := sClient(t, d.listen, "-servername", sni, "-CAfile", caFile); !h.ok || h.protocol != want {
				t.Errorf("s_client -servername %s: %s; want %s", sni, h.describe(), want)
			}
		}
	})
}
