package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// Keys are standard files (DESIGN.md 9): the signing key an Ed25519
// private key in PEM (openssl genpkey -algorithm ed25519), the trusted key
// its public half (openssl pkey -pubout), the data key 32 random bytes in
// base64 (openssl rand -base64 32).

// SigningKey is a publisher's Ed25519 private key. It redacts itself in
// logs.
type SigningKey struct {
	priv ed25519.PrivateKey
}

// LogValue keeps the key out of logs.
func (k *SigningKey) LogValue() slog.Value { return slog.StringValue("[signing key " + k.ID() + "]") }

// Public returns the trusted key that verifies k's signatures.
func (k *SigningKey) Public() TrustedKey { return TrustedKey{pub: k.priv.Public().(ed25519.PublicKey)} }

// ID names the key: the first 16 hex digits of the SHA-256 of its public
// key.
func (k *SigningKey) ID() string { return k.Public().ID() }

func (k *SigningKey) sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// NewSigningKey wraps an Ed25519 private key.
func NewSigningKey(priv ed25519.PrivateKey) *SigningKey { return &SigningKey{priv: priv} }

// TrustedKey is an Ed25519 public key whose signatures a node accepts.
type TrustedKey struct {
	pub ed25519.PublicKey
}

// NewTrustedKey wraps an Ed25519 public key.
func NewTrustedKey(pub ed25519.PublicKey) TrustedKey { return TrustedKey{pub: pub} }

// ID names the key: the first 16 hex digits of the SHA-256 of the key.
func (k TrustedKey) ID() string {
	sum := sha256.Sum256(k.pub)
	return hex.EncodeToString(sum[:8])
}

// LoadSigningKey reads an Ed25519 private key in PEM (PKCS #8).
func LoadSigningKey(path string) (*SigningKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: want a PEM \"PRIVATE KEY\" block (openssl genpkey -algorithm ed25519)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: not a PKCS #8 private key", path)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: a %T, want Ed25519", path, k)
	}
	return &SigningKey{priv: priv}, nil
}

// LoadTrustedKey reads an Ed25519 public key in PEM (SubjectPublicKeyInfo).
func LoadTrustedKey(path string) (TrustedKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return TrustedKey{}, fmt.Errorf("trusted key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return TrustedKey{}, fmt.Errorf("trusted key %s: want a PEM \"PUBLIC KEY\" block (openssl pkey -pubout)", path)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return TrustedKey{}, fmt.Errorf("trusted key %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return TrustedKey{}, fmt.Errorf("trusted key %s: a %T, want Ed25519", path, k)
	}
	return TrustedKey{pub: pub}, nil
}

// DataKeySize is the size of the fleet data key.
const DataKeySize = 32

// LoadDataKey reads a data key file: 32 bytes in standard base64, spaces
// and newlines ignored.
func LoadDataKey(path string) (*DataKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(b), nil)))
	if err != nil {
		return nil, fmt.Errorf("data key %s: not base64 (openssl rand -base64 32)", path)
	}
	defer clear(raw)
	if len(raw) != DataKeySize {
		return nil, fmt.Errorf("data key %s: %d bytes, want %d", path, len(raw), DataKeySize)
	}
	return NewDataKey(raw)
}

var errKeySize = errors.New("data key must be 32 bytes")
