package trust_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"certops/fixtures"
	"certops/trust"
)

func commitObject(tb testing.TB, r *fixtures.GitRepo, id string) trust.Object {
	tb.Helper()
	return trust.CommitObject(id, r.CatFile(tb, "commit", id))
}

func tagObject(tb testing.TB, r *fixtures.GitRepo, name string) trust.Object {
	tb.Helper()
	id := r.RevParse(tb, "refs/tags/"+name)
	return trust.TagObject(id, r.CatFile(tb, "tag", id))
}

// signers are made once: gpg key generation costs a second or so.
type signers struct {
	alice, mallory      *fixtures.GPGKey
	aliceSSH, malorySSH *fixtures.SSHSigningKey
}

func newSigners(tb testing.TB) signers {
	return signers{
		alice:     fixtures.NewGPGKey(tb, "alice"),
		mallory:   fixtures.NewGPGKey(tb, "mallory"),
		aliceSSH:  fixtures.NewSSHSigningKey(tb, "alice-ssh"),
		malorySSH: fixtures.NewSSHSigningKey(tb, "mallory-ssh"),
	}
}

func loadDir(tb testing.TB, dir string) *trust.Keyring {
	tb.Helper()
	k, err := trust.LoadDir(dir)
	if err != nil {
		tb.Fatalf("LoadDir(%q) = %v", dir, err)
	}
	return k
}

// tamper changes a payload the way a rewritten commit would: its message.
func tamper(o trust.Object) trust.Object {
	o.Payload = bytes.Replace(o.Payload, []byte("\n\n"), []byte("\n\nrotated by mallory\n"), 1)
	return o
}

func TestVerifyRealSignatures(t *testing.T) {
	s := newSigners(t)
	r := fixtures.NewGitRepo(t)
	unsigned := r.Commit(t, "unsigned", map[string]string{"a.yaml": "a"})
	byAlice := r.CommitSigned(t, s.alice, "signed by alice", map[string]string{"a.yaml": "b"})
	byMallory := r.CommitSigned(t, s.mallory, "signed by mallory", map[string]string{"a.yaml": "c"})
	byAliceSSH := r.CommitSigned(t, s.aliceSSH, "ssh-signed by alice", map[string]string{"a.yaml": "d"})
	byMallorySSH := r.CommitSigned(t, s.malorySSH, "ssh-signed by mallory", map[string]string{"a.yaml": "e"})

	all := loadDir(t, fixtures.TrustedKeysDir(t, s.alice, s.aliceSSH))
	// A removed key: alice's OpenPGP key is no longer trusted.
	removedDir := fixtures.TrustedKeysDir(t, s.alice, s.aliceSSH)
	if err := os.Remove(filepath.Join(removedDir, s.alice.FileName())); err != nil {
		t.Fatal(err)
	}
	removed := loadDir(t, removedDir)

	tests := []struct {
		name    string
		keys    *trust.Keyring
		obj     trust.Object
		wantErr error
		wantFpr string
		format  trust.Format
	}{
		{"unsigned", all, commitObject(t, r, unsigned), trust.ErrUnsigned, "", ""},
		{"openpgp trusted", all, commitObject(t, r, byAlice), nil, s.alice.Fingerprint, trust.FormatOpenPGP},
		{"openpgp unknown key", all, commitObject(t, r, byMallory), trust.ErrUnknownKey, s.mallory.Fingerprint, trust.FormatOpenPGP},
		{"openpgp changed payload", all, tamper(commitObject(t, r, byAlice)), trust.ErrBadSignature, s.alice.Fingerprint, trust.FormatOpenPGP},
		{"openpgp removed key", removed, commitObject(t, r, byAlice), trust.ErrUnknownKey, s.alice.Fingerprint, trust.FormatOpenPGP},
		{"ssh trusted", all, commitObject(t, r, byAliceSSH), nil, s.aliceSSH.Fingerprint, trust.FormatSSH},
		{"ssh unknown key", all, commitObject(t, r, byMallorySSH), trust.ErrUnknownKey, s.malorySSH.Fingerprint, trust.FormatSSH},
		{"ssh changed payload", all, tamper(commitObject(t, r, byAliceSSH)), trust.ErrBadSignature, s.aliceSSH.Fingerprint, trust.FormatSSH},
		{"ssh still trusted after the openpgp key left", removed, commitObject(t, r, byAliceSSH), nil, s.aliceSSH.Fingerprint, trust.FormatSSH},
		{"nil keyring", nil, commitObject(t, r, byAlice), trust.ErrUnknownKey, s.alice.Fingerprint, trust.FormatOpenPGP},
		{"garbage signature", all, trust.Object{Kind: "commit", ID: byAlice, Payload: []byte("x"), Signature: []byte("hello")}, trust.ErrBadSignature, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signer, err := tt.keys.Verify(tt.obj)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify(%s) = %v, want %v", tt.name, err, tt.wantErr)
			}
			if err == nil {
				if signer.Fingerprint != tt.wantFpr || signer.Format != tt.format || signer.File == "" {
					t.Errorf("Verify(%s) signer = %+v, want fingerprint %s format %s and a file", tt.name, signer, tt.wantFpr, tt.format)
				}
				return
			}
			var ve *trust.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify(%s) = %T, want *trust.VerifyError", tt.name, err)
			}
			if ve.Fingerprint != tt.wantFpr || ve.Format != tt.format || ve.ID != tt.obj.ID || ve.Kind != "commit" {
				t.Errorf("Verify(%s) error = %+v, want fingerprint %q format %q id %s", tt.name, ve, tt.wantFpr, tt.format, tt.obj.ID)
			}
			if !strings.Contains(err.Error(), tt.obj.ID[:12]) || !strings.Contains(err.Error(), tt.wantFpr) {
				t.Errorf("Verify(%s) error %q names neither the commit nor the key", tt.name, err)
			}
		})
	}
}

