package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"testing"
)

func TestKeyForms(t *testing.T) {
	gen := func(f func() (crypto.Signer, error)) crypto.Signer {
		k, err := f()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ec := func(c elliptic.Curve) crypto.Signer {
		return gen(func() (crypto.Signer, error) { return ecdsa.GenerateKey(c, rand.Reader) })
	}
	tests := []struct {
		name string
		key  crypto.Signer
		form keyForm
	}{
		{"P-256", ec(elliptic.P256()), keyP256},
		{"P-384", ec(elliptic.P384()), keyP384},
		{"P-521", ec(elliptic.P521()), keyP521},
		{"Ed25519", gen(func() (crypto.Signer, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }), keyEd25519},
		{"RSA-2048", gen(func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }), keyPKCS8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, raw, err := encodeKey(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if form != tt.form {
				t.Errorf("encodeKey(%s) form = %d, want %d", tt.name, form, tt.form)
			}
			got, _, err := decodeKey(form, raw, nil)
			if err != nil {
				t.Fatalf("decodeKey(%s): %v", tt.name, err)
			}
			signer := got.(crypto.Signer)
			if !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.key.Public()) {
				t.Errorf("decodeKey(%s): public key differs", tt.name)
			}
			// The decoded key signs what the original's public key verifies.
			msg := sha256.Sum256([]byte("certops"))
			var opts crypto.SignerOpts = crypto.SHA256
			digest := msg[:]
			if tt.form == keyEd25519 {
				opts, digest = crypto.Hash(0), []byte("certops")
			}
			sig, err := signer.Sign(rand.Reader, digest, opts)
			if err != nil {
				t.Fatalf("Sign with decodeKey(%s): %v", tt.name, err)
			}
			var ok bool
			switch pub := tt.key.Public().(type) {
			case *ecdsa.PublicKey:
				ok = ecdsa.VerifyASN1(pub, digest, sig)
			case ed25519.PublicKey:
				ok = ed25519.Verify(pub, digest, sig)
			case *rsa.PublicKey:
				ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) == nil
			}
			if !ok {
				t.Errorf("signature of decodeKey(%s) does not verify", tt.name)
			}
			// A stored form of the wrong length is refused, never read.
			if _, _, err := decodeKey(form, raw[:len(raw)-1], nil); err == nil {
				t.Errorf("decodeKey(%s) of a truncated key succeeded", tt.name)
			}
		})
	}
	if _, _, err := decodeKey(keyPKCS8, []byte("not a key"), nil); err == nil || err.Error() != "parse private key" {
		t.Errorf("decodeKey(garbage) = %v, want parse private key", err)
	}
}

// TestEncodeKeyECDSA checks that an ECDSA key is stored from its scalar
// and point alone: one allocation, its stored form. Through the key's
// Bytes methods crypto/ecdsa would also have made and cached the key's
// FIPS form, with a cleanup, for every key Apply stores (issue 13). A
// scalar out of range is refused, as crypto/ecdsa refuses it to sign.
func TestEncodeKeyECDSA(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	want, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	fresh := *k // a key crypto/ecdsa has not seen: k's FIPS form is cached now
	var raw []byte
	allocs := testing.AllocsPerRun(20, func() {
		if _, raw, err = encodeKey(&fresh); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("encodeKey(P-256) made %v allocations, want 1 (its stored form)", allocs)
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if got := raw[:32]; string(got) != string(want) {
		t.Error("stored scalar differs from the key's")
	}
	if got := raw[32:]; string(got) != string(pub[1:]) {
		t.Error("stored point differs from the key's")
	}

	n := elliptic.P256().Params().N
	for name, d := range map[string]*big.Int{"zero": new(big.Int), "order": n, "negative": big.NewInt(-1), "nil": nil} {
		bad := *k
		bad.D = d
		if _, _, err := encodeKey(&bad); err == nil {
			t.Errorf("encodeKey with a %s scalar succeeded", name)
		}
	}
}
