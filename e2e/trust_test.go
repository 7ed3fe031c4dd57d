package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// waitAttempt waits until the last attempt concerns rev and returns the
// status.
func (d *daemon) waitAttempt(rev string) statusDoc {
	d.tb.Helper()
	var s statusDoc
	eventually(d.tb, 60*time.Second, "an attempt on "+rev, func() (bool, string) {
		s, _ = d.status()
		if s.LastAttempt == nil {
			return false, "no attempt"
		}
		return s.LastAttempt.Revision == rev, s.LastAttempt.Revision + " " + s.LastAttempt.Result
	})
	return s
}

// attemptErrors is the last attempt's problems as text.
func attemptErrors(s statusDoc) string {
	var msgs []string
	if s.LastAttempt != nil {
		for _, e := range s.LastAttempt.Errors {
			msgs = append(msgs, e.Message)
		}
	}
	return strings.Join(msgs, "\n")
}

// shopFiles is the repository content serving leaf as shop.test.
func shopFiles(leaf *testLeaf) map[string]string {
	return map[string]string{"shop.yaml": string(entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{leaf}}.yaml())}
}

// TestVerifySignatures follows a repository with --verify-signatures head:
// a commit signed by a trusted OpenPGP key is served; an unsigned commit
// and one signed by an unknown key are stalled with the commit, the
// fingerprint and the reason in the status and the logs, while the
// verified revision keeps serving; a commit signed by a trusted SSH key is
// served; and at a restart with the Git server gone and the SSH key
// removed from the trusted keys, the data dir's revision is not restored.
func TestVerifySignatures(t *testing.T) {
	requireBinary(t)
	requireTool(t, "gpg")
	requireTool(t, "ssh-keygen")
	alice, mallory := fixtures.NewGPGKey(t, "alice"), fixtures.NewGPGKey(t, "mallory")
	ci := fixtures.NewSSHSigningKey(t, "ci")
	keys := fixtures.TrustedKeysDir(t, alice, ci)
	ca := newCA(t, "e2e trust CA")
	roots := pool(ca)
	r := fixtures.NewGitRepo(t)
	dataDir := t.TempDir()

	leafA := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
	revA := r.CommitSigned(t, alice, "shop: signed by alice", shopFiles(leafA))
	args := []string{"--source", r.FileURL(), "--data-dir", dataDir, "--interval", "300ms", "--verify-signatures", "head", "--trusted-keys", keys}
	d := startDaemon(t, args...)
	waitServed(t, d.listen, "shop.test", roots, leafA)
	if s := d.waitAttempt(revA); s.Applied == nil || s.Applied.Revision != revA {
		t.Fatalf("signed commit: status %+v, want %s applied", s, revA)
	}

	for _, tt := range []struct {
		name   string
		commit func(leaf *testLeaf) string
		want   []string // in the status error and the log line
	}{
		{"unsigned", func(l *testLeaf) string { return r.Commit(t, "shop: unsigned", shopFiles(l)) }, []string{"unsigned"}},
		{"unknown key", func(l *testLeaf) string { return r.CommitSigned(t, mallory, "shop: by mallory", shopFiles(l)) }, []string{"unknown key", mallory.Fingerprint}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rev := tt.commit(ca.issue(t, algECDSA, "shop.test", []string{"shop.test"}))
			s := d.waitAttempt(rev)
			if s.LastAttempt.Result != "stalled" {
				t.Fatalf("%s commit: result %q, want stalled", tt.name, s.LastAttempt.Result)
			}
			msg := attemptErrors(s)
			for _, w := range append(tt.want, rev[:12]) {
				if !strings.Contains(msg, w) {
					t.Errorf("%s commit: status errors %q lack %q", tt.name, msg, w)
				}
			}
			line := d.waitRevisionLogged(rev)
			if line["level"] != "WARN" || !strings.Contains(logText(line), tt.want[len(tt.want)-1]) {
				t.Errorf("%s commit: log line %v, want a warning naming %q", tt.name, line, tt.want[len(tt.want)-1])
			}
			waitServed(t, d.listen, "shop.test", roots, leafA) // the verified revision keeps serving
		})
	}

	leafC := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
	revC := r.CommitSigned(t, ci, "shop: signed with the CI's ssh key", shopFiles(leafC))
	waitServed(t, d.listen, "shop.test", roots, leafC)
	if s := d.waitAttempt(revC); s.Applied == nil || s.Applied.Revision != revC {
		t.Fatalf("ssh-signed commit: status %+v, want %s applied", s, revC)
	}
	d.stop()

	// Restart: the Git server is gone and the CI key is no longer
	// trusted. The data dir holds revC, which must not be served.
	if err := os.Remove(filepath.Join(keys, ci.FileName())); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(r.Bare(), r.Bare()+".gone"); err != nil {
		t.Fatal(err)
	}
	d2 := runDaemon(t, daemonConfig{args: args, noWait: true})
	line := d2.waitRevisionLogged(revC)
	if !strings.Contains(logText(line), "unknown key") {
		t.Errorf("restore of a revision signed by a removed key: log %v, want it refused as unknown key", line)
	}
	if code, _ := d2.get("/readyz"); code == 200 {
		t.Errorf("GET /readyz = 200 after the restore was refused, want 503")
	}
	if _, err := servedLeaf(d2.listen, "shop.test", roots); err == nil {
		t.Errorf("shop.test served after a refused restore")
	}
}