func TestVerifyRevisionModes(t *testing.T) {
	s := newSigners(t)
	r := fixtures.NewGitRepo(t)
	keys := loadDir(t, fixtures.TrustedKeysDir(t, s.alice, s.aliceSSH))

	unsigned := r.Commit(t, "unsigned", map[string]string{"a.yaml": "a"})
	r.TagSigned(t, s.alice, "v1", unsigned) // signed tag on an unsigned commit
	r.TagSigned(t, s.mallory, "v1-mallory", unsigned)
	signed := r.CommitSigned(t, s.aliceSSH, "signed", map[string]string{"a.yaml": "b"})
	r.TagSigned(t, s.aliceSSH, "v2", signed) // ssh-signed tag on a signed commit
	r.Tag(t, "v2-unsigned", signed)

	rev := func(commit, tag string) trust.Revision {
		rv := trust.Revision{Commit: commitObject(t, r, commit)}
		if tag != "" {
			o := tagObject(t, r, tag)
			rv.Tag = &o
		}
		return rv
	}
	tests := []struct {
		name    string
		mode    trust.Mode
		rev     trust.Revision
		wantErr error
		kind    string // the refused object
	}{
		{"off verifies nothing", trust.ModeOff, rev(unsigned, ""), nil, ""},
		{"head: unsigned commit", trust.ModeHead, rev(unsigned, ""), trust.ErrUnsigned, "commit"},
		{"head: signed commit", trust.ModeHead, rev(signed, ""), nil, ""},
		{"head ignores the tag", trust.ModeHead, rev(signed, "v2-unsigned"), nil, ""},
		{"tag: not a tag", trust.ModeTag, rev(signed, ""), trust.ErrNotTag, "commit"},
		{"tag: signed tag on unsigned commit", trust.ModeTag, rev(unsigned, "v1"), nil, ""},
		{"tag: unsigned tag", trust.ModeTag, rev(signed, "v2-unsigned"), trust.ErrUnsigned, "tag"},
		{"tag: tag by unknown key", trust.ModeTag, rev(unsigned, "v1-mallory"), trust.ErrUnknownKey, "tag"},
		{"tag-and-head: unsigned commit", trust.ModeTagAndHead, rev(unsigned, "v1"), trust.ErrUnsigned, "commit"},
		{"tag-and-head: both signed (ssh)", trust.ModeTagAndHead, rev(signed, "v2"), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := keys.VerifyRevision(tt.mode, tt.rev)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("VerifyRevision(%s, %s) = %v, want %v", tt.mode, tt.name, err, tt.wantErr)
			}
			if err != nil {
				var ve *trust.VerifyError
				if !errors.As(err, &ve) || ve.Kind != tt.kind {
					t.Errorf("VerifyRevision(%s, %s) refused %+v, want the %s", tt.mode, tt.name, ve, tt.kind)
				}
				return
			}
			if (v.Commit != nil) != tt.mode.Head() || (v.Tag != nil) != tt.mode.Tag() {
				t.Errorf("VerifyRevision(%s, %s) = %+v, want signers for head %v tag %v", tt.mode, tt.name, v, tt.mode.Head(), tt.mode.Tag())
			}
		})
	}
}

func TestSSHNamespaces(t *testing.T) {
	k := fixtures.NewSSHSigningKey(t, "ci")
	r := fixtures.NewGitRepo(t)
	id := r.CommitSigned(t, k, "signed", map[string]string{"a.yaml": "a"})
	obj := commitObject(t, r, id)
	for _, tt := range []struct {
		name, option string
		wantErr      error
	}{
		{"git allowed", `namespaces="file,git" `, nil},
		{"git not allowed", `namespaces="file" `, trust.ErrBadSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "ci.sshpub"), append([]byte(tt.option), k.Public()...), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := loadDir(t, dir).Verify(obj); !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify with %s = %v, want %v", tt.option, err, tt.wantErr)
			}
		})
	}
}
