package trust

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// verifyOpenPGP checks an armored detached OpenPGP signature over payload.
// It returns the signer, or a refusal naming the key the signature names
// (the issuer fingerprint subpacket, else the 64-bit key id).
func (k *Keyring) verifyOpenPGP(payload, armored []byte) (Signer, *VerifyError) {
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		return Signer{}, refuse(FormatOpenPGP, "", ErrBadSignature, fmt.Sprintf("armor: %v", err))
	}
	if block.Type != openpgp.SignatureType {
		return Signer{}, refuse(FormatOpenPGP, "", ErrBadSignature, fmt.Sprintf("armor type %q, want %q", block.Type, openpgp.SignatureType))
	}
	raw, err := io.ReadAll(block.Body)
	if err != nil {
		return Signer{}, refuse(FormatOpenPGP, "", ErrBadSignature, fmt.Sprintf("armor: %v", err))
	}
	p, err := packet.Read(bytes.NewReader(raw))
	if err != nil {
		return Signer{}, refuse(FormatOpenPGP, "", ErrBadSignature, fmt.Sprintf("signature packet: %v", err))
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return Signer{}, refuse(FormatOpenPGP, "", ErrBadSignature, fmt.Sprintf("packet %T is not a signature", p))
	}
	var fpr string
	switch {
	case len(sig.IssuerFingerprint) > 0:
		fpr = pgpFingerprint(sig.IssuerFingerprint)
	case sig.IssuerKeyId != nil:
		fpr = fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	if sig.SigType != packet.SigTypeBinary && sig.SigType != packet.SigTypeText {
		return Signer{}, refuse(FormatOpenPGP, fpr, ErrBadSignature, fmt.Sprintf("signature type %#x is not a document signature", sig.SigType))
	}

	_, entity, err := openpgp.VerifyDetachedSignature(k.pgp, bytes.NewReader(payload), bytes.NewReader(raw), nil)
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return Signer{}, refuse(FormatOpenPGP, fpr, ErrUnknownKey, "not among the trusted keys")
	case err != nil:
		return Signer{}, refuse(FormatOpenPGP, fpr, ErrBadSignature, strings.TrimPrefix(err.Error(), "openpgp: "))
	}
	s := Signer{Format: FormatOpenPGP, Fingerprint: fpr, Identity: primaryIdentity(entity)}
	if fpr == "" || len(fpr) == 16 {
		s.Fingerprint = pgpFingerprint(entity.PrimaryKey.Fingerprint)
	}
	s.File = k.pgpFile[entity.PrimaryKey.KeyId]
	return s, nil
}

// pgpFingerprint writes a key fingerprint as gpg --with-colons does:
// upper-case hex without spaces.
func pgpFingerprint(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
