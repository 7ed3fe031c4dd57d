package trust

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"golang.org/x/crypto/ssh"
)

// Keyring is a set of trusted public keys. It is immutable and safe for
// concurrent use. The zero Keyring trusts no key.
type Keyring struct {
	pgp     openpgp.EntityList
	pgpFile map[uint64]string // key id of a primary key or subkey -> file it came from
	ssh     []sshKey
}

type sshKey struct {
	key        ssh.PublicKey
	file       string // file:line it came from
	comment    string
	namespaces []string // from a namespaces="..." option; nil allows every namespace
}

// Key describes one trusted key, for logs and --help output.
type Key struct {
	Format      Format
	Fingerprint string
	File        string
	Identity    string // the OpenPGP user id, or the SSH key's comment
}

// LoadDir reads the trusted keys of dir: every *.asc file (armored OpenPGP
// public keys, several per file allowed) and every *.sshpub file (SSH public
// keys, one per line in authorized_keys form; blank lines and lines
// starting with # are skipped; the only option honoured is
// namespaces="git,...", and a key with cert-authority or another option is
// refused, since its meaning would be silently dropped). Other files and
// dot-files are ignored. A directory without any key is an error: it
// would refuse every revision. Errors name the file, and for *.sshpub the
// line.
func LoadDir(dir string) (*Keyring, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("trusted keys: %w", err)
	}
	k := &Keyring{pgpFile: make(map[uint64]string)}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, name)
		switch filepath.Ext(name) {
		case ".asc":
			src, err := os.ReadFile(path)
			if err == nil {
				err = k.addOpenPGP(path, src)
			}
			if err != nil {
				errs = append(errs, err)
			}
		case ".sshpub":
			src, err := os.ReadFile(path)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, k.addSSH(path, src)...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(k.pgp) == 0 && len(k.ssh) == 0 {
		return nil, fmt.Errorf("trusted keys %s: no *.asc or *.sshpub key", dir)
	}
	return k, nil
}

// addOpenPGP adds the keys of one armored file.
func (k *Keyring) addOpenPGP(file string, src []byte) error {
	list, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(src))
	if err != nil {
		return fmt.Errorf("%s: openpgp public key: %w", file, err)
	}
	for _, e := range list {
		if e.PrivateKey != nil {
			// A trusted-keys directory is public material; a secret key
			// there is a mistake worth stopping for.
			return fmt.Errorf("%s: holds an openpgp private key; export the public key with gpg --armor --export", file)
		}
		k.pgpFile[e.PrimaryKey.KeyId] = file
		for _, sub := range e.Subkeys {
			k.pgpFile[sub.PublicKey.KeyId] = file
		}
	}
	k.pgp = append(k.pgp, list...)
	return nil
}

// addSSH adds the keys of one *.sshpub file, collecting an error per bad
// line.
func (k *Keyring) addSSH(file string, src []byte) []error {
	var errs []error
	for i, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		at := fmt.Sprintf("%s:%d", file, i+1)
		pub, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: ssh public key: %w", at, err))
			continue
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			errs = append(errs, fmt.Errorf("%s: one key per line", at))
			continue
		}
		key := sshKey{key: pub, file: at, comment: comment}
		for _, o := range options {
			name, value, _ := strings.Cut(o, "=")
			if !strings.EqualFold(name, "namespaces") {
				errs = append(errs, fmt.Errorf("%s: option %q is not supported (only namespaces=)", at, name))
				continue
			}
			key.namespaces = strings.Split(strings.Trim(value, `"`), ",")
		}
		if _, ok := pub.(*ssh.Certificate); ok {
			errs = append(errs, fmt.Errorf("%s: ssh certificates are not supported; list the signing key itself", at))
			continue
		}
		k.ssh = append(k.ssh, key)
	}
	return errs
}

// Keys lists the trusted keys, OpenPGP first, in the order they were read.
func (k *Keyring) Keys() []Key {
	if k == nil {
		return nil
	}
	var keys []Key
	for _, e := range k.pgp {
		keys = append(keys, Key{
			Format:      FormatOpenPGP,
			Fingerprint: pgpFingerprint(e.PrimaryKey.Fingerprint),
			File:        k.pgpFile[e.PrimaryKey.KeyId],
			Identity:    primaryIdentity(e),
		})
	}
	for _, s := range k.ssh {
		keys = append(keys, Key{Format: FormatSSH, Fingerprint: ssh.FingerprintSHA256(s.key), File: s.file, Identity: s.comment})
	}
	return keys
}

// primaryIdentity returns the primary user id of e.
func primaryIdentity(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return ""
}
