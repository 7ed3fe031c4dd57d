package e2e

import (
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
)

// inbox is a local HTTP receiver standing in for a vendor endpoint (Slack,
// Alertmanager, the GitHub statuses API): they cannot run here, so each
// test reads the requests as the vendor documents them.
type inbox struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []inboxRequest
}

type inboxRequest struct {
	Path   string
	Header http.Header
	Body   string
}

func newInbox(tb testing.TB, status int) *inbox {
	tb.Helper()
	in := &inbox{}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		in.mu.Lock()
		in.reqs = append(in.reqs, inboxRequest{Path: r.URL.EscapedPath(), Header: r.Header.Clone(), Body: string(b)})
		in.mu.Unlock()
		w.WriteHeader(status)
	}))
	tb.Cleanup(in.srv.Close)
	return in
}

func (in *inbox) all() []inboxRequest {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]inboxRequest(nil), in.reqs...)
}

// wait returns the first request whose body contains every one of want.
func (in *inbox) wait(tb testing.TB, what string, want ...string) inboxRequest {
	tb.Helper()
	var found inboxRequest
	eventually(tb, 60*time.Second, what, func() (bool, string) {
		reqs := in.all()
	next:
		for _, r := range reqs {
			for _, w := range want {
				if !strings.Contains(r.Path+" "+r.Body, w) {
					continue next
				}
			}
			found = r
			return true, ""
		}
		return false, fmt.Sprintf("%d requests", len(reqs))
	})
	return found
}

// TestNotifyAndCommitStatus runs a daemon with every feedback channel: a
// Slack webhook, Alertmanager (from --notify-config, stalled only), the
// generic webhook pointed at a second certops (whose /hooks/generic must
// accept the signature and trigger), and GitHub commit statuses. A valid
// commit, an invalid one and the fix must each be told, with the
// revision, the plan summary or the problems with file:line, and no key
// material anywhere.
func TestNotifyAndCommitStatus(t *testing.T) {
	requireBinary(t)
	slack, am, github := newInbox(t, http.StatusOK), newInbox(t, http.StatusOK), newInbox(t, http.StatusCreated)
	dir := t.TempDir()
	secret := []byte("e2e notify secret, not a key")
	writeFile(t, dir, "hook-secret", secret)
	writeFile(t, dir, "gh-token", []byte("ghp_e2eTOKEN\n"))
	writeFile(t, dir, "notify.yaml", []byte(fmt.Sprintf("providers:\n  - type: alertmanager\n    url: %s\n    events: [stalled, recovered]\n", am.srv.URL)))
	// The receiver: another certops, serving its embedded example.
	peer := startDaemon(t, "--webhook-secret-file", filepath.Join(dir, "hook-secret"), "--interval", "0")

	ca := newCA(t, "e2e notify CA")
	r := fixtures.NewGitRepo(t)
	leafA := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
	revA := r.Commit(t, "shop: first", shopFiles(leafA))
	d := startDaemon(t, "--source", r.FileURL(), "--interval", "300ms",
		"--notify", "slack+"+slack.srv.URL+"/services/T0/B0/SECRETPATH",
		"--notify", "http://"+peer.admin+"/hooks/generic?secret_file="+filepath.Join(dir, "hook-secret"),
		"--notify-config", filepath.Join(dir, "notify.yaml"),
		"--commit-status", "github", "--commit-status-api", github.srv.URL, "--commit-status-repo", "acme/tls",
		"--commit-status-token-file", filepath.Join(dir, "gh-token"))
	waitServed(t, d.listen, "shop.test", pool(ca), leafA)

	slack.wait(t, "slack told of the first apply", "applied at "+revA[:12])
	st := github.wait(t, "a success status on "+revA, "/repos/acme/tls/statuses/"+revA, `"state":"success"`)
	if st.Header.Get("Authorization") != "Bearer ghp_e2eTOKEN" || !strings.Contains(st.Body, `"context":"certops"`) || !strings.Contains(st.Body, "create") {
		t.Errorf("github status %+v, want the token, context certops and the plan summary", st)
	}
	// The peer verified X-Signature-256 and reconciled.
	eventually(t, 60*time.Second, "the peer certops triggered by the generic webhook", func() (bool, string) {
		return strings.Contains(peer.logs.String(), `"provider":"generic"`) && strings.Contains(peer.logs.String(), "reconcile triggered"), tail(peer.logs.String(), 3)
	})

	// An invalid commit: the SNI is not covered by the certificate.
	leafB := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
	revB := r.Commit(t, "shop: wrong sni", map[string]string{"shop.yaml": string(entity{name: "shop", snis: []string{"other.test"}, chains: []*testLeaf{leafB}}.yaml())})
	msg := slack.wait(t, "slack told of the stalled revision", "stalled at "+revB[:12], "shop.yaml:")
	var payload struct {
		Text        string                  `json:"text"`
		Attachments []struct{ Text string } `json:"attachments"`
	}
	if err := json.Unmarshal([]byte(msg.Body), &payload); err != nil || len(payload.Attachments) != 1 {
		t.Errorf("slack payload %s: %v", msg.Body, err)
	}
	alert := am.wait(t, "alertmanager fired", "/api/v2/alerts", "CertopsRevisionStalled", revB)
	if !strings.Contains(alert.Body, "shop.yaml:") {
		t.Errorf("alert %s lacks the problem's file:line", alert.Body)
	}
	github.wait(t, "a failure status on "+revB, "/repos/acme/tls/statuses/"+revB, `"state":"failure"`, "shop.yaml:")

	// The fix: applied and recovered.
	leafC := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
	revC := r.Commit(t, "shop: fixed", shopFiles(leafC))
	waitServed(t, d.listen, "shop.test", pool(ca), leafC)
	slack.wait(t, "slack told of the recovery", "recovered at "+revC[:12])
	am.wait(t, "alertmanager resolved", "CertopsRevisionStalled", revC)
	github.wait(t, "a success status on "+revC, "/repos/acme/tls/statuses/"+revC, `"state":"success"`)

	outputs := map[string]string{}
	for name, in := range map[string]*inbox{"slack": slack, "alertmanager": am, "github": github} {
		for i, req := range in.all() {
			outputs[fmt.Sprintf("%s request %d", name, i)] = req.Body
		}
	}
	leakScan(t, map[string]crypto.Signer{"shop A": leafA.key, "shop B": leafB.key, "shop C": leafC.key}, outputs)
	if strings.Contains(d.logs.String(), "SECRETPATH") || strings.Contains(d.logs.String(), "ghp_e2eTOKEN") {
		t.Errorf("the daemon logged a webhook path or a token")
	}
}

