package fleet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
)

// DataKey seals private keys and session-ticket keys with AES-256-GCM.
// Two subkeys are derived from the 32-byte key with HKDF-SHA256: one
// encrypts, one derives the nonce of entity keys from their content, so
// that an unchanged entity seals to the same bytes and keeps its blob
// digest (a deterministic, SIV-like construction: equal ciphertexts reveal
// only equal plaintexts of one entity field). It redacts itself in logs.
type DataKey struct {
	aead     cipher.AEAD
	nonceKey []byte
}

// NewDataKey derives the sealing keys from raw, which must be 32 bytes.
func NewDataKey(raw []byte) (*DataKey, error) {
	if len(raw) != DataKeySize {
		return nil, errKeySize
	}
	enc, err := hkdf.Key(sha256.New, raw, nil, "certops fleet seal v1", 32)
	if err != nil {
		return nil, err
	}
	nk, err := hkdf.Key(sha256.New, raw, nil, "certops fleet nonce v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(enc)
	clear(enc)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &DataKey{aead: aead, nonceKey: nk}, nil
}

// LogValue keeps the key out of logs.
func (k *DataKey) LogValue() slog.Value { return slog.StringValue("[data key redacted]") }

// sealedPrefix marks a sealed value in a blob. A secret reference starts
// with "$" and a literal key with "-----BEGIN", so neither is mistaken for
// it.
const sealedPrefix = "sealed:aes-256-gcm:"

// sealDeterministic seals plaintext bound to context (fleet, entity,
// field) with a nonce derived from both.
func (k *DataKey) sealDeterministic(context string, plaintext []byte) string {
	m := hmac.New(sha256.New, k.nonceKey)
	m.Write([]byte(context))
	m.Write([]byte{0})
	m.Write(plaintext)
	nonce := m.Sum(nil)[:k.aead.NonceSize()]
	return sealedPrefix + base64.StdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plaintext, []byte(context)))
}

// sealRandom seals plaintext bound to context with a random nonce.
func (k *DataKey) sealRandom(context string, plaintext []byte) string {
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	return sealedPrefix + base64.StdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plaintext, []byte(context)))
}

var errNotSealed = errors.New("not a sealed value")

// open returns the plaintext of a value sealed with the same context.
func (k *DataKey) open(context, sealed string) ([]byte, error) {
	s, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return nil, errNotSealed
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, errors.New("sealed value does not decode")
	}
	n := k.aead.NonceSize()
	pt, err := k.aead.Open(nil, b[:n], b[n:], []byte(context))
	if err != nil {
		return nil, errors.New("sealed value does not open with this data key")
	}
	return pt, nil
}

// isSealed reports whether v is a sealed value.
func isSealed(v string) bool { return strings.HasPrefix(v, sealedPrefix) }
