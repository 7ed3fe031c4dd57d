package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestTriggers follows a repository with polling off and checks the other
// ways to make the daemon fetch (DESIGN.md 1): SIGHUP, and POST
// /api/v1/reconcile?wait=1, which returns once the new revision is applied.
// The flags come from CERTOPS_ variables here, with one flag on the
// command line winning over its variable (DESIGN.md 4).
func TestTriggers(t *testing.T) {
	requireBinary(t)
	f := newFleet(t, 1)
	f.shop(t)
	f.repo.commit(t, "first")
	url, _ := gitDaemon(t, f.repo.root, f.repo.name)
	envListen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := runDaemon(t, daemonConfig{
		env: []string{
			"CERTOPS_SOURCE=" + url,
			"CERTOPS_DATA_DIR=" + t.TempDir(),
			"CERTOPS_INTERVAL=0",
			"CERTOPS_LISTEN=" + envListen, // runDaemon's --listen wins
		},
	})
	roots := pool(f.ca)
	if c, err := net.DialTimeout("tcp", envListen, time.Second); err == nil {
		c.Close()
		t.Errorf("CERTOPS_LISTEN=%s was used although --listen %s was given", envListen, d.listen)
	}

	leafB := f.shop(t)
	revB := f.repo.commit(t, "rotate for SIGHUP")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitServed(t, d.listen, "shop.test", roots, leafB)
	waitApplied(t, d, revB)

	leafC := f.shop(t)
	revC := f.repo.commit(t, "rotate for the admin API")
	code, body := httpDo(t, http.MethodPost, "http://"+d.admin+"/api/v1/reconcile?wait=1", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("POST /api/v1/reconcile?wait=1: %d %s", code, body)
	}
	// wait=1 returned after the run: the new certificate is served now,
	// without polling.
	if c, err := servedLeaf(d.listen, "shop.test", roots); err != nil || c.SerialNumber.Cmp(leafC.cert.SerialNumber) != 0 {
		t.Errorf("right after POST /api/v1/reconcile?wait=1: served %s (err %v), want serial %x", serialOf(c), err, leafC.cert.SerialNumber)
	}
	if got := d.appliedRevision(); got != revC {
		t.Errorf("after POST /api/v1/reconcile?wait=1: applied %s, want %s", got, revC)
	}
}

// TestAdminTokenOffLoopback checks that the daemon refuses to expose its
// mutating admin endpoints on a non-loopback address without a token
// (DESIGN.md 5), and that with a token the endpoint wants it.
func TestAdminTokenOffLoopback(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeFile(t, dir, "shop.yaml", entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{newCA(t, "token CA").issue(t, algECDSA, "shop.test", []string{"shop.test"})}}.yaml())
	r := certops(t, dir, nil, "run", "--source", dir, "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0")
	if r.code != 1 || r.stderr == "" {
		t.Errorf("run --admin 0.0.0.0:0 without a token: exit %d, stderr %q; want 1 and an error", r.code, r.stderr)
	}

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("e2e-admin-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--source", dir, "--admin-token-file", tokenFile)
	url := "http://" + d.admin + "/api/v1/reconcile"
	if code, _ := httpDo(t, http.MethodPost, url, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("POST /api/v1/reconcile without the token: %d, want 401", code)
	}
	if code, _ := httpDo(t, http.MethodPost, url, http.Header{"Authorization": {"Bearer wrong"}}, nil); code != http.StatusUnauthorized {
		t.Errorf("POST /api/v1/reconcile with a wrong token: %d, want 401", code)
	}
	if code, body := httpDo(t, http.MethodPost, url, http.Header{"Authorization": {"Bearer e2e-admin-token"}}, nil); code < 200 || code > 299 {
		t.Errorf("POST /api/v1/reconcile with the token: %d %s, want 2xx", code, body)
	}
}
