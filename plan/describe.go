package plan

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"maps"
	"time"

	"certops/schema"
)

// EntityInfo describes an entity for people and tools: what the admin API
// serves (GET /api/v1/ssls), what metrics read expiry from, what plans
// compare. It holds no private key and no secret value; references are kept
// as written. Its JSON form is the admin API's SSL document (see
// [EntityInfo.MarshalJSON]).
type EntityInfo struct {
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	SNIs      []string          `json:"snis"`
	Labels    map[string]string `json:"labels"`
	File      string            `json:"file"`
	Protocols []string          `json:"ssl_protocols"`
	Chains    []ChainInfo       `json:"chains"`
	ClientCA  []ChainInfo       `json:"client_ca"`
	Desc      string            `json:"desc,omitempty"`
	// Disabled is APISIX's status: 0: validated and kept, not served.
	Disabled bool `json:"disabled,omitempty"`
}

// ChainInfo describes one certificate: the leaf of a chain, or one CA of a
// client CA bundle. Fields of a certificate that is a secret reference not
// resolved here (CI has no Vault) are empty, and CertRef tells which
// reference it is.
type ChainInfo struct {
	Subject   string    `json:"subject"`
	SANs      []string  `json:"sans"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	KeyType   string    `json:"key_type"`
	// Fingerprint is the SHA-256 of the leaf's DER, hex.
	Fingerprint string `json:"fingerprint_sha256"`
	// PublicKeyFingerprint is the SHA-256 of the public key (SPKI DER) of
	// the chain's private key, hex: it changes when the key does. It is
	// taken from the key when the key is literal or resolved, else from
	// the leaf's SubjectPublicKeyInfo (validation checks that the key
	// matches the leaf, so that is the key's public half): a key behind a
	// secret reference is known by its certificate. It is empty for a CA,
	// and for a reference key whose certificate is a reference too, both
	// unresolved.
	PublicKeyFingerprint string `json:"public_key_sha256"`
	// CertRef and KeyRef are the secret references as written, if any;
	// "" for literal PEM.
	CertRef string `json:"cert_ref,omitempty"`
	KeyRef  string `json:"key_ref,omitempty"`
	// Issuer is the certificate's issuer name (RFC 2253 form, as Subject);
	// empty when the certificate is an unresolved reference.
	Issuer string `json:"issuer"`
	// Trust is the verdict on the chain's roots (certcheck.Trust: public,
	// private or untrusted) that the hygiene checks gave when they ran on
	// the entity (the daemon; diff describes without them): empty
	// otherwise, and for a CA of a client CA bundle.
	Trust string `json:"trust,omitempty"`
}

// Describe returns the description of e. With m (its resolved material)
// every certificate is described; with m nil, literal PEM values are parsed
// and secret references are described by the reference alone, so that two
// revisions can be compared where no secret store is reachable. A lean
// entity (schema.Entity.Lean) holds no PEM text: describe it with its
// material.
func Describe(e *schema.Entity, m *schema.Material) EntityInfo {
	info := EntityInfo{
		Name:      e.Name,
		Type:      e.Type.String(),
		SNIs:      append([]string(nil), e.SNIs...),
		Labels:    maps.Clone(e.Labels),
		File:      e.Pos.File,
		Protocols: append([]string(nil), e.Protocols...),
		Desc:      e.Desc,
		Disabled:  e.Disabled,
	}
	for i, ch := range e.Chains {
		var ci ChainInfo
		if schema.IsReference(ch.Cert) {
			ci.CertRef = ch.Cert
		}
		if schema.IsReference(ch.Key) {
			ci.KeyRef = ch.Key
		}
		var leaf *x509.Certificate
		var pub crypto.PublicKey
		switch {
		case m != nil && i < len(m.Chains):
			leaf = leafOf(m.Chains[i])
			if signer, ok := m.Chains[i].PrivateKey.(crypto.Signer); ok {
				pub = signer.Public()
			}
		default:
			if ci.CertRef == "" {
				leaf = firstCert([]byte(ch.Cert))
			}
			if ci.KeyRef == "" {
				pub = publicOfPEM([]byte(ch.Key))
			}
		}
		describeCert(&ci, leaf)
		if pub == nil && leaf != nil && ci.KeyRef != "" {
			// The key is an unresolved reference: its public half is the
			// leaf's, which validation matched to it.
			pub = leaf.PublicKey
		}
		if leaf != nil {
			// The hygiene checks' verdict from validating or resolving
			// this entity: the chain is not verified again here.
			ci.Trust = string(e.Trust(i))
		}
		if pub != nil {
			if der, err := x509.MarshalPKIXPublicKey(pub); err == nil {
				ci.PublicKeyFingerprint = sha256Hex(der)
			}
		}
		info.Chains = append(info.Chains, ci)
	}
	if e.ClientCA != "" {
		if schema.IsReference(e.ClientCA) && m == nil {
			info.ClientCA = []ChainInfo{{CertRef: e.ClientCA}}
		} else if !schema.IsReference(e.ClientCA) {
			for _, c := range allCerts([]byte(e.ClientCA)) {
				var ci ChainInfo
				describeCert(&ci, c)
				info.ClientCA = append(info.ClientCA, ci)
			}
		} else {
			// A resolved client CA: the pool does not give its certificates
			// back, so the reference stands for it.
			info.ClientCA = []ChainInfo{{CertRef: e.ClientCA}}
		}
	}
	return info
}

// DescribeCAs describes each certificate of a PEM bundle (a resolved
// client CA), each with ref, the reference it was resolved from.
func DescribeCAs(bundle []byte, ref string) []ChainInfo {
	var out []ChainInfo
	for _, c := range allCerts(bundle) {
		ci := ChainInfo{CertRef: ref}
		describeCert(&ci, c)
		out = append(out, ci)
	}
	return out
}

func describeCert(ci *ChainInfo, c *x509.Certificate) {
	if c == nil {
		return
	}
	ci.Subject = c.Subject.String()
	ci.Issuer = c.Issuer.String()
	ci.SANs = append(ci.SANs, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		ci.SANs = append(ci.SANs, ip.String())
	}
	ci.SANs = append(ci.SANs, c.EmailAddresses...)
	for _, u := range c.URIs {
		ci.SANs = append(ci.SANs, u.String())
	}
	ci.Serial = c.SerialNumber.Text(16)
	ci.NotBefore = c.NotBefore.UTC()
	ci.NotAfter = c.NotAfter.UTC()
	ci.KeyType = keyType(c.PublicKey)
	ci.Fingerprint = sha256Hex(c.Raw)
}

func leafOf(c tls.Certificate) *x509.Certificate {
	if c.Leaf != nil {
		return c.Leaf
	}
	if len(c.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

func firstCert(pemBytes []byte) *x509.Certificate {
	if cs := allCerts(pemBytes); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

func allCerts(pemBytes []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, pemBytes = pem.Decode(pemBytes)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// publicOfPEM returns the public half of a PEM private key, or nil.
func publicOfPEM(pemBytes []byte) crypto.PublicKey {
	if k, err := schema.ParseKey(pemBytes); err == nil {
		return k.Public()
	}
	return nil
}

func keyType(pub any) string { return schema.KeyType(pub) }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// DescribeTree loads the entities below path in fsys and describes them
// without resolving secrets: references are compared as written, since a CI
// job that reviews a change has no access to the secret stores. A tree that
// does not validate returns its errors (warnings left out) and no entities.
// `certops diff` compares two such descriptions. A path that does not
// exist in the tree describes no entities: a pull request that adds (or
// removes) the whole folder shows every entity created (or deleted).
func DescribeTree(fsys fs.FS, path string) ([]EntityInfo, schema.ErrorList, error) {
	if path != "" && path != "." {
		if _, err := fs.Stat(fsys, path); errors.Is(err, fs.ErrNotExist) {
			return []EntityInfo{}, nil, nil
		}
	}
	res, err := schema.Load(fsys, schema.Options{Root: path})
	if err != nil {
		return nil, nil, err
	}
	if res.Problems.Err() != nil {
		var errs schema.ErrorList
		for _, p := range res.Problems {
			if p.Severity == schema.SeverityError {
				errs = append(errs, p)
			}
		}
		return nil, errs, nil
	}
	infos := make([]EntityInfo, 0, len(res.Entities))
	for _, e := range res.Entities {
		infos = append(infos, Describe(e, nil))
	}
	return infos, nil, nil
}