// TestVerifySignedTag follows a tag with --verify-signatures tag: a tag
// signed with an SSH key is served; the tag moved to an unsigned tag
// object is stalled as unsigned.
func TestVerifySignedTag(t *testing.T) {
	requireBinary(t)
	ci := fixtures.NewSSHSigningKey(t, "ci")
	keys := fixtures.TrustedKeysDir(t, ci)
	ca := newCA(t, "e2e trust CA")
	roots := pool(ca)
	r := fixtures.NewGitRepo(t)

	leafA := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
	revA := r.Commit(t, "shop: unsigned commit, signed tag", shopFiles(leafA))
	r.TagSigned(t, ci, "release", revA)
	d := startDaemon(t, "--source", r.FileURL(), "--ref", "release", "--interval", "300ms", "--verify-signatures", "tag", "--trusted-keys", keys)
	waitServed(t, d.listen, "shop.test", roots, leafA)

	revB := r.Commit(t, "shop: next", shopFiles(ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})))
	r.Tag(t, "release", revB) // annotated, unsigned
	s := d.waitAttempt(revB)
	if s.LastAttempt.Result != "stalled" || !strings.Contains(attemptErrors(s), "tag") || !strings.Contains(attemptErrors(s), "unsigned") {
		t.Errorf("unsigned tag: %+v %q, want stalled: tag unsigned", s.LastAttempt, attemptErrors(s))
	}
	waitServed(t, d.listen, "shop.test", roots, leafA)
}

// TestDiffVerifySignatures: certops diff refuses an unsigned head, so CI
// can gate a pull request on it, and diffs a signed one.
func TestDiffVerifySignatures(t *testing.T) {
	requireBinary(t)
	alice := fixtures.NewGPGKey(t, "alice")
	keys := fixtures.TrustedKeysDir(t, alice)
	ca := newCA(t, "e2e trust CA")
	r := fixtures.NewGitRepo(t)
	base := r.CommitSigned(t, alice, "base", shopFiles(ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})))
	signed := r.CommitSigned(t, alice, "signed head", shopFiles(ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})))
	unsigned := r.Commit(t, "unsigned head", shopFiles(ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})))

	res := certops(t, r.Work, nil, "diff", "--repo", r.Work, "--base", base, "--head", signed, "--verify-signatures", "head", "--trusted-keys", keys)
	if res.code != 0 || !strings.Contains(res.stdout, "shop") {
		t.Errorf("diff of a signed head: exit %d\n%s%s, want 0 with the plan", res.code, res.stdout, res.stderr)
	}
	res = certops(t, r.Work, nil, "diff", "--repo", r.Work, "--base", base, "--head", unsigned, "--verify-signatures", "head", "--trusted-keys", keys)
	if res.code != 1 || !strings.Contains(res.stderr, unsigned[:12]) || !strings.Contains(res.stderr, "unsigned") {
		t.Errorf("diff of an unsigned head: exit %d\n%s%s, want 1 naming the commit and the reason", res.code, res.stdout, res.stderr)
	}
}

// logText is a log line's message and fields as one string.
func logText(line map[string]any) string {
	b, _ := json.Marshal(line)
	return string(b)
}
