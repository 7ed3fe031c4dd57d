package e2e

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"certops/fixtures"
)

// TestFleetVerifySignatures runs `certops publish --verify-signatures
// head --trusted-keys DIR`: a commit signed with a trusted SSH key (real
// ssh-keygen signature) is published and served by the node; an unsigned
// one is refused at the publisher, naming the reason, and the node keeps
// the signed revision.
func TestFleetVerifySignatures(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	fleetKeys(t, dir)
	ns := startNATS(t, dir, "nats", freePort(t), nil, 0)
	ca := fixtures.NewRootCA(t, "fleet signatures CA")
	ci := fixtures.NewSSHSigningKey(t, "ci")
	keys := fixtures.TrustedKeysDir(t, ci)
	repo := fixtures.NewGitRepo(t)
	leaf1, leaf2 := ca.Server(t, "shop.example.com"), ca.Server(t, "shop.example.com")
	rev1 := repo.CommitSigned(t, ci, "shop: signed by the CI", shopYAML(leaf1))

	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pub := startCertops(t, admin, "publish", "--source", repo.FileURL(), "--nats", ns.url(), "--fleet", "signed",
		"--signing-key", filepath.Join(dir, "signing.pem"), "--data-key-file", filepath.Join(dir, "data.key"),
		"--admin", admin, "--data-dir", filepath.Join(dir, "publisher"), "--interval", "500ms",
		"--verify-signatures", "head", "--trusted-keys", keys)
	node := runDaemon(t, daemonConfig{args: fleetArgs(dir, ns.url()+"/signed", "edge-1")})
	nodes := []*daemon{node}
	fleetWait(t, dir, ns.url(), "signed", rev1, 1)
	requireServes(t, "the signed commit", nodes, "shop.example.com", leaf1)

	rev2 := repo.Commit(t, "shop: unsigned", shopYAML(leaf2))
	line := pub.waitRevisionLogged(rev2)
	if line["level"] != "WARN" || !strings.Contains(fmt.Sprint(line), "unsigned") {
		t.Errorf("publisher log for the unsigned commit = %v, want a warning naming it unsigned", line)
	}
	eventually(t, 30*time.Second, "the publisher reports the unsigned commit stalled", func() (bool, string) {
		st, _ := pubStatus(pub)
		return st.LastAttempt != nil && st.LastAttempt.Revision == rev2 && st.LastAttempt.Result == "stalled", fmt.Sprintf("%+v", st.LastAttempt)
	})
	if st, _ := pubStatus(pub); st.publishedRevision() != rev1 {
		t.Errorf("publisher published %q, want still the signed %s", st.publishedRevision(), rev1)
	}
	st := fleetStatus(t, dir, ns.url(), "signed")
	if st.Head.Revision != rev1 || st.Converged != 1 {
		t.Errorf("fleet status = head %s, %d converged; want head %s (the unsigned commit never travels), 1 converged", st.Head.Revision, st.Converged, rev1)
	}
	requireServes(t, "after the unsigned commit", nodes, "shop.example.com", leaf1)
}

// countingGitServer serves root with `git http-backend` and counts the
// requests: ref advertisements (GET info/refs) and pack negotiations
// (POST git-upload-pack).
type countingGitServer struct {
	*httptest.Server
	refs, packs atomic.Int64
}

func serveCountingGit(tb testing.TB, root string) *countingGitServer {
	tb.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		tb.Fatalf("git --exec-path: %v", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
	}
	s := &countingGitServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
			s.refs.Add(1)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			s.packs.Add(1)
		}
		backend.ServeHTTP(w, r)
	}))
	tb.Cleanup(s.Close)
	return s
}

// TestFleetGitLoad counts the requests at the Git server while one
// publisher and three nodes follow a repository over smart HTTP: the
// nodes never contact Git, and each push costs the whole fleet one pack
// download (DESIGN.md 9). The publisher is triggered by POST
// /api/v1/reconcile, as a webhook would, with polling off, so that every
// request counted belongs to a push.
func TestFleetGitLoad(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	fleetKeys(t, dir)
	ns := startNATS(t, dir, "nats", freePort(t), nil, 0)
	ca := fixtures.NewRootCA(t, "fleet git load CA")
	repo := fixtures.NewGitRepo(t)
	rev := repo.Commit(t, "shop", shopYAML(ca.Server(t, "shop.example.com")))
	gitSrv := serveCountingGit(t, repo.Root)

	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startCertops(t, admin, "publish", "--source", gitSrv.URL+"/"+repo.Name, "--nats", ns.url(), "--fleet", "load",
		"--signing-key", filepath.Join(dir, "signing.pem"), "--data-key-file", filepath.Join(dir, "data.key"),
		"--admin", admin, "--data-dir", filepath.Join(dir, "publisher"), "--interval", "0")
	var nodes []*daemon
	for i := range 3 {
		nodes = append(nodes, runDaemon(t, daemonConfig{args: fleetArgs(dir, ns.url()+"/load", fmt.Sprintf("edge-%d", i+1))}))
	}
	fleetWait(t, dir, ns.url(), "load", rev, 3)

	const pushes = 3
	refs0, packs0 := gitSrv.refs.Load(), gitSrv.packs.Load()
	for i := range pushes {
		leaf := ca.Server(t, "shop.example.com")
		rev := repo.Commit(t, fmt.Sprintf("rotate %d", i), shopYAML(leaf))
		if code, body := httpDo(t, http.MethodPost, "http://"+admin+"/api/v1/reconcile", nil, nil); code/100 != 2 {
			t.Fatalf("POST /api/v1/reconcile = %d %s", code, body)
		}
		fleetWait(t, dir, ns.url(), "load", rev, 3)
		requireServes(t, fmt.Sprintf("push %d", i+1), nodes, "shop.example.com", leaf)
	}
	refs, packs := gitSrv.refs.Load()-refs0, gitSrv.packs.Load()-packs0
	t.Logf("git server, %d pushes, 1 publisher, 3 nodes: %d ref advertisements, %d pack requests (%.1f and %.1f per push)",
		pushes, refs, packs, float64(refs)/pushes, float64(packs)/pushes)
	if packs != pushes {
		t.Errorf("git server saw %d pack requests for %d pushes to a fleet of 3 nodes, want one per push", packs, pushes)
	}
	// One fetch of the publisher: it lists the refs to see whether the
	// branch moved, then fetches (a second advertisement, and the pack).
	if refs != 2*pushes {
		t.Errorf("git server saw %d ref advertisements for %d pushes, want two per push (the publisher's ls-remote and fetch)", refs, pushes)
	}
}