// TestExpiringNotice: a served certificate within --warn-within is told
// once, as an expiring event naming the entity, however many reconciles
// see it.
func TestExpiringNotice(t *testing.T) {
	requireBinary(t)
	slack := newInbox(t, http.StatusOK)
	ca := newCA(t, "e2e notify CA")
	r := fixtures.NewGitRepo(t)
	soon := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"}, leafOptions{notAfter: time.Now().Add(5 * 24 * time.Hour)})
	r.Commit(t, "shop: expires in 5 days", shopFiles(soon))
	d := startDaemon(t, "--source", r.FileURL(), "--interval", "200ms", "--notify", "slack+"+slack.srv.URL+"/services/T/B/X")
	waitServed(t, d.listen, "shop.test", pool(ca), soon)
	slack.wait(t, "an expiring notice", "expiring shop")
	// Ten more reconciles see the certificate in the warning window.
	start := reconciles(t, d)
	eventually(t, 60*time.Second, "ten more reconciles", func() (bool, string) {
		n := reconciles(t, d)
		return n >= start+10, fmt.Sprint(n)
	})
	n := 0
	for _, req := range slack.all() {
		if strings.Contains(req.Body, "expiring shop") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d expiring notices for one certificate, want 1", n)
	}
}

// reconciles is the daemon's certops_reconcile_total, all results summed.
func reconciles(tb testing.TB, d *daemon) int {
	tb.Helper()
	_, body := d.get("/metrics")
	total := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "certops_reconcile_total{") {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			total += int(v)
		}
	}
	return total
}

// TestFeedbackFlagErrors: bad trust, notification and commit-status
// flags stop `certops run` at start with exit 1 and a message naming the
// flag, the file and the line.
func TestFeedbackFlagErrors(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeFile(t, dir, "notify.yaml", []byte("providers:\n  - type: slack\n    url: https://hooks.slack.com/services/T/B/X\n  - type: pager\n    url: https://x/\n"))
	writeFile(t, dir, "keys/bad.sshpub", []byte("ssh-ed25519 AAAA\n"))
	writeFile(t, dir, "repo/a.yaml", []byte("# nothing\n"))
	good := fixtures.TrustedKeysDir(t, fixtures.NewSSHSigningKey(t, "ci"))
	base := []string{"run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--notify-config", filepath.Join(dir, "notify.yaml")}, []string{"--notify-config", "notify.yaml:4: providers[1]: type \"pager\""}},
		{[]string{"--notify", "ftp://x/"}, []string{"--notify", "scheme must be http or https"}},
		{[]string{"--verify-signatures", "head"}, []string{"--verify-signatures needs --trusted-keys"}},
		{[]string{"--verify-signatures", "HEAD", "--trusted-keys", dir}, []string{"verify-signatures", "want head, tag or tag-and-head"}},
		{[]string{"--verify-signatures", "head", "--trusted-keys", filepath.Join(dir, "keys")}, []string{"bad.sshpub:1:"}},
		{[]string{"--verify-signatures", "head", "--trusted-keys", good, "--source", filepath.Join(dir, "repo")}, []string{"needs a Git --source"}},
		{[]string{"--commit-status", "github", "--commit-status-token-file", filepath.Join(dir, "notify.yaml"), "--source", filepath.Join(dir, "repo")}, []string{"--commit-status-repo"}},
	}
	for _, tt := range tests {
		res := certops(t, dir, nil, append(base, tt.args...)...)
		if res.code != 1 {
			t.Errorf("certops run %v: exit %d, want 1\n%s", tt.args, res.code, res.stderr)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("certops run %v: stderr %q lacks %q", tt.args, res.stderr, w)
			}
		}
	}
}
