package trust

import (
	"bytes"
	"errors"
	"fmt"
)

// Format is the kind of a signature or key.
type Format string

const (
	FormatOpenPGP Format = "openpgp"
	FormatSSH     Format = "ssh"
	FormatX509    Format = "x509" // recognised, never trusted
)

func (f Format) String() string { return string(f) }

// Reasons a signature is refused; a [*VerifyError] wraps exactly one.
var (
	// ErrUnsigned: the object carries no signature.
	ErrUnsigned = errors.New("unsigned")
	// ErrUnknownKey: the signature names a key that is not trusted (never
	// was, or was removed from the trusted keys).
	ErrUnknownKey = errors.New("unknown key")
	// ErrBadSignature: the signature does not verify (the object was
	// changed, the signature is malformed, the key expired or was revoked,
	// or the format is not supported).
	ErrBadSignature = errors.New("bad signature")
	// ErrNotTag: the mode requires an annotated tag and the revision is
	// not one.
	ErrNotTag = errors.New("not an annotated tag")
)

// Object is one Git object to verify, as the source read it.
type Object struct {
	// Kind is "commit" or "tag".
	Kind string
	// ID is the object's id (hex).
	ID string
	// Payload is the object as Git hashes it without its signature: for a
	// commit, without the gpgsig header; for a tag, without the
	// signature appended to its message.
	Payload []byte
	// Signature is the armored signature; empty when the object is
	// unsigned.
	Signature []byte
}

// Signer is who signed an object, once verified.
type Signer struct {
	Format Format
	// Fingerprint is the signing key's fingerprint: upper-case hex for
	// OpenPGP (of the subkey that signed, when a subkey did), "SHA256:..."
	// for SSH, as `ssh-keygen -l` prints it.
	Fingerprint string
	// File is the trusted-keys file (for SSH, file:line) holding the key.
	File string
	// Identity is the key's OpenPGP primary user id, or the SSH key's
	// comment.
	Identity string
}

// VerifyError is a refused object: what was refused, by which key, and
// why. Err is one of ErrUnsigned, ErrUnknownKey, ErrBadSignature, ErrNotTag.
type VerifyError struct {
	Kind, ID string
	// Format and Fingerprint name the signature's key when the signature
	// names one; both are empty for an unsigned object.
	Format      Format
	Fingerprint string
	Err         error
	// Detail explains Err, such as the library's reason; may be empty.
	Detail string
}

func (e *VerifyError) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s: %v", e.Kind, short(e.ID), e.Err)
	if e.Fingerprint != "" {
		fmt.Fprintf(&b, " (%s key %s)", e.Format, e.Fingerprint)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

func (e *VerifyError) Unwrap() error { return e.Err }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Armor headers that open a signature, as git's gpg-interface.c knows them.
var (
	pgpBegin  = []byte("-----BEGIN PGP SIGNATURE-----")
	sshBegin  = []byte("-----BEGIN SSH SIGNATURE-----")
	x509Begin = []byte("-----BEGIN SIGNED MESSAGE-----")
)

// Verify checks obj's signature against the trusted keys and returns its
// signer, or a [*VerifyError]. A nil Keyring trusts no key.
func (k *Keyring) Verify(obj Object) (Signer, error) {
	if k == nil {
		k = &Keyring{}
	}
	sig := bytes.TrimSpace(obj.Signature)
	var s Signer
	var e *VerifyError
	switch {
	case len(sig) == 0:
		e = refuse("", "", ErrUnsigned, "")
	case bytes.HasPrefix(sig, pgpBegin):
		s, e = k.verifyOpenPGP(obj.Payload, sig)
	case bytes.HasPrefix(sig, sshBegin):
		s, e = k.verifySSH(obj.Payload, sig)
	case bytes.HasPrefix(sig, x509Begin):
		e = refuse(FormatX509, "", ErrBadSignature, "x509 (gpgsm) signatures are not supported")
	default:
		e = refuse("", "", ErrBadSignature, "not an armored OpenPGP or SSH signature")
	}
	if e != nil {
		e.Kind, e.ID = obj.Kind, obj.ID
		return Signer{}, e
	}
	return s, nil
}

// refuse builds a VerifyError; Verify fills in the object.
func refuse(format Format, fpr string, err error, detail string) *VerifyError {
	return &VerifyError{Format: format, Fingerprint: fpr, Err: err, Detail: detail}
}

// Revision is what a ref points to: a commit, and the annotated tag on the
// way when the ref is one.
type Revision struct {
	Commit Object
	// Tag is the annotated tag the ref points to; nil for a branch, a
	// commit id, or a lightweight tag.
	Tag *Object
}

// Verified is the outcome of a successful [Keyring.VerifyRevision]: the
// signers the mode required (nil where it required none).
type Verified struct {
	Mode   Mode
	Commit *Signer
	Tag    *Signer
}

// VerifyRevision checks what mode requires of rev: the commit (ModeHead),
// the annotated tag (ModeTag), or both (ModeTagAndHead, the tag first).
// ModeOff verifies nothing and succeeds. The error is a [*VerifyError].
func (k *Keyring) VerifyRevision(mode Mode, rev Revision) (Verified, error) {
	v := Verified{Mode: mode}
	if mode.Tag() {
		if rev.Tag == nil {
			return v, &VerifyError{Kind: rev.Commit.Kind, ID: rev.Commit.ID, Err: ErrNotTag,
				Detail: fmt.Sprintf("--verify-signatures %s needs the ref to be an annotated tag", mode)}
		}
		s, err := k.Verify(*rev.Tag)
		if err != nil {
			return v, err
		}
		v.Tag = &s
	}
	if mode.Head() {
		s, err := k.Verify(rev.Commit)
		if err != nil {
			return v, err
		}
		v.Commit = &s
	}
	return v, nil
}
