package trust_test

import (
	"errors"
	"testing"

	"certops/trust"
)

// FuzzVerify: no signature, however malformed, panics or verifies against
// an empty keyring; every refusal is a *VerifyError.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{
		"", "-----BEGIN PGP SIGNATURE-----\n\niQ==\n=AAAA\n-----END PGP SIGNATURE-----\n",
		"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
		"-----BEGIN SIGNED MESSAGE-----\n", "garbage",
	} {
		f.Add([]byte("tree 0\n\nmsg\n"), []byte(s))
	}
	f.Fuzz(func(t *testing.T, payload, sig []byte) {
		_, err := (&trust.Keyring{}).Verify(trust.Object{Kind: "commit", ID: "0", Payload: payload, Signature: sig})
		var ve *trust.VerifyError
		if err == nil || !errors.As(err, &ve) {
			t.Fatalf("Verify(%q) = %v, want a *VerifyError", sig, err)
		}
	})
}
