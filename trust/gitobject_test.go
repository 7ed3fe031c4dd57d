package trust_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"certops/fixtures"
	"certops/trust"
)

// TestSplitMatchesTheTools checks CommitObject and TagObject against the
// real tools: the payload and signature they return verify with gpg
// --verify and ssh-keygen -Y check-novalidate, and an unsigned object is
// all payload.
func TestSplitMatchesTheTools(t *testing.T) {
	s := newSigners(t)
	r := fixtures.NewGitRepo(t)
	unsigned := r.Commit(t, "unsigned\n\nwith a body\n", map[string]string{"a.yaml": "a"})
	byGPG := r.CommitSigned(t, s.alice, "signed\n\nbody line\n", map[string]string{"a.yaml": "b"})
	bySSH := r.CommitSigned(t, s.aliceSSH, "ssh-signed", map[string]string{"a.yaml": "c"})
	r.TagSigned(t, s.alice, "v1", byGPG)
	r.TagSigned(t, s.aliceSSH, "v2", bySSH)

	raw := r.CatFile(t, "commit", unsigned)
	if o := trust.CommitObject(unsigned, raw); !bytes.Equal(o.Payload, raw) || o.IsSigned() {
		t.Errorf("CommitObject(unsigned) = payload %q, signature %q; want the raw object and no signature", o.Payload, o.Signature)
	}
	gpgVerify := func(t *testing.T, o trust.Object) {
		dir := t.TempDir()
		sig, payload := filepath.Join(dir, "sig"), filepath.Join(dir, "payload")
		os.WriteFile(sig, o.Signature, 0o600)
		os.WriteFile(payload, o.Payload, 0o600)
		cmd := exec.Command("gpg", "--batch", "--verify", sig, payload)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+s.alice.Home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("gpg --verify of the %s %s split: %v\n%s", o.Kind, o.ID, err, out)
		}
	}
	sshVerify := func(t *testing.T, o trust.Object) {
		sig := filepath.Join(t.TempDir(), "sig")
		os.WriteFile(sig, o.Signature, 0o600)
		cmd := exec.Command("ssh-keygen", "-Y", "check-novalidate", "-n", "git", "-s", sig)
		cmd.Stdin = bytes.NewReader(o.Payload)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("ssh-keygen -Y check-novalidate of the %s %s split: %v\n%s", o.Kind, o.ID, err, out)
		}
	}
	t.Run("gpg commit", func(t *testing.T) { gpgVerify(t, commitObject(t, r, byGPG)) })
	t.Run("gpg tag", func(t *testing.T) { gpgVerify(t, tagObject(t, r, "v1")) })
	t.Run("ssh commit", func(t *testing.T) { sshVerify(t, commitObject(t, r, bySSH)) })
	t.Run("ssh tag", func(t *testing.T) { sshVerify(t, tagObject(t, r, "v2")) })
}

func TestTagObjectIgnoresArmorInsideALine(t *testing.T) {
	raw := []byte("object 0\ntype commit\ntag v1\ntagger x <x@y> 0 +0000\n\nquote: -----BEGIN PGP SIGNATURE----- is how it starts\n")
	if o := trust.TagObject("1", raw); o.IsSigned() || !bytes.Equal(o.Payload, raw) {
		t.Errorf("TagObject = signature %q, want none", o.Signature)
	}
}
