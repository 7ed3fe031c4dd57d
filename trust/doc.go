// Package trust decides whether a Git revision was signed by a trusted key,
// before certops applies it (a compromised Git account or a force-push must
// not be able to rotate a fleet's certificates).
//
// Trusted keys are files in one directory ([LoadDir]): *.asc holds armored
// OpenPGP public keys (any number per file), *.sshpub holds SSH public keys,
// one per line, as in an allowed_signers file without principals. A
// [Keyring] verifies the signature of one Git object ([Keyring.Verify]) or
// of a revision under a [Mode] ([Keyring.VerifyRevision]): the commit, its
// annotated tag, or both.
//
// OpenPGP signatures are verified with github.com/ProtonMail/go-crypto, the
// library go-git itself uses; SSH signatures (the SSHSIG format of
// OpenSSH's PROTOCOL.sshsig, namespace "git", what `git -c gpg.format=ssh`
// writes) with github.com/hiddeco/sshsig. X.509 (gpgsm) signatures are
// refused as bad.
//
// The package knows nothing of go-git: the source hands it the payload (the
// object as Git hashes it, without its signature) and the armored
// signature. A refusal is a [*VerifyError] naming the object, the signer's
// key fingerprint when the signature names one, and the reason, which is
// one of [ErrUnsigned], [ErrUnknownKey], [ErrBadSignature] or [ErrNotTag]
// for errors.Is. A Keyring is immutable once loaded and safe for concurrent
// use; it holds public keys only.
package trust
