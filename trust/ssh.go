package trust

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// gitNamespace is the SSHSIG namespace git signs commits and tags in
// (gpg-interface.c: "-n git").
const gitNamespace = "git"

// verifySSH checks an armored SSHSIG signature over payload. The signature
// embeds its public key, so an unknown key is named by its fingerprint.
func (k *Keyring) verifySSH(payload, armored []byte) (Signer, *VerifyError) {
	sig, err := sshsig.Unarmor(armored)
	if err != nil {
		return Signer{}, refuse(FormatSSH, "", ErrBadSignature, fmt.Sprintf("ssh signature: %v", err))
	}
	fpr := ssh.FingerprintSHA256(sig.PublicKey)
	i := slices.IndexFunc(k.ssh, func(t sshKey) bool { return bytes.Equal(t.key.Marshal(), sig.PublicKey.Marshal()) })
	if i < 0 {
		return Signer{}, refuse(FormatSSH, fpr, ErrUnknownKey, "not among the trusted keys")
	}
	trusted := k.ssh[i]
	if trusted.namespaces != nil && !slices.Contains(trusted.namespaces, gitNamespace) {
		return Signer{}, refuse(FormatSSH, fpr, ErrBadSignature, fmt.Sprintf("%s allows namespaces %q, not %q", trusted.file, trusted.namespaces, gitNamespace))
	}
	if err := sshsig.Verify(bytes.NewReader(payload), sig, trusted.key, sig.HashAlgorithm, gitNamespace); err != nil {
		if errors.Is(err, sshsig.ErrNamespaceMismatch) {
			return Signer{}, refuse(FormatSSH, fpr, ErrBadSignature, fmt.Sprintf("namespace %q, want %q", sig.Namespace, gitNamespace))
		}
		return Signer{}, refuse(FormatSSH, fpr, ErrBadSignature, err.Error())
	}
	return Signer{Format: FormatSSH, Fingerprint: fpr, File: trusted.file, Identity: trusted.comment}, nil
}
