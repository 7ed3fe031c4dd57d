package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"math/big"
	"math/bits"
)

// keyForm is how a private key is stored in a snapshot's arena.
//
// ECDSA and Ed25519 keys are stored raw, with their public part, so that
// building an entry on a cache miss copies bytes instead of parsing: a
// PKCS#8 P-256 key costs ~28 µs to parse (it recomputes the public point
// from the scalar), the raw form ~0.2 µs. Apply checked that the key
// matches its certificate before storing it, so the stored public part is
// the key's own. Other keys (RSA) are stored as PKCS#8 and parsed on use.
type keyForm uint8

const (
	keyPKCS8   keyForm = iota // PKCS#8 DER
	keyP256                   // D || X || Y, 32 bytes each
	keyP384                   // D || X || Y, 48 bytes each
	keyP521                   // D || X || Y, 66 bytes each
	keyEd25519                // the 64-byte ed25519.PrivateKey (seed || public)
)

var ecForms = []struct {
	form  keyForm
	curve elliptic.Curve
}{{keyP256, elliptic.P256()}, {keyP384, elliptic.P384()}, {keyP521, elliptic.P521()}}

// encodeKey returns the stored form of a key; the caller clears the bytes
// once copied. A key that has none (an opaque crypto.Signer) is an error.
//
// An ECDSA key is encoded from its scalar and public point as they are,
// not with its Bytes methods: for those crypto/ecdsa converts the key to
// its FIPS form and caches that form for as long as the key lives, by a
// weak pointer with a cleanup. Apply encodes every key of a configuration
// once and drops it, so the cache only filled with entries for keys about
// to die: for 100,000 entities ~35 MB and 100,000 cleanups in the first
// seconds of serving (issue 13). The caller has checked that the public
// point is the certificate's, which crypto/x509 validated; the scalar is
// checked here as crypto/ecdsa checks it before signing.
func encodeKey(signer crypto.Signer) (keyForm, []byte, error) {
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		for _, f := range ecForms {
			if k.Curve != f.curve {
				continue
			}
			params := f.curve.Params()
			size := (params.BitSize + 7) / 8
			if !below(k.D, params.N) || k.D.Sign() == 0 || !below(k.X, params.P) || !below(k.Y, params.P) {
				return 0, nil, errors.New("invalid ECDSA key")
			}
			out := make([]byte, 3*size)
			k.D.FillBytes(out[:size])
			k.X.FillBytes(out[size : 2*size])
			k.Y.FillBytes(out[2*size:])
			return f.form, out, nil
		}
	case ed25519.PrivateKey:
		if len(k) == ed25519.PrivateKeySize {
			return keyEd25519, append([]byte(nil), k...), nil
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	return keyPKCS8, der, err
}

// below reports whether 0 <= v < limit (false for nil). Below the
// curve's order or prime, v fits in the curve's size in bytes.
func below(v, limit *big.Int) bool {
	return v != nil && v.Sign() >= 0 && v.Cmp(limit) < 0
}

// rawEC reports whether the chain's key is an ECDSA key stored raw.
func (c *chainRec) rawEC() bool {
	return c.pinned < 0 && (c.keyForm == keyP256 || c.keyForm == keyP384 || c.keyForm == keyP521)
}

// decodeKey rebuilds a key stored by encodeKey. The result does not refer
// to b. An ECDSA key is built in k when k is not nil (own is true then).
func decodeKey(form keyForm, b []byte, k *ecKey) (key crypto.PrivateKey, own bool, err error) {
	switch form {
	case keyPKCS8:
		k, err := x509.ParsePKCS8PrivateKey(b)
		if err != nil {
			return nil, false, errors.New("parse private key") // never the key bytes
		}
		return k, false, nil
	case keyEd25519:
		if len(b) != ed25519.PrivateKeySize {
			return nil, false, errors.New("bad stored Ed25519 key")
		}
		return ed25519.PrivateKey(append([]byte(nil), b...)), false, nil
	}
	for _, f := range ecForms {
		if f.form != form {
			continue
		}
		size := (f.curve.Params().BitSize + 7) / 8
		if len(b) != 3*size {
			return nil, false, errors.New("bad stored ECDSA key")
		}
		if k == nil {
			k = new(ecKey)
		} else {
			own = true
		}
		return k.set(f.curve, b[:size], b[size:2*size], b[2*size:]), own, nil
	}
	return nil, false, errors.New("unknown stored key form")
}

// ecKey is an ECDSA private key with its big.Ints and their words: one
// allocation (with the entry that holds it, see entryAlloc) instead of
// seven.
type ecKey struct {
	k       ecdsa.PrivateKey
	x, y, d big.Int
	words   [3 * ecWords]big.Word
}

// ecWords is the number of words of a P-521 coordinate or scalar (66
// bytes), the largest of ecForms.
const ecWords = (66 + bits.UintSize/8 - 1) / (bits.UintSize / 8)

// set builds the key of scalar d and public point (x, y), big-endian, in
// k. The deprecated big.Int fields are the only way to build a key from
// its scalar and public point without recomputing the point; crypto/ecdsa
// checks the point is on the curve when it first signs with it.
func (k *ecKey) set(curve elliptic.Curve, d, x, y []byte) *ecdsa.PrivateKey {
	// Each big.Int starts empty on its share of words, which SetBytes
	// fills without allocating: every coordinate fits.
	w := k.words[:]
	k.x.SetBits(w[0:0:ecWords]).SetBytes(x)
	k.y.SetBits(w[ecWords : ecWords : 2*ecWords]).SetBytes(y)
	k.d.SetBits(w[2*ecWords : 2*ecWords : 3*ecWords]).SetBytes(d)
	k.k = ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: curve, X: &k.x, Y: &k.y}, D: &k.d}
	return &k.k
}
